// Lung mask, candidates and sizing on phantoms (vision/io/phantom.h), whose
// label volume is the truth.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <utility>

#include "tests/vision/io/candidate_testing.h"
#include "vision/io/candidates.h"
#include "vision/io/lung_mask.h"
#include "vision/io/phantom.h"
#include "vision/io/sizing.h"

namespace hilum {
namespace {

Phantom make(uint64_t seed, int slices, int nodules) {
  PhantomOptions o;
  o.seed = seed;
  o.slices = slices;
  o.nodules = nodules;
  NullProgress p;
  auto ph = make_phantom(o, p);
  EXPECT_TRUE(ph.ok()) << ph.error().message();
  return std::move(ph).value();
}

TEST(PhantomFindings, LungMaskAgreesWithTheLabels) {
  Phantom ph = make(3, 64, 2);
  NullProgress p;
  auto m = segment_lungs(ph.volume, LungMaskOptions{}, p);
  ASSERT_TRUE(m.ok()) << m.error().message();
  const uint8_t* truth = ph.labels.data<uint8_t>();
  const uint8_t* got = m->labels.data<uint8_t>();
  int64_t both = 0, t = 0, g = 0, airway_in_mask = 0, airway = 0;
  for (int64_t i = 0; i < ph.labels.numel(); ++i) {
    const bool in_truth = (truth[i] & kInLungBit) != 0 && (truth[i] & 0x7f) != kTissueAirway;
    both += in_truth && got[i];
    t += in_truth;
    g += got[i] != 0;
    if ((truth[i] & 0x7f) == kTissueAirway && !(truth[i] & kInLungBit)) {
      ++airway;
      airway_in_mask += got[i] != 0;
    }
  }
  const double dice = 2.0 * both / (t + g);
  EXPECT_GT(dice, 0.93) << "Dice of the lung mask against the phantom's lung labels";
  if (airway > 0) {
    EXPECT_LT(static_cast<double>(airway_in_mask) / airway, 0.1) << "trachea and main bronchi";
  }
  // Every nodule centre lies in the lung on its own side (LPS: right lung at smaller x).
  for (const PhantomNodule& n : ph.nodules) {
    const Vec3 v = ph.volume.voxel_from_world(n.center_mm);
    const uint8_t l = m->at(std::lround(v[0]), std::lround(v[1]), std::lround(v[2]));
    EXPECT_NE(l, kNoLung);
    EXPECT_EQ(l, n.center_mm[0] < 0 ? kRightLung : kLeftLung);
  }
}

TEST(PhantomFindings, EveryNoduleHasACandidateAndIsSized) {
  for (uint64_t seed : {2, 5}) {
    Phantom ph = make(seed, 96, 3);
    NullProgress p;
    auto m = segment_lungs(ph.volume, LungMaskOptions{}, p);
    ASSERT_TRUE(m.ok()) << m.error().message();
    auto c = detect_candidates(ph.volume, *m, CandidateOptions{}, p);
    ASSERT_TRUE(c.ok()) << c.error().message();
    EXPECT_LE(c->size(), static_cast<size_t>(CandidateOptions{}.max_candidates +
                                             CandidateOptions{}.pleural_max_candidates +
                                             CandidateOptions{}.bulge_extra_candidates));
    for (const PhantomNodule& n : ph.nodules) {
      const Candidate* hit = testing::hitting(*c, n.center_mm, n.diameter_mm);
      ASSERT_NE(hit, nullptr) << "seed " << seed << ": no candidate for the " << n.diameter_mm << " mm "
                              << nodule_type_name(n.type) << " nodule";
      auto s = measure_nodule(ph.volume, *m, hit->center_mm, hit->diameter_mm);
      ASSERT_TRUE(s.ok()) << s.error().message();
      // The phantom's diameter is the 3-D long axis; the axial mean is at most that, and not far below.
      EXPECT_LE(s->mean_diameter_mm, n.diameter_mm + 1.5)
          << "seed " << seed << " " << nodule_type_name(n.type) << " measured " << nodule_type_name(s->type)
          << " long " << s->long_axis_mm << " short " << s->short_axis_mm << " jp " << n.juxtapleural
          << " jv " << n.juxtavascular << " margin " << nodule_margin_name(n.margin) << " hint "
          << hit->diameter_mm;
      EXPECT_GE(s->mean_diameter_mm, 0.55 * n.diameter_mm) << "seed " << seed;
    }
  }
}

// Sensitivity at the production operating point (at most 500 candidates, the
// LUNA16 hit rule) on full phantom studies of the measured range
// (docs/findings.md, "Candidate sensitivity (issue 5)"): seeds 1010-1015 hold 9
// nodules >= 3 mm, all found since the vessel-suppressed pass (the 5.7 mm
// juxtapleural ground-glass nodule of seed 1011 went from rank 840 to 19). A
// regression guard at the measured level, not the 98 % target, which the
// detector does not reach yet.
TEST(PhantomFindings, CandidateSensitivityOnASeedRange) {
  int nodules = 0, found = 0;
  std::string missed;
  for (uint64_t seed = 1010; seed <= 1015; ++seed) {
    Phantom ph = make(seed, -1, -1);
    auto c = testing::candidates_of(ph.volume);
    ASSERT_TRUE(c.ok()) << c.error().message();
    EXPECT_LE(c->size(), static_cast<size_t>(CandidateOptions{}.max_candidates +
                                             CandidateOptions{}.pleural_max_candidates +
                                             CandidateOptions{}.bulge_extra_candidates));
    for (const PhantomNodule& n : ph.nodules) {
      if (n.diameter_mm < 3) continue;
      ++nodules;
      const bool hit = testing::hitting(*c, n.center_mm, n.diameter_mm) != nullptr;
      found += hit;
      if (!hit)
        missed += " seed " + std::to_string(seed) + ": " + std::to_string(n.diameter_mm) + " mm " +
                  std::string(nodule_type_name(n.type)) + (n.juxtapleural ? " juxtapleural" : "") +
                  (n.juxtavascular ? " juxtavascular" : "") + ";";
    }
  }
  EXPECT_EQ(nodules, 9);
  EXPECT_GE(found, 9) << found << " of " << nodules << " found; missed:" << missed;
}

// Small solid nodules in 2 mm slices whose core partial volume holds just under
// the solid level (-355 HU): sizing took them for ground glass, whose vessel cut
// (dense voxels and 1 mm around them) removed the nodule's own centre; 3.0-4.5 mm
// nodules measured 0.2-1.8 mm in long axis and fell under the reporting size.
// The phantom's own truth: the axial long axis is 3.1 mm for both.
TEST(PhantomFindings, SmallSolidNodulesInThickSlicesKeepTheirCentre) {
  for (const auto& [seed, index] : std::vector<std::pair<uint64_t, size_t>>{{1100, 2}, {1157, 0}}) {
    Phantom ph = make(seed, -1, -1);
    ASSERT_GT(ph.nodules.size(), index);
    NullProgress p;
    auto mask = segment_lungs(ph.volume, LungMaskOptions{}, p);
    ASSERT_TRUE(mask.ok()) << mask.error().message();
    const PhantomNodule& n = ph.nodules[index];
    ASSERT_EQ(n.type, NoduleType::kSolid);
    auto m = measure_nodule(ph.volume, *mask, n.center_mm, n.diameter_mm);
    ASSERT_TRUE(m.ok()) << m.error().message();
    EXPECT_NEAR(ph.volume.spacing[2], 2.0, 1e-6);
    EXPECT_GT(m->long_axis_mm, 2.4) << "seed " << seed << ": core " << m->core_hu << " HU";
    EXPECT_LT(m->long_axis_mm, 4.2) << "seed " << seed;
    EXPECT_GT(m->volume_mm3, 8.0) << "seed " << seed;
  }
}

// A 16 mm juxtapleural nodule of which the lung mask leaves a third out (the
// mask's closing does not reach into the corners where it sits on the wall).
// Drawn: 15.9 x 12.2 mm on its largest axial slice. Ending at the mask's edge,
// sizing measured 11.9 x 7.4 mm; with the pleura continued under it, 15.1 x 10.6.
TEST(PhantomFindings, JuxtapleuralNoduleIsMeasuredToThePleura) {
  Phantom ph = make(2006, -1, -1);
  ASSERT_GT(ph.nodules.size(), 0u);
  const PhantomNodule& n = ph.nodules[0];
  ASSERT_TRUE(n.juxtapleural);
  NullProgress p;
  auto mask = segment_lungs(ph.volume, LungMaskOptions{}, p);
  ASSERT_TRUE(mask.ok()) << mask.error().message();
  auto m = measure_nodule(ph.volume, *mask, n.center_mm, n.diameter_mm);
  ASSERT_TRUE(m.ok()) << m.error().message();
  EXPECT_TRUE(m->juxtapleural);
  EXPECT_NEAR(m->long_axis_mm, n.drawn_long_mm, 1.5);
  EXPECT_NEAR(m->short_axis_mm, n.drawn_short_mm, 2.0);
  EXPECT_NEAR(m->volume_mm3, n.drawn_volume_mm3, 0.2 * n.drawn_volume_mm3);
  SizingOptions at_mask;
  at_mask.continue_pleura = false;
  auto cut = measure_nodule(ph.volume, *mask, n.center_mm, n.diameter_mm, at_mask);
  ASSERT_TRUE(cut.ok()) << cut.error().message();
  EXPECT_LT(cut->short_axis_mm, n.drawn_short_mm - 3.0);
  EXPECT_LT(cut->volume_mm3, 0.6 * n.drawn_volume_mm3);
}

}  // namespace
}  // namespace hilum
