#include <gtest/gtest.h>

#include <cmath>

#include "fusion/lung_rads.h"

namespace hilum {
namespace {

struct Row {
  NoduleType type;
  double mean_mm;
  double solid_mm;
  const char* expected;
};

// Every boundary of the baseline tables, just below, at and above it.
const Row kTable[] = {
    // solid: < 6 -> 2; 6 to < 8 -> 3; 8 to < 15 -> 4A; >= 15 -> 4B
    {NoduleType::kSolid, 0.0, 0, "2"},
    {NoduleType::kSolid, 5.9, 0, "2"},
    {NoduleType::kSolid, 5.94, 0, "2"},  // rounds to 5.9
    {NoduleType::kSolid, 5.95, 0, "3"},  // rounds to 6.0
    {NoduleType::kSolid, 6.0, 0, "3"},
    {NoduleType::kSolid, 7.9, 0, "3"},
    {NoduleType::kSolid, 8.0, 0, "4A"},
    {NoduleType::kSolid, 14.9, 0, "4A"},
    {NoduleType::kSolid, 15.0, 0, "4B"},
    {NoduleType::kSolid, 42.0, 0, "4B"},
    // part-solid: total < 6 -> 2; >= 6 with solid < 6 -> 3; solid 6 to < 8 -> 4A; solid >= 8 -> 4B
    {NoduleType::kPartSolid, 5.9, 3.0, "2"},
    {NoduleType::kPartSolid, 5.9, 5.9, "2"},
    {NoduleType::kPartSolid, 6.0, 1.0, "3"},
    {NoduleType::kPartSolid, 12.0, 5.9, "3"},
    {NoduleType::kPartSolid, 12.0, 6.0, "4A"},
    {NoduleType::kPartSolid, 12.0, 7.9, "4A"},
    {NoduleType::kPartSolid, 12.0, 8.0, "4B"},
    {NoduleType::kPartSolid, 30.0, 20.0, "4B"},
    // ground-glass: < 30 -> 2; >= 30 -> 3
    {NoduleType::kGroundGlass, 5.0, 0, "2"},
    {NoduleType::kGroundGlass, 29.9, 0, "2"},
    {NoduleType::kGroundGlass, 30.0, 0, "3"},
    {NoduleType::kGroundGlass, 55.0, 0, "3"},
};

TEST(LungRads, BaselineTableAtEveryBoundary) {
  for (const Row& row : kTable) {
    LungRadsInput in;
    in.type = row.type;
    in.mean_diameter_mm = row.mean_mm;
    in.solid_component_mm = row.solid_mm;
    auto r = assess_lung_rads(in);
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(lung_rads_label(r->category), row.expected)
        << nodule_type_name(row.type) << " " << row.mean_mm << " mm, solid " << row.solid_mm << " mm ("
        << r->rule << ")";
    EXPECT_EQ(r->management, lung_rads_management(r->category));
    EXPECT_FALSE(r->rule.empty());
  }
}

TEST(LungRads, ManagementTextPerCategory) {
  EXPECT_NE(lung_rads_management(LungRadsCategory::k2).find("12 months"), std::string_view::npos);
  EXPECT_NE(lung_rads_management(LungRadsCategory::k3).find("6 months"), std::string_view::npos);
  EXPECT_NE(lung_rads_management(LungRadsCategory::k4A).find("3 months"), std::string_view::npos);
  EXPECT_NE(lung_rads_management(LungRadsCategory::k4B).find("Diagnostic chest CT"), std::string_view::npos);
  EXPECT_EQ(lung_rads_management(LungRadsCategory::k4X), lung_rads_management(LungRadsCategory::k4B));
}

TEST(LungRads, AdditionalFeaturesMake3And4Into4X) {
  LungRadsInput in;
  in.mean_diameter_mm = 7.0;
  in.additional_suspicious_features = true;
  EXPECT_EQ(assess_lung_rads(in)->category, LungRadsCategory::k4X);
  in.mean_diameter_mm = 20.0;
  EXPECT_EQ(assess_lung_rads(in)->category, LungRadsCategory::k4X);
  in.mean_diameter_mm = 4.0;  // category 2 stays 2, with a note
  auto r = assess_lung_rads(in);
  EXPECT_EQ(r->category, LungRadsCategory::k2);
  EXPECT_FALSE(r->notes.empty());
}

TEST(LungRads, JuxtapleuralNoteAndConfirmedBenignMorphology) {
  LungRadsInput in;
  in.mean_diameter_mm = 8.5;
  in.juxtapleural = true;
  auto noted = assess_lung_rads(in);
  EXPECT_EQ(noted->category, LungRadsCategory::k4A);
  ASSERT_EQ(noted->notes.size(), 1u);
  EXPECT_NE(noted->notes[0].find("juxtapleural"), std::string::npos);
  in.benign_perifissural_morphology = true;
  EXPECT_EQ(assess_lung_rads(in)->category, LungRadsCategory::k2);
  in.mean_diameter_mm = 10.0;  // the rule stops below 10 mm
  EXPECT_EQ(assess_lung_rads(in)->category, LungRadsCategory::k4A);
  in.mean_diameter_mm = 9.9;
  in.type = NoduleType::kPartSolid;  // only solid nodules
  in.solid_component_mm = 7;
  EXPECT_EQ(assess_lung_rads(in)->category, LungRadsCategory::k4A);
}

TEST(LungRads, RejectsImpossibleSizes) {
  LungRadsInput in;
  in.mean_diameter_mm = -1;
  EXPECT_EQ(assess_lung_rads(in).error().kind(), ErrorKind::kBadInput);
  in.mean_diameter_mm = std::nan("");
  EXPECT_FALSE(assess_lung_rads(in).ok());
  in.type = NoduleType::kPartSolid;
  in.mean_diameter_mm = 6;
  in.solid_component_mm = 9;
  auto r = assess_lung_rads(in);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("solid component"), std::string::npos);
}

TEST(LungRads, LabelsParseBackAndRank) {
  for (auto c : {LungRadsCategory::k1, LungRadsCategory::k2, LungRadsCategory::k3, LungRadsCategory::k4A,
                 LungRadsCategory::k4B, LungRadsCategory::k4X}) {
    EXPECT_EQ(*parse_lung_rads(lung_rads_label(c)), c);
  }
  EXPECT_FALSE(parse_lung_rads("5").ok());
  EXPECT_LT(lung_rads_rank(LungRadsCategory::k4A), lung_rads_rank(LungRadsCategory::k4B));
  EXPECT_DOUBLE_EQ(round_to_tenth(12.25), 12.3);
  EXPECT_DOUBLE_EQ(round_to_tenth(7.94), 7.9);
}

}  // namespace
}  // namespace hilum
