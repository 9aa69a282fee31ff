#include <gtest/gtest.h>

#if HILUM_HAVE_IMAGING

#include <cmath>
#include <optional>
#include <utility>
#include <vector>

#include "app/findings_builder.h"
#include "tests/vision/io/synthetic_chest.h"

namespace hilum {
namespace {

using testing::Ball;
using testing::ChestSpec;

// A synthetic chest with these nodules, its lung mask and its candidates.
struct Scene {
  ChestSpec spec;
  Volume v;
  std::optional<LungMask> mask;
  std::optional<std::vector<Candidate>> cands;
};

void make_scene(std::vector<Ball> balls, Scene& s) {
  s.spec.nx = 220, s.spec.ny = 170, s.spec.nz = 110;
  s.spec.spacing = {1.4, 1.4, 1.5};
  s.spec.balls = std::move(balls);
  s.v = testing::make_chest(s.spec);
  NullProgress progress;
  auto mask = segment_lungs(s.v, LungMaskOptions{}, progress);
  ASSERT_TRUE(mask.ok()) << mask.error().message();
  s.mask = std::move(mask).value();
  auto cands = detect_candidates(s.v, *s.mask, CandidateOptions{}, progress);
  ASSERT_TRUE(cands.ok()) << cands.error().message();
  s.cands = std::move(cands).value();
}

TEST(FindingsBuilder, ScoredCandidatesBecomeSizedFindingsWithLungRads) {
  Scene s;
  ASSERT_NO_FATAL_FAILURE(make_scene(
      {
          {{-70, -30, 40}, {5, 5, 5}, 30},       // right, 10 mm solid -> 4A
          {{70, 20, -40}, {2.2, 2.2, 2.2}, 30},  // left, 4.4 mm solid -> 2
          {{60, -30, 30}, {9, 9, 9}, -600},      // left, 18 mm ground glass -> 2
      },
      s));
  const ChestSpec& spec = s.spec;
  const Volume& v = s.v;
  const auto& mask = s.mask;
  const auto& cands = s.cands;
  NullProgress progress;
  // Stand-in scores: high near a planted ball, low elsewhere (the fusion head's job in the pipeline).
  std::vector<float> prob, malig;
  for (const Candidate& c : *cands) {
    float p = 0.05f;
    for (const Ball& b : spec.balls)
      if (std::hypot(c.center_mm[0] - b.center[0], c.center_mm[1] - b.center[1],
                     c.center_mm[2] - b.center[2]) < b.radii[0])
        p = static_cast<float>(0.6 + b.radii[0] / 30);
    prob.push_back(p);
    malig.push_back(p / 2);
  }
  auto r = build_findings(v, *mask, *cands, prob, malig, FindingsOptions{}, progress);
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->scored.size(), cands->size());
  ASSERT_EQ(r->findings.size(), 3u);
  // Decreasing probability: 18 mm GGN, 10 mm solid, 4.4 mm solid.
  const Finding& ggn = r->findings[0];
  const Finding& big = r->findings[1];
  const Finding& small = r->findings[2];
  EXPECT_EQ(ggn.id, 1);
  EXPECT_EQ(small.id, 3);
  EXPECT_EQ(ggn.type, NoduleType::kGroundGlass);
  EXPECT_NEAR(ggn.mean_diameter_mm, 18, 1.0);
  EXPECT_EQ(ggn.lung_rads.category, LungRadsCategory::k2);
  EXPECT_EQ(ggn.location.side, LungSide::kLeft);
  EXPECT_EQ(big.type, NoduleType::kSolid);
  EXPECT_NEAR(big.mean_diameter_mm, 10, 1.0);
  EXPECT_EQ(big.lung_rads.category, LungRadsCategory::k4A);
  EXPECT_EQ(big.location.side, LungSide::kRight);
  EXPECT_FALSE(big.location.lobe.empty());
  EXPECT_EQ(big.location.lobe[0], 'R');
  EXPECT_NEAR(big.center_mm[2], 40, 1.0);
  EXPECT_EQ(big.location.slice_index, std::lround(v.voxel_from_world({-70, -30, 40})[2]));
  EXPECT_EQ(small.lung_rads.category, LungRadsCategory::k2);
  EXPECT_EQ(big.evidence.at("probability"), "fusion head: nodule logit");
  EXPECT_NE(big.evidence.at("candidate").find("blob detector"), std::string::npos);
  EXPECT_NEAR(big.probability, 0.6 + 5.0 / 30, 1e-6);
  EXPECT_EQ(study_lung_rads(r->findings), "4A");

