#include <gtest/gtest.h>

#include <cmath>

#include "app/eval_froc.h"
#include "app/eval_report.h"
#include "app/eval_run.h"
#include "tests/app/eval_test_util.h"

namespace hilum {
namespace {

using ::hilum::testing::fixtures_dir;
using ::hilum::testing::golden_dir;
using ::hilum::testing::read_text;
using ::hilum::testing::TempDir;
using ::hilum::testing::write_text;
namespace fs = std::filesystem;

FrocInput read_fixture(const std::string& name, bool with_excluded) {
  const fs::path d = fixtures_dir() / name;
  FrocInput in;
  auto nodules = read_nodule_csv(d / "annotations.csv");
  auto scans = read_scan_list(d / "seriesuids.csv");
  auto marks = read_candidates_csv(d / "candidates.csv");
  EXPECT_TRUE(nodules.ok() && scans.ok() && marks.ok());
  in.nodules = *nodules;
  in.scans = *scans;
  in.marks = *marks;
  if (with_excluded) in.excluded = *read_nodule_csv(d / "annotations_excluded.csv");
  return in;
}

TEST(EvalFroc, NumpyInterpRules) {
  const std::vector<double> xp = {0, 0, 0.2, 0.2, 0.4, 1.0};
  const std::vector<double> fp = {0, 0.1, 0.1, 0.5, 0.5, 0.8};
  EXPECT_EQ(numpy_interp(-1, xp, fp), 0.0);   // left of the range: first value
  EXPECT_EQ(numpy_interp(0, xp, fp), 0.1);    // repeated x: the last occurrence
  EXPECT_EQ(numpy_interp(0.2, xp, fp), 0.5);  // likewise inside
  EXPECT_DOUBLE_EQ(numpy_interp(0.1, xp, fp), 0.1);
  EXPECT_DOUBLE_EQ(numpy_interp(0.7, xp, fp), 0.65);
  EXPECT_EQ(numpy_interp(1.0, xp, fp), 0.8);
  EXPECT_EQ(numpy_interp(8.0, xp, fp), 0.8);  // right of the range: last value
  EXPECT_EQ(numpy_interp(3.0, {0}, {0.25}), 0.25);
}

TEST(EvalFroc, HitRuleIsStrictlyInsideTheRadius) {
  const NoduleAnnotation n{"s", 0, 0, 0, 10};
  EXPECT_TRUE(mark_hits(n, 4.999, 0, 0));
  EXPECT_FALSE(mark_hits(n, 5, 0, 0));                    // exactly on the radius: not a hit
  EXPECT_TRUE(mark_hits(n, 3, 3, 2));                     // 22 < 25
  EXPECT_FALSE(mark_hits(n, 3, 3, 3));                    // 27 > 25
  const NoduleAnnotation unknown_size{"s", 0, 0, 0, -1};  // negative diameter: 10 mm
  EXPECT_TRUE(mark_hits(unknown_size, 0, 0, 4.9));
  EXPECT_FALSE(mark_hits(unknown_size, 0, 0, 5));
  const NoduleAnnotation point{"s", 0, 0, 0, 0};
  EXPECT_FALSE(mark_hits(point, 0, 0, 0));
}

// tests/fixtures/eval/froc_rules, derived by hand from the LUNA16 rules.
//
// Scans 1..5 are listed; scan 9 is not (its nodule and its 0.99 mark are
// ignored). Nodules (radius = diameter / 2):
//   N1 scan1 (0,0,0) r5 | N2 scan1 (50,0,0) r3 | N3 scan2 (0,0,0) r4
//   N4 scan3 (10,10,10) r2 | N5 scan5 (0,0,0) diameter -1 -> r5 | N6 scan5 (6,0,0) r4
// Excluded: E1 scan1 (100,0,0) r3 | E2 scan4 (0,0,0) diameter -1 -> r5.
// Marks:
//   scan1: (0,0,1) .9 hits N1; (1,1,0) .6 hits N1 too (one detection, max .9,
//          one duplicate); (55,0,0) .8 is 5 mm from N2 (r3): FP; (5,0,0) .7 is
//          exactly on N1's radius (25 < 25 is false): FP; (100,1,0) .95 hits E1:
//          ignored; (50,0,2) .3 hits N2.
//   scan2: (30,30,30) .5 FP; (0,0,3.9) .5 hits N3 (15.21 < 16): a TP and an FP
//          tie at .5.
//   scan3: (-20,0,0) .2 FP; N4 is missed.
//   scan4 (no nodule): (3,0,0) .85 and (0,4.9,0) .1 hit E2: ignored; (40,0,0) .4 FP.
//   scan5: (0,0,4.5) .65 hits N5; (3,0,0) .75 hits N5 and N6 (counts for both).
// So 6 nodules, 5 detected with probabilities .9 .75 .75 .5 .3, and 5 FPs
// .8 .7 .5 .4 .2; duplicates: N1 and N5 have 2 hits each.
// Cumulative (TP, FP) at each distinct probability from the top:
//   .9 (1,0)  .8 (1,1)  .75 (3,1)  .7 (3,2)  .5 (4,3)  .4 (4,4)  .3 (5,4)  .2 (5,5)
// (no point is dropped: no three are evenly spaced in both counts). With (0,0)
// in front, FPs per scan = FP / 5 scans and sensitivity = TP / 6:
//   x: 0  0    .2   .2   .4   .6   .8   .8   1
//   y: 0  1/6  1/6  3/6  3/6  4/6  4/6  5/6  5/6
// At 1/8: between (0, 1/6) and (.2, 1/6) -> 1/6. At 1/4: between (.2, 3/6) and
// (.4, 3/6) -> 1/2. At 1/2: halfway from (.4, 3/6) to (.6, 4/6) -> 7/12. At 1
// and beyond: 5/6. CPM = (1/6 + 1/2 + 7/12 + 4 * 5/6) / 7 = 55/84.
TEST(EvalFroc, RulesFixtureByHand) {
  auto r = evaluate_froc(read_fixture("froc_rules", true), {});
  ASSERT_TRUE(r.ok()) << r.error().message();
  const std::array<double, 7> want = {1.0 / 6, 0.5, 7.0 / 12, 5.0 / 6, 5.0 / 6, 5.0 / 6, 5.0 / 6};
  for (size_t i = 0; i < 7; ++i) EXPECT_NEAR(r->sensitivities[i], want[i], 1e-12) << kFrocRates[i];
  EXPECT_NEAR(r->cpm, 55.0 / 84, 1e-12);
  EXPECT_EQ(r->scans, 5);
  EXPECT_EQ(r->nodules_total, 6);
  EXPECT_EQ(r->nodules_detected, 5);
  EXPECT_EQ(r->false_positives, 5);
  EXPECT_EQ(r->marks_read, 15);
  EXPECT_EQ(r->marks_on_unlisted_scans, 1);
  EXPECT_EQ(r->marks_on_excluded, 3);
  EXPECT_EQ(r->duplicate_hits, 2);
  EXPECT_EQ(r->multi_nodule_marks, 1);
  EXPECT_EQ(r->marks_over_cap, 0);
  const std::vector<double> x = {0, 0, .2, .2, .4, .6, .8, .8, 1};
  ASSERT_EQ(r->curve_fps.size(), x.size());
  for (size_t i = 0; i < x.size(); ++i) EXPECT_NEAR(r->curve_fps[i], x[i], 1e-12);

  // Without the excluded list the three ignored marks become false positives
  // (.95, .85, .1): 8 FPs; the .95 one now leads the ranking.
  auto no_excl = evaluate_froc(read_fixture("froc_rules", false), {});
  ASSERT_TRUE(no_excl.ok());
  EXPECT_EQ(no_excl->false_positives, 8);
  EXPECT_EQ(no_excl->marks_on_excluded, 0);
  EXPECT_LT(no_excl->cpm, r->cpm);
}

// tests/fixtures/eval/froc_cap: scan 1 has 105 marks. Sorted by probability the
// 98 highest are distinct (0.301..0.495), ranks 99-101 tie at 0.3 (one of them
// the only mark on scan 1's nodule) and ranks 102-105 are lower. The 101st
// highest probability is 0.3, and only marks strictly above it stay: 98 kept,
// 7 dropped, the nodule is missed. Scan 2: a hit at 0.6 and an FP at 0.35.
TEST(EvalFroc, HundredMarksPerScanLimit) {
  auto r = evaluate_froc(read_fixture("froc_cap", false), {});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->marks_over_cap, 7);
  EXPECT_EQ(r->nodules_detected, 1);
  EXPECT_EQ(r->false_positives, 99);
  // Scan 1's nodule was marked, but the limit dropped its one mark.
  ASSERT_EQ(r->nodule_outcomes.size(), 2u);
  EXPECT_EQ(r->nodule_outcomes[0].hits, 0);
  EXPECT_EQ(r->nodule_outcomes[0].marks_before_limit, 1);
  EXPECT_EQ(r->nodule_outcomes[1].hits, 1);
  EXPECT_EQ(r->nodule_outcomes[1].marks_before_limit, 1);
  EXPECT_EQ(r->nodules_lost_to_limit, 1);
  EXPECT_EQ(r->nodules_marked(), 2);
  EXPECT_NE(froc_summary(*r).find("1 of 2 nodules hit (2 marked before the per-scan limit), 99 false positives"),
            std::string::npos)
      << froc_summary(*r);
  // The one detected nodule outranks every FP: sensitivity 1/2 at every rate.
  for (double s : r->sensitivities) EXPECT_DOUBLE_EQ(s, 0.5);

