// Conformance of the CUDA cross-attention kernels with the fp32 CPU reference
// (fusion/cross_attention.h). Skipped without a GPU.
//
// Inputs are drawn in [-1, 1], rounded to fp16/bf16, and the reference runs in
// fp32 on the rounded values, so the difference is the kernel's own rounding:
// P (the softmax weights) is rounded to the 16-bit type before the P.V product
// and the output is rounded once. With |v| <= 1 the output error is bounded by
// about 2 ulp of the 16-bit type:
//   fp16: |got - ref| <= 2e-3 + 5e-3 * |ref|      (ulp 2^-11 = 4.9e-4)
//   bf16: |got - ref| <= 1.5e-2 + 2e-2 * |ref|    (ulp 2^-8  = 3.9e-3)
// Large shapes compare a sample of query rows (every row for small ones); on
// failure the shape, row, head and values are printed.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "cuda/cross_attention.h"
#include "cuda/device.h"
#include "fusion/cross_attention.h"
#include "model/half.h"

namespace hilum {
namespace {

using cuda::AttentionDType;
using cuda::CrossAttentionKernel;

struct Case {
  int64_t candidates, tokens, keys;
  int heads, head_dim;
};

std::string describe(const Case& c) {
  return "N=" + std::to_string(c.candidates) + " k=" + std::to_string(c.tokens) +
         " T=" + std::to_string(c.keys) + " H=" + std::to_string(c.heads) +
         " D=" + std::to_string(c.head_dim);
}

class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t bytes) {
    auto r = cuda::malloc_device(std::max<size_t>(bytes, 16));
    if (r.ok()) ptr_ = *r;
  }
  ~DeviceBuffer() { cuda::free_device(ptr_); }
  void* get() const { return ptr_; }

 private:
  void* ptr_ = nullptr;
};

class CrossAttentionCuda : public ::testing::Test {
 protected:
  void SetUp() override {
    if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device: " << cuda::unavailable_reason();
  }

  // Runs one case; returns the number of mismatching values (0 = pass).
  void check(const Case& c, AttentionDType dtype, CrossAttentionKernel kernel) {
    SCOPED_TRACE(describe(c) + (dtype == AttentionDType::kF16 ? " f16" : " bf16") +
                 (kernel == CrossAttentionKernel::kSimple ? " simple" : " auto"));
    const bool bf16 = dtype == AttentionDType::kBF16;
    const double atol = bf16 ? 1.5e-2 : 2e-3, rtol = bf16 ? 2e-2 : 5e-3;
    AttentionShape s{c.candidates * c.tokens, c.keys, c.heads, c.head_dim};
    const int64_t w = s.width();
    std::mt19937 rng(static_cast<uint32_t>(s.queries * 31 + s.keys * 7 + c.heads * 3 + c.head_dim));
    std::uniform_real_distribution<float> dist(-1.f, 1.f);
    auto make = [&](int64_t n, std::vector<uint16_t>& bits, std::vector<float>& values) {
      bits.resize(n);
      values.resize(n);
      for (int64_t i = 0; i < n; ++i) {
        const float x = dist(rng);
        bits[i] = bf16 ? f32_to_bf16(x) : f32_to_f16(x);
        values[i] = bf16 ? bf16_to_f32(bits[i]) : f16_to_f32(bits[i]);
      }
    };
    std::vector<uint16_t> hq, hk, hv;
    std::vector<float> fq, fk, fv;
    make(s.queries * w, hq, fq);
    make(s.keys * w, hk, fk);
    make(s.keys * w, hv, fv);
    DeviceBuffer dq(hq.size() * 2), dk(hk.size() * 2), dv(hv.size() * 2), dout(hq.size() * 2);
    ASSERT_TRUE(dq.get() && dk.get() && dv.get() && dout.get());
    ASSERT_TRUE(cuda::copy_to_device(dq.get(), hq.data(), hq.size() * 2).ok());
    if (!hk.empty()) {
      ASSERT_TRUE(cuda::copy_to_device(dk.get(), hk.data(), hk.size() * 2).ok());
      ASSERT_TRUE(cuda::copy_to_device(dv.get(), hv.data(), hv.size() * 2).ok());
    }
    const float scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
    cuda::CrossAttentionShape cs{s.queries, s.keys, s.heads, s.head_dim};
    Status st = cuda::cross_attention(dq.get(), dk.get(), dv.get(), dout.get(), cs, dtype, scale, kernel);
    ASSERT_TRUE(st.ok()) << st.error().message();
    ASSERT_TRUE(cuda::synchronize().ok());
    std::vector<uint16_t> hout(hq.size());
    ASSERT_TRUE(cuda::copy_to_host(hout.data(), dout.get(), hout.size() * 2).ok());

    // Reference on a sample of rows: all rows when small, else ~97 spread rows incl. the last.
    std::vector<int64_t> rows;
    const int64_t step = s.queries <= 128 ? 1 : s.queries / 97;
    for (int64_t m = 0; m < s.queries; m += step) rows.push_back(m);
    if (rows.back() != s.queries - 1) rows.push_back(s.queries - 1);
    std::vector<float> ref(w);
    AttentionShape one{1, s.keys, s.heads, s.head_dim};
    int bad = 0;
    for (int64_t m : rows) {
      cross_attention_reference(fq.data() + m * w, fk.data(), fv.data(), ref.data(), one, scale);
      for (int64_t i = 0; i < w; ++i) {
        const float got = bf16 ? bf16_to_f32(hout[m * w + i]) : f16_to_f32(hout[m * w + i]);
        if (!(std::abs(got - ref[i]) <= atol + rtol * std::abs(ref[i]))) {
          if (++bad <= 5) {
            ADD_FAILURE() << "row " << m << " head " << i / s.head_dim << " dim " << i % s.head_dim
                          << ": got " << got << ", reference " << ref[i];
          }
        }
      }
    }
    EXPECT_EQ(bad, 0) << "values outside atol " << atol << " + rtol " << rtol << " * |ref|";
  }
};

