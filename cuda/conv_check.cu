#include <algorithm>
#include <set>

#include "cuda/common.cuh"
#include "cuda/conv_check.h"

namespace hilum::cuda {
namespace {

template <typename T>
__global__ void fill_random_kernel(T* __restrict__ dst, long long count, uint32_t seed, float amplitude) {
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    dst[i] = from_f32<T>(random_fill_value(seed, static_cast<uint64_t>(i), amplitude));
  }
}

struct Geometry {
  long long n, c, h, w, k, r, s, stride, pad, ho, wo;
};

template <typename T>
__global__ void conv_reference_kernel(const T* __restrict__ x, const T* __restrict__ w,
                                      const float* __restrict__ bias, const T* __restrict__ z,
                                      const T* __restrict__ y, Geometry g, int epilogue,
                                      const long long* __restrict__ indices, int count,
                                      float* __restrict__ ref, float* __restrict__ scale,
                                      float* __restrict__ got) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= count) return;
  const long long idx = indices[i];
  const long long k = idx % g.k;
  const long long pix = idx / g.k;
  const long long q = pix % g.wo;
  const long long p = (pix / g.wo) % g.ho;
  const long long n = pix / (g.wo * g.ho);
  float sum = 0.0f, mag = 0.0f;
  for (long long r = 0; r < g.r; ++r) {
    const long long iy = p * g.stride - g.pad + r;
    if (iy < 0 || iy >= g.h) continue;
    for (long long s = 0; s < g.s; ++s) {
      const long long ix = q * g.stride - g.pad + s;
      if (ix < 0 || ix >= g.w) continue;
      const T* xp = x + ((n * g.h + iy) * g.w + ix) * g.c;
      const T* wp = w + ((k * g.r + r) * g.s + s) * g.c;
      for (long long c = 0; c < g.c; ++c) {
        const float prod = to_f32(xp[c]) * to_f32(wp[c]);
        sum += prod;
        mag += fabsf(prod);
      }
    }
  }
  if (epilogue != 0) {
    if (bias) {
      sum += bias[k];
      mag += fabsf(bias[k]);
    }
    if (epilogue == 2 && z) {
      const float zv = to_f32(z[idx]);
      sum += zv;
      mag += fabsf(zv);
    }
    sum = fmaxf(sum, 0.0f);
  }
  ref[i] = sum;
  scale[i] = mag;
  got[i] = to_f32(y[idx]);
}

}  // namespace

Status fill_random(const Stream& stream, Precision precision, void* dst, int64_t count, uint32_t seed,
                   float amplitude) {
  if (count <= 0) return Status::Ok();
  constexpr int kThreads = 256;
  cudaStream_t s = as_stream(stream.native());
  if (precision == Precision::kF16) {
    fill_random_kernel<__half>
        <<<grid_for(count, kThreads), kThreads, 0, s>>>(static_cast<__half*>(dst), count, seed, amplitude);
  } else {
    fill_random_kernel<__nv_bfloat16><<<grid_for(count, kThreads), kThreads, 0, s>>>(
        static_cast<__nv_bfloat16*>(dst), count, seed, amplitude);
  }
  return launch_check("fill_random");
}

Status conv_reference_samples(const Stream& stream, Precision precision, const ConvShape& shape,
                              ConvEpilogue epilogue, const ConvArgs& args, const int64_t* indices, int count,
                              float* ref, float* scale, float* got) {
  if (count <= 0) return Status::Ok();
  const Geometry g{shape.n, shape.c,      shape.h,   shape.w,       shape.k,      shape.r,
                   shape.s, shape.stride, shape.pad, shape.out_h(), shape.out_w()};
  const int ep = epilogue == ConvEpilogue::kNone ? 0 : epilogue == ConvEpilogue::kBiasRelu ? 1 : 2;
  constexpr int kThreads = 128;
  const unsigned blocks = static_cast<unsigned>((count + kThreads - 1) / kThreads);
  cudaStream_t s = as_stream(stream.native());
  const auto* idx = reinterpret_cast<const long long*>(indices);
  if (precision == Precision::kF16) {
    conv_reference_kernel<__half>
        <<<blocks, kThreads, 0, s>>>(static_cast<const __half*>(args.x), static_cast<const __half*>(args.w),
                                     args.bias_f32, static_cast<const __half*>(args.z),
                                     static_cast<const __half*>(args.y), g, ep, idx, count, ref, scale, got);
  } else {
    conv_reference_kernel<__nv_bfloat16><<<blocks, kThreads, 0, s>>>(
        static_cast<const __nv_bfloat16*>(args.x), static_cast<const __nv_bfloat16*>(args.w), args.bias_f32,
        static_cast<const __nv_bfloat16*>(args.z), static_cast<const __nv_bfloat16*>(args.y), g, ep, idx,
        count, ref, scale, got);
  }
  return launch_check("conv_reference_samples");
}

std::vector<int64_t> sample_indices(int64_t total, int64_t channels, int count) {
  std::set<int64_t> picked;
  if (total <= 0 || count <= 0) return {};
  auto add = [&](int64_t i) {
    if (i >= 0 && i < total && static_cast<int>(picked.size()) < count) picked.insert(i);
  };
  add(0);
  add(total - 1);
  add(channels - 1);
  add(total - channels);
  const int64_t rest = std::max<int64_t>(1, count - static_cast<int>(picked.size()));
  const int64_t step = std::max<int64_t>(1, total / rest);
  uint64_t jitter = 0x2545F4914F6CDD1Dull;
  for (int64_t i = 0; i < total && static_cast<int>(picked.size()) < count; i += step) {
    jitter ^= jitter << 13;
    jitter ^= jitter >> 7;
    jitter ^= jitter << 17;
    add(std::min(total - 1, i + static_cast<int64_t>(jitter % static_cast<uint64_t>(step))));
  }
  return {picked.begin(), picked.end()};
}

}  // namespace hilum::cuda
