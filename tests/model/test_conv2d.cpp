#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "model/conv2d.h"

namespace hilum {
namespace {

std::vector<float> random_vector(size_t n, std::mt19937& rng, float lo = -1, float hi = 1) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

// Tolerance: |got - want| <= atol + rtol*|want|; the fast path sums in float
// over K <= a few hundred terms of magnitude ~1, so 1e-4 relative is generous.
void expect_close(const std::vector<float>& got, const std::vector<float>& want, float atol, float rtol) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_LE(std::fabs(got[i] - want[i]), atol + rtol * std::fabs(want[i])) << "at " << i;
  }
}

struct ConvCase {
  Conv2dGeometry g;
  bool bias, residual, relu;
};

TEST(Conv2d, FastPathMatchesReferenceOnAwkwardShapes) {
  const ConvCase cases[] = {
      // batch, cin, h, w, cout, kh, kw, stride, pad
      {{1, 3, 17, 13, 5, 7, 7, 2, 3}, true, false, true},   // ResNet stem, odd sizes
      {{2, 8, 9, 11, 16, 3, 3, 1, 1}, true, true, true},    // basic-block conv2 with residual
      {{3, 5, 7, 7, 7, 3, 3, 2, 1}, false, false, false},   // strided 3x3, batched small planes
      {{2, 6, 5, 3, 4, 1, 1, 1, 0}, true, true, false},     // pointwise, tiny planes
      {{1, 4, 40, 30, 6, 1, 1, 1, 0}, true, false, true},   // pointwise, per-image path
      {{2, 4, 33, 31, 3, 1, 1, 2, 0}, true, false, false},  // strided pointwise (downsample)
      {{1, 2, 1, 1, 3, 3, 3, 2, 1}, true, false, true},     // 1x1 input, kernel larger than input
      {{2, 3, 2, 5, 2, 3, 3, 2, 1}, false, true, true},     // stride 2 over a width-2 input
      {{1, 16, 45, 23, 9, 3, 3, 1, 1}, true, true, true},   // per-image path with residual
  };
  std::mt19937 rng(7);
  for (const ConvCase& c : cases) {
    const Conv2dGeometry& g = c.g;
    SCOPED_TRACE(::testing::Message()
                 << "N" << g.batch << " C" << g.in_channels << " " << g.in_h << "x" << g.in_w << " K"
                 << g.out_channels << " k" << g.kernel_h << " s" << g.stride << " p" << g.pad);
    auto x = random_vector(g.batch * g.in_channels * g.in_h * g.in_w, rng);
    auto w = random_vector(g.out_channels * g.in_channels * g.kernel_h * g.kernel_w, rng);
    auto b = random_vector(g.out_channels, rng);
    const size_t ny = g.batch * g.out_channels * g.out_h() * g.out_w();
    auto r = random_vector(ny, rng);
    Conv2dEpilogue e;
    e.bias = c.bias ? b.data() : nullptr;
    e.residual = c.residual ? r.data() : nullptr;
    e.relu = c.relu;
    std::vector<float> got(ny, NAN), want(ny, NAN);
    conv2d_nchw(g, x.data(), w.data(), e, got.data());
    conv2d_nchw_reference(g, x.data(), w.data(), e, want.data());
    expect_close(got, want, 1e-4f, 1e-4f);
  }
}

// [N, C, H, W] <-> [C, N, H, W]
std::vector<float> swap01(const std::vector<float>& x, int64_t a, int64_t b, int64_t plane) {
  std::vector<float> out(x.size());
  for (int64_t i = 0; i < a; ++i)
    for (int64_t j = 0; j < b; ++j)
      for (int64_t p = 0; p < plane; ++p) out[(j * a + i) * plane + p] = x[(i * b + j) * plane + p];
  return out;
}

