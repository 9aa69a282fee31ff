// The candidate detector's CUDA kernels (cuda/detector.h) against their CPU
// references (vision/io/candidates_internal.h, vision/io/gaussian.h) on awkward
// grids, and the whole detector on CUDA against the CPU. The kernel tests skip
// where no GPU exists; the fallback test runs everywhere.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "cuda/detector.h"
#include "cuda/device.h"
#include "vision/io/candidates.h"
#include "vision/io/candidates_internal.h"
#include "vision/io/gaussian.h"
#include "vision/io/lung_mask.h"
#include "tests/vision/io/synthetic_chest.h"

namespace hilum {
namespace {

using candidates_internal::dims_of;
using itk_bridge::Grid;

// Every kernel test: skipped where no GPU exists, else with a session `gpu`.
class CandidatesCuda : public ::testing::Test {
 protected:
  void SetUp() override {
    if (cuda::device_count() == 0) GTEST_SKIP() << cuda::unavailable_reason();
    auto made = cuda::GpuDetector::create();
    ASSERT_TRUE(made.ok()) << made.error().message();
    gpu = std::move(*made);
  }
  cuda::GpuDetector gpu;
};

std::vector<float> noise(const Grid& g, uint32_t seed, float lo, float hi, float quantum = 0) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(static_cast<size_t>(g.voxels()));
  for (float& x : v) {
    x = d(rng);
    if (quantum > 0) x = std::round(x / quantum) * quantum;  // ties on purpose
  }
  return v;
}

std::vector<uint8_t> random_mask(const Grid& g, uint32_t seed, double inside) {
  std::mt19937 rng(seed);
  std::bernoulli_distribution d(inside);
  std::vector<uint8_t> m(static_cast<size_t>(g.voxels()));
  for (uint8_t& x : m) x = d(rng) ? 1 : 0;
  return m;
}

// Bright tubes (cylinders along random directions) on a noisy parenchyma, as HU.
std::vector<float> tubes(const Grid& g, uint32_t seed, float fill) {
  std::vector<float> v = noise(g, seed, fill - 30, fill + 30);
  std::mt19937 rng(seed + 1);
  std::uniform_real_distribution<double> u(0, 1);
  for (int t = 0; t < 4; ++t) {
    const double p[3] = {u(rng) * g.nx * g.spacing[0], u(rng) * g.ny * g.spacing[1], u(rng) * g.nz * g.spacing[2]};
    double d[3] = {u(rng) - 0.5, u(rng) - 0.5, u(rng) - 0.5};
    const double n = std::sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]);
    for (double& c : d) c /= n;
    const double r = 1.0 + 1.5 * u(rng);
    for (int64_t z = 0; z < g.nz; ++z)
      for (int64_t y = 0; y < g.ny; ++y)
        for (int64_t x = 0; x < g.nx; ++x) {
          const double q[3] = {x * g.spacing[0] - p[0], y * g.spacing[1] - p[1], z * g.spacing[2] - p[2]};
          const double along = q[0] * d[0] + q[1] * d[1] + q[2] * d[2];
          const double off2 = q[0] * q[0] + q[1] * q[1] + q[2] * q[2] - along * along;
          if (off2 < r * r) v[g.index(x, y, z)] = 40.f;
        }
  }
  return v;
}

TEST_F(CandidatesCuda, SmoothingMatchesTheCpu) {
  const Grid grids[] = {{1, 1, 1, {1, 1, 1}},          {7, 5, 3, {0.7, 0.7, 2.5}}, {1, 9, 4, {0.8, 0.8, 1.0}},
                        {33, 1, 2, {0.6, 1.1, 1.3}},   {37, 29, 23, {0.7, 0.9, 2.5}},
                        {130, 97, 41, {1.4, 1.4, 2.0}}};
  uint32_t seed = 1;
  for (const Grid& g : grids)
    for (double sigma : {0.7, 1.9, 5.6}) {
      const std::vector<float> image = noise(g, ++seed, -1000.f, 200.f);
      auto cpu = gaussian_smooth(image, g, sigma);
      ASSERT_TRUE(cpu.ok()) << cpu.error().message();
      auto in = gpu.upload(image.data(), dims_of(g));
      ASSERT_TRUE(in.ok()) << in.error().message();
      auto out = gpu.smooth(*in, gaussian_kernel(sigma / g.spacing[0]), gaussian_kernel(sigma / g.spacing[1]),
                            gaussian_kernel(sigma / g.spacing[2]));
      ASSERT_TRUE(out.ok()) << out.error().message();
      auto back = gpu.download(*out);
      ASSERT_TRUE(back.ok()) << back.error().message();
      double worst = 0;
      for (size_t i = 0; i < cpu->size(); ++i) worst = std::max(worst, std::abs(double((*back)[i]) - (*cpu)[i]));
      EXPECT_LE(worst, 2e-3) << g.nx << "x" << g.ny << "x" << g.nz << " sigma " << sigma;  // of 1200 HU
      gpu.release(*in);
      gpu.release(*out);
    }
}

