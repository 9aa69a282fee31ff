// The lung mask's GPU parts. The distance maps and closings of cuda/distance.h:
// the CPU reference against ITK's Maurer map (the lung mask's CPU path), the
// GPU against the reference bit for bit on awkward grids. The connected
// components of cuda/components.h against ITK's, label for label. The lung
// mask on CUDA against the CPU's. The GPU tests skip where no GPU exists.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "cuda/components.h"
#include "cuda/device.h"
#include "cuda/distance.h"
#include "model/log.h"
#include "tests/vision/io/synthetic_chest.h"
#include "vision/io/itk_bridge.h"
#include "vision/io/lung_mask.h"

namespace hilum {
namespace {

using detector::Dims;

itk_bridge::Grid grid_of(const Dims& g) {
  return {g.nx, g.ny, g.nz, {g.spacing[0], g.spacing[1], g.spacing[2]}};
}

// Balls of random sizes, a thin rod and scattered single voxels, `margin` voxels clear of the faces.
std::vector<uint8_t> blobs(const Dims& g, uint32_t seed, int margin) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<uint8_t> m(static_cast<size_t>(g.voxels()), 0);
  auto inside = [&](int64_t x, int64_t y, int64_t z) {
    return x >= margin && y >= margin && z >= margin && x < g.nx - margin && y < g.ny - margin &&
           z < g.nz - margin;
  };
  for (int b = 0; b < 4; ++b) {
    const double cx = (margin + u(rng) * (g.nx - 2 * margin)) * g.spacing[0];
    const double cy = (margin + u(rng) * (g.ny - 2 * margin)) * g.spacing[1];
    const double cz = (margin + u(rng) * (g.nz - 2 * margin)) * g.spacing[2];
    const double r = 1.5 + 4 * u(rng);
    for (int64_t z = 0; z < g.nz; ++z)
      for (int64_t y = 0; y < g.ny; ++y)
        for (int64_t x = 0; x < g.nx; ++x)
          if (inside(x, y, z) &&
              std::hypot(x * g.spacing[0] - cx, y * g.spacing[1] - cy, z * g.spacing[2] - cz) <= r)
            m[g.index(x, y, z)] = 1;
  }
  for (int64_t x = margin; x < g.nx - margin; ++x) m[g.index(x, g.ny / 2, g.nz / 2)] = 1;  // a rod along x
  for (int k = 0; k < 12; ++k) {
    const auto x = static_cast<int64_t>(margin + u(rng) * (g.nx - 2 * margin));
    const auto y = static_cast<int64_t>(margin + u(rng) * (g.ny - 2 * margin));
    const auto z = static_cast<int64_t>(margin + u(rng) * (g.nz - 2 * margin));
    m[g.index(x, y, z)] = 1;
  }
  return m;
}

// The lung mask's closing (vision/io/lung_mask.cpp, CPU path) with ITK's maps.
std::vector<uint8_t> itk_closing(const std::vector<uint8_t>& m, const Dims& g, double r, double margin) {
  auto d1 = itk_bridge::signed_distance(m, grid_of(g));
  EXPECT_TRUE(d1.ok());
  std::vector<uint8_t> dilated(m.size());
  for (size_t i = 0; i < m.size(); ++i) dilated[i] = (*d1)[i] <= r;
  auto d2 = itk_bridge::signed_distance(dilated, grid_of(g));
  EXPECT_TRUE(d2.ok());
  std::vector<uint8_t> closed(m.size());
  for (size_t i = 0; i < m.size(); ++i) closed[i] = (*d2)[i] <= -(r - margin);
  return closed;
}

const Dims kAwkward[] = {
    {37, 29, 23, {0.7, 0.9, 1.3}},
    {64, 17, 41, {1.40625, 1.40625, 1.0}},
    {5, 61, 33, {0.5, 1.25, 2.5}},
    {48, 48, 9, {1.0, 1.0, 1.0}},
};

TEST(DistanceReference, MatchesItksMaurerMap) {
  uint32_t seed = 1;
  for (const Dims& g : kAwkward)
    for (int margin : {0, 2}) {  // margin 0: the mask touches the grid's faces
      const std::vector<uint8_t> m = blobs(g, seed++, margin);
      auto itk = itk_bridge::signed_distance(m, grid_of(g));
      ASSERT_TRUE(itk.ok()) << itk.error().message();
      const std::vector<float> ref = distance::signed_distance_reference(m, g);
      ASSERT_EQ(ref.size(), itk->size());
      double worst = 0;
      size_t inside = 0;
      for (size_t i = 0; i < ref.size(); ++i) {
        worst = std::max(worst, std::abs(static_cast<double>(ref[i]) - (*itk)[i]));
        inside += m[i];
        ASSERT_EQ(m[i] ? ref[i] <= 0 : ref[i] > 0, true) << "voxel " << i;  // the contour is at -0
      }
      EXPECT_LT(worst, 1e-4) << g.nx << "x" << g.ny << "x" << g.nz << " margin " << margin;
      EXPECT_GT(inside, 0u);
      // The closings differ from the ITK path's only where a distance ties with the threshold and
      // float and double round it apart (spacings like 0.7 mm that binary fractions miss).
      for (double r : {1.5, 2.8}) {
        const std::vector<uint8_t> itk_closed = itk_closing(m, g, r, 0.4);
        const std::vector<uint8_t> closed = distance::closings_reference(m, g, {r}, 0.4)[0];
        int64_t differ = 0, set = 0;
        for (size_t i = 0; i < m.size(); ++i) differ += itk_closed[i] != closed[i], set += closed[i];
        EXPECT_LE(differ, set / 50) << g.nx << "x" << g.ny << "x" << g.nz << " radius " << r;
      }
    }
}

TEST(DistanceReference, EmptyAndFullMasksAsItkBridge) {
  const Dims g{7, 5, 3, {1, 1, 1}};
  const std::vector<float> empty = distance::signed_distance_reference(std::vector<uint8_t>(105, 0), g);
  const std::vector<float> full = distance::signed_distance_reference(std::vector<uint8_t>(105, 1), g);
  EXPECT_TRUE(std::all_of(empty.begin(), empty.end(), [](float d) { return d == 1e9f; }));
  EXPECT_TRUE(std::all_of(full.begin(), full.end(), [](float d) { return d == -1e9f; }));
  const auto closed = distance::closings_reference(std::vector<uint8_t>(105, 0), g, {2.0}, 0.5);
  ASSERT_EQ(closed.size(), 1u);
  EXPECT_TRUE(std::all_of(closed[0].begin(), closed[0].end(), [](uint8_t v) { return v == 0; }));
}

// A ball with a pit in its side: the closing fills the pit, keeps the ball's core (the lung mask
// adds the closing to the mask), and is the ITK path's, voxel for voxel.
TEST(DistanceReference, ClosingFillsAPitAsTheItkPathDoes) {
  // Pixels of 0.703125 mm (45/64, as a 360 mm field over 512 columns): float and double agree.
  const double px = 0.703125;
  const Dims g{41, 39, 31, {px, px, 1.0}};
  std::vector<uint8_t> m(static_cast<size_t>(g.voxels()), 0);
  const double c[3] = {20 * px, 19 * px, 15.0};
  for (int64_t z = 0; z < g.nz; ++z)
    for (int64_t y = 0; y < g.ny; ++y)
      for (int64_t x = 0; x < g.nx; ++x) {
        const double wx = x * px, wy = y * px, wz = z * 1.0;
        const bool ball = std::hypot(wx - c[0], wy - c[1], wz - c[2]) <= 8;
        const bool pit = std::hypot(wx - (c[0] + 8), wy - c[1], wz - c[2]) <= 3;
        m[g.index(x, y, z)] = ball && !pit;
      }
  const double margin = 0.5;
  const auto closed = distance::closings_reference(m, g, {4.0, 6.0}, margin);
  ASSERT_EQ(closed.size(), 2u);
  const int64_t centre = g.index(20, 19, 15), skin = g.index(20, 19, 15 + 7);
  for (int64_t i : {centre, skin}) {
    EXPECT_TRUE(m[i]);
    EXPECT_TRUE(closed[0][i] && closed[1][i]) << "voxel " << i;
  }
  const int64_t pit_voxel = g.index(std::lround((c[0] + 5.6) / px), 19, 15);  // near the pit's floor
  EXPECT_FALSE(m[pit_voxel]);
  EXPECT_TRUE(closed[0][pit_voxel]);
  EXPECT_TRUE(closed[1][pit_voxel]);
  EXPECT_FALSE(closed[0][g.index(39, 19, 15)]);  // beyond the ball stays out
  for (size_t k = 0; k < 2; ++k) {
    const std::vector<uint8_t> itk = itk_closing(m, g, k ? 6.0 : 4.0, margin);
    EXPECT_EQ(std::count_if(itk.begin(), itk.end(), [](uint8_t v) { return v; }),
              std::count_if(closed[k].begin(), closed[k].end(), [](uint8_t v) { return v; }));
    EXPECT_TRUE(itk == closed[k]) << "radius " << (k ? 6 : 4);
  }
}

TEST(DistanceCuda, RejectsAMaskThatDoesNotFillItsGrid) {
  auto r = cuda::closings(std::vector<uint8_t>(10, 1), Dims{3, 3, 3, {1, 1, 1}}, {2.0}, 0.5);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("closings"), std::string::npos) << r.error().message();
}