TEST(Conv2d, ChannelMajorMatchesReference) {
  const ConvCase cases[] = {
      {{3, 3, 17, 13, 5, 7, 7, 2, 3}, true, false, true},   {{2, 8, 9, 11, 16, 3, 3, 1, 1}, true, true, true},
      {{4, 6, 5, 3, 4, 1, 1, 1, 0}, true, true, false},  // pointwise: no im2col
      {{2, 4, 33, 31, 3, 1, 1, 2, 0}, false, false, false}, {{1, 2, 1, 1, 3, 3, 3, 2, 1}, true, false, true},
  };
  std::mt19937 rng(9);
  for (const ConvCase& c : cases) {
    const Conv2dGeometry& g = c.g;
    const int64_t ho = g.out_h(), wo = g.out_w();
    auto x = random_vector(g.batch * g.in_channels * g.in_h * g.in_w, rng);
    auto w = random_vector(g.out_channels * g.in_channels * g.kernel_h * g.kernel_w, rng);
    auto b = random_vector(g.out_channels, rng);
    auto r = random_vector(g.batch * g.out_channels * ho * wo, rng);
    std::vector<float> want(r.size());
    conv2d_nchw_reference(g, x.data(), w.data(),
                          {c.bias ? b.data() : nullptr, c.residual ? r.data() : nullptr, c.relu},
                          want.data());
    auto xc = swap01(x, g.batch, g.in_channels, g.in_h * g.in_w);
    auto rc = swap01(r, g.batch, g.out_channels, ho * wo);
    std::vector<float> yc(r.size(), NAN);
    conv2d_cnhw(g, xc.data(), w.data(),
                {c.bias ? b.data() : nullptr, c.residual ? rc.data() : nullptr, c.relu}, yc.data());
    expect_close(swap01(yc, g.out_channels, g.batch, ho * wo), want, 1e-4f, 1e-4f);
  }
}

TEST(Conv2d, ResidualMayAliasTheOutput) {
  Conv2dGeometry g{2, 4, 6, 6, 4, 3, 3, 1, 1};
  std::mt19937 rng(3);
  auto x = random_vector(2 * 4 * 36, rng);
  auto w = random_vector(4 * 4 * 9, rng);
  auto res = random_vector(2 * 4 * 36, rng);
  std::vector<float> want(res.size());
  conv2d_nchw_reference(g, x.data(), w.data(), {nullptr, res.data(), true}, want.data());
  std::vector<float> inplace = res;
  conv2d_nchw(g, x.data(), w.data(), {nullptr, inplace.data(), true}, inplace.data());
  expect_close(inplace, want, 1e-4f, 1e-4f);
}

TEST(Conv2d, MaxPoolIgnoresPaddingLikePyTorch) {
  // All-negative input: a padded zero must never win.
  const int64_t N = 2, C = 3, H = 7, W = 6;
  std::mt19937 rng(11);
  auto x = random_vector(N * C * H * W, rng, -5, -1);
  const int64_t ho = (H + 2 - 3) / 2 + 1, wo = (W + 2 - 3) / 2 + 1;
  std::vector<float> y(N * C * ho * wo);
  max_pool2d_nchw(N, C, H, W, 3, 2, 1, x.data(), y.data());
  for (int64_t p = 0; p < N * C; ++p) {
    for (int64_t oy = 0; oy < ho; ++oy) {
      for (int64_t ox = 0; ox < wo; ++ox) {
        float m = -1e30f;
        for (int64_t ky = 0; ky < 3; ++ky) {
          for (int64_t kx = 0; kx < 3; ++kx) {
            const int64_t iy = oy * 2 - 1 + ky, ix = ox * 2 - 1 + kx;
            if (iy >= 0 && iy < H && ix >= 0 && ix < W) m = std::max(m, x[(p * H + iy) * W + ix]);
          }
        }
        ASSERT_EQ(y[(p * ho + oy) * wo + ox], m);
        ASSERT_LT(m, 0.0f);
      }
    }
  }
}

TEST(Conv2d, GlobalAveragePoolAndLinear) {
  const int64_t N = 3, C = 5, H = 3, W = 7;
  std::mt19937 rng(5);
  auto x = random_vector(N * C * H * W, rng);
  std::vector<float> pooled(N * C);
  global_avg_pool_nchw(N, C, H, W, x.data(), pooled.data());
  for (int64_t p = 0; p < N * C; ++p) {
    double s = 0;
    for (int64_t i = 0; i < H * W; ++i) s += x[p * H * W + i];
    EXPECT_NEAR(pooled[p], s / (H * W), 1e-6);
  }
  const int64_t out = 11;
  auto w = random_vector(out * C, rng);
  auto b = random_vector(out, rng);
  std::vector<float> y(N * out);
  linear_f32(N, C, out, pooled.data(), w.data(), b.data(), y.data());
  for (int64_t r = 0; r < N; ++r) {
    for (int64_t o = 0; o < out; ++o) {
      double s = b[o];
      for (int64_t k = 0; k < C; ++k) s += static_cast<double>(pooled[r * C + k]) * w[o * C + k];
      EXPECT_NEAR(y[r * out + o], s, 1e-5);
    }
  }
}

}  // namespace
}  // namespace hilum
