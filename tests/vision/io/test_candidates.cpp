#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>

#include "tests/vision/io/candidate_testing.h"
#include "tests/vision/io/synthetic_chest.h"
#include "vision/io/candidates.h"
#include "vision/io/candidates_internal.h"

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
  EXPECT_LE(c->size(), static_cast<size_t>(CandidateOptions{}.max_candidates));
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

// A chest with one vessel of 2 rv mm (4 by default) running obliquely through
// the right lung and another through the left; `ball_radius` > 0 adds a ball
// (solid by default) beside the right one's middle, its centre at r + rv / 2
// from the axis (half sunk into it, as the phantom places juxtavascular nodules).
struct VesselScene {
  ChestSpec spec;
  Vec3 ball{};
};

VesselScene vessel_scene(double ball_radius, float ball_hu = 40, double rv = 2.0) {
  VesselScene s;
  s.spec.nx = 200, s.spec.ny = 160, s.spec.nz = 110;
  s.spec.spacing = {0.7, 0.7, 1.0};
  s.spec.body_rx = 68, s.spec.body_ry = 54;
  s.spec.lung_rx = 25, s.spec.lung_ry = 40, s.spec.lung_rz = 45, s.spec.lung_cx = 32;
  const Tube right{{-32, -30, -30}, {-30, 25, 30}, rv, 40};
  s.spec.tubes = {right, {{32, -30, -30}, {30, 25, 30}, rv, 40}};
  const Vec3 mid{(right.a[0] + right.b[0]) / 2, (right.a[1] + right.b[1]) / 2, (right.a[2] + right.b[2]) / 2};
  s.ball = {mid[0] + ball_radius + rv / 2, mid[1], mid[2]};  // the vessel runs in y and z: x is across it
  if (ball_radius > 0) s.spec.balls = {{s.ball, {ball_radius, ball_radius, ball_radius}, ball_hu}};
  return s;
}

Result<std::vector<Candidate>> candidates_with(const Volume& v, const CandidateOptions& options) {
  NullProgress progress;
  HILUM_ASSIGN_OR_RETURN(LungMask mask, segment_lungs(v, LungMaskOptions{}, progress));
  return detect_candidates(v, mask, options, progress);
}

// The distance from `p` to the nearest of the candidates (1e9 when there are none).
double nearest_distance(const std::vector<Candidate>& c, const Vec3& p) {
  double d = 1e9;
  for (const Candidate& k : c) d = std::min(d, distance(k.center_mm, p));
  return d;
}

// A 3 mm ball half sunk into a 4 mm vessel of the same density (seed 1032's
// nodule): the image is a plateau over both, with no maximum of the ball's own at
// any scale, so the blob passes alone give it no candidate. The part of the
// ball outside the vessel survives the opening along the vessel's axis: the
// bulge pass finds it.
TEST(Candidates, FindsABulgeOnAVesselThatHasNoMaximumOfItsOwn) {
  const VesselScene scene = vessel_scene(1.5);
  const Volume v = testing::make_chest(scene.spec);
  CandidateOptions blobs_only;
  blobs_only.bulge_sigma_mm = 0;
  auto without = candidates_with(v, blobs_only);
  ASSERT_TRUE(without.ok()) << without.error().message();
  EXPECT_EQ(testing::hitting(*without, scene.ball, 3.0), nullptr) << "the blob passes alone find the ball";
  auto with = candidates_with(v, CandidateOptions{});
  ASSERT_TRUE(with.ok()) << with.error().message();
  const Candidate* hit = testing::hitting(*with, scene.ball, 3.0);
  ASSERT_NE(hit, nullptr) << "no candidate within 1.5 mm of the ball";
  EXPECT_TRUE(hit->bulge);
}