class LungMaskCuda : public ::testing::Test {
 protected:
  void SetUp() override {
    if (cuda::device_count() == 0) GTEST_SKIP() << cuda::unavailable_reason();
  }
};

TEST_F(LungMaskCuda, ClosingsMatchTheReferenceBitForBit) {
  uint32_t seed = 100;
  for (Dims g : kAwkward) {
    const int margin =
        2 + static_cast<int>(std::ceil(3.0 / std::min({g.spacing[0], g.spacing[1], g.spacing[2]})));
    g.nx += 2 * margin, g.ny += 2 * margin, g.nz += 2 * margin;  // room for the dilation
    const std::vector<uint8_t> m = blobs(g, seed++, margin);
    const std::vector<double> radii{1.7, 3.0};
    const auto ref = distance::closings_reference(m, g, radii, 0.6);
    auto gpu = cuda::closings(m, g, radii, 0.6);
    ASSERT_TRUE(gpu.ok()) << gpu.error().message();
    ASSERT_EQ(gpu->size(), ref.size());
    for (size_t k = 0; k < ref.size(); ++k) {
      int64_t differ = 0, set = 0;
      for (size_t i = 0; i < m.size(); ++i) differ += (*gpu)[k][i] != ref[k][i], set += ref[k][i];
      EXPECT_EQ(differ, 0) << g.nx << "x" << g.ny << "x" << g.nz << " radius " << radii[k];
      EXPECT_GT(set, 0);
    }
  }
  // An empty mask closes to nothing.
  const Dims g{9, 8, 7, {1, 1, 1}};
  auto none = cuda::closings(std::vector<uint8_t>(504, 0), g, {2.0}, 0.5);
  ASSERT_TRUE(none.ok()) << none.error().message();
  EXPECT_TRUE(std::all_of((*none)[0].begin(), (*none)[0].end(), [](uint8_t v) { return v == 0; }));
}

