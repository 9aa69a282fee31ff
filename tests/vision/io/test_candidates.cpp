#include <gtest/gtest.h>

#include <cmath>

#include "tests/vision/io/candidate_testing.h"
#include "tests/vision/io/synthetic_chest.h"
#include "vision/io/candidates.h"

namespace hilum {
namespace {

using testing::Ball;
using testing::candidates_of;
using testing::ChestSpec;
using testing::Tube;

double distance(const Vec3& a, const Vec3& b) { return std::hypot(a[0] - b[0], a[1] - b[1], a[2] - b[2]); }

TEST(Candidates, FindsPlantedBallsOfEverySizeAndType) {
  ChestSpec spec;
  spec.nx = 220, spec.ny = 170, spec.nz = 110;
  spec.spacing = {1.4, 1.4, 1.5};
  // Nodules: solid 3..25 mm, ground-glass, part-solid, juxtapleural (right lateral wall at x = -123).
  spec.balls = {
      {{-70, -30, 40}, {1.5, 1.5, 1.5}, 30},       // 3 mm solid
      {{-80, 20, -20}, {2.5, 2.5, 2.5}, 30},       // 5 mm solid
      {{70, -20, 30}, {4, 4, 4}, 30},              // 8 mm solid
      {{60, 30, -40}, {12.5, 12.5, 12.5}, 30},     // 25 mm solid
      {{-60, 35, 10}, {5, 5, 5}, -600},            // 10 mm ground-glass
      {{80, -35, -10}, {6, 6, 6}, -600, 20, 2.5},  // 12 mm part-solid
      {{-116, 0, -30}, {4, 4, 4}, 30},             // juxtapleural
      {{40, 10, 55}, {3, 4, 2.5}, 30},             // ellipsoid
  };
  // Vessels: the hard negatives.
  spec.tubes = {{{-30, 0, 0}, {-100, 50, 40}, 2.0, 40},
                {{-30, 0, 0}, {-90, -50, -50}, 1.5, 40},
                {{30, 0, 0}, {100, 40, -40}, 2.0, 40},
                {{30, 0, 0}, {90, -50, 50}, 1.5, 40}};
  Volume v = testing::make_chest(spec);
  auto c = candidates_of(v);
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_LE(c->size(), 300u);
  for (const Ball& b : spec.balls) {
    const double r = std::max({b.radii[0], b.radii[1], b.radii[2]});
    double best = 1e9;
    const Candidate* hit = nullptr;
    for (const Candidate& k : *c) {
      if (distance(k.center_mm, b.center) < best) best = distance(k.center_mm, b.center), hit = &k;
    }
    ASSERT_NE(hit, nullptr);
    EXPECT_LE(best, std::max(r, 1.5))
        << "ball at " << b.center[0] << "," << b.center[1] << "," << b.center[2] << " radius " << r;
    EXPECT_NEAR(hit->diameter_mm, 2 * r, std::max(2.0, 0.8 * r)) << "size estimate";
  }
  // Along the vessels, away from their junction and ends, few candidates.
  int on_vessels = 0;
  for (const Candidate& k : *c)
    for (const Tube& t : spec.tubes) {
      const double d = testing::tube_distance(k.center_mm, t);
      if (d < t.radius && distance(k.center_mm, t.a) > 15 && distance(k.center_mm, t.b) > 15) ++on_vessels;
    }
  EXPECT_LE(on_vessels, 4);
}

// A nodule half sunk into a vessel (docs/findings.md, "Candidate sensitivity
// (issue 5)"): the ball's centre lies at r + r_vessel / 2 from the vessel's axis,
// as the phantom places juxtavascular nodules. The image has no round maximum
// of its own there: the small scales see an elongated bump on the vessel
// (blobness 0.2-0.3) and the larger ones a maximum between ball and vessel
// (2.2 mm from the centre here: the detector before issue 5 missed this ball).
TEST(Candidates, FindsABallHalfSunkIntoAVessel) {
  ChestSpec spec;
  spec.nx = 200, spec.ny = 160, spec.nz = 110;
  spec.spacing = {0.7, 0.7, 1.0};
  spec.body_rx = 68, spec.body_ry = 54;
  spec.lung_rx = 25, spec.lung_ry = 40, spec.lung_rz = 45, spec.lung_cx = 32;
  // A vessel of 3.6 mm running obliquely through the right lung, another in the left.
  const double rv = 1.8, r = 2.2;
  const Tube right{{-32, -30, -30}, {-30, 25, 30}, rv, 40};
  spec.tubes = {right, {{32, -30, -30}, {30, 25, 30}, rv, 40}};
  // A 4.4 mm solid ball beside the right vessel's middle, r + rv / 2 from its axis.
  const Vec3 mid{(right.a[0] + right.b[0]) / 2, (right.a[1] + right.b[1]) / 2, (right.a[2] + right.b[2]) / 2};
  const Vec3 ball{mid[0] + r + rv / 2, mid[1], mid[2]};  // the vessel runs in y and z: x is across it
  spec.balls = {{ball, {r, r, r}, 30}};
  Volume v = testing::make_chest(spec);
  auto c = candidates_of(v);
  ASSERT_TRUE(c.ok()) << c.error().message();
  double best = 1e9;
  for (const Candidate& k : *c) best = std::min(best, distance(k.center_mm, ball));
  EXPECT_LE(best, r) << "no candidate within the ball's radius";
  // The vessels themselves, away from the ball and their ends, give few candidates.
  int on_vessels = 0;
  for (const Candidate& k : *c)
    for (const Tube& t : spec.tubes)
      if (testing::tube_distance(k.center_mm, t) < t.radius && distance(k.center_mm, ball) > 6 &&
          distance(k.center_mm, t.a) > 10 && distance(k.center_mm, t.b) > 10)
        ++on_vessels;
  EXPECT_LE(on_vessels, 2);
}

TEST(Candidates, EigenvaluesOfSymmetricMatrices) {
  auto l = symmetric_eigenvalues(-3, -1, -2, 0, 0, 0);
  EXPECT_NEAR(l[0], -3, 1e-12);
  EXPECT_NEAR(l[1], -2, 1e-12);
  EXPECT_NEAR(l[2], -1, 1e-12);
  // [[2,1,0],[1,2,0],[0,0,5]] -> 5, 3, 1
  l = symmetric_eigenvalues(2, 2, 5, 1, 0, 0);
  EXPECT_NEAR(l[0], 5, 1e-9);
  EXPECT_NEAR(l[1], 3, 1e-9);
  EXPECT_NEAR(l[2], 1, 1e-9);
}

TEST(Candidates, MaskMismatchIsAnError) {
  Volume v = Volume::allocate(8, 8, 8, {1, 1, 1}, {0, 0, 0});
  LungMask m;
  m.labels = Tensor::zeros({4, 8, 8}, DType::kU8);
  NullProgress progress;
  EXPECT_EQ(detect_candidates(v, m, CandidateOptions{}, progress).error().kind(), ErrorKind::kBadInput);
  m.labels = Tensor::zeros({8, 8, 8}, DType::kU8);
  auto none = detect_candidates(v, m, CandidateOptions{}, progress);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

}  // namespace
}  // namespace hilum
