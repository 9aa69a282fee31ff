#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "fusion/findings.h"
#include "model/file_io.h"

namespace hilum {
namespace {

namespace fs = std::filesystem;

class FindingsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("hilum_findings_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  static FindingsDocument sample() {
    FindingsDocument doc;
    doc.series_uid = "1.2.826.0.1.3680043.8.498.1";
    doc.generator = "hilum test";
    doc.clinical_text_used = true;
    doc.device = "cuda";
    doc.notes = {"synthetic"};
    doc.reporting = ReportingRule{0.3, 2.5, 7, 4.0};
    Finding f;
    f.id = 1;
    f.center_mm = {-62.5, 14.25, -120.0};
    f.long_axis_mm = 9.4;
    f.short_axis_mm = 7.2;
    f.mean_diameter_mm = 8.3;
    f.volume_mm3 = 301.5;
    f.type = NoduleType::kPartSolid;
    f.solid_component_mm = 6.1;
    f.probability = 0.93;
    f.malignancy = 0.41;
    LungRadsInput in{NoduleType::kPartSolid, 8.3, 6.1};
    f.lung_rads = *assess_lung_rads(in);
    f.location.side = LungSide::kRight;
    f.location.lobe = "RUL";
    f.location.slice_index = 42;
    f.location.voxel = {101.5, 220.0, 42.0};
    f.evidence = {{"long_axis_mm", "sizing"}, {"probability", "fusion"}};
    doc.findings.push_back(f);
    return doc;
  }