TEST(ComponentsCuda, RejectsAMaskThatDoesNotFillItsGrid) {
  std::vector<uint32_t> labels;
  std::vector<int64_t> sizes;
  const Status s =
      cuda::label_components(std::vector<uint8_t>(10, 1), Dims{3, 3, 3, {1, 1, 1}}, labels, sizes);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message().find("label_components"), std::string::npos) << s.error().message();
  std::vector<uint8_t> touching;
  const Status t =
      cuda::components_touching_side_faces(std::vector<uint8_t>(10, 1), Dims{3, 3, 3, {1, 1, 1}}, touching);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.error().message().find("does not fill its grid"), std::string::npos) << t.error().message();
}

// Random masks of several densities (many components of every shape, spirals of runs that meet
// late in the scan, one component filling most of the grid) and the empty one: ITK's labels, in
// scan order and by size, and which components touch a side face.
TEST_F(LungMaskCuda, ComponentsAreItksInScanOrderAndBySize) {
  const Dims grids[] = {{23, 17, 9, {1.0, 0.7, 2.0}},
                        {64, 1, 1, {1, 1, 1}},
                        {1, 1, 70, {1, 1, 1}},
                        {131, 67, 29, {0.7, 0.7, 1.25}}};
  uint32_t seed = 7;
  for (const Dims& g : grids)
    for (double fill : {0.0, 0.2, 0.31, 0.5, 0.9}) {
      std::mt19937 rng(seed++);
      std::bernoulli_distribution d(fill);
      std::vector<uint8_t> m(static_cast<size_t>(g.voxels()));
      for (uint8_t& v : m) v = d(rng) ? 1 : 0;
      std::vector<int64_t> itk_sizes, gpu_sizes;
      auto itk = itk_bridge::label_components(m, grid_of(g), false, itk_sizes, /*by_size=*/false);
      ASSERT_TRUE(itk.ok()) << itk.error().message();
      std::vector<uint32_t> gpu;
      const Status s = cuda::label_components(m, g, gpu, gpu_sizes);
      ASSERT_TRUE(s.ok()) << s.error().message();
      EXPECT_TRUE(gpu == *itk) << g.nx << "x" << g.ny << "x" << g.nz << " fill " << fill;
      EXPECT_EQ(gpu_sizes, itk_sizes) << g.nx << "x" << g.ny << "x" << g.nz << " fill " << fill;
      // By size, ties in scan order: ITK's relabelling (many ties among the small components).
      std::vector<int64_t> itk_sorted_sizes, gpu_sorted_sizes;
      auto itk_sorted = itk_bridge::label_components(m, grid_of(g), false, itk_sorted_sizes);
      ASSERT_TRUE(itk_sorted.ok()) << itk_sorted.error().message();
      std::vector<uint32_t> gpu_sorted;
      const Status t = cuda::label_components(m, g, gpu_sorted, gpu_sorted_sizes, /*by_size=*/true);
      ASSERT_TRUE(t.ok()) << t.error().message();
      EXPECT_TRUE(gpu_sorted == *itk_sorted)
          << "by size, " << g.nx << "x" << g.ny << "x" << g.nz << " fill " << fill;
      EXPECT_EQ(gpu_sorted_sizes, itk_sorted_sizes) << "by size, fill " << fill;
      // The components that touch a side face (x or y at the border), from ITK's labels.
      std::vector<uint8_t> side(itk_sizes.size(), 0), expected(m.size(), 0), touching;
      for (int64_t z = 0; z < g.nz; ++z)
        for (int64_t y = 0; y < g.ny; ++y)
          for (int64_t x = 0; x < g.nx; ++x)
            if (x == 0 || y == 0 || x == g.nx - 1 || y == g.ny - 1) side[(*itk)[g.index(x, y, z)]] = 1;
      for (size_t i = 0; i < m.size(); ++i) expected[i] = (*itk)[i] != 0 && side[(*itk)[i]];
      const Status u = cuda::components_touching_side_faces(m, g, touching);
      ASSERT_TRUE(u.ok()) << u.error().message();
      EXPECT_TRUE(touching == expected)
          << "side faces, " << g.nx << "x" << g.ny << "x" << g.nz << " fill " << fill;
    }
}