  FrocOptions unlimited;
  unlimited.max_marks_per_scan = 0;
  auto all = evaluate_froc(read_fixture("froc_cap", false), unlimited);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->marks_over_cap, 0);
  EXPECT_EQ(all->nodules_detected, 2);
  EXPECT_EQ(all->false_positives, 105);
  EXPECT_EQ(all->nodules_lost_to_limit, 0);
  EXPECT_EQ(all->nodules_marked(), 2);
  EXPECT_NE(froc_summary(*all).find("2 of 2 nodules hit, 105 false positives"), std::string::npos)
      << froc_summary(*all);
  for (const NoduleOutcome& o : all->nodule_outcomes) EXPECT_EQ(o.marks_before_limit, o.hits);
}

TEST(EvalFroc, NoFalsePositivesAndNoDetections) {
  FrocInput in;
  in.scans = {"a", "b"};
  in.nodules = {{"a", 0, 0, 0, 10}, {"b", 0, 0, 0, 10}, {"b", 50, 0, 0, 10}};
  in.marks = {{"a", 1, 0, 0, 0.4}, {"b", 50, 1, 0, 0.9}};
  // Every mark is a hit: the script's "no false positives" branch puts every
  // point at 0 FPs per scan, so every rate reads the final sensitivity 2/3.
  auto r = evaluate_froc(in, {});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->false_positives, 0);
  for (double s : r->sensitivities) EXPECT_DOUBLE_EQ(s, 2.0 / 3);

  // No mark hits anything: sensitivity 0 (the script would divide 0 by 0).
  in.marks = {{"a", 30, 0, 0, 0.4}, {"b", -30, 1, 0, 0.9}};
  r = evaluate_froc(in, {});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->nodules_detected, 0);
  EXPECT_EQ(r->cpm, 0.0);
  // No marks at all.
  in.marks.clear();
  r = evaluate_froc(in, {});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->cpm, 0.0);
}