// With no room for bulges the ball of the scene above has no candidate; with
// bulge_extra_candidates its bulge comes after the others, which stay as they were.
TEST(Candidates, BulgesPastTheQuotaComeAfterTheOtherCandidates) {
  const VesselScene scene = vessel_scene(1.5);
  const Volume v = testing::make_chest(scene.spec);
  CandidateOptions no_room;
  no_room.bulge_max_candidates = 0;
  no_room.bulge_extra_candidates = 0;
  auto without = candidates_with(v, no_room);
  ASSERT_TRUE(without.ok()) << without.error().message();
  EXPECT_EQ(testing::hitting(*without, scene.ball, 3.0), nullptr);
  CandidateOptions extra = no_room;
  extra.bulge_extra_candidates = 3;
  auto with = candidates_with(v, extra);
  ASSERT_TRUE(with.ok()) << with.error().message();
  ASSERT_GT(with->size(), without->size());
  ASSERT_LE(with->size(), without->size() + 3);
  for (size_t k = 0; k < without->size(); ++k) {
    EXPECT_EQ((*with)[k].center_mm, (*without)[k].center_mm) << k;
    EXPECT_FALSE((*with)[k].bulge) << k;
  }
  for (size_t k = without->size(); k < with->size(); ++k) {
    EXPECT_TRUE((*with)[k].bulge) << k;
    if (k > without->size()) {
      EXPECT_LE((*with)[k].score, (*with)[k - 1].score) << k;
    }
  }
  const Candidate* hit = testing::hitting(*with, scene.ball, 3.0);
  ASSERT_NE(hit, nullptr) << "no extra bulge within 1.5 mm of the ball";
  EXPECT_TRUE(hit->bulge);
}

// A 4 mm ground-glass ball (-550 HU) half sunk into a 4 mm vessel: the image's
// maximum of the two lies 2.6 mm from the ball's centre, outside its radius (the
// LUNA16 hit rule misses it), while the vessel-suppressed image's maximum lies on
// the ball. The candidate takes that place with that maximum's score.
TEST(Candidates, ABallBesideAVesselGetsTheVesselSuppressedMaximumsPlace) {
  const VesselScene scene = vessel_scene(2.0, -550);
  const Volume v = testing::make_chest(scene.spec);
  CandidateOptions still;
  still.vessel_suppressed_moves = false;
  auto before = candidates_with(v, still);
  ASSERT_TRUE(before.ok()) << before.error().message();
  EXPECT_GT(nearest_distance(*before, scene.ball), 2.0) << "the image's own maximum already lies on the ball";
  auto moved = candidates_with(v, CandidateOptions{});
  ASSERT_TRUE(moved.ok()) << moved.error().message();
  EXPECT_LT(nearest_distance(*moved, scene.ball), 1.6);
  EXPECT_NE(testing::hitting(*moved, scene.ball, 4.0), nullptr);
  EXPECT_EQ(moved->size(), before->size()) << "moving a candidate neither adds nor removes one";
}

// The same vessels without a ball: their opening along the axis explains them
// (away from their ends), so no bulge candidate lies on them.
TEST(Candidates, PlainVesselsGetNoBulgeCandidates) {
  const VesselScene scene = vessel_scene(0);
  const Volume v = testing::make_chest(scene.spec);
  auto c = candidates_with(v, CandidateOptions{});
  ASSERT_TRUE(c.ok()) << c.error().message();
  int on_vessels = 0;
  for (const Candidate& k : *c)
    for (const Tube& t : scene.spec.tubes)
      if (k.bulge && testing::tube_distance(k.center_mm, t) < t.radius + 1 &&
          distance(k.center_mm, t.a) > 10 && distance(k.center_mm, t.b) > 10)
        ++on_vessels;
  EXPECT_EQ(on_vessels, 0);
}

// A 4 mm solid nodule on the right lung's lateral wall, its centre 0.5 mm inside
// the lung (a cap, as the phantom's small juxtapleural nodules are), and four
// isolated 6 mm nodules that outrank it.
struct CapScene {
  ChestSpec spec;
  Vec3 cap{};
};