TEST_F(CrossAttentionCuda, TensorCoreF16AllAwkwardSizesHeadDim64) {
  for (int64_t n : {1, 3, 257})
    for (int64_t k : {1, 49})
      for (int64_t t : {1, 7, 511, 1000})
        for (int h : {1, 16}) check({n, k, t, h, 64}, AttentionDType::kF16, CrossAttentionKernel::kAuto);
}

TEST_F(CrossAttentionCuda, TensorCoreBF16) {
  for (int64_t n : {1, 257})
    for (int64_t t : {1, 7, 1000})
      check({n, 49, t, 16, 64}, AttentionDType::kBF16, CrossAttentionKernel::kAuto);
}

TEST_F(CrossAttentionCuda, TensorCoreOtherHeadDims) {
  for (int d : {32, 128})
    for (int64_t t : {1, 7, 511})
      for (auto dtype : {AttentionDType::kF16, AttentionDType::kBF16})
        check({3, 49, t, 16, d}, dtype, CrossAttentionKernel::kAuto);
}

TEST_F(CrossAttentionCuda, SimpleKernelAnyHeadDim) {
  for (int d : {8, 40, 64, 200})
    for (int64_t t : {1, 7, 511})
      check({3, 49, t, 4, d}, AttentionDType::kF16, CrossAttentionKernel::kSimple);
  check({257, 1, 1000, 16, 64}, AttentionDType::kBF16, CrossAttentionKernel::kSimple);
  // kAuto falls back to the simple kernel for head sizes the tensor-core kernel lacks.
  check({3, 7, 100, 2, 40}, AttentionDType::kF16, CrossAttentionKernel::kAuto);
}

TEST_F(CrossAttentionCuda, BenchmarkShape) {
  check({256, 49, 512, 16, 64}, AttentionDType::kF16, CrossAttentionKernel::kAuto);
}

TEST_F(CrossAttentionCuda, NoKeysGivesZerosAndBadShapesAreErrors) {
  DeviceBuffer q(64 * 2), out(64 * 2);
  std::vector<uint16_t> ones(64, f32_to_f16(1.f));
  ASSERT_TRUE(cuda::copy_to_device(out.get(), ones.data(), 128).ok());
  cuda::CrossAttentionShape s{2, 0, 2, 16};
  ASSERT_TRUE(cuda::cross_attention(q.get(), nullptr, nullptr, out.get(), s, AttentionDType::kF16, 1.f).ok());
  std::vector<uint16_t> back(64);
  ASSERT_TRUE(cuda::copy_to_host(back.data(), out.get(), 128).ok());
  for (uint16_t b : back) EXPECT_EQ(f16_to_f32(b), 0.f);
  s = {2, 3, 2, 512};
  EXPECT_EQ(cuda::cross_attention(q.get(), q.get(), q.get(), out.get(), s, AttentionDType::kF16, 1.f)
                .error()
                .kind(),
            ErrorKind::kUnsupported);
  s = {2, 3, 2, 40};
  EXPECT_FALSE(cuda::cross_attention(q.get(), q.get(), q.get(), out.get(), s, AttentionDType::kF16, 1.f,
                                     CrossAttentionKernel::kTensorCore)
                   .ok());
}

TEST_F(CrossAttentionCuda, FusionFrontEndOnCudaMatchesCpu) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  std::vector<float> q(98 * 128), k(30 * 128), v(30 * 128);
  for (auto* vec : {&q, &k, &v})
    for (float& x : *vec) x = dist(rng);
  Tensor tq = Tensor::from_f32({98, 128}, q), tk = Tensor::from_f32({30, 128}, k),
         tv = Tensor::from_f32({30, 128}, v);
  auto cpu = cross_attention(tq, tk, tv, 2, 0.125f, Device::kCPU);
  auto gpu = cross_attention(tq, tk, tv, 2, 0.125f, Device::kCUDA);
  ASSERT_TRUE(cpu.ok() && gpu.ok()) << (gpu.ok() ? "" : gpu.error().message());
  for (int64_t i = 0; i < cpu->numel(); ++i)
    ASSERT_NEAR(gpu->data<float>()[i], cpu->data<float>()[i], 3e-3 + 5e-3 * std::abs(cpu->data<float>()[i]));
}

}  // namespace
}  // namespace hilum
