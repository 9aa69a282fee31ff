// The separate epilogue pass and the row broadcast against plain host loops
// (same f32 operation order, so the results agree bit for bit).
#include "tests/cuda/gpu_test_util.h"

#if HILUM_HAVE_CUDA
#include "cuda/epilogue.h"

namespace hilum::testing {
namespace {

TEST(CudaEpilogue, BiasResidualReluMatchesHost) {
  HILUM_REQUIRE_GPU();
  auto stream = cuda::Stream::create();
  ASSERT_TRUE(stream.ok());
  for (Precision p : {Precision::kF16, Precision::kBF16}) {
    for (int64_t c : {16, 5, 8, 1}) {
      for (int variant = 0; variant < 4; ++variant) {
        const bool with_bias = variant & 1, with_z = variant & 2, relu = c != 8;
        const int64_t rows = 37;
        SCOPED_TRACE(::testing::Message() << cuda::precision_name(p) << " c" << c << " bias " << with_bias
                                          << " z " << with_z << " relu " << relu);
        auto y = random_floats(rows * c, 1, -2, 2);
        auto z = random_floats(rows * c, 2, -2, 2);
        auto bias = random_floats(c, 3, -1, 1);
        for (auto& v : y) v = round_to(v, p);
        for (auto& v : z) v = round_to(v, p);
        std::vector<float> want(y.size());
        for (int64_t i = 0; i < rows * c; ++i) {
          float s = y[i];
          if (with_bias) s += bias[i % c];
          if (with_z) s += z[i];
          if (relu) s = std::max(s, 0.0f);
          want[i] = round_to(s, p);
        }
        auto dy = upload(to_bits(y, p));
        auto dz = upload(to_bits(z, p));
        auto db = upload(bias);
        ASSERT_TRUE(cuda::bias_residual_relu_nhwc(*stream, p, dy.data(), with_bias ? db.as<float>() : nullptr,
                                                  with_z ? dz.data() : nullptr, rows, c, relu)
                        .ok());
        ASSERT_TRUE(stream->synchronize().ok());
        auto got = from_bits(download<uint16_t>(dy, y.size()), p);
        for (size_t i = 0; i < want.size(); ++i) ASSERT_EQ(got[i], want[i]) << i;
      }
    }
  }
}

TEST(CudaEpilogue, BroadcastRows) {
  HILUM_REQUIRE_GPU();
  auto stream = cuda::Stream::create();
  ASSERT_TRUE(stream.ok());
  auto bias = random_floats(7, 9);
  auto db = upload(bias);
  auto dy = cuda::DeviceBuffer::allocate(5 * 7 * 4);
  ASSERT_TRUE(dy.ok());
  ASSERT_TRUE(cuda::broadcast_rows_f32(*stream, db.as<float>(), 5, 7, dy->as<float>()).ok());
  ASSERT_TRUE(stream->synchronize().ok());
  auto got = download<float>(*dy, 35);
  for (int i = 0; i < 35; ++i) ASSERT_EQ(got[i], bias[i % 7]);
}

}  // namespace
}  // namespace hilum::testing
#else
TEST(CudaEpilogue, NeedsCuda) { GTEST_SKIP() << "built without CUDA"; }
#endif