// The same smoothed image in: the same peaks out, bit for bit, plateaus included.
TEST_F(CandidatesCuda, PeaksMatchTheCpuExactly) {
  std::vector<std::array<double, 3>> shell(64);
  for (size_t i = 0; i < shell.size(); ++i) {
    const double zc = 1.0 - (2.0 * i + 1.0) / shell.size();
    const double r = std::sqrt(1.0 - zc * zc), phi = 2.399963229728653 * i;
    shell[i] = {3.1 * r * std::cos(phi), 2.7 * r * std::sin(phi), 1.6 * zc};
  }
  // The last grid's raw noise has ~40,000 peaks: more than the kernel's first buffer holds.
  const Grid grids[] = {{3, 3, 3, {1, 1, 1}},
                        {4, 17, 5, {0.7, 0.7, 2.5}},
                        {61, 47, 29, {0.7, 0.8, 1.25}},
                        {130, 128, 64, {0.7, 0.7, 1.0}}};
  uint32_t seed = 100;
  for (const Grid& g : grids)
    for (float quantum : {0.f, 20.f}) {
      const std::vector<float> image = noise(g, ++seed, -900.f, 100.f, quantum);
      const bool raw = quantum > 0 || g.nz == 64;
      const std::vector<float> s = raw ? image : *gaussian_smooth(image, g, 1.0);
      const std::vector<uint8_t> mask = random_mask(g, ++seed, 0.9);
      const float threshold = -850.f, fill = -860.f;
      const auto cpu = candidates_internal::scan_peaks(s, mask, g, threshold, fill, shell);
      auto si = gpu.upload(s.data(), dims_of(g));
      auto mi = gpu.upload_mask(mask.data(), dims_of(g));
      ASSERT_TRUE(si.ok() && mi.ok());
      auto peaks = gpu.peaks(*si, *mi, threshold, fill, shell);
      ASSERT_TRUE(peaks.ok()) << peaks.error().message();
      ASSERT_EQ(peaks->size(), cpu.size()) << g.nx << "x" << g.ny << "x" << g.nz;
      if (g.nx > 10) {
        EXPECT_GT(cpu.size(), 20u);  // a test of something
      }
      if (g.nz == 64 && quantum == 0) {
        EXPECT_GT(cpu.size(), 20000u);
      }
      for (size_t k = 0; k < cpu.size(); ++k) {
        EXPECT_EQ((*peaks)[k].index, cpu[k].index);
        EXPECT_EQ((*peaks)[k].bright, cpu[k].bright);
        for (int b = 0; b < 27; ++b) EXPECT_EQ((*peaks)[k].block[b], cpu[k].block[b]);
      }
      gpu.release(*si);
      gpu.release(*mi);
    }
}

// Vesselness and axes from the same smoothed images: equal up to the last bits
// of exp, acos and cos.
TEST_F(CandidatesCuda, VesselnessMatchesTheCpu) {
  const float fill = -850.f;
  CandidateOptions o;
  const Grid grids[] = {{3, 4, 3, {1, 1, 1}}, {45, 38, 27, {0.8, 0.8, 1.2}}, {24, 51, 9, {1.4, 1.4, 2.5}}};
  uint32_t seed = 200;
  for (const Grid& g : grids) {
    const std::vector<float> image = tubes(g, ++seed, fill);
    std::vector<std::array<float, 3>> cpu_axis;
    auto cpu = candidates_internal::tubularity(image, g, fill, o, cpu_axis);
    ASSERT_TRUE(cpu.ok()) << cpu.error().message();
    auto im = gpu.upload(image.data(), dims_of(g));
    auto tube = gpu.zeros(dims_of(g), 1);
    auto axis = gpu.zeros(dims_of(g), 3);
    ASSERT_TRUE(im.ok() && tube.ok() && axis.ok());
    for (double sigma : o.vessel_sigmas_mm) {
      auto s = gaussian_smooth(image, g, sigma);  // the CPU's smoothing: the kernel alone is compared
      auto si = gpu.upload(s->data(), dims_of(g));
      ASSERT_TRUE(si.ok());
      const auto v = candidates_internal::vessel_scale(o, fill, sigma);
      ASSERT_TRUE(gpu.vesselness_update(*im, *si, *tube, *axis, v.bright, v.scale, v.a2, v.b2, v.c2).ok());
      gpu.release(*si);
    }
    auto t = gpu.download(*tube);
    auto a = gpu.download(*axis);
    ASSERT_TRUE(t.ok() && a.ok());
    int tubular = 0;
    for (size_t i = 0; i < cpu->size(); ++i) {
      ASSERT_NEAR((*t)[i], (*cpu)[i], 1e-5 * std::max(1e-3f, (*cpu)[i])) << "voxel " << i;
      if ((*cpu)[i] <= 0.05f) continue;
      ++tubular;
      const float dot = (*a)[3 * i] * cpu_axis[i][0] + (*a)[3 * i + 1] * cpu_axis[i][1] +
                        (*a)[3 * i + 2] * cpu_axis[i][2];
      EXPECT_GT(dot, 1 - 1e-4f) << "voxel " << i;  // the same direction and sign
    }
    if (g.nx > 10) {
      EXPECT_GT(tubular, 50);
    }
    for (auto id : {*im, *tube, *axis}) gpu.release(id);
  }
}