// The whole lung mask with its air components and closings on CUDA: the CPU's labels, voxel for voxel.
// Runs everywhere: without a GPU, the CUDA path falls back to the CPU, warns, and gives the same.
TEST(LungMaskOnCuda, IsTheCpusOrFallsBackToIt) {
  testing::ChestSpec spec;
  spec.balls.push_back({{-119, 0, 0}, {5, 5, 5}, 30});    // juxtapleural nodule
  spec.balls.push_back({{117, 0, 0}, {13, 13, 13}, 30});  // a mass: the mass pass runs
  spec.tubes.push_back({{-40, 0, 10}, {-90, 30, -20}, 2.5, 40});
  const Volume v = testing::make_chest(spec);
  NullProgress progress;
  LungMaskOptions cpu, gpu;
  gpu.device = Device::kCUDA;
  auto a = segment_lungs(v, cpu, progress);
  const LogLevel level = log_level();
  set_log_level(LogLevel::kWarning);
  ::testing::internal::CaptureStderr();
  auto b = segment_lungs(v, gpu, progress);
  const std::string said = ::testing::internal::GetCapturedStderr();
  set_log_level(level);
  ASSERT_TRUE(a.ok()) << a.error().message();
  ASSERT_TRUE(b.ok()) << b.error().message();
  if (cuda::device_count() == 0) {  // each GPU step says that it failed and that the CPU took over
    EXPECT_NE(said.find("labelling the air on CUDA failed"), std::string::npos) << said;
    EXPECT_NE(said.find("labelling the inner air on CUDA failed"), std::string::npos) << said;
    EXPECT_NE(said.find("the closing on CUDA failed"), std::string::npos) << said;
  } else {
    EXPECT_EQ(said.find("failed"), std::string::npos) << said;
  }
  const int64_t n = a->labels.numel();
  const uint8_t* la = a->labels.data<uint8_t>();
  const uint8_t* lb = b->labels.data<uint8_t>();
  int64_t differ = 0;
  for (int64_t i = 0; i < n; ++i) differ += la[i] != lb[i];
  EXPECT_EQ(differ, 0);
  EXPECT_EQ(a->left.volume_ml, b->left.volume_ml);
  EXPECT_TRUE(b->warnings.empty());
}

}  // namespace
}  // namespace hilum