CapScene cap_scene() {
  CapScene s;
  // A chest wall at least 3 cm thick: a wall thinner than the opening's box goes with the opening.
  s.spec.nx = 260, s.spec.ny = 220, s.spec.nz = 110;
  s.spec.spacing = {0.7, 0.7, 1.0};
  s.spec.body_rx = 88, s.spec.body_ry = 74;
  s.spec.lung_rx = 25, s.spec.lung_ry = 40, s.spec.lung_rz = 45, s.spec.lung_cx = 32;
  s.cap = {-32 - 25 + 0.5, 0, 0};  // the right lung spans x = -57 .. -7 in the plane z = 0, y = 0
  s.spec.balls = {{s.cap, {2, 2, 2}, 40},
                  {{-32, 15, 20}, {3, 3, 3}, 40},
                  {{-28, -20, -15}, {3, 3, 3}, 40},
                  {{32, 10, 10}, {3, 3, 3}, 40},
                  {{30, -15, -20}, {3, 3, 3}, 40}};
  return s;
}

// The top-hat's strongest maximum near the mask's edge is the cap; the smooth
// wall and its partial-volume rim leave nothing above the threshold elsewhere.
TEST(Candidates, PleuralTopHatPeaksAtACapOnTheWall) {
  const CapScene scene = cap_scene();
  const Volume v = testing::make_chest(scene.spec);
  NullProgress progress;
  auto mask = segment_lungs(v, LungMaskOptions{}, progress);
  ASSERT_TRUE(mask.ok()) << mask.error().message();
  auto peaks = candidates_internal::pleural_peaks(v, *mask, CandidateOptions{});
  ASSERT_TRUE(peaks.ok()) << peaks.error().message();
  ASSERT_FALSE(peaks->empty());
  EXPECT_LT(distance(v.world_from_voxel(peaks->front().voxel), scene.cap), 1.5);
  EXPECT_GT(peaks->front().tophat, 300.f);
  // Elsewhere only where the synthetic main bronchi end abruptly inside the lungs.
  const double top = (scene.spec.nz - 1) * scene.spec.spacing[2] / 2;
  const Vec3 bronchus_end[2] = {{-scene.spec.lung_cx + 25, 0, 0.2 * top}, {scene.spec.lung_cx - 25, 0, 0.2 * top}};
  for (const auto& p : *peaks) {
    const Vec3 w = v.world_from_voxel(p.voxel);
    EXPECT_TRUE(distance(w, scene.cap) < 4.0 || distance(w, bronchus_end[0]) < 8.0 ||
                distance(w, bronchus_end[1]) < 8.0)
        << "a top-hat peak of " << p.tophat << " HU at " << w[0] << ", " << w[1] << ", " << w[2];
  }
  const auto& o = CandidateOptions{};
  EXPECT_EQ(candidates_internal::box_radius_voxels(o.pleural_box_mm, {0.7, 0.7, 1.0}), (std::array<int, 3>{5, 5, 3}));
  EXPECT_EQ(candidates_internal::box_radius_voxels(2.0, {0.7, 0.7, 2.5}), (std::array<int, 3>{1, 1, 1}));
}

// Awkward grids: no lung, a lung filling the whole grid, a grid thinner than the
// box, a lung touching the faces. No peak leaves the grid, none lies outside the band.
TEST(Candidates, PleuralPeaksOnAwkwardMasks) {
  CandidateOptions o;
  for (const auto& [nx, ny, nz] : std::vector<std::array<int64_t, 3>>{{9, 7, 3}, {40, 33, 2}, {31, 29, 17}}) {
    Volume v = Volume::allocate(nx, ny, nz, {0.7, 0.7, 1.0}, {0, 0, 0});
    float* hu = v.data();
    for (int64_t i = 0; i < nx * ny * nz; ++i) hu[i] = (i * 7919 % 13 == 0) ? 40.f : -850.f;  // scattered dense voxels
    LungMask m;
    m.labels = Tensor::zeros({nz, ny, nx}, DType::kU8);
    auto none = candidates_internal::pleural_peaks(v, m, o);
    ASSERT_TRUE(none.ok()) << none.error().message();
    EXPECT_TRUE(none->empty());
    uint8_t* lab = m.labels.data<uint8_t>();
    for (int fill : {0, 1}) {  // the whole grid, then the left half (touching four faces)
      for (int64_t z = 0; z < nz; ++z)
        for (int64_t y = 0; y < ny; ++y)
          for (int64_t x = 0; x < nx; ++x) lab[(z * ny + y) * nx + x] = fill == 0 || x < nx / 2 ? kRightLung : kNoLung;
      auto peaks = candidates_internal::pleural_peaks(v, m, o);
      ASSERT_TRUE(peaks.ok()) << peaks.error().message();
      for (const auto& p : *peaks) {
        EXPECT_GE(p.voxel[0], 0);
        EXPECT_LT(p.voxel[0], nx);
        EXPECT_LT(p.voxel[1], ny);
        EXPECT_LT(p.voxel[2], nz);
        EXPECT_GT(p.tophat, o.pleural_min_tophat_hu);
        if (fill == 0) ADD_FAILURE() << "a lung filling the grid has no edge, so no band";
      }
    }
  }
}

