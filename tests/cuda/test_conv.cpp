// cuDNN convolutions (every epilogue, both precisions) against the direct CPU
// convolution of model/conv2d.h, on awkward shapes.
#include "tests/cuda/gpu_test_util.h"

#if HILUM_HAVE_CUDA
#include "cuda/conv.h"
#include "model/conv2d.h"

namespace hilum::testing {
namespace {

using cuda::ConvEpilogue;

struct ConvCase {
  int64_t n, c, h, w, k, r, stride, pad;
};

TEST(CudaConv, MatchesCpuReferenceForEveryEpilogue) {
  HILUM_REQUIRE_GPU();
  auto stream = cuda::Stream::create();
  ASSERT_TRUE(stream.ok());
  const ConvCase cases[] = {
      {2, 8, 15, 13, 24, 7, 2, 3},  // stem-like, odd sizes
      {1, 8, 7, 9, 16, 3, 1, 1},    // 3x3, batch 1
      {3, 16, 10, 10, 8, 1, 2, 0},  // strided 1x1 (downsample)
      {2, 32, 5, 5, 32, 3, 2, 1},   // strided 3x3 on a tiny map
      {2, 8, 6, 5, 40, 3, 1, 1},    // widening 3x3 (the engine pads channels to multiples of 8)
      {1, 24, 9, 11, 8, 1, 1, 0},   // narrowing 1x1, odd map
  };
  for (Precision p : {Precision::kF16, Precision::kBF16}) {
    auto convs = cuda::Convolutions::create(*stream, p);
    ASSERT_TRUE(convs.ok()) << convs.error().message();
    for (const ConvCase& cc : cases) {
      for (ConvEpilogue e : {ConvEpilogue::kNone, ConvEpilogue::kBiasRelu, ConvEpilogue::kBiasResidualRelu}) {
        SCOPED_TRACE(::testing::Message() << cuda::precision_name(p) << " n" << cc.n << " c" << cc.c << " "
                                          << cc.h << "x" << cc.w << " k" << cc.k << " r" << cc.r << " s"
                                          << cc.stride << " epilogue " << static_cast<int>(e));
        cuda::ConvShape s;
        s.n = cc.n, s.c = cc.c, s.h = cc.h, s.w = cc.w, s.k = cc.k, s.r = s.s = cc.r, s.stride = cc.stride,
        s.pad = cc.pad;
        const int64_t ho = s.out_h(), wo = s.out_w();
        auto x = random_floats(cc.n * cc.c * cc.h * cc.w, 11);
        auto w = random_floats(cc.k * cc.c * cc.r * cc.r, 12, -0.3f, 0.3f);
        auto bias = random_floats(cc.k, 13);
        auto z = random_floats(cc.n * cc.k * ho * wo, 14);
        for (auto& v : x) v = round_to(v, p);
        for (auto& v : w) v = round_to(v, p);
        for (auto& v : z) v = round_to(v, p);
        for (auto& v : bias) v = round_to(v, p);

        Conv2dGeometry g;
        g.batch = cc.n, g.in_channels = cc.c, g.in_h = cc.h, g.in_w = cc.w, g.out_channels = cc.k;
        g.kernel_h = g.kernel_w = cc.r, g.stride = cc.stride, g.pad = cc.pad;
        std::vector<float> conv(cc.n * cc.k * ho * wo);
        conv2d_nchw_reference(g, x.data(), w.data(), {}, conv.data());

        // Weights [k, c, r, s] -> [k, r, s, c].
        std::vector<float> w_krsc(w.size());
        for (int64_t o = 0; o < cc.k; ++o)
          for (int64_t i = 0; i < cc.c; ++i)
            for (int64_t q = 0; q < cc.r * cc.r; ++q)
              w_krsc[(o * cc.r * cc.r + q) * cc.c + i] = w[(o * cc.c + i) * cc.r * cc.r + q];
        auto dx = upload(to_bits(nchw_to_nhwc(x, cc.n, cc.c, cc.h, cc.w), p));
        auto dw = upload(to_bits(w_krsc, p));
        auto db = upload(to_bits(bias, p));
        auto db32 = upload(bias);
        auto dz = upload(to_bits(nchw_to_nhwc(z, cc.n, cc.k, ho, wo), p));
        auto dy = cuda::DeviceBuffer::allocate(conv.size() * 2);
        auto ws = cuda::DeviceBuffer::allocate(size_t{64} << 20);
        ASSERT_TRUE(dy.ok() && ws.ok());
        cuda::ConvArgs args;
        args.x = dx.data(), args.w = dw.data(), args.bias = db.data(), args.bias_f32 = db32.as<float>();
        args.z = e == ConvEpilogue::kBiasResidualRelu ? dz.data() : nullptr;
        args.y = dy->data(), args.workspace = ws->data(), args.workspace_bytes = ws->size();
        auto plan = (*convs)->plan(s, e, args, ws->size());
        ASSERT_TRUE(plan.ok()) << plan.error().message();
        // Cached: the same plan comes back without planning again.
        auto again = (*convs)->plan(s, e, args, ws->size());
        ASSERT_TRUE(again.ok());
        EXPECT_EQ(*again, *plan);
        ASSERT_TRUE(stream->memset(dy->data(), 0xff, dy->size()).ok());  // NaNs: every output must be written
        ASSERT_TRUE((*convs)->run(**plan, args).ok());
        ASSERT_TRUE(stream->synchronize().ok());
        auto got = nhwc_to_nchw(from_bits(download<uint16_t>(*dy, conv.size()), p), cc.n, cc.k, ho, wo);

        // fp32 accumulation of exactly representable products; the output is
        // rounded to the storage type once (fused) or twice (conv, then the
        // epilogue pass): allow 3 roundings of the largest term involved plus
        // the f32 accumulation error.
        const double u = unit_roundoff(p);
        const int64_t plane = ho * wo;
        for (size_t i = 0; i < conv.size(); ++i) {
          const int64_t ch = (static_cast<int64_t>(i) / plane) % cc.k;
          double want = conv[i];
          double scale = std::fabs(conv[i]);
          if (e != ConvEpilogue::kNone) {
            want += bias[ch];
            scale += std::fabs(bias[ch]);
            if (e == ConvEpilogue::kBiasResidualRelu) {
              want += z[i];
              scale += std::fabs(z[i]);
            }
            want = std::max(want, 0.0);
          }
          const double tol = 3 * u * scale + 1e-5 * cc.c * cc.r * cc.r;
          ASSERT_NEAR(got[i], want, tol) << "at " << i;
        }
        std::cout << "  " << cuda::Convolutions::describe(**plan) << "\n";
      }
    }
  }
}

}  // namespace
}  // namespace hilum::testing
#else
TEST(CudaConv, NeedsCuda) { GTEST_SKIP() << "built without CUDA"; }
#endif