TEST(EvalFroc, BadInput) {
  FrocInput in;
  in.scans = {"a"};
  in.nodules = {{"b", 0, 0, 0, 10}};
  auto r = evaluate_froc(in, {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind(), ErrorKind::kBadInput);
  EXPECT_NE(r.error().message().find("no nodule"), std::string::npos);
  in.scans = {"a", "a"};
  EXPECT_FALSE(evaluate_froc(in, {}).ok());
  in.scans = {};
  EXPECT_FALSE(evaluate_froc(in, {}).ok());
}

TEST(EvalFroc, BootstrapIsDeterministicAndBracketsTheEstimate) {
  FrocOptions o;
  o.bootstrap_samples = 150;
  o.seed = 3;
  auto a = evaluate_froc(read_fixture("froc_random", true), o);
  auto b = evaluate_froc(read_fixture("froc_random", true), o);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE(a->bootstrap && b->bootstrap);
  EXPECT_EQ(a->bootstrap->cpm_low, b->bootstrap->cpm_low);
  EXPECT_EQ(a->bootstrap->band_mean, b->bootstrap->band_mean);
  EXPECT_EQ(a->bootstrap->used, 150);
  EXPECT_LT(a->bootstrap->cpm_low, a->cpm);
  EXPECT_GT(a->bootstrap->cpm_high, a->cpm);
  for (size_t i = 0; i < 7; ++i) EXPECT_LE(a->bootstrap->low[i], a->bootstrap->high[i]);
  EXPECT_EQ(a->bootstrap->band_fps.front(), 0.125);
  EXPECT_DOUBLE_EQ(a->bootstrap->band_fps.back(), 8.0);
}

// ---- Agreement with the clean-room reference of the LUNA16 script ----------

struct ReferenceCase {
  std::string fixture;
  bool excluded;
  int max_marks;
  int bootstrap;
};

nlohmann::json run_reference(const fs::path& dir, const ReferenceCase& c, std::string& skip) {
  if (!fs::exists("/usr/bin/python3")) {
    skip = "/usr/bin/python3 is missing";
    return {};
  }
  std::vector<std::string> args = {"/usr/bin/python3",
                                   (golden_dir() / "froc_reference.py").string(),
                                   (dir / "annotations.csv").string(),
                                   (dir / "seriesuids.csv").string(),
                                   (dir / "candidates.csv").string(),
                                   "--max-marks",
                                   std::to_string(c.max_marks)};
  if (c.excluded) {
    args.push_back("--excluded");
    args.push_back((dir / "annotations_excluded.csv").string());
  }
  if (c.bootstrap) {
    args.insert(args.end(), {"--bootstrap", std::to_string(c.bootstrap), "--seed", "11"});
  }
  const auto r = hilum::testing::run_command(args);
  if (r.exit_code != 0 && r.err.find("No module named 'numpy'") != std::string::npos) {
    skip = "numpy is missing";
    return {};
  }
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return nlohmann::json::parse(r.out);
}

void expect_same(const nlohmann::json& got, const nlohmann::json& want, const std::string& key) {
  SCOPED_TRACE(key);
  ASSERT_EQ(got.is_array(), want.is_array());
  if (got.is_array()) {
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i)
      EXPECT_NEAR(got[i].get<double>(), want[i].get<double>(), 1e-9) << i;
  } else {
    EXPECT_NEAR(got.get<double>(), want.get<double>(), 1e-9);
  }
}