  // A finding from the bulge pass says so in its evidence.
  std::vector<Candidate> marked = *cands;
  for (Candidate& c : marked)
    c.bulge = std::hypot(c.center_mm[0] + 70, c.center_mm[1] + 30, c.center_mm[2] - 40) < 5;
  auto rb = build_findings(v, *mask, marked, prob, malig, FindingsOptions{}, progress);
  ASSERT_TRUE(rb.ok()) << rb.error().message();
  ASSERT_EQ(rb->findings.size(), 3u);
  EXPECT_NE(rb->findings[1].evidence.at("candidate").find("vessel bulge detector"), std::string::npos);
  EXPECT_NE(rb->findings[0].evidence.at("candidate").find("blob detector"), std::string::npos);
}

// The reporting size is a long axis (LIDC, LUNA16: nodules from 3 mm in their longest diameter),
// not the mean diameter: an elongated nodule whose mean is under the floor but whose long axis is
// not is reported; under a floor above its long axis it is not, and a note says why.
TEST(FindingsBuilder, TheReportingSizeIsTheLongAxis) {
  Scene s;
  ASSERT_NO_FATAL_FAILURE(
      make_scene({{{-70, -30, 40}, {6, 2.5, 2.5}, 30}}, s));  // 12 x 5 x 5 mm, long axis x
  const Volume& v = s.v;
  const auto& mask = s.mask;
  const auto& cands = s.cands;
  NullProgress progress;
  std::vector<float> prob;
  for (const Candidate& c : *cands)
    prob.push_back(std::hypot(c.center_mm[0] + 70, c.center_mm[1] + 30, c.center_mm[2] - 40) < 5 ? 0.9f
                                                                                                 : 0.05f);
  FindingsOptions o;
  auto all = build_findings(v, *mask, *cands, prob, prob, o, progress);
  ASSERT_TRUE(all.ok()) << all.error().message();
  ASSERT_EQ(all->findings.size(), 1u);
  const Finding& f = all->findings[0];
  EXPECT_NEAR(f.long_axis_mm, 12, 1.5);
  EXPECT_NEAR(f.short_axis_mm, 5, 1.5);
  ASSERT_GT(f.long_axis_mm, f.mean_diameter_mm + 2);

  // A floor between the mean diameter and the long axis keeps it; the mean rule would not.
  o.min_long_axis_mm = (f.mean_diameter_mm + f.long_axis_mm) / 2;
  auto kept = build_findings(v, *mask, *cands, prob, prob, o, progress);
  ASSERT_TRUE(kept.ok()) << kept.error().message();
  EXPECT_EQ(kept->findings.size(), 1u);

  o.min_long_axis_mm = f.long_axis_mm + 0.5;
  auto dropped = build_findings(v, *mask, *cands, prob, prob, o, progress);
  ASSERT_TRUE(dropped.ok()) << dropped.error().message();
  EXPECT_TRUE(dropped->findings.empty());
  bool noted = false;
  for (const std::string& n : dropped->notes)
    noted = noted || n.find("in long axis: below the reporting size") != std::string::npos;
  EXPECT_TRUE(noted);
}

TEST(FindingsBuilder, MismatchedScoresAreBadInput) {
  Volume v = Volume::allocate(8, 8, 8, {1, 1, 1}, {0, 0, 0});
  LungMask m;
  m.labels = Tensor::zeros({8, 8, 8}, DType::kU8);
  NullProgress progress;
  std::vector<Candidate> c(2);
  auto r = build_findings(v, m, c, {0.5f}, {0.5f, 0.5f}, FindingsOptions{}, progress);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind(), ErrorKind::kBadInput);
}

}  // namespace
}  // namespace hilum

#endif  // HILUM_HAVE_IMAGING
