#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "vision/io/gaussian.h"
#include "vision/io/itk_bridge.h"

namespace hilum {
namespace {

using itk_bridge::Grid;

std::vector<float> noise(const Grid& g, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-500.0f, 500.0f);
  std::vector<float> v(static_cast<size_t>(g.voxels()));
  for (float& x : v) x = u(rng);
  return v;
}

// The sampled Gaussian written out again: taps out to ceil(4 sigma), normalised.
std::vector<double> taps(double s) {
  if (s < 0.05) return {1.0};
  const int r = std::max(1, static_cast<int>(std::ceil(4 * s)));
  std::vector<double> k;
  for (int j = -r; j <= r; ++j) k.push_back(std::exp(-0.5 * j * j / (s * s)));
  const double sum = std::accumulate(k.begin(), k.end(), 0.0);
  for (double& v : k) v /= sum;
  return k;
}

// Direct 3-D convolution with the outer product of the three kernels, borders replicated.
std::vector<double> direct(const std::vector<float>& in, const Grid& g, double sigma) {
  const auto kx = taps(sigma / g.spacing[0]), ky = taps(sigma / g.spacing[1]),
             kz = taps(sigma / g.spacing[2]);
  const int rx = static_cast<int>(kx.size() / 2), ry = static_cast<int>(ky.size() / 2),
            rz = static_cast<int>(kz.size() / 2);
  std::vector<double> out(in.size(), 0.0);
  for (int64_t z = 0; z < g.nz; ++z)
    for (int64_t y = 0; y < g.ny; ++y)
      for (int64_t x = 0; x < g.nx; ++x) {
        double acc = 0;
        for (int c = -rz; c <= rz; ++c)
          for (int b = -ry; b <= ry; ++b)
            for (int a = -rx; a <= rx; ++a) {
              const int64_t xx = std::clamp<int64_t>(x + a, 0, g.nx - 1),
                            yy = std::clamp<int64_t>(y + b, 0, g.ny - 1),
                            zz = std::clamp<int64_t>(z + c, 0, g.nz - 1);
              acc += kx[a + rx] * ky[b + ry] * kz[c + rz] * in[g.index(xx, yy, zz)];
            }
        out[g.index(x, y, z)] = acc;
      }
  return out;
}

TEST(Gaussian, KernelIsNormalisedSymmetricAndFourSigmaWide) {
  const auto k = gaussian_kernel(1.5);
  ASSERT_EQ(k.size(), 13u);  // r = ceil(6)
  EXPECT_NEAR(std::accumulate(k.begin(), k.end(), 0.0), 1.0, 1e-6);
  for (size_t i = 0; i < k.size(); ++i) EXPECT_FLOAT_EQ(k[i], k[k.size() - 1 - i]);
  EXPECT_EQ(std::max_element(k.begin(), k.end()) - k.begin(), 6);
  EXPECT_EQ(gaussian_kernel(0.3).size(), 5u);  // at least one tap either side: r = ceil(1.2)
  EXPECT_EQ(gaussian_kernel(0.01), std::vector<float>{1.0f});
}

TEST(Gaussian, MatchesDirectConvolutionOnAwkwardGrids) {
  // Odd sizes, anisotropic spacing, kernels wider than an axis, single slices and rows.
  for (const auto& [g, sigma] :
       {std::pair{Grid{13, 7, 5, {0.7, 1.1, 2.5}}, 1.3}, std::pair{Grid{9, 11, 6, {0.5, 0.5, 0.5}}, 2.2},
        std::pair{Grid{17, 5, 1, {0.8, 0.8, 1.0}}, 0.9}, std::pair{Grid{1, 6, 7, {1.0, 0.6, 0.7}}, 1.0}}) {
    const auto in = noise(g, 7);
    auto got = gaussian_smooth(in, g, sigma);
    ASSERT_TRUE(got.ok()) << got.error().message();
    const auto want = direct(in, g, sigma);
    double worst = 0;
    for (size_t i = 0; i < want.size(); ++i) worst = std::max(worst, std::abs((*got)[i] - want[i]));
    EXPECT_LT(worst, 1e-3) << g.nx << "x" << g.ny << "x" << g.nz << " sigma " << sigma;  // values up to 500
  }
}

TEST(Gaussian, AgreesWithItksRecursiveGaussianOnABall) {
  // The detector used ITK's recursive (Deriche) Gaussian before: on a 6 mm ball
  // at -300 HU in -850 HU parenchyma both smooth to the same image within 2 %
  // of the contrast (the recursive filter approximates the Gaussian).
  const Grid g{48, 44, 36, {0.7, 0.7, 1.0}};
  std::vector<float> img(static_cast<size_t>(g.voxels()), -850.0f);
  for (int64_t z = 0; z < g.nz; ++z)
    for (int64_t y = 0; y < g.ny; ++y)
      for (int64_t x = 0; x < g.nx; ++x) {
        const double dx = (x - 24) * 0.7, dy = (y - 22) * 0.7, dz = (z - 18) * 1.0;
        if (dx * dx + dy * dy + dz * dz <= 9.0) img[g.index(x, y, z)] = -300.0f;
      }
  for (double sigma : {0.9, 1.9, 3.9}) {
    auto ours = gaussian_smooth(img, g, sigma);
    auto itk = itk_bridge::smooth_gaussian(img, g, sigma);
    ASSERT_TRUE(ours.ok() && itk.ok());
    double worst = 0;
    for (size_t i = 0; i < img.size(); ++i) worst = std::max(worst, std::abs(double((*ours)[i]) - (*itk)[i]));
    EXPECT_LT(worst, 0.02 * 550) << "sigma " << sigma;
    // The peak stays at the ball's centre.
    const auto peak = std::max_element(ours->begin(), ours->end()) - ours->begin();
    EXPECT_EQ(peak, g.index(24, 22, 18)) << "sigma " << sigma;
  }
}

TEST(Gaussian, RefusesAMismatchedBufferOrSigma) {
  const Grid g{4, 4, 4, {1, 1, 1}};
  auto short_buffer = gaussian_smooth(std::vector<float>(10), g, 1.0);
  ASSERT_FALSE(short_buffer.ok());
  EXPECT_NE(short_buffer.error().message().find("does not match"), std::string::npos);
  EXPECT_FALSE(gaussian_smooth(std::vector<float>(64), g, 0.0).ok());
  EXPECT_FALSE(gaussian_smooth(std::vector<float>(64), g, std::nan("")).ok());
}

// The box's extremum written out voxel by voxel, the box clipped at the faces.
template <typename T>
std::vector<T> box_brute(const std::vector<T>& v, const Grid& g, const std::array<int, 3>& r, bool dilate) {
  std::vector<T> out(v.size());
  for (int64_t z = 0; z < g.nz; ++z)
    for (int64_t y = 0; y < g.ny; ++y)
      for (int64_t x = 0; x < g.nx; ++x) {
        T e = v[g.index(x, y, z)];
        for (int64_t c = std::max<int64_t>(0, z - r[2]); c <= std::min(g.nz - 1, z + r[2]); ++c)
          for (int64_t b = std::max<int64_t>(0, y - r[1]); b <= std::min(g.ny - 1, y + r[1]); ++b)
            for (int64_t a = std::max<int64_t>(0, x - r[0]); a <= std::min(g.nx - 1, x + r[0]); ++a)
              e = dilate ? std::max(e, v[g.index(a, b, c)]) : std::min(e, v[g.index(a, b, c)]);
        out[g.index(x, y, z)] = e;
      }
  return out;
}

TEST(BoxExtremum, MatchesTheBoxWrittenOutOnAwkwardGrids) {
  for (const Grid& g : {Grid{23, 17, 9, {0.7, 0.7, 1.0}}, Grid{5, 31, 4, {1, 1, 2.5}}, Grid{1, 1, 7, {1, 1, 1}}}) {
    const std::vector<float> f = noise(g, 7);
    std::vector<uint8_t> m(f.size());
    for (size_t i = 0; i < f.size(); ++i) m[i] = f[i] > 100;
    for (const std::array<int, 3>& r : {std::array<int, 3>{2, 3, 1}, {0, 1, 4}, {5, 0, 0}}) {
      for (bool dilate : {false, true}) {
        auto fo = box_extremum(f, g, r, dilate);
        ASSERT_TRUE(fo.ok()) << fo.error().message();
        EXPECT_EQ(*fo, box_brute(f, g, r, dilate)) << g.nx << "x" << g.ny << "x" << g.nz << " dilate " << dilate;
        auto mo = box_extremum(m, g, r, dilate);
        ASSERT_TRUE(mo.ok()) << mo.error().message();
        EXPECT_EQ(*mo, box_brute(m, g, r, dilate)) << g.nx << "x" << g.ny << "x" << g.nz << " dilate " << dilate;
      }
    }
  }
}

// The opening (the dilation of the erosion) is ITK's grey opening by the same box
// away from the faces (where ITK pads the image its own way).
TEST(BoxExtremum, OpeningIsItksAwayFromTheFaces) {
  const Grid g{40, 33, 21, {0.7, 0.7, 1.0}};
  const std::vector<float> f = noise(g, 11);
  const std::array<int, 3> r{3, 2, 2};
  auto eroded = box_extremum(f, g, r, false);
  ASSERT_TRUE(eroded.ok());
  auto opened = box_extremum(*eroded, g, r, true);
  ASSERT_TRUE(opened.ok());
  auto itk = itk_bridge::grey_opening_box(f, g, r);
  ASSERT_TRUE(itk.ok()) << itk.error().message();
  int compared = 0;
  for (int64_t z = 2 * r[2]; z < g.nz - 2 * r[2]; ++z)
    for (int64_t y = 2 * r[1]; y < g.ny - 2 * r[1]; ++y)
      for (int64_t x = 2 * r[0]; x < g.nx - 2 * r[0]; ++x, ++compared)
        ASSERT_EQ((*opened)[g.index(x, y, z)], (*itk)[g.index(x, y, z)]) << x << "," << y << "," << z;
  EXPECT_GT(compared, 1000);
}

TEST(BoxExtremum, RefusesAMismatchedBufferOrANegativeWidth) {
  const Grid g{4, 4, 4, {1, 1, 1}};
  EXPECT_FALSE(box_extremum(std::vector<float>(10), g, {1, 1, 1}, false).ok());
  EXPECT_FALSE(box_extremum(std::vector<float>(64), g, {1, -1, 1}, true).ok());
}

TEST(BoxExtremum, IntoVariantsRefuseAnEmptyGridOrBadArguments) {
  float in[8] = {}, out[8], scratch[8];
  const Grid empty{0, 2, 2, {1, 1, 1}}, g{2, 2, 2, {1, 1, 1}};
  EXPECT_FALSE(box_extremum_into(in, empty, {1, 1, 1}, false, out, scratch).ok());
  EXPECT_FALSE(box_extremum_into(in, g, {1, 1, -1}, false, out, scratch).ok());
  EXPECT_FALSE(gaussian_smooth_into(in, empty, 1.0, out, scratch).ok());
  EXPECT_FALSE(gaussian_smooth_into(in, g, 0.0, out, scratch).ok());
  EXPECT_TRUE(gaussian_smooth_into(in, g, 1.0, out, scratch).ok());
  EXPECT_EQ(out[7], 0.f);
}

}  // namespace
}  // namespace hilum