// With room for only the four isolated nodules, the cap is ranked out; its
// top-hat keeps its candidate beyond max_candidates, flagged, and nothing else.
TEST(Candidates, APleuralCapRankedOutIsKeptByItsTopHat) {
  const CapScene scene = cap_scene();
  const Volume v = testing::make_chest(scene.spec);
  CandidateOptions ranked;
  ranked.max_candidates = 4;
  ranked.pleural_max_candidates = 0;
  auto without = candidates_with(v, ranked);
  ASSERT_TRUE(without.ok()) << without.error().message();
  ASSERT_EQ(without->size(), 4u);
  EXPECT_EQ(testing::hitting(*without, scene.cap, 4.0), nullptr) << "the cap is not ranked out";
  for (size_t k = 1; k < scene.spec.balls.size(); ++k)
    EXPECT_NE(testing::hitting(*without, scene.spec.balls[k].center, 6.0), nullptr) << "nodule " << k;
  ranked.pleural_max_candidates = CandidateOptions{}.pleural_max_candidates;
  auto with = candidates_with(v, ranked);
  ASSERT_TRUE(with.ok()) << with.error().message();
  ASSERT_EQ(with->size(), 5u) << "only the cap's candidate is added";
  const Candidate* hit = testing::hitting(*with, scene.cap, 4.0);
  ASSERT_NE(hit, nullptr);
  EXPECT_TRUE(hit->pleural);
  EXPECT_EQ(hit, &with->back());
  for (size_t k = 0; k < 4; ++k) {
    EXPECT_EQ((*with)[k].center_mm, (*without)[k].center_mm) << "the ranked candidates stay as they were";
    EXPECT_FALSE((*with)[k].pleural);
  }
}

