// Helpers for the GPU conformance tests: skipping without a device, host-side
// half-precision rounding (model/half.h), and device upload/download.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "cuda/device.h"
#include "model/half.h"

#if HILUM_HAVE_CUDA
#include "cuda/stream.h"
#endif

// Every GPU test starts with this: skipped, not failed, where no GPU exists.
#define HILUM_REQUIRE_GPU()                                                                  \
  do {                                                                                       \
    if (hilum::cuda::device_count() == 0) GTEST_SKIP() << hilum::cuda::unavailable_reason(); \
  } while (0)

namespace hilum::testing {

inline std::vector<float> random_floats(size_t n, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

#if HILUM_HAVE_CUDA
using cuda::Precision;

inline uint16_t to_bits(float v, Precision p) {
  return p == Precision::kF16 ? f32_to_f16(v) : f32_to_bf16(v);
}
inline float from_bits(uint16_t b, Precision p) {
  return p == Precision::kF16 ? f16_to_f32(b) : bf16_to_f32(b);
}
inline float round_to(float v, Precision p) { return from_bits(to_bits(v, p), p); }
// Unit roundoff of the storage type.
inline double unit_roundoff(Precision p) {
  return p == Precision::kF16 ? std::ldexp(1.0, -11) : std::ldexp(1.0, -8);
}

inline std::vector<uint16_t> to_bits(const std::vector<float>& v, Precision p) {
  std::vector<uint16_t> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = to_bits(v[i], p);
  return out;
}
inline std::vector<float> from_bits(const std::vector<uint16_t>& v, Precision p) {
  std::vector<float> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = from_bits(v[i], p);
  return out;
}

template <typename T>
cuda::DeviceBuffer upload(const std::vector<T>& host) {
  auto b = cuda::DeviceBuffer::allocate(host.size() * sizeof(T));
  EXPECT_TRUE(b.ok()) << b.error().message();
  if (!b.ok()) return {};
  EXPECT_TRUE(cuda::copy_to_device(b->data(), host.data(), host.size() * sizeof(T)).ok());
  return std::move(b).value();
}

template <typename T>
std::vector<T> download(const cuda::DeviceBuffer& b, size_t count) {
  std::vector<T> host(count);
  EXPECT_TRUE(cuda::synchronize().ok());
  EXPECT_TRUE(cuda::copy_to_host(host.data(), b.data(), count * sizeof(T)).ok());
  return host;
}

// NCHW float -> NHWC, and back (host side).
inline std::vector<float> nchw_to_nhwc(const std::vector<float>& x, int64_t n, int64_t c, int64_t h,
                                       int64_t w) {
  std::vector<float> out(x.size());
  for (int64_t i = 0; i < n; ++i)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t p = 0; p < h * w; ++p) out[(i * h * w + p) * c + ch] = x[(i * c + ch) * h * w + p];
  return out;
}
inline std::vector<float> nhwc_to_nchw(const std::vector<float>& x, int64_t n, int64_t c, int64_t h,
                                       int64_t w) {
  std::vector<float> out(x.size());
  for (int64_t i = 0; i < n; ++i)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t p = 0; p < h * w; ++p) out[(i * c + ch) * h * w + p] = x[(i * h * w + p) * c + ch];
  return out;
}
#endif

}  // namespace hilum::testing