  fs::path dir_;
};

TEST_F(FindingsTest, JsonRoundTripKeepsEveryField) {
  FindingsDocument doc = sample();
  fs::path p = dir_ / "findings.json";
  ASSERT_TRUE(write_findings_json(p, doc).ok());
  auto back = read_findings_json(p);
  ASSERT_TRUE(back.ok()) << back.error().message();
  EXPECT_EQ(back->schema_version, kFindingsSchemaVersion);
  EXPECT_EQ(back->series_uid, doc.series_uid);
  EXPECT_TRUE(back->clinical_text_used);
  EXPECT_EQ(back->device, "cuda");
  EXPECT_EQ(back->lung_rads_study, "4A");
  ASSERT_TRUE(back->reporting.has_value());
  EXPECT_DOUBLE_EQ(back->reporting->min_probability, 0.3);
  EXPECT_DOUBLE_EQ(back->reporting->min_long_axis_mm, 2.5);
  EXPECT_EQ(back->reporting->max_findings, 7);
  EXPECT_DOUBLE_EQ(back->reporting->nms_distance_mm, 4.0);
  ASSERT_EQ(back->findings.size(), 1u);
  const Finding& f = back->findings[0];
  EXPECT_EQ(f.center_mm, doc.findings[0].center_mm);
  EXPECT_DOUBLE_EQ(f.mean_diameter_mm, 8.3);
  EXPECT_DOUBLE_EQ(f.volume_mm3, 301.5);
  EXPECT_EQ(f.type, NoduleType::kPartSolid);
  EXPECT_DOUBLE_EQ(f.solid_component_mm, 6.1);
  EXPECT_EQ(f.lung_rads.category, LungRadsCategory::k4A);
  EXPECT_EQ(f.lung_rads.management, doc.findings[0].lung_rads.management);
  EXPECT_EQ(f.location.side, LungSide::kRight);
  EXPECT_EQ(f.location.lobe, "RUL");
  EXPECT_EQ(f.location.slice_index, 42);
  EXPECT_EQ(f.evidence.at("probability"), "fusion");
  // Writing what was read gives the same bytes.
  EXPECT_EQ(findings_to_json(*back), findings_to_json(doc));
  // A file written before the reporting rule existed reads without one.
  std::string old = findings_to_json(doc);
  const size_t at = old.find("  \"reporting\"");
  ASSERT_NE(at, std::string::npos);
  old.erase(at, old.find("},", at) + 3 - at);
  auto older = findings_from_json(old, "old.json");
  ASSERT_TRUE(older.ok()) << older.error().message() << old;
  EXPECT_FALSE(older->reporting.has_value());
}

TEST_F(FindingsTest, JsonHasTheRequiredKeys) {
  const std::string text = findings_to_json(sample());
  for (const char* key :
       {"\"schema_version\": 1", "\"series_uid\"", "\"findings\"", "\"id\"", "\"center_mm\"",
        "\"long_axis_mm\"", "\"short_axis_mm\"", "\"mean_diameter_mm\"", "\"volume_mm3\"",
        "\"type\": \"part-solid\"", "\"probability\"", "\"malignancy\"", "\"lung_rads\""}) {
    EXPECT_NE(text.find(key), std::string::npos) << key;
  }
}

TEST_F(FindingsTest, MalformedJsonNamesFileAndKey) {
  struct Case {
    std::string text;
    std::string fragment;
  };
  const std::string good = findings_to_json(sample());
  std::string no_volume = good;
  no_volume.replace(no_volume.find("\"volume_mm3\""), 12, "\"volume_xx\"");
  std::string bad_center = good;
  bad_center.replace(bad_center.find("\"center_mm\": ["), 14, "\"center_mm\": \"x\", \"old\": [");
  std::string future = good;
  future.replace(future.find("\"schema_version\": 1"), 19, "\"schema_version\": 99");
  std::string bad_rule = good;
  bad_rule.replace(bad_rule.find("\"min_probability\": 0.3"), 22, "\"min_probability\": \"x\"");
  std::string bad_category = good;
  bad_category.replace(bad_category.find("\"category\": \"4A\""), 16, "\"category\": \"9Z\"");
  const Case cases[] = {
      {"{not json", "not valid JSON"},
      {"[]", "top level"},
      {"{\"series_uid\": \"1\", \"findings\": []}", "schema_version"},
      {future, "schema_version 99"},
      {no_volume, "findings[0] has no \"volume_mm3\""},
      {bad_center, "findings[0].center_mm"},
      {bad_category, "9Z"},
      {bad_rule, "reporting.min_probability is not a number"},
  };
  for (const Case& c : cases) {
    fs::path p = dir_ / "bad.json";
    ASSERT_TRUE(write_file_atomic(p, c.text).ok());
    auto r = read_findings_json(p);
    ASSERT_FALSE(r.ok()) << c.fragment;
    EXPECT_EQ(r.error().kind(), ErrorKind::kBadInput);
    EXPECT_NE(r.error().message().find(p.string()), std::string::npos) << r.error().message();
    EXPECT_NE(r.error().message().find(c.fragment), std::string::npos) << r.error().message();
  }
}

TEST_F(FindingsTest, CandidatesCsvIsLuna16Submission) {
  fs::path p = dir_ / "candidates.csv";
  std::vector<ScoredCandidate> c = {{{-10.5, 20.25, -300.0}, 0.9, 3}, {{1, 2, 3}, 0.125, 2}};
  ASSERT_TRUE(write_candidates_csv(p, "1.2.3", c).ok());
  EXPECT_EQ(*read_file(p),
            "seriesuid,coordX,coordY,coordZ,probability\n"
            "1.2.3,-10.5,20.25,-300,0.9\n"
            "1.2.3,1,2,3,0.125\n");
  EXPECT_FALSE(write_candidates_csv(dir_ / "x.csv", "1,2", c).ok());
  EXPECT_FALSE(fs::exists(dir_ / "x.csv"));
}

TEST(NonMaximumSuppression, KeepsTheBestOfEachCluster) {
  std::vector<ScoredCandidate> c = {
      {{0, 0, 0}, 0.5, 2},   // suppressed by #1 (1 mm away)
      {{1, 0, 0}, 0.9, 2},   // kept
      {{10, 0, 0}, 0.7, 2},  // kept (9 mm from #1)
      {{10, 0, 4}, 0.6, 6},  // suppressed: within its own 6 mm radius of #2
      {{30, 0, 0}, 0.9, 1},  // kept; tie with #1 -> lower index first
  };
  EXPECT_EQ(non_maximum_suppression_3d(c, 3.0), (std::vector<size_t>{1, 4, 2}));
  // A larger minimum distance merges #1 and #2.
  EXPECT_EQ(non_maximum_suppression_3d(c, 12.0), (std::vector<size_t>{1, 4}));
  EXPECT_TRUE(non_maximum_suppression_3d({}, 3.0).empty());
}

TEST(StudyLungRads, MostSuspiciousCategory) {
  std::vector<Finding> f(3);
  f[0].lung_rads.category = LungRadsCategory::k2;
  f[1].lung_rads.category = LungRadsCategory::k4A;
  f[2].lung_rads.category = LungRadsCategory::k3;
  EXPECT_EQ(study_lung_rads(f), "4A");
  EXPECT_EQ(study_lung_rads({}), "1");
}

}  // namespace
}  // namespace hilum
