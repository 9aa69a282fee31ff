// cuBLAS fc layer against model/conv2d.h's linear_f32.
#include "tests/cuda/gpu_test_util.h"

#if HILUM_HAVE_CUDA
#include "cuda/linear.h"
#include "model/conv2d.h"

namespace hilum::testing {
namespace {

TEST(CudaLinear, MatchesCpuLinearOnAwkwardSizes) {
  HILUM_REQUIRE_GPU();
  auto stream = cuda::Stream::create();
  ASSERT_TRUE(stream.ok());
  auto blas = cuda::Blas::create(*stream);
  ASSERT_TRUE(blas.ok()) << blas.error().message();
  struct Case {
    int64_t rows, in, out;
    bool bias;
  };
  for (const Case& c :
       {Case{3, 37, 11, true}, Case{1, 2048, 1000, true}, Case{257, 64, 2, false}, Case{5, 1, 3, true}}) {
    SCOPED_TRACE(::testing::Message() << c.rows << "x" << c.in << " -> " << c.out);
    auto x = random_floats(c.rows * c.in, 1);
    auto w = random_floats(c.out * c.in, 2);
    auto b = random_floats(c.out, 3);
    std::vector<float> want(c.rows * c.out);
    linear_f32(c.rows, c.in, c.out, x.data(), w.data(), c.bias ? b.data() : nullptr, want.data());
    auto dx = upload(x), dw = upload(w), db = upload(b);
    auto dy = cuda::DeviceBuffer::allocate(want.size() * 4);
    ASSERT_TRUE(dy.ok());
    ASSERT_TRUE((*blas)
                    ->linear_f32(c.rows, c.in, c.out, dx.as<float>(), dw.as<float>(),
                                 c.bias ? db.as<float>() : nullptr, dy->as<float>())
                    .ok());
    ASSERT_TRUE(stream->synchronize().ok());
    auto got = download<float>(*dy, want.size());
    // fp32 both sides, different summation order: K * 2^-24 * sum|x w| <= 2048 * 6e-8 * ~20.
    for (size_t i = 0; i < want.size(); ++i)
      ASSERT_NEAR(got[i], want[i], 1e-4 + 1e-5 * std::fabs(want[i])) << i;
  }
}

}  // namespace
}  // namespace hilum::testing
#else
TEST(CudaLinear, NeedsCuda) { GTEST_SKIP() << "built without CUDA"; }
#endif
