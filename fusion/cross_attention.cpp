#include "fusion/cross_attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "cuda/cross_attention.h"
#include "cuda/device.h"
#include "model/half.h"
#include "model/parallel.h"

namespace hilum {
namespace {

void attend_rows(const float* q, const float* k, const float* v, float* out, const AttentionShape& s,
                 float scale, int64_t row_begin, int64_t row_end) {
  const int64_t width = s.width();
  const int d = s.head_dim;
  std::vector<float> scores(static_cast<size_t>(std::max<int64_t>(s.keys, 1)));
  std::vector<float> acc(static_cast<size_t>(d));
  for (int64_t m = row_begin; m < row_end; ++m) {
    for (int h = 0; h < s.heads; ++h) {
      float* o = out + m * width + static_cast<int64_t>(h) * d;
      if (s.keys == 0) {
        std::fill(o, o + d, 0.0f);
        continue;
      }
      const float* qh = q + m * width + static_cast<int64_t>(h) * d;
      float max_score = -INFINITY;
      for (int64_t t = 0; t < s.keys; ++t) {
        const float* kh = k + t * width + static_cast<int64_t>(h) * d;
        float dot = 0;
        for (int i = 0; i < d; ++i) dot += qh[i] * kh[i];
        scores[t] = dot * scale;
        max_score = std::max(max_score, scores[t]);
      }
      float sum = 0;
      std::fill(acc.begin(), acc.end(), 0.0f);
      for (int64_t t = 0; t < s.keys; ++t) {
        const float p = std::exp(scores[t] - max_score);
        sum += p;
        const float* vh = v + t * width + static_cast<int64_t>(h) * d;
        for (int i = 0; i < d; ++i) acc[i] += p * vh[i];
      }
      const float inv = 1.0f / sum;
      for (int i = 0; i < d; ++i) o[i] = acc[i] * inv;
    }
  }
}

}  // namespace

void cross_attention_reference(const float* q, const float* k, const float* v, float* out,
                               const AttentionShape& s, float scale) {
  const int64_t per_row = std::max<int64_t>(s.keys, 1) * s.width();
  parallel_for(s.queries, std::max<int64_t>(1, (1 << 16) / per_row),
               [&](int64_t begin, int64_t end) { attend_rows(q, k, v, out, s, scale, begin, end); });
}

Result<Tensor> cross_attention(const Tensor& q, const Tensor& k, const Tensor& v, int heads, float scale,
                               Device device) {
  for (const Tensor* t : {&q, &k, &v}) {
    if (!t->defined() || t->rank() != 2 || t->dtype() != DType::kF32 || t->device() != Device::kCPU) {
      return bad_input("cross_attention: q, k and v must be 2-D f32 CPU tensors");
    }
  }
  if (heads <= 0 || q.dim(1) % heads != 0) return bad_input("cross_attention: width not divisible by heads");
  if (k.dim(1) != q.dim(1) || v.dim(1) != q.dim(1) || k.dim(0) != v.dim(0)) {
    return bad_input("cross_attention: shapes q " + shape_string(q.shape()) + ", k " +
                     shape_string(k.shape()) + ", v " + shape_string(v.shape()) + " do not match");
  }
  AttentionShape s{q.dim(0), k.dim(0), heads, static_cast<int>(q.dim(1) / heads)};
  Tensor out = Tensor::empty({s.queries, s.width()}, DType::kF32);
  if (device == Device::kCPU || s.queries == 0 || s.keys == 0) {
    cross_attention_reference(q.data<float>(), k.data<float>(), v.data<float>(), out.data<float>(), s, scale);
    return out;
  }
  // CUDA: fp16 copies on the device, fp32 result back on the CPU.
  auto to_half = [](const Tensor& t) {
    std::vector<uint16_t> h(static_cast<size_t>(t.numel()));
    const float* p = t.data<float>();
    for (size_t i = 0; i < h.size(); ++i) h[i] = f32_to_f16(p[i]);
    return h;
  };
  const auto hq = to_half(q), hk = to_half(k), hv = to_half(v);
  std::vector<void*> buffers;
  auto release = [&] {
    for (void* b : buffers) cuda::free_device(b);
  };
  auto upload = [&](const std::vector<uint16_t>& h) -> Result<void*> {
    HILUM_ASSIGN_OR_RETURN(void* d, cuda::malloc_device(h.size() * 2));
    buffers.push_back(d);
    HILUM_RETURN_IF_ERROR(cuda::copy_to_device(d, h.data(), h.size() * 2));
    return d;
  };
  auto run = [&]() -> Status {
    HILUM_ASSIGN_OR_RETURN(void* dq, upload(hq));
    HILUM_ASSIGN_OR_RETURN(void* dk, upload(hk));
    HILUM_ASSIGN_OR_RETURN(void* dv, upload(hv));
    HILUM_ASSIGN_OR_RETURN(void* dout, cuda::malloc_device(hq.size() * 2));
    buffers.push_back(dout);
    cuda::CrossAttentionShape cs{s.queries, s.keys, s.heads, s.head_dim};
    HILUM_RETURN_IF_ERROR(cuda::cross_attention(dq, dk, dv, dout, cs, cuda::AttentionDType::kF16, scale));
    std::vector<uint16_t> ho(hq.size());
    HILUM_RETURN_IF_ERROR(cuda::copy_to_host(ho.data(), dout, ho.size() * 2));
    float* o = out.data<float>();
    for (size_t i = 0; i < ho.size(); ++i) o[i] = f16_to_f32(ho[i]);
    return Status::Ok();
  };
  Status st = run();
  release();
  if (!st.ok()) return st.error();
  return out;
}

}  // namespace hilum
