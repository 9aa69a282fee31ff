// Layout kernels against the host conversion (bit-exact: both round to nearest even).
#include "tests/cuda/gpu_test_util.h"

#if HILUM_HAVE_CUDA
#include "cuda/layout.h"

namespace hilum::testing {
namespace {

struct LayoutCase {
  int64_t n, c, h, w, c_padded;
};

TEST(CudaLayout, NchwF32ToNhwcMatchesHostRounding) {
  HILUM_REQUIRE_GPU();
  auto stream = cuda::Stream::create();
  ASSERT_TRUE(stream.ok());
  for (Precision p : {Precision::kF16, Precision::kBF16}) {
    for (const LayoutCase& lc : {LayoutCase{3, 3, 7, 5, 8}, LayoutCase{1, 5, 1, 13, 5},
                                 LayoutCase{2, 1, 9, 9, 8}, LayoutCase{4, 16, 3, 2, 16}}) {
      SCOPED_TRACE(::testing::Message() << cuda::precision_name(p) << " n" << lc.n << " c" << lc.c << " "
                                        << lc.h << "x" << lc.w << " cp" << lc.c_padded);
      // Large and tiny magnitudes exercise rounding and subnormals.
      auto x = random_floats(lc.n * lc.c * lc.h * lc.w, 17, -70000.0f, 70000.0f);
      for (size_t i = 0; i < x.size(); i += 3) x[i] *= 1e-9f;
      auto dx = upload(x);
      auto dy = cuda::DeviceBuffer::allocate(lc.n * lc.h * lc.w * lc.c_padded * 2);
      ASSERT_TRUE(dy.ok());
      ASSERT_TRUE(
          cuda::nchw_f32_to_nhwc(*stream, dx.as<float>(), lc.n, lc.c, lc.h, lc.w, lc.c_padded, p, dy->data())
              .ok());
      ASSERT_TRUE(stream->synchronize().ok());
      auto got = download<uint16_t>(*dy, lc.n * lc.h * lc.w * lc.c_padded);
      for (int64_t i = 0; i < lc.n; ++i)
        for (int64_t q = 0; q < lc.h * lc.w; ++q)
          for (int64_t ch = 0; ch < lc.c_padded; ++ch) {
            const uint16_t want =
                ch < lc.c ? to_bits(x[(i * lc.c + ch) * lc.h * lc.w + q], p) : to_bits(0.0f, p);
            ASSERT_EQ(got[(i * lc.h * lc.w + q) * lc.c_padded + ch], want) << i << " " << q << " " << ch;
          }

      // And back: NHWC (unpadded) -> NCHW f32 is exact.
      if (lc.c_padded == lc.c) {
        auto back = cuda::DeviceBuffer::allocate(x.size() * 4);
        ASSERT_TRUE(back.ok());
        ASSERT_TRUE(
            cuda::nhwc_to_nchw_f32(*stream, dy->data(), lc.n, lc.c, lc.h, lc.w, p, back->as<float>()).ok());
        ASSERT_TRUE(stream->synchronize().ok());
        auto round_trip = download<float>(*back, x.size());
        for (size_t i = 0; i < x.size(); ++i) ASSERT_EQ(round_trip[i], round_to(x[i], p)) << i;
      }
    }
  }
}

}  // namespace
}  // namespace hilum::testing
#else
TEST(CudaLayout, NeedsCuda) { GTEST_SKIP() << "built without CUDA"; }
#endif
