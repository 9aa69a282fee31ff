#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "tests/vision/io/synthetic_chest.h"
#include "vision/io/itk_bridge.h"
#include "vision/io/lung_mask.h"

namespace hilum {
namespace {

using testing::Ball;
using testing::ChestSpec;
using testing::make_chest;

uint8_t label_at(const LungMask& m, const Volume& v, const Vec3& world) {
  const Vec3 p = v.voxel_from_world(world);
  return m.at(std::lround(p[0]), std::lround(p[1]), std::lround(p[2]));
}

TEST(LungMask, TwoLungsLabelledBySideWithAirwaysRemoved) {
  ChestSpec spec;
  // A juxtapleural nodule on the right lung's lateral wall (x = -68 - 55 = -123) and a vessel.
  spec.balls.push_back({{-119, 0, 0}, {5, 5, 5}, 30});
  spec.tubes.push_back({{-40, 0, 10}, {-90, 30, -20}, 2.5, 40});
  Volume v = make_chest(spec);
  NullProgress progress;
  auto m = segment_lungs(v, LungMaskOptions{}, progress);
  ASSERT_TRUE(m.ok()) << m.error().message();
  EXPECT_TRUE(m->airways_removed);
  EXPECT_FALSE(m->lungs_were_joined);
  // LPS: patient right = negative x.
  EXPECT_EQ(label_at(*m, v, {-68, 0, 0}), kRightLung);
  EXPECT_EQ(label_at(*m, v, {68, 0, 0}), kLeftLung);
  EXPECT_EQ(label_at(*m, v, {0, 0, 0}), kNoLung);         // mediastinum
  EXPECT_EQ(label_at(*m, v, {0, -5, 70}), kNoLung);       // trachea
  EXPECT_EQ(label_at(*m, v, {-140, 0, 0}), kNoLung);      // chest wall
  EXPECT_EQ(label_at(*m, v, {-119, 0, 0}), kRightLung);   // juxtapleural nodule inside (rolling ball)
  EXPECT_EQ(label_at(*m, v, {-65, 15, -5}), kRightLung);  // vessel inside
  // Volumes: ellipsoid 4/3 pi 55 75 80 = 1382 ml each, within the closing's and grid's slack.
  const double expected = 4.0 / 3.0 * M_PI * 55 * 75 * 80 / 1000.0;
  EXPECT_NEAR(m->right.volume_ml, expected, 0.12 * expected);
  EXPECT_NEAR(m->left.volume_ml, expected, 0.12 * expected);
  EXPECT_NEAR(m->parenchyma_hu, -850, 15);
  EXPECT_LT(m->right.max_z, 85);
  EXPECT_GT(m->right.max_z, 70);
}

// A juxtapleural mass of 26 mm (the phantom's nodules reach 30 mm) on the costal pleura lies inside
// the mask up to its centre and beyond: the 10 mm rolling ball cannot fill its dent in the lung, the
// mass pass's 15 mm ball does. The same mass on the mediastinal pleura stays outside: far from the
// body's outer air, what the larger ball adds there is left out, like the mediastinum's recesses.
TEST(LungMask, LargeJuxtapleuralMassOnTheChestWallIsInside) {
  ChestSpec spec;
  spec.balls.push_back({{117, 0, 0}, {13, 13, 13}, 30});    // left lateral wall at x = 68 + 55 = 123
  spec.balls.push_back({{-19, 0, -10}, {13, 13, 13}, 30});  // right lung's medial wall at x = -13
  Volume v = make_chest(spec);
  NullProgress progress;
  auto m = segment_lungs(v, LungMaskOptions{}, progress);
  ASSERT_TRUE(m.ok()) << m.error().message();
  for (double x : {117.0, 111.0, 106.0}) EXPECT_EQ(label_at(*m, v, {x, 0, 0}), kLeftLung) << "x = " << x;
  EXPECT_EQ(label_at(*m, v, {117, 0, 9}), kLeftLung);
  EXPECT_EQ(label_at(*m, v, {140, 0, 0}), kNoLung);    // chest wall
  EXPECT_EQ(label_at(*m, v, {-26, 0, -10}), kNoLung);  // in the medial mass, 13 mm from the wall
  EXPECT_EQ(label_at(*m, v, {0, 0, 0}), kNoLung);      // mediastinum
  const double expected = 4.0 / 3.0 * M_PI * 55 * 75 * 80 / 1000.0;
  EXPECT_NEAR(m->left.volume_ml, expected, 0.12 * expected);

  // Without the mass pass the lateral mass's centre is outside (what the test above guards).
  LungMaskOptions no_pass;
  no_pass.mass_closing_radius_mm = 0;
  auto m0 = segment_lungs(v, no_pass, progress);
  ASSERT_TRUE(m0.ok()) << m0.error().message();
  EXPECT_EQ(label_at(*m0, v, {117, 0, 0}), kNoLung);
  // The pass only adds, and only around the lateral mass.
  const uint8_t* with = m->labels.data<uint8_t>();
  const uint8_t* without = m0->labels.data<uint8_t>();
  int64_t added = 0;
  for (int64_t z = 0; z < v.nz(); ++z)
    for (int64_t y = 0; y < v.ny(); ++y)
      for (int64_t x = 0; x < v.nx(); ++x) {
        const int64_t i = (z * v.ny() + y) * v.nx() + x;
        if (without[i]) {
          ASSERT_EQ(with[i], without[i]);
        } else if (with[i]) {
          const Vec3 w = v.world_from_voxel({double(x), double(y), double(z)});
          ASSERT_LT(std::hypot(w[0] - 117, w[1], w[2]), 20)
              << "added at " << w[0] << ", " << w[1] << ", " << w[2];
          ++added;
        }
      }
  EXPECT_GT(added, 0);
  // A larger ball everywhere takes the medial mass in too.
  LungMaskOptions everywhere;
  everywhere.closing_radius_mm = 15;
  auto m15 = segment_lungs(v, everywhere, progress);
  ASSERT_TRUE(m15.ok()) << m15.error().message();
  EXPECT_EQ(label_at(*m15, v, {-26, 0, -10}), kRightLung);
}

TEST(LungMask, JoinedLungsAreSplit) {
  ChestSpec spec;
  spec.join_lungs = true;
  spec.trachea = false;
  Volume v = make_chest(spec);
  NullProgress progress;
  auto m = segment_lungs(v, LungMaskOptions{}, progress);
  ASSERT_TRUE(m.ok()) << m.error().message();
  EXPECT_TRUE(m->lungs_were_joined);
  EXPECT_EQ(label_at(*m, v, {-68, 0, 0}), kRightLung);
  EXPECT_EQ(label_at(*m, v, {68, 0, 0}), kLeftLung);
  EXPECT_NEAR(m->right.volume_ml, m->left.volume_ml, 0.15 * m->left.volume_ml);
}

TEST(LungMask, NoLungsIsBadInput) {
  ChestSpec spec;
  spec.lung_rx = spec.lung_ry = spec.lung_rz = 1;  // solid body, no lungs
  spec.trachea = false;
  spec.nz = 8;
  Volume v = make_chest(spec);
  NullProgress progress;
  auto m = segment_lungs(v, LungMaskOptions{}, progress);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().kind(), ErrorKind::kBadInput);
  EXPECT_NE(m.error().message().find("chest CT"), std::string::npos);
}

TEST(LungMask, CancellationStops) {
  ChestSpec spec;
  spec.nz = 16;
  Volume v = make_chest(spec);
  CancellableProgress progress;
  progress.cancel();
  auto m = segment_lungs(v, LungMaskOptions{}, progress);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().kind(), ErrorKind::kCancelled);
}