TEST(Candidates, EigenvectorsOfSymmetricMatrices) {
  // [[2,1,0],[1,2,0],[0,0,5]]: 5 along z, 3 along (1,1,0), 1 along (1,-1,0).
  auto e = symmetric_eigenvector(2, 2, 5, 1, 0, 0, 5);
  EXPECT_NEAR(std::abs(e[2]), 1, 1e-9);
  e = symmetric_eigenvector(2, 2, 5, 1, 0, 0, 3);
  EXPECT_NEAR(std::abs(e[0] + e[1]), std::sqrt(2.0), 1e-9);
  e = symmetric_eigenvector(2, 2, 5, 1, 0, 0, 1);
  EXPECT_NEAR(std::abs(e[0] - e[1]), std::sqrt(2.0), 1e-9);
  // A tube along (1, 1, 1) / sqrt(3): curvature -1 across it, 0 along it.
  const double a = -2.0 / 3, d = 1.0 / 3;
  e = symmetric_eigenvector(a, a, a, d, d, d, 0);
  EXPECT_NEAR(std::abs(e[0] + e[1] + e[2]), std::sqrt(3.0), 1e-9);
  // Repeated eigenvalue: any unit vector orthogonal to the other one.
  e = symmetric_eigenvector(-1, -1, -3, 0, 0, 0, -1);
  EXPECT_NEAR(std::hypot(e[0], e[1], e[2]), 1, 1e-12);
  EXPECT_NEAR(e[2], 0, 1e-12);
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

// The switches analyze and export-training-set read for side-by-side runs.
TEST(Candidates, EnvironmentSwitchesSetThePleuralCapsAndTheExtraBulges) {
  unsetenv("HILUM_PLEURAL_CAPS");
  unsetenv("HILUM_BULGE_EXTRAS");
  const CandidateOptions d;
  CandidateOptions o = with_environment_switches(d);
  EXPECT_EQ(o.pleural_max_candidates, d.pleural_max_candidates);
  EXPECT_EQ(o.bulge_extra_candidates, d.bulge_extra_candidates);
  setenv("HILUM_PLEURAL_CAPS", "0", 1);
  setenv("HILUM_BULGE_EXTRAS", "0", 1);
  o = with_environment_switches(d);
  EXPECT_EQ(o.pleural_max_candidates, 0);
  EXPECT_EQ(o.bulge_extra_candidates, 0);
  setenv("HILUM_PLEURAL_CAPS", "1", 1);
  setenv("HILUM_BULGE_EXTRAS", "45", 1);
  o = with_environment_switches(d);
  EXPECT_EQ(o.pleural_max_candidates, d.pleural_max_candidates);
  EXPECT_EQ(o.bulge_extra_candidates, 45);
  for (const char* other : {"x", "-3", ""}) {  // anything else keeps the default
    setenv("HILUM_BULGE_EXTRAS", other, 1);
    EXPECT_EQ(with_environment_switches(d).bulge_extra_candidates, d.bulge_extra_candidates) << other;
  }
  unsetenv("HILUM_PLEURAL_CAPS");
  unsetenv("HILUM_BULGE_EXTRAS");
}

TEST(Candidates, EnvironmentSwitchSetsTheGroundGlassPassesSmallestScale) {
  unsetenv("HILUM_GROUND_GLASS_MIN_SIGMA_MM");
  const CandidateOptions d;
  EXPECT_EQ(with_environment_switches(d).ground_glass_min_sigma_mm, d.ground_glass_min_sigma_mm);
  setenv("HILUM_GROUND_GLASS_MIN_SIGMA_MM", "1.2", 1);
  EXPECT_DOUBLE_EQ(with_environment_switches(d).ground_glass_min_sigma_mm, 1.2);
  setenv("HILUM_GROUND_GLASS_MIN_SIGMA_MM", "3", 1);
  EXPECT_DOUBLE_EQ(with_environment_switches(d).ground_glass_min_sigma_mm, 3.0);
  for (const char* other : {"x", "-1.2", "+1.2", "0.1", "1e3", "1.2mm", "", "1..2", "500"}) {
    setenv("HILUM_GROUND_GLASS_MIN_SIGMA_MM", other, 1);
    EXPECT_EQ(with_environment_switches(d).ground_glass_min_sigma_mm, d.ground_glass_min_sigma_mm) << other;
  }
  unsetenv("HILUM_GROUND_GLASS_MIN_SIGMA_MM");
}

// A 6.8 mm ground-glass ball (-550 HU) half sunk into a 4 mm vessel: on the
// unclipped image the vessel pulls every maximum towards itself. The clipped
// (ground-glass) pass at the small scales, on since 2026-11-30, puts one on the
// ball; run from 2.5 mm only, as before, the nearest candidate lies 2.3 mm off.
TEST(Candidates, TheGroundGlassPassesSmallScalesCentreAGroundGlassBallBesideAVessel) {
  const VesselScene scene = vessel_scene(3.4, -550);
  const Volume v = testing::make_chest(scene.spec);
  CandidateOptions from_2_5;
  from_2_5.ground_glass_min_sigma_mm = 2.5;
  auto before = candidates_with(v, from_2_5);
  ASSERT_TRUE(before.ok()) << before.error().message();
  EXPECT_GT(nearest_distance(*before, scene.ball), 1.5);
  auto now = candidates_with(v, CandidateOptions{});
  ASSERT_TRUE(now.ok()) << now.error().message();
  EXPECT_LT(nearest_distance(*now, scene.ball), 1.0);
  EXPECT_EQ(now->size(), before->size());
}

// A 5.2 mm ground-glass ball (-550 HU) half sunk into a 7 mm vessel. Clipped
// at -650 HU, vessel and ball are one plateau whose maxima lie on the vessel: no
// candidate within the ball's radius. With the vessels out
// (ground_glass_vessels_out: solid tissue and its rim to the parenchyma level)
// the ball is an isolated blob and a candidate sits on it. Off by default: on
// held-out phantoms it cost CPM (bench/RESULTS.md, "The ground-glass pass with
// the vessels out"). CandidatesCuda.FindsTheSameCandidatesAsTheCpu runs it too.
TEST(Candidates, TheGroundGlassPassWithTheVesselsOutFindsAGroundGlassBallBesideAThickVessel) {
  const VesselScene scene = vessel_scene(2.6, -550, 3.5);
  const Volume v = testing::make_chest(scene.spec);
  auto clipped = candidates_with(v, CandidateOptions{});
  ASSERT_TRUE(clipped.ok()) << clipped.error().message();
  EXPECT_GT(nearest_distance(*clipped, scene.ball), 2.6);
  CandidateOptions out;
  out.ground_glass_vessels_out = true;
  auto vessels_out = candidates_with(v, out);
  ASSERT_TRUE(vessels_out.ok()) << vessels_out.error().message();
  EXPECT_LT(nearest_distance(*vessels_out, scene.ball), 1.0);
}

TEST(Candidates, EnvironmentSwitchTakesTheVesselsOutOfTheGroundGlassPass) {
  unsetenv("HILUM_GROUND_GLASS_VESSELS_OUT");
  EXPECT_FALSE(with_environment_switches(CandidateOptions{}).ground_glass_vessels_out);
  setenv("HILUM_GROUND_GLASS_VESSELS_OUT", "1", 1);
  EXPECT_TRUE(with_environment_switches(CandidateOptions{}).ground_glass_vessels_out);
  setenv("HILUM_GROUND_GLASS_VESSELS_OUT", "0", 1);
  CandidateOptions on;
  on.ground_glass_vessels_out = true;
  EXPECT_FALSE(with_environment_switches(on).ground_glass_vessels_out);
  unsetenv("HILUM_GROUND_GLASS_VESSELS_OUT");
  EXPECT_TRUE(with_environment_switches(on).ground_glass_vessels_out);
}

TEST(Candidates, FeaturesByNameAreTheMeasurementsOrTheirLogarithms) {
  Candidate c;
  c.response = 150.0;
  c.contrast_hu = 372.8;
  c.blobness = 0.826;
  c.isolation = 0.75;
  c.score = 2340.09;
  c.sigma_mm = 1.9;
  EXPECT_DOUBLE_EQ(*candidate_feature(c, "log_response"), std::log(150.0));
  EXPECT_DOUBLE_EQ(*candidate_feature(c, "contrast_hu"), 372.8);
  EXPECT_DOUBLE_EQ(*candidate_feature(c, "blobness"), 0.826);
  EXPECT_DOUBLE_EQ(*candidate_feature(c, "isolation"), 0.75);
  EXPECT_DOUBLE_EQ(*candidate_feature(c, "log_score"), std::log(2340.09));
  EXPECT_DOUBLE_EQ(*candidate_feature(c, "log_sigma_mm"), std::log(1.9));
  EXPECT_DOUBLE_EQ(*candidate_feature(c, "pleural"), 0.0);
  c.pleural = true;
  EXPECT_DOUBLE_EQ(*candidate_feature(c, "pleural"), 1.0);
  EXPECT_DOUBLE_EQ(*candidate_feature(c, "bulge"), 0.0);
  c.bulge = true;
  EXPECT_DOUBLE_EQ(*candidate_feature(c, "bulge"), 1.0);
  // Logarithms are floored (a zero score stays finite), unknown names are refused.
  c.score = 0;
  EXPECT_DOUBLE_EQ(*candidate_feature(c, "log_score"), std::log(1e-3));
  EXPECT_FALSE(candidate_feature(c, "diameter").has_value());
  EXPECT_FALSE(candidate_feature(c, "").has_value());
  EXPECT_EQ(candidate_feature_names().size(), 8u);
  for (const std::string& name : candidate_feature_names()) EXPECT_TRUE(candidate_feature(c, name)) << name;
}

}  // namespace
}  // namespace hilum