// The same light smoothing, tubes and axes in: the same residue out, bit for
// bit. Vesselness in steps of 1/8 makes ties in the axes' order.
TEST_F(CandidatesCuda, BulgeResidueMatchesTheCpuExactly) {
  const float fill = -850.f;
  CandidateOptions o;
  struct Case {
    Grid g;
    int level_f[3], vessel_f[3];
  };
  const Case cases[] = {{{41, 37, 19, {0.7, 0.7, 1.0}}, {1, 1, 1}, {2, 2, 1}},
                        {{5, 3, 2, {0.7, 0.7, 1.0}}, {1, 1, 1}, {2, 2, 2}},
                        {{63, 58, 33, {0.6, 0.6, 0.8}}, {1, 1, 1}, {4, 4, 2}}};
  uint32_t seed = 300;
  for (const Case& c : cases) {
    const Grid& g = c.g;
    Grid vg{(g.nx + c.vessel_f[0] - 1) / c.vessel_f[0], (g.ny + c.vessel_f[1] - 1) / c.vessel_f[1],
            (g.nz + c.vessel_f[2] - 1) / c.vessel_f[2],
            {g.spacing[0] * c.vessel_f[0], g.spacing[1] * c.vessel_f[1], g.spacing[2] * c.vessel_f[2]}};
    const std::vector<float> light = *gaussian_smooth(tubes(g, ++seed, fill), g, o.bulge_smoothing_mm);
    const std::vector<uint8_t> mask = random_mask(g, ++seed, 0.95);
    std::vector<float> tube = noise(vg, ++seed, -0.3f, 1.0f, 0.125f);
    for (float& t : tube) t = std::max(t, 0.f);
    std::mt19937 rng(++seed);
    std::normal_distribution<float> nd;
    std::vector<std::array<float, 3>> axis(tube.size());
    for (size_t i = 0; i < axis.size(); ++i) {
      if (tube[i] <= 0) continue;
      std::array<float, 3> a{nd(rng), nd(rng), nd(rng)};
      if (i % 3 == 0 && i > 0) a = axis[i - 1];  // repeated directions are skipped
      const float n = std::sqrt(a[0] * a[0] + a[1] * a[1] + a[2] * a[2]);
      axis[i] = n > 0 ? std::array<float, 3>{a[0] / n, a[1] / n, a[2] / n} : std::array<float, 3>{1, 0, 0};
    }
    const cuda::BulgeParams p = candidates_internal::bulge_params(o, fill, c.level_f, c.vessel_f);
    const std::vector<float> cpu = candidates_internal::bulge_residue(light, mask, g, vg, tube, axis, p);
    auto li = gpu.upload(light.data(), dims_of(g));
    auto mi = gpu.upload_mask(mask.data(), dims_of(g));
    auto ti = gpu.upload(tube.data(), dims_of(vg));
    ASSERT_TRUE(li.ok() && mi.ok() && ti.ok());
    auto axes = gpu.upload(axis.data()->data(), dims_of(vg), 3);
    ASSERT_TRUE(axes.ok()) << axes.error().message();
    auto out = gpu.bulge_residue(*li, *mi, *ti, *axes, p);
    ASSERT_TRUE(out.ok()) << out.error().message();
    auto back = gpu.download(*out);
    ASSERT_TRUE(back.ok());
    int bulging = 0, differ = 0;
    for (size_t i = 0; i < cpu.size(); ++i) {
      differ += (*back)[i] != cpu[i];
      bulging += cpu[i] > fill && cpu[i] < light[i];
    }
    EXPECT_EQ(differ, 0) << g.nx << "x" << g.ny << "x" << g.nz;
    if (g.nx > 10) {
      EXPECT_GT(bulging, 20);  // openings that took something away
    }
    for (auto id : {*li, *mi, *ti, *axes, *out}) gpu.release(id);
  }
}