void compare_with_reference(const fs::path& dir, const ReferenceCase& c) {
  SCOPED_TRACE(dir.string());
  std::string skip;
  const nlohmann::json want = run_reference(dir, c, skip);
  if (!skip.empty()) GTEST_SKIP() << skip;

  TempDir out("froc_ref");
  FrocEvalOptions o;
  o.annotations = dir / "annotations.csv";
  o.seriesuids = dir / "seriesuids.csv";
  o.candidates = dir / "candidates.csv";
  if (c.excluded) o.excluded = dir / "annotations_excluded.csv";
  o.out_dir = out.path();
  o.max_marks_per_scan = c.max_marks;
  o.bootstrap = c.bootstrap;
  o.seed = 11;
  const auto st = run_froc_eval(o);
  ASSERT_TRUE(st.ok()) << st.error().message();
  const auto got = nlohmann::json::parse(read_text(out / "metrics.json"));

  for (const char* k : {"cpm", "sensitivities", "fp_rates"}) expect_same(got[k], want[k], k);
  for (const char* k : {"scans", "nodules_total", "nodules_detected", "false_positives"}) {
    EXPECT_EQ(got[k].get<int>(), want[k].get<int>()) << k;
  }
  EXPECT_EQ(got["marks"], want["marks"]);
  // The whole curve, from froc_curve.csv.
  std::istringstream curve(read_text(out / "froc_curve.csv"));
  std::string line;
  std::getline(curve, line);
  size_t i = 0;
  while (std::getline(curve, line)) {
    const size_t comma = line.find(',');
    ASSERT_LT(i, want["curve_fps"].size());
    EXPECT_NEAR(std::stod(line.substr(0, comma)), want["curve_fps"][i].get<double>(), 1e-9);
    EXPECT_NEAR(std::stod(line.substr(comma + 1)), want["curve_sensitivity"][i].get<double>(), 1e-9);
    ++i;
  }
  EXPECT_EQ(i, want["curve_fps"].size());
  if (c.bootstrap) {
    const auto& gb = got["bootstrap"];
    const auto& wb = want["bootstrap"];
    EXPECT_EQ(gb["used"], wb["used"]);
    for (const char* k :
         {"sensitivity_mean", "sensitivity_low", "sensitivity_high", "cpm_mean", "cpm_low", "cpm_high"}) {
      expect_same(gb[k], wb[k], std::string("bootstrap.") + k);
    }
  } else {
    EXPECT_FALSE(got.contains("bootstrap"));
  }
}

