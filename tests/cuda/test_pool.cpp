// Pooling kernels against model/conv2d.h's CPU references.
#include "tests/cuda/gpu_test_util.h"

#if HILUM_HAVE_CUDA
#include "cuda/pool.h"
#include "model/conv2d.h"

namespace hilum::testing {
namespace {

struct PoolCase {
  int64_t n, c, h, w;
  int kernel, stride, pad;
};

TEST(CudaPool, MaxPoolMatchesReferenceExactly) {
  HILUM_REQUIRE_GPU();
  auto stream = cuda::Stream::create();
  ASSERT_TRUE(stream.ok());
  for (Precision p : {Precision::kF16, Precision::kBF16}) {
    // c % 8 == 0 takes the vectorized path, other c the scalar one.
    for (const PoolCase& pc :
         {PoolCase{2, 16, 13, 11, 3, 2, 1}, PoolCase{3, 5, 7, 9, 3, 2, 1}, PoolCase{1, 8, 1, 1, 3, 2, 1},
          PoolCase{2, 24, 6, 7, 2, 1, 0}, PoolCase{1, 3, 112, 111, 3, 2, 1}}) {
      SCOPED_TRACE(::testing::Message() << cuda::precision_name(p) << " n" << pc.n << " c" << pc.c << " "
                                        << pc.h << "x" << pc.w << " k" << pc.kernel);
      auto x =
          random_floats(pc.n * pc.c * pc.h * pc.w, 3, -4.0f, -0.5f);  // all negative: padding must never win
      for (auto& v : x) v = round_to(v, p);
      const int64_t ho = (pc.h + 2 * pc.pad - pc.kernel) / pc.stride + 1;
      const int64_t wo = (pc.w + 2 * pc.pad - pc.kernel) / pc.stride + 1;
      std::vector<float> want(pc.n * pc.c * ho * wo);
      max_pool2d_nchw(pc.n, pc.c, pc.h, pc.w, pc.kernel, pc.stride, pc.pad, x.data(), want.data());

      auto dx = upload(to_bits(nchw_to_nhwc(x, pc.n, pc.c, pc.h, pc.w), p));
      auto dy = cuda::DeviceBuffer::allocate(want.size() * 2);
      ASSERT_TRUE(dy.ok());
      ASSERT_TRUE(cuda::max_pool_nhwc(*stream, p, dx.data(), pc.n, pc.h, pc.w, pc.c, pc.kernel, pc.stride,
                                      pc.pad, dy->data())
                      .ok());
      ASSERT_TRUE(stream->synchronize().ok());
      auto got = nhwc_to_nchw(from_bits(download<uint16_t>(*dy, want.size()), p), pc.n, pc.c, ho, wo);
      for (size_t i = 0; i < want.size(); ++i) ASSERT_EQ(got[i], want[i]) << i;
    }
  }
}

TEST(CudaPool, GlobalAveragePoolMatchesReference) {
  HILUM_REQUIRE_GPU();
  auto stream = cuda::Stream::create();
  ASSERT_TRUE(stream.ok());
  for (Precision p : {Precision::kF16, Precision::kBF16}) {
    for (const PoolCase& pc :
         {PoolCase{3, 2048, 7, 7, 0, 0, 0}, PoolCase{2, 5, 1, 1, 0, 0, 0}, PoolCase{1, 33, 13, 3, 0, 0, 0}}) {
      auto x = random_floats(pc.n * pc.c * pc.h * pc.w, 5, -3.0f, 3.0f);
      for (auto& v : x) v = round_to(v, p);
      std::vector<float> want(pc.n * pc.c);
      global_avg_pool_nchw(pc.n, pc.c, pc.h, pc.w, x.data(), want.data());
      auto dx = upload(to_bits(nchw_to_nhwc(x, pc.n, pc.c, pc.h, pc.w), p));
      auto dy = cuda::DeviceBuffer::allocate(want.size() * 4);
      ASSERT_TRUE(dy.ok());
      ASSERT_TRUE(
          cuda::global_avg_pool_nhwc(*stream, p, dx.data(), pc.n, pc.h * pc.w, pc.c, dy->as<float>()).ok());
      ASSERT_TRUE(stream->synchronize().ok());
      auto got = download<float>(*dy, want.size());
      // f32 sums of <= 49 terms of magnitude <= 3: 1e-5 absolute is generous.
      for (size_t i = 0; i < want.size(); ++i) ASSERT_NEAR(got[i], want[i], 1e-5) << i;
    }
  }
}

}  // namespace
}  // namespace hilum::testing
#else
TEST(CudaPool, NeedsCuda) { GTEST_SKIP() << "built without CUDA"; }
#endif