// The whole detector on CUDA against the CPU on synthetic chests: the same
// candidates (the smoothing's float rounding may move a near-tie).
TEST_F(CandidatesCuda, FindsTheSameCandidatesAsTheCpu) {
  testing::ChestSpec spec;
  spec.nx = 200, spec.ny = 160, spec.nz = 110;
  spec.spacing = {0.7, 0.7, 1.0};  // fine enough for the bulge pass
  spec.body_rx = 68, spec.body_ry = 54;
  spec.lung_rx = 25, spec.lung_ry = 40, spec.lung_rz = 45, spec.lung_cx = 32;
  spec.tubes = {{{-32, -30, -30}, {-30, 25, 30}, 2.0, 40}, {{32, -30, -30}, {30, 25, 30}, 2.0, 40}};
  spec.balls = {{{-28.5, -2.5, 0}, {1.5, 1.5, 1.5}, 40},  // half sunk into the right vessel
                {{35, 10, -20}, {4, 4, 4}, 30},
                {{-40, -20, 25}, {5, 5, 5}, -600}};
  const Volume v = testing::make_chest(spec);
  NullProgress progress;
  auto mask = segment_lungs(v, LungMaskOptions{}, progress);
  ASSERT_TRUE(mask.ok()) << mask.error().message();
  // Also with the ground-glass pass's vessels out (off by default; the rim cut
  // reads each voxel's neighbours in the same kernel).
  for (const bool vessels_out : {false, true}) {
    SCOPED_TRACE(vessels_out ? "ground-glass pass with the vessels out" : "ground-glass pass clipped");
    CandidateOptions on_cpu, on_gpu;
    on_cpu.ground_glass_vessels_out = on_gpu.ground_glass_vessels_out = vessels_out;
    on_gpu.device = Device::kCUDA;
    auto cpu = detect_candidates(v, *mask, on_cpu, progress);
    auto gpu = detect_candidates(v, *mask, on_gpu, progress);
    ASSERT_TRUE(cpu.ok() && gpu.ok());
    ASSERT_GT(cpu->size(), 10u);
    EXPECT_NEAR(static_cast<double>(gpu->size()), static_cast<double>(cpu->size()), 0.02 * cpu->size() + 1);
    size_t matched = 0;
    for (const Candidate& c : *cpu)
      for (const Candidate& k : *gpu)
        if (std::hypot(c.center_mm[0] - k.center_mm[0], c.center_mm[1] - k.center_mm[1],
                       c.center_mm[2] - k.center_mm[2]) < 0.05 &&
            c.sigma_mm == k.sigma_mm && c.bulge == k.bulge) {
          ++matched;
          break;
        }
    EXPECT_GE(matched, cpu->size() * 98 / 100) << matched << " of " << cpu->size();
    for (size_t k = 0; k < std::min<size_t>(10, cpu->size()); ++k) {
      EXPECT_NEAR((*gpu)[k].center_mm[0], (*cpu)[k].center_mm[0], 0.05) << "rank " << k;
      EXPECT_NEAR((*gpu)[k].score, (*cpu)[k].score, 1e-3 * (*cpu)[k].score) << "rank " << k;
    }
  }
}

// Without a GPU (or in a build without CUDA) the detector asked for CUDA runs
// on the CPU and finds exactly what the CPU finds.
TEST(CandidatesCudaFallback, WithoutAGpuTheCpuDetects) {
  if (cuda::device_count() > 0) GTEST_SKIP() << "a GPU is present: FindsTheSameCandidatesAsTheCpu covers it";
  testing::ChestSpec spec;
  spec.nx = 220, spec.ny = 170, spec.nz = 110;
  spec.spacing = {1.4, 1.4, 1.5};
  spec.balls = {{{70, -20, 30}, {4, 4, 4}, 30}};
  spec.tubes = {{{30, 0, 0}, {100, 40, -40}, 2.0, 40}};
  const Volume v = testing::make_chest(spec);
  NullProgress progress;
  auto mask = segment_lungs(v, LungMaskOptions{}, progress);
  ASSERT_TRUE(mask.ok()) << mask.error().message();
  CandidateOptions on_gpu;
  on_gpu.device = Device::kCUDA;
  auto cpu = detect_candidates(v, *mask, CandidateOptions{}, progress);
  auto fallback = detect_candidates(v, *mask, on_gpu, progress);
  ASSERT_TRUE(cpu.ok() && fallback.ok());
  ASSERT_FALSE(cpu->empty());
  ASSERT_EQ(fallback->size(), cpu->size());
  for (size_t k = 0; k < cpu->size(); ++k) {
    EXPECT_EQ((*fallback)[k].center_mm, (*cpu)[k].center_mm);
    EXPECT_EQ((*fallback)[k].score, (*cpu)[k].score);
  }
}

}  // namespace
}  // namespace hilum
