#include <gtest/gtest.h>

#include <cmath>

#include "tests/vision/io/synthetic_chest.h"
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

}  // namespace
}  // namespace hilum