TEST(LungMask, LobeEstimate) {
  EXPECT_EQ(estimate_lobe(kRightLung, 0.9, 0.5), "RUL");
  EXPECT_EQ(estimate_lobe(kRightLung, 0.4, 0.1), "RML");
  EXPECT_EQ(estimate_lobe(kRightLung, 0.2, 0.8), "RLL");
  EXPECT_EQ(estimate_lobe(kLeftLung, 0.7, 0.2), "LUL");
  EXPECT_EQ(estimate_lobe(kLeftLung, 0.1, 0.9), "LLL");
  EXPECT_EQ(estimate_lobe(kNoLung, 0.5, 0.5), "");
}

// The lung mask labels its air components in ITK's scan order (no sorting
// pass): the same components and sizes as the by-size labelling, renumbered.
TEST(LungMask, ComponentsInScanOrderAreTheSortedOnesRenumbered) {
  itk_bridge::Grid g{23, 17, 9, {1.0, 0.7, 2.0}};
  std::vector<uint8_t> m(static_cast<size_t>(g.voxels()), 0);
  uint32_t state = 12345;
  for (uint8_t& v : m) {
    state = state * 1664525u + 1013904223u;
    v = (state >> 24) < 100;  // ~39 % filled: many components of many sizes
  }
  std::vector<int64_t> sorted_sizes, scan_sizes;
  auto sorted = itk_bridge::label_components(m, g, false, sorted_sizes);
  auto scan = itk_bridge::label_components(m, g, false, scan_sizes, /*by_size=*/false);
  ASSERT_TRUE(sorted.ok() && scan.ok());
  ASSERT_EQ(sorted_sizes.size(), scan_sizes.size());
  ASSERT_GT(scan_sizes.size(), 20u);
  std::map<uint32_t, uint32_t> to_sorted;  // one-to-one between the labellings
  std::vector<int64_t> counted(scan_sizes.size(), 0);
  for (size_t i = 0; i < m.size(); ++i) {
    const uint32_t a = (*scan)[i], b = (*sorted)[i];
    ASSERT_EQ(a == 0, m[i] == 0);
    ASSERT_EQ(b == 0, m[i] == 0);
    if (!a) continue;
    auto [it, fresh] = to_sorted.emplace(a, b);
    ASSERT_EQ(it->second, b) << "voxel " << i;
    ++counted[a];
  }
  EXPECT_EQ(to_sorted.size(), scan_sizes.size() - 1);
  for (size_t l = 1; l < scan_sizes.size(); ++l) {
    EXPECT_EQ(counted[l], scan_sizes[l]);
    EXPECT_EQ(scan_sizes[l], sorted_sizes[to_sorted[static_cast<uint32_t>(l)]]);
  }
  EXPECT_TRUE(std::is_sorted(sorted_sizes.begin() + 1, sorted_sizes.end(), std::greater<>()));
}

}  // namespace
}  // namespace hilum
