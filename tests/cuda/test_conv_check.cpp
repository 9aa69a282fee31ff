// The planner's checking kernels (cuda/conv_check.h): pseudo-random fill
// against its host formula, sampled direct convolution against the CPU
// reference convolution, and the choice of sample positions.
#include "tests/cuda/gpu_test_util.h"

#if HILUM_HAVE_CUDA
#include <set>

#include "cuda/conv_check.h"
#include "model/conv2d.h"

namespace hilum::testing {
namespace {

using cuda::ConvEpilogue;

// Host-only: runs without a GPU.
TEST(ConvCheck, SampleIndicesAreDistinctInRangeAndIncludeTheCorners) {
  for (int64_t total : {1, 7, 64, 999, 1 << 20}) {
    for (int64_t channels : {1, 8, 64}) {
      if (channels > total) continue;
      for (int count : {1, 5, 768}) {
        const auto idx = cuda::sample_indices(total, channels, count);
        ASSERT_FALSE(idx.empty());
        EXPECT_LE(static_cast<int64_t>(idx.size()), std::min<int64_t>(count, total));
        std::set<int64_t> unique(idx.begin(), idx.end());
        EXPECT_EQ(unique.size(), idx.size());
        for (int64_t i : idx) {
          EXPECT_GE(i, 0);
          EXPECT_LT(i, total);
        }
        EXPECT_EQ(idx.front(), 0);
        if (count >= 4) {
          EXPECT_TRUE(unique.count(total - 1)) << total << " " << count;
          EXPECT_TRUE(unique.count(channels - 1));
        }
        // Enough of them when asked for many: the check must see most of the output.
        if (count == 768 && total >= 768) {
          EXPECT_GE(static_cast<int64_t>(idx.size()), 700);
        }
      }
    }
  }
  EXPECT_TRUE(cuda::sample_indices(0, 8, 10).empty());
}

TEST(ConvCheck, RandomFillValuesAreUniformInRange) {
  double sum = 0, sum_sq = 0;
  const int n = 100000;
  for (int i = 0; i < n; ++i) {
    const float v = cuda::random_fill_value(7, static_cast<uint64_t>(i), 2.0f);
    ASSERT_GE(v, -2.0f);
    ASSERT_LT(v, 2.0f);
    sum += v;
    sum_sq += static_cast<double>(v) * v;
  }
  EXPECT_NEAR(sum / n, 0.0, 0.02);
  EXPECT_NEAR(sum_sq / n, 4.0 / 3.0, 0.02);  // variance of U(-2, 2)
  EXPECT_NE(cuda::random_fill_value(7, 3, 1.0f), cuda::random_fill_value(8, 3, 1.0f));
}

TEST(ConvCheck, FillRandomMatchesHostFormula) {
  HILUM_REQUIRE_GPU();
  auto stream = cuda::Stream::create();
  ASSERT_TRUE(stream.ok());
  for (Precision p : {Precision::kF16, Precision::kBF16}) {
    for (int64_t count : {1, 13, 4099}) {
      auto buf = cuda::DeviceBuffer::allocate(static_cast<size_t>(count) * 2);
      ASSERT_TRUE(buf.ok());
      ASSERT_TRUE(cuda::fill_random(*stream, p, buf->data(), count, 99, 0.75f).ok());
      ASSERT_TRUE(stream->synchronize().ok());
      auto got = download<uint16_t>(*buf, static_cast<size_t>(count));
      for (int64_t i = 0; i < count; ++i) {
        ASSERT_EQ(got[i], to_bits(cuda::random_fill_value(99, static_cast<uint64_t>(i), 0.75f), p))
            << cuda::precision_name(p) << " at " << i;
      }
    }
  }
}

TEST(ConvCheck, ReferenceSamplesMatchCpuConvolution) {
  HILUM_REQUIRE_GPU();
  auto stream = cuda::Stream::create();
  ASSERT_TRUE(stream.ok());
  struct Case {
    int64_t n, c, h, w, k, r, stride, pad;
  };
  for (const Case& cc : {Case{2, 8, 15, 13, 24, 7, 2, 3}, Case{1, 24, 9, 11, 8, 1, 1, 0},
                         Case{3, 16, 10, 10, 40, 3, 2, 1}, Case{1, 8, 1, 1, 8, 3, 1, 1}}) {
    for (Precision p : {Precision::kF16, Precision::kBF16}) {
      for (ConvEpilogue e : {ConvEpilogue::kNone, ConvEpilogue::kBiasRelu, ConvEpilogue::kBiasResidualRelu}) {
        SCOPED_TRACE(::testing::Message() << cuda::precision_name(p) << " c" << cc.c << " k" << cc.k << " r"
                                          << cc.r << " " << cuda::epilogue_name(e));
        cuda::ConvShape s;
        s.n = cc.n, s.c = cc.c, s.h = cc.h, s.w = cc.w, s.k = cc.k, s.r = s.s = cc.r, s.stride = cc.stride,
        s.pad = cc.pad;
        const int64_t ho = s.out_h(), wo = s.out_w(), outputs = cc.n * cc.k * ho * wo;
        auto x = random_floats(cc.n * cc.c * cc.h * cc.w, 1);
        auto w = random_floats(cc.k * cc.c * cc.r * cc.r, 2, -0.5f, 0.5f);
        auto bias = random_floats(cc.k, 3);
        auto z = random_floats(outputs, 4);
        auto y = random_floats(outputs, 5);
        for (auto* v : {&x, &w, &z, &y})
          for (auto& val : *v) val = round_to(val, p);
        Conv2dGeometry g;
        g.batch = cc.n, g.in_channels = cc.c, g.in_h = cc.h, g.in_w = cc.w, g.out_channels = cc.k;
        g.kernel_h = g.kernel_w = cc.r, g.stride = cc.stride, g.pad = cc.pad;
        std::vector<float> conv(outputs), conv_abs(outputs);
        conv2d_nchw_reference(g, x.data(), w.data(), {}, conv.data());
        std::vector<float> x_abs(x), w_abs(w);
        for (auto& v : x_abs) v = std::fabs(v);
        for (auto& v : w_abs) v = std::fabs(v);
        conv2d_nchw_reference(g, x_abs.data(), w_abs.data(), {}, conv_abs.data());
        const auto conv_nhwc = nchw_to_nhwc(conv, cc.n, cc.k, ho, wo);
        const auto abs_nhwc = nchw_to_nhwc(conv_abs, cc.n, cc.k, ho, wo);

        std::vector<float> w_krsc(w.size());
        for (int64_t o = 0; o < cc.k; ++o)
          for (int64_t i = 0; i < cc.c; ++i)
            for (int64_t q = 0; q < cc.r * cc.r; ++q)
              w_krsc[(o * cc.r * cc.r + q) * cc.c + i] = w[(o * cc.c + i) * cc.r * cc.r + q];
        auto dx = upload(to_bits(nchw_to_nhwc(x, cc.n, cc.c, cc.h, cc.w), p));
        auto dw = upload(to_bits(w_krsc, p));
        auto db = upload(bias);
        auto dz = upload(to_bits(z, p));  // z and y are already "NHWC": any layout is fine for them
        auto dy = upload(to_bits(y, p));
        const auto idx = cuda::sample_indices(outputs, cc.k, 100);
        auto didx = upload(idx);
        auto out = cuda::DeviceBuffer::allocate(3 * idx.size() * sizeof(float));
        ASSERT_TRUE(out.ok());
        cuda::ConvArgs args;
        args.x = dx.data(), args.w = dw.data(), args.bias_f32 = db.as<float>(), args.z = dz.data(),
        args.y = dy.data();
        float* o = out->as<float>();
        const int count = static_cast<int>(idx.size());
        ASSERT_TRUE(cuda::conv_reference_samples(*stream, p, s, e, args, didx.as<int64_t>(), count, o,
                                                 o + count, o + 2 * count)
                        .ok());
        ASSERT_TRUE(stream->synchronize().ok());
        auto host = download<float>(*out, 3 * idx.size());
        for (int i = 0; i < count; ++i) {
          const int64_t at = idx[i];
          const int64_t k = at % cc.k;
          double want = conv_nhwc[at], scale = abs_nhwc[at];
          if (e != ConvEpilogue::kNone) {
            want += bias[k];
            scale += std::fabs(bias[k]);
            if (e == ConvEpilogue::kBiasResidualRelu) {
              want += z[at];
              scale += std::fabs(z[at]);
            }
            want = std::max(want, 0.0);
          }
          // Both sides sum exact products in f32, in different orders.
          const double tol = 1e-6 * (cc.c * cc.r * cc.r + 2) * scale + 1e-7;
          ASSERT_NEAR(host[i], want, tol) << "sample " << i << " (output " << at << ")";
          ASSERT_NEAR(host[count + i], scale, tol) << "scale of sample " << i;
          ASSERT_EQ(host[2 * count + i], y[at]) << "y at sample " << i;
        }
      }
    }
  }
}

}  // namespace
}  // namespace hilum::testing
#else
TEST(ConvCheck, NeedsCuda) { GTEST_SKIP() << "built without CUDA"; }
#endif
