// The radiologist's review applied to the AI's findings (app/review.h): what
// the reports of the workstation show.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "app/review.h"
#include "tests/app/report_fixture.h"

namespace hilum {
namespace {

using test::make_document;
using test::make_finding;

FindingsDocument three_nodules() {
  auto d = make_document({make_finding(1, NoduleType::kSolid, 7.0, 5.0, "RUL", 0.95, 0.2),
                          make_finding(2, NoduleType::kPartSolid, 12.0, 10.0, "LLL", 0.9, 0.4, 5.0),
                          make_finding(3, NoduleType::kGroundGlass, 9.0, 8.0, "RML", 0.7, 0.1)});
  d.notes = {"lung mask: 2 components"};
  return d;
}

TEST(Review, UnreviewedFindingsAreReportedAsTheAiGaveThem) {
  const FindingsDocument ai = three_nodules();
  auto r = apply_review(ai, {});
  ASSERT_TRUE(r.ok()) << r.error().message();
  ASSERT_EQ(r->findings.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(r->findings[i].long_axis_mm, ai.findings[i].long_axis_mm);
    EXPECT_EQ(r->findings[i].evidence.at("review"), "radiologist: pending");
  }
  EXPECT_EQ(r->notes.front(), "lung mask: 2 components");
  EXPECT_EQ(
      r->notes.back(),
      "Radiologist review: 0 accepted, 0 rejected, 3 not reviewed (nodules 1, 2 and 3); no finding edited.");
}

TEST(Review, RejectedLeftOutEditsAppliedAndNamed) {
  const FindingsDocument ai = three_nodules();
  std::vector<FindingReview> reviews;
  FindingReview a = unreviewed(ai.findings[0]);
  a.decision = ReviewDecision::kAccepted;
  a.long_axis_mm = 8.4;  // caliper
  a.lung_rads = "4A";
  reviews.push_back(a);
  FindingReview b = unreviewed(ai.findings[1]);
  b.decision = ReviewDecision::kRejected;
  b.long_axis_mm = 3;  // edits of a rejected finding do not count
  b.short_axis_mm = 3;
  reviews.push_back(b);
  FindingReview c = unreviewed(ai.findings[2]);
  c.decision = ReviewDecision::kAccepted;
  c.type = NoduleType::kPartSolid;
  reviews.push_back(c);

  auto r = apply_review(ai, reviews);
  ASSERT_TRUE(r.ok()) << r.error().message();
  ASSERT_EQ(r->findings.size(), 2u);
  const Finding& f1 = r->findings[0];
  EXPECT_EQ(f1.id, 1);
  EXPECT_DOUBLE_EQ(f1.long_axis_mm, 8.4);
  EXPECT_DOUBLE_EQ(f1.short_axis_mm, 5.0);
  EXPECT_DOUBLE_EQ(f1.mean_diameter_mm, 6.7);
  EXPECT_DOUBLE_EQ(f1.solid_component_mm, 6.7);
  EXPECT_EQ(f1.lung_rads.category, LungRadsCategory::k4A);
  EXPECT_EQ(f1.lung_rads.rule, "assigned by the radiologist");
  EXPECT_EQ(f1.lung_rads.management, std::string(lung_rads_management(LungRadsCategory::k4A)));
  EXPECT_EQ(f1.evidence.at("long_axis_mm"), "radiologist");
  EXPECT_EQ(f1.evidence.count("short_axis_mm"), 0u);  // not edited: the AI's evidence stands
  EXPECT_EQ(f1.evidence.at("review"), "radiologist: accepted");
  const Finding& f3 = r->findings[1];
  EXPECT_EQ(f3.id, 3);
  EXPECT_EQ(f3.type, NoduleType::kPartSolid);
  EXPECT_EQ(f3.solid_component_mm, 0);  // not measured
  EXPECT_EQ(f3.evidence.at("type"), "radiologist");
  EXPECT_EQ(r->lung_rads_study, "4A");
  ASSERT_EQ(r->notes.size(), 4u);
  EXPECT_EQ(
      r->notes[1],
      "Radiologist review: 2 accepted, 1 rejected (nodule 2, left out), 0 not reviewed; edited: nodules 1 "
      "and 3.");
  EXPECT_EQ(r->notes[2],
            "Nodule 1 edited by the radiologist: long axis 8.4 mm (AI 7.0 mm), Lung-RADS 4A (AI 3).");
  EXPECT_EQ(r->notes[3], "Nodule 3 edited by the radiologist: type part-solid (AI ground-glass).");
  // The AI's document is unchanged.
  EXPECT_DOUBLE_EQ(ai.findings[0].long_axis_mm, 7.0);
  EXPECT_EQ(ai.notes.size(), 1u);
}

TEST(Review, BadReviewsAreRefused) {
  const FindingsDocument ai = three_nodules();
  auto expect_bad = [&](FindingReview r, const std::string& what) {
    auto out = apply_review(ai, {r});
    ASSERT_FALSE(out.ok()) << what;
    EXPECT_EQ(out.error().kind(), ErrorKind::kBadInput);
    EXPECT_NE(out.error().message().find(what), std::string::npos) << out.error().message();
  };
  FindingReview r = unreviewed(ai.findings[0]);
  r.id = 9;
  expect_bad(r, "no such nodule");
  r = unreviewed(ai.findings[0]);
  r.long_axis_mm = std::numeric_limits<double>::quiet_NaN();
  expect_bad(r, "finite");
  r = unreviewed(ai.findings[0]);
  r.short_axis_mm = 9;
  expect_bad(r, "short axis longer");
  r = unreviewed(ai.findings[0]);
  r.lung_rads = "0";
  expect_bad(r, "unknown Lung-RADS category '0'");
  auto twice = apply_review(ai, {unreviewed(ai.findings[0]), unreviewed(ai.findings[0])});
  ASSERT_FALSE(twice.ok());
  EXPECT_NE(twice.error().message().find("given twice"), std::string::npos);
}

}  // namespace
}  // namespace hilum