TEST(EvalFrocReference, RulesFixture) {
  compare_with_reference(fixtures_dir() / "froc_rules", {"", true, 100, 0});
}
TEST(EvalFrocReference, RulesFixtureWithoutExcludedList) {
  compare_with_reference(fixtures_dir() / "froc_rules", {"", false, 100, 0});
}
TEST(EvalFrocReference, MarkLimit) {
  compare_with_reference(fixtures_dir() / "froc_cap", {"", false, 100, 0});
  compare_with_reference(fixtures_dir() / "froc_cap", {"", false, 0, 0});
}
TEST(EvalFrocReference, RandomSetWithBootstrap) {
  compare_with_reference(fixtures_dir() / "froc_random", {"", true, 100, 200});
}
TEST(EvalFrocReference, SmallSetsWithBootstrap) {
  // Few scans: some bootstrap samples hold no nodule and are skipped, some have
  // no detection or no false positive.
  TempDir dir("froc_small");
  write_text(dir / "seriesuids.csv", "seriesuid\ns1\ns2\ns3\n");
  write_text(dir / "annotations.csv",
             "seriesuid,coordX,coordY,coordZ,diameter_mm\ns1,0,0,0,10\ns2,0,0,0,6\n");
  write_text(dir / "candidates.csv",
             "seriesuid,coordX,coordY,coordZ,probability\ns1,0,0,1,0.7\ns2,40,0,0,0.7\ns3,0,0,0,0.2\n"
             "s3,9,9,9,0.9\n");
  compare_with_reference(dir.path(), {"", false, 100, 300});
  write_text(dir / "candidates.csv",
             "seriesuid,coordX,coordY,coordZ,probability\ns1,0,0,1,0.7\ns2,0,1,0,0.2\n");
  compare_with_reference(dir.path(), {"", false, 100, 100});
}

}  // namespace
}  // namespace hilum
