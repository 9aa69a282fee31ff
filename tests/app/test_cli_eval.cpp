// `hilum eval` through the real binary: happy paths, and every bad-input path
// exits 2 with a one-line message naming the file and leaves no output behind.
#include <gtest/gtest.h>

#include <cmath>

#include "app/csv.h"
#include "tests/app/eval_test_util.h"

namespace hilum {
namespace {

using ::hilum::testing::CommandResult;
using ::hilum::testing::fixtures_dir;
using ::hilum::testing::list_dir;
using ::hilum::testing::read_text;
using ::hilum::testing::TempDir;
using ::hilum::testing::write_text;
namespace fs = std::filesystem;
using Args = std::vector<std::string>;

CommandResult hilum(Args args) {
  args.insert(args.begin(), HILUM_CLI);
  return hilum::testing::run_command(args);
}

nlohmann::json metrics(const fs::path& dir) { return nlohmann::json::parse(read_text(dir / "metrics.json")); }

std::string fixture(const std::string& name) { return (fixtures_dir() / name).string(); }

// Runs a command that must fail as bad input: exit 2, one stderr line holding
// every `needles` string, and `out` left as it was (absent).
void expect_bad_input(const Args& args, const fs::path& out, const std::vector<std::string>& needles) {
  const CommandResult r = hilum(args);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  for (const auto& n : needles)
    EXPECT_NE(r.err.find(n), std::string::npos) << "stderr: " << r.err << "want: " << n;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_FALSE(fs::exists(out)) << "outputs left behind: " << ::testing::PrintToString(list_dir(out));
}

// ---- roc --------------------------------------------------------------------

TEST(CliEvalRoc, ComparesTwoScoresWithBootstrap) {
  TempDir tmp("cli_roc");
  const fs::path out = tmp / "out";
  const CommandResult r = hilum({"eval", "roc", "--csv", fixture("roc_compare.csv"), "--out", out.string(),
                                 "--compare", "model_a,model_b", "--bootstrap", "300", "--seed", "4"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(list_dir(out), (std::vector<std::string>{"metrics.json", "roc.png", "roc.svg"}));
  EXPECT_NE(r.out.find("AUC 0.805 (95% CI 0.712-0.898; bootstrap "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("model_b AUC 0.711, DeLong z = 1.955, p = 0.05053"), std::string::npos) << r.out;
  const auto m = metrics(out);
  EXPECT_EQ(m["kind"], "roc");
  EXPECT_EQ(m["n_positive"], 35);
  EXPECT_EQ(m["n_negative"], 55);
  EXPECT_EQ(m["score_column"], "model_a");
  for (const char* k : {"auc", "ci_low", "ci_high", "bootstrap_ci_low", "bootstrap_ci_high"}) {
    ASSERT_TRUE(m.contains(k)) << k;
  }
  EXPECT_LT(m["ci_low"].get<double>(), m["auc"].get<double>());
  EXPECT_LT(m["bootstrap_ci_low"].get<double>(), m["auc"].get<double>());
  EXPECT_GT(m["bootstrap_ci_high"].get<double>(), m["auc"].get<double>());
  EXPECT_EQ(m["bootstrap"]["seed"], 4);
  for (const char* k : {"threshold", "sensitivity", "specificity"}) EXPECT_TRUE(m["youden"].contains(k)) << k;
  for (const char* k : {"auc_a", "auc_b", "z", "p_value"}) EXPECT_TRUE(m["compare"].contains(k)) << k;
  EXPECT_EQ(m["compare"]["auc_a"], m["auc"]);
  EXPECT_EQ(read_text(out / "roc.png").substr(1, 3), "PNG");
  EXPECT_NE(read_text(out / "roc.svg").find("model_b: AUC"), std::string::npos);

  // Same seed, same interval; the run overwrites the previous outputs.
  ASSERT_EQ(hilum({"eval", "roc", "--csv", fixture("roc_compare.csv"), "--out", out.string(), "--compare",
                   "model_a,model_b", "--bootstrap", "300", "--seed", "4"})
                .exit_code,
            0);
  EXPECT_EQ(metrics(out)["bootstrap_ci_low"], m["bootstrap_ci_low"]);
}

TEST(CliEvalRoc, MessyCsvGivesTheSameNumbersAsTheCleanOne) {
  TempDir tmp("cli_roc_messy");
  ASSERT_EQ(hilum({"eval", "roc", "--csv", fixture("roc_compare.csv"), "--out", (tmp / "a").string(),
                   "--score-col", "model_b"})
                .exit_code,
            0);
  const CommandResult r = hilum({"eval", "roc", "--csv", fixture("roc_compare_messy.csv"), "--out",
                                 (tmp / "b").string(), "--score-col", "model_b"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto a = metrics(tmp / "a"), b = metrics(tmp / "b");
  for (const char* k : {"auc", "ci_low", "ci_high", "n_positive", "n_negative", "youden"})
    EXPECT_EQ(a[k], b[k]) << k;
}

TEST(CliEvalRoc, DefaultColumnsAndYoudenAtMinusInfinityIsNull) {
  TempDir tmp("cli_roc_inv");
  const CommandResult r =
      hilum({"eval", "roc", "--csv", fixture("roc_inverse.csv"), "--out", (tmp / "o").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto m = metrics(tmp / "o");
  EXPECT_NEAR(m["auc"].get<double>(), 0.12, 1e-12);
  EXPECT_TRUE(m["youden"]["threshold"].is_null());
  EXPECT_EQ(m["youden"]["sensitivity"], 1.0);
  EXPECT_FALSE(m.contains("compare"));
  EXPECT_FALSE(m.contains("bootstrap_ci_low"));
}

TEST(CliEvalRoc, BadInputs) {
  TempDir tmp("cli_roc_bad");
  const fs::path out = tmp / "out";
  const std::string o = out.string();
  auto csv = [&](const std::string& name, const std::string& text) {
    write_text(tmp / name, text);
    return (tmp / name).string();
  };
  expect_bad_input({"eval", "roc", "--csv", (tmp / "none.csv").string(), "--out", o}, out,
                   {"none.csv", "cannot open"});
  expect_bad_input({"eval", "roc", "--csv", csv("e.csv", ""), "--out", o}, out, {"e.csv", "empty file"});
  expect_bad_input({"eval", "roc", "--csv", csv("h.csv", "label,score\n"), "--out", o}, out,
                   {"h.csv", "0 positive and 0 negative rows", "at least 2"});
  expect_bad_input({"eval", "roc", "--csv", csv("nl.csv", "truth,score\n1,0.5\n"), "--out", o}, out,
                   {"nl.csv", "missing column 'label'", "columns: truth, score"});
  expect_bad_input({"eval", "roc", "--csv", fixture("roc_tiny.csv"), "--out", o, "--score-col", "prob"}, out,
                   {"roc_tiny.csv", "missing column 'prob'"});
  expect_bad_input(
      {"eval", "roc", "--csv", csv("nn.csv", "label,score\n0,0.1\n1,0.9\n0,high\n1,0.7\n"), "--out", o}, out,
      {"nn.csv:4: column 'score': 'high' is not a number"});
  expect_bad_input(
      {"eval", "roc", "--csv", csv("l2.csv", "label,score\n0,0.1\n2,0.9\n0,0.2\n1,0.7\n"), "--out", o}, out,
      {"l2.csv:3: column 'label': label '2' is not 0 or 1"});
  expect_bad_input(
      {"eval", "roc", "--csv", csv("one.csv", "label,score\n0,0.1\n1,0.9\n0,0.2\n0,0.7\n"), "--out", o}, out,
      {"one.csv", "1 positive and 3 negative rows"});
  expect_bad_input({"eval", "roc", "--csv", csv("q.csv", "label,score\n0,\"0.1\n1,0.9\n"), "--out", o}, out,
                   {"q.csv:2: quoted field is never closed"});
  expect_bad_input({"eval", "roc", "--csv", csv("w.csv", "label,score\n0,0.1,7\n"), "--out", o}, out,
                   {"w.csv:2: 3 fields, but the header has 2"});
  expect_bad_input({"eval", "roc", "--csv", fixture("roc_compare.csv"), "--out", o, "--compare", "model_a"},
                   out, {"--compare takes two score columns"});
  expect_bad_input(
      {"eval", "roc", "--csv", fixture("roc_compare.csv"), "--out", o, "--compare", "model_a,model_a"}, out,
      {"two different score columns"});
  expect_bad_input(
      {"eval", "roc", "--csv", fixture("roc_compare.csv"), "--out", o, "--compare", "model_a,model_c"}, out,
      {"missing column 'model_c'"});
  // Second score column with a bad value deep in the file.
  expect_bad_input({"eval", "roc", "--csv", csv("cb.csv", "label,a,b\n0,1,1\n1,2,2\n0,1,1\n1,3,x\n"), "--out",
                    o, "--compare", "a,b"},
                   out, {"cb.csv:5: column 'b': 'x' is not a number"});
  // Command-line mistakes are bad input too.
  EXPECT_EQ(hilum({"eval", "roc", "--out", o}).exit_code, 2);
  EXPECT_EQ(hilum({"eval", "roc", "--csv", fixture("roc_compare.csv"), "--out", o, "--compare",
                   "model_a,model_b", "--score-col", "model_a"})
                .exit_code,
            2);
  EXPECT_EQ(
      hilum({"eval", "roc", "--csv", fixture("roc_tiny.csv"), "--out", o, "--bootstrap", "-3"}).exit_code, 2);
  EXPECT_EQ(hilum({"eval"}).exit_code, 2);
  EXPECT_FALSE(fs::exists(out));
}

TEST(CliEvalRoc, ErrorsLeaveAnExistingOutputDirectoryAlone) {
  TempDir tmp("cli_roc_keep");
  write_text(tmp / "out" / "notes.txt", "mine");
  write_text(tmp / "bad.csv", "label,score\n0,1\n1,oops\n");
  const CommandResult r =
      hilum({"eval", "roc", "--csv", (tmp / "bad.csv").string(), "--out", (tmp / "out").string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(list_dir(tmp / "out"), (std::vector<std::string>{"notes.txt"}));
  // An output path that is a file.
  write_text(tmp / "file", "x");
  const CommandResult f =
      hilum({"eval", "roc", "--csv", fixture("roc_tiny.csv"), "--out", (tmp / "file").string()});
  EXPECT_EQ(f.exit_code, 2);
  EXPECT_NE(f.err.find("not a directory"), std::string::npos) << f.err;
  EXPECT_EQ(read_text(tmp / "file"), "x");
}

// ---- froc -------------------------------------------------------------------

Args froc_args(const std::string& dir, const fs::path& out) {
  const fs::path d = fixtures_dir() / dir;
  return {"eval",          "froc",
          "--annotations", (d / "annotations.csv").string(),
          "--seriesuids",  (d / "seriesuids.csv").string(),
          "--candidates",  (d / "candidates.csv").string(),
          "--out",         out.string()};
}

// `hilum eval froc` on the LUNA16-style random fixture, its excluded findings
// given, with `extra` options.
CommandResult froc_random(const fs::path& out, const Args& extra) {
  Args args = froc_args("froc_random", out);
  args.insert(args.end(), {"--excluded", fixture("froc_random/annotations_excluded.csv")});
  args.insert(args.end(), extra.begin(), extra.end());
  return hilum(args);
}

TEST(CliEvalFroc, RulesFixture) {
  TempDir tmp("cli_froc");
  Args args = froc_args("froc_rules", tmp / "out");
  args.insert(args.end(), {"--excluded", fixture("froc_rules/annotations_excluded.csv")});
  const CommandResult r = hilum(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // One warning: the candidate on the unlisted scan.
  EXPECT_NE(r.err.find("1 candidates lie on scans not in"), std::string::npos) << r.err;
  EXPECT_EQ(list_dir(tmp / "out"),
            (std::vector<std::string>{"froc.png", "froc.svg", "froc_curve.csv", "froc_nodules.csv", "metrics.json"}));
  const auto m = metrics(tmp / "out");
  EXPECT_NEAR(m["cpm"].get<double>(), 55.0 / 84, 1e-12);  // derived in test_eval_froc.cpp
  EXPECT_NE(r.out.find("CPM 0.655; sensitivity at 1/8..8 FPs per scan: 0.167 0.500 0.583 0.833"), std::string::npos)
      << r.out;
  EXPECT_EQ(m["fp_rates"], nlohmann::json({0.125, 0.25, 0.5, 1, 2, 4, 8}));
  EXPECT_EQ(m["sensitivities"].size(), 7u);
  EXPECT_EQ(m["nodules_total"], 6);
  EXPECT_EQ(m["nodules_detected"], 5);
  EXPECT_EQ(m["false_positives"], 5);
  EXPECT_EQ(m["max_marks_per_scan"], 100);
  EXPECT_FALSE(m.contains("bootstrap"));
}

TEST(CliEvalFroc, Bootstrap) {
  TempDir tmp("cli_froc_bs");
  const CommandResult r = froc_random(tmp / "out", {"--bootstrap", "100", "--seed", "9"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto m = metrics(tmp / "out");
  ASSERT_TRUE(m.contains("bootstrap"));
  EXPECT_EQ(m["bootstrap"]["samples"], 100);
  EXPECT_EQ(m["bootstrap"]["sensitivity_low"].size(), 7u);
  EXPECT_LE(m["bootstrap"]["cpm_low"].get<double>(), m["cpm"].get<double>());
  EXPECT_NE(read_text(tmp / "out" / "froc.svg").find("95% CI"), std::string::npos);

  // froc_nodules.csv: a nodule whose operating point (fps_per_scan) is at or
  // below a rate counts as found there. The FROC may credit more: a false
  // positive tied with a nodule's probability makes a diagonal step, which the
  // curve interpolates and the operating point counts in full.
  auto table = read_csv(tmp / "out" / "froc_nodules.csv");
  ASSERT_TRUE(table.ok()) << table.error().message();
  ASSERT_EQ(table->header().size(), 11u);
  const size_t listed = *table->column("on_listed_scan"), hits = *table->column("hits"),
               fps = *table->column("fps_per_scan"), before = *table->column("marks_before_limit");
  std::vector<double> points;  // the found nodules' operating points
  size_t on_scans = 0, lost_to_limit = 0, marked = 0;
  for (size_t i = 0; i < table->size(); ++i) {
    ASSERT_EQ(table->rows()[i].fields.size(), 11u) << "row " << i;
    if (table->text(i, listed) == "1") ++on_scans;
    // The marks before the per-scan limit include the kept ones.
    EXPECT_GE(*table->number(i, before), *table->number(i, hits)) << "row " << i;
    lost_to_limit += table->text(i, hits) == "0" && table->text(i, before) != "0";
    marked += table->text(i, before) != "0";
    if (!table->text(i, fps).empty()) points.push_back(*table->number(i, fps));
  }
  EXPECT_EQ(on_scans, m["nodules_total"].get<size_t>());
  EXPECT_EQ(points.size(), m["nodules_detected"].get<size_t>());
  EXPECT_EQ(lost_to_limit, m["nodules_lost_to_limit"].get<size_t>());
  EXPECT_EQ(marked, m["nodules_marked"].get<size_t>());
  EXPECT_EQ(marked, m["nodules_detected"].get<size_t>() + lost_to_limit);
  const std::array<double, 7> rates = {0.125, 0.25, 0.5, 1, 2, 4, 8};
  for (size_t i = 0; i < 7; ++i) {
    const auto found = std::count_if(points.begin(), points.end(), [&](double p) { return p <= rates[i]; });
    EXPECT_LE(static_cast<double>(found) / static_cast<double>(on_scans), m["sensitivities"][i].get<double>() + 1e-12)
        << rates[i];
    EXPECT_GT(found, 0) << rates[i];
  }
}

// Size bins of the LUNA16-style random fixture: each bin's FROC is read at the
// whole run's false positives, so the bins' sensitivities, weighted by their
// nodules, give back the run's at every rate; one bin holding every nodule is
// the run itself; an empty bin is listed without a FROC.
TEST(CliEvalFroc, SubgroupsBySize) {
  TempDir tmp("cli_froc_by");
  const CommandResult r = froc_random(tmp / "out", {"--by", "diameter_mm:8,15", "--by", "diameter_mm:1000"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("by diameter_mm:8,15 [8,15): "), std::string::npos) << r.out;
  EXPECT_EQ(list_dir(tmp / "out"), (std::vector<std::string>{"by_group.csv", "froc.png", "froc.svg", "froc_curve.csv",
                                                              "froc_nodules.csv", "metrics.json"}));
  const auto m = metrics(tmp / "out");
  const auto& bins = m["by"]["diameter_mm:8,15"];
  ASSERT_EQ(bins.size(), 3u);
  int nodules = 0, detected = 0;
  for (const auto& b : bins) {
    EXPECT_GT(b["nodules"].get<int>(), 0) << b["group"];
    nodules += b["nodules"].get<int>();
    detected += b["nodules_detected"].get<int>();
  }
  EXPECT_EQ(nodules, m["nodules_total"].get<int>());
  EXPECT_EQ(detected, m["nodules_detected"].get<int>());
  for (size_t i = 0; i < 7; ++i) {
    double sum = 0;
    for (const auto& b : bins) sum += b["nodules"].get<double>() * b["sensitivities"][i].get<double>();
    EXPECT_NEAR(sum / nodules, m["sensitivities"][i].get<double>(), 1e-12) << i;
  }
  const auto& all = m["by"]["diameter_mm:1000"];
  EXPECT_NEAR(all[0]["cpm"].get<double>(), m["cpm"].get<double>(), 1e-12);
  EXPECT_EQ(all[1]["nodules"], 0);
  EXPECT_TRUE(all[1]["cpm"].is_null());
  const std::string csv = read_text(tmp / "out" / "by_group.csv");
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 6);  // the header and five groups
  EXPECT_EQ(csv.substr(0, csv.find('\n')),
            "by,group,nodules,nodules_detected,sensitivity_at_0.125,sensitivity_at_0.25,sensitivity_at_0.5,"
            "sensitivity_at_1,sensitivity_at_2,sensitivity_at_4,sensitivity_at_8,cpm");

  // A column the annotations lack: refused before anything is written.
  Args bad = froc_args("froc_random", tmp / "bad");
  bad.insert(bad.end(), {"--by", "type"});
  expect_bad_input(bad, tmp / "bad", {"annotations.csv", "missing column 'type'"});
  // A column of (nearly) unique values would make a group per nodule.
  Args many = froc_args("froc_random", tmp / "bad");
  many.insert(many.end(), {"--by", "coordX"});
  expect_bad_input(many, tmp / "bad", {"annotations.csv: column 'coordX' has 59 distinct values", "bin it"});
}

TEST(CliEvalFroc, BadInputs) {
  TempDir tmp("cli_froc_bad");
  const fs::path out = tmp / "out";
  const fs::path d = fixtures_dir() / "froc_rules";
  auto with = [&](const std::string& flag, const std::string& name, const std::string& text) {
    write_text(tmp / name, text);
    Args a = froc_args("froc_rules", out);
    for (size_t i = 0; i + 1 < a.size(); ++i) {
      if (a[i] == flag) a[i + 1] = (tmp / name).string();
    }
    return a;
  };
  expect_bad_input(with("--candidates", "c.csv", "seriesuid,coordX,coordY,coordZ\n1.2.826.0.1.1,0,0,0\n"),
                   out, {"c.csv", "missing column 'probability'"});
  expect_bad_input(
      with("--candidates", "c2.csv", "seriesuid,coordX,coordY,coordZ,probability\n1.2.826.0.1.1,0,0,0,nan\n"),
      out, {"c2.csv:2: column 'probability': 'nan' is not a number"});
  expect_bad_input(with("--annotations", "a.csv",
                        "seriesuid,coordX,coordY,coordZ,diameter_mm\n1.2.826.0.1.1,0,zero,0,5\n"),
                   out, {"a.csv:2: column 'coordY': 'zero' is not a number"});
  expect_bad_input(
      with("--annotations", "a2.csv", "seriesuid,coordX,coordY,coordZ,diameter_mm\nother,0,0,0,5\n"), out,
      {"a2.csv", "no nodule"});
  expect_bad_input(with("--seriesuids", "s.csv", "\n\n"), out, {"s.csv", "no series UIDs"});
  expect_bad_input(with("--seriesuids", "s2.csv", "1.2.826.0.1.1\n1.2.826.0.1.2\n1.2.826.0.1.1\n"), out,
                   {"s2.csv:3", "listed twice"});
  Args excl = froc_args("froc_rules", out);
  write_text(tmp / "x.csv", "seriesuid,coordX,coordY,coordZ\n1.2.826.0.1.1,0,0,0\n");
  excl.insert(excl.end(), {"--excluded", (tmp / "x.csv").string()});
  expect_bad_input(excl, out, {"x.csv", "missing column 'diameter_mm'"});
  EXPECT_EQ(hilum({"eval", "froc", "--annotations", (d / "annotations.csv").string(), "--out", out.string()})
                .exit_code,
            2);
  EXPECT_FALSE(fs::exists(out));
}

// ---- batch --------------------------------------------------------------------

// A batch directory whose numbers are derived by hand (see the test below).
struct BatchFixture {
  TempDir tmp{"cli_batch"};
  fs::path batch = tmp / "batch";
  fs::path truth = tmp / "truth.csv";

  BatchFixture() {
    auto study = [&](const std::string& folder, const std::string& uid, const std::string& findings) {
      write_text(batch / folder / "findings.json", "{\"schema_version\": 1, \"series_uid\": \"" + uid +
                                                       "\", \"findings\": [" + findings + "]}");
    };
    auto f = [](double x, double y, double z, double p, double m) {
      char buf[200];
      std::snprintf(buf, sizeof buf,
                    "{\"id\": 1, \"center_mm\": [%g, %g, %g], \"probability\": %g, \"malignancy\": %g, "
                    "\"lung_rads\": \"4A\"}",
                    x, y, z, p, m);
      return std::string(buf);
    };
    study("study_a", "1.2.3.1",
          f(10, 11, 10, 0.9, 0.8) + "," + f(10, 10, 12, 0.5, 0.3) + "," + f(-40, 1, 0, 0.7, 0.35) + "," +
              f(100, 100, 100, 0.6, 0.9));
    study("study_b", "1.2.3.2", f(0, 0, 1, 0.8, 0.6));
    study("study_c", "1.2.3.3", f(20, 20, 21, 0.4, 0.4));
    study("study_d", "1.2.3.4", f(30, 0, 0, 0.3, 0.7));
    fs::create_directories(batch / "logs");  // no findings.json: not a study
    write_text(truth,
               "seriesuid,coordX,coordY,coordZ,diameter_mm,malignant\n"
               "1.2.3.1,10,10,10,8,1\n"
               "1.2.3.1,-40,0,0,6,0\n"
               "1.2.3.2,0,0,0,10,1\n"
               "1.2.3.3,20,20,20,5,0\n"
               "1.2.3.4,0,0,0,12,0\n"
               "1.2.3.9,0,0,0,8,1\n"
               "1.2.3.2,50,0,0,20,1\n");
  }
};

// Truth nodules T1..T7 in file order. Hits (distance < radius):
//   T1 <- (10,11,10) p.9 m.8 and (10,10,12) p.5 m.3: the p.9 finding scores it: .8
//   T2 <- (-40,1,0) p.7: .35        T3 <- (0,0,1) p.8: .6     T4 <- (20,20,21) p.4: .4
//   T5, T7: no finding (score 0 with --unmatched zero)      T6: series not in the batch
// Malignant {.8, .6, 0} vs benign {.35, .4, 0}: 8 wins and one tie (0 vs 0) of 9
// pairs -> AUC 6.5/9. With --unmatched exclude: {.8, .6} vs {.35, .4} -> 1.
// Detection (marks = findings): 4 scans, 6 nodules (T1-T5, T7), detected with
// .9 .8 .7 .4, FPs .6 (study a) and .3 (study d). Cumulative (TP, FP): .9 (1,0)
// .8 (2,0) .7 (3,0) .6 (3,1) .4 (4,1) .3 (4,2); (2,0) is dropped (evenly spaced).
// x = FP/4: 0 0 0 .25 .25 .5; y = TP/6: 0 1/6 1/2 1/2 2/3 2/3. At 1/8 -> 1/2,
// at 1/4 (repeated x: the last point) and above -> 2/3. CPM = (1/2 + 6 * 2/3) / 7 = 9/14.
TEST(CliEvalBatch, DetectionAndMalignancyByHand) {
  BatchFixture fx;
  const fs::path out = fx.tmp / "out";
  const CommandResult r = hilum(
      {"eval", "batch", "--batch", fx.batch.string(), "--truth", fx.truth.string(), "--out", out.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("1 nodules of"), std::string::npos) << r.err;  // T6
  EXPECT_EQ(list_dir(out), (std::vector<std::string>{"froc.png", "froc.svg", "froc_nodules.csv",
                                                     "malignancy_scores.csv", "metrics.json", "roc.png",
                                                     "roc.svg"}));
  // Per nodule: T1 is hit twice, best .9, with no false positive at or above it;
  // T4 (.4) has one (.6) on 4 scans; T5 no mark; T6 lies on no scan of the batch.
  const std::string nodules = read_text(out / "froc_nodules.csv");
  EXPECT_EQ(nodules.substr(0, nodules.find('\n')),
            "row,seriesuid,coordX,coordY,coordZ,diameter_mm,on_listed_scan,hits,probability,fps_per_scan,"
            "marks_before_limit");
  for (const char* row : {"\n1,1.2.3.1,10,10,10,8,1,2,0.90000000000000002,0,2\n",
                          "\n4,1.2.3.3,20,20,20,5,1,1,0.40000000000000002,0.25,1\n", "\n5,1.2.3.4,0,0,0,12,1,0,,,0\n",
                          "\n6,1.2.3.9,0,0,0,8,0,0,,,0\n"}) {
    EXPECT_NE(nodules.find(row), std::string::npos) << row << nodules;
  }
  const auto m = metrics(out);
  EXPECT_EQ(m["kind"], "batch");
  EXPECT_EQ(m["batch"]["studies"], 4);
  EXPECT_EQ(m["batch"]["marks_source"], "findings.json");
  EXPECT_EQ(m["batch"]["truth_nodules_on_missing_scans"], 1);
  const auto& d = m["detection"];
  EXPECT_NEAR(d["cpm"].get<double>(), 9.0 / 14, 1e-12);
  EXPECT_NEAR(d["sensitivities"][0].get<double>(), 0.5, 1e-12);
  EXPECT_NEAR(d["sensitivities"][1].get<double>(), 2.0 / 3, 1e-12);
  EXPECT_EQ(d["nodules_total"], 6);
  EXPECT_EQ(d["nodules_detected"], 4);
  EXPECT_EQ(d["false_positives"], 2);
  const auto& mal = m["malignancy"];
  EXPECT_NEAR(mal["auc"].get<double>(), 6.5 / 9, 1e-12);
  EXPECT_EQ(mal["n_positive"], 3);
  EXPECT_EQ(mal["n_negative"], 3);
  EXPECT_EQ(mal["nodules_matched"], 4);
  EXPECT_EQ(mal["nodules_unmatched"], 2);
  EXPECT_EQ(mal["unmatched_nodules"], "score_zero");

  // The per-nodule table reproduces the malignancy ROC through `eval roc`.
  const CommandResult again =
      hilum({"eval", "roc", "--csv", (out / "malignancy_scores.csv").string(), "--label-col", "malignant",
             "--score-col", "malignancy", "--out", (fx.tmp / "roc").string()});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  const auto roc = metrics(fx.tmp / "roc");
  for (const char* k : {"auc", "ci_low", "ci_high", "youden"}) EXPECT_EQ(roc[k], mal[k]) << k;

  // Unmatched nodules left out.
  const CommandResult ex = hilum({"eval", "batch", "--batch", fx.batch.string(), "--truth", fx.truth.string(),
                                  "--out", (fx.tmp / "ex").string(), "--unmatched", "exclude"});
  ASSERT_EQ(ex.exit_code, 0) << ex.err;
  EXPECT_EQ(metrics(fx.tmp / "ex")["malignancy"]["auc"], 1.0);
}

// The findings list as a reader sees it, and --min-probability. By hand on the
// fixture: 7 findings on 4 scans; false: (100,100,100) p.6 and (30,0,0) p.3 (30 mm
// from T5, radius 6); T1 (twice), T2, T3 and T4 are hit. On the scans: 6 nodules
// (T1-T5, T7), 3 malignant (T1, T3, T7), of which T1 and T3 are hit.
// At >= 0.45 the p.4 and p.3 findings go: 5 findings, 1 false, T4 unmatched, so
// malignant {.8, .6, 0} vs benign {.35, 0, 0}: 6 wins, 2 ties, 1 loss -> AUC 7/9.
TEST(CliEvalBatch, FindingsOperatingPointAndMinProbability) {
  BatchFixture fx;
  const Args base = {"eval", "batch", "--batch", fx.batch.string(), "--truth", fx.truth.string(), "--out"};
  auto with = [&](const std::string& out, const Args& extra) {
    Args a = base;
    a.push_back((fx.tmp / out).string());
    a.insert(a.end(), extra.begin(), extra.end());
    return hilum(a);
  };
  const CommandResult all = with("all", {});
  ASSERT_EQ(all.exit_code, 0) << all.err;
  EXPECT_NE(all.out.find("findings: 1.75 per scan, 0.50 false per scan; they hit 4 of 6 nodules and 2 of 3 "
                         "malignant ones"),
            std::string::npos)
      << all.out;
  const auto f = metrics(fx.tmp / "all")["findings"];
  EXPECT_TRUE(f["min_probability"].is_null());
  EXPECT_EQ(f["findings"], 7);
  EXPECT_EQ(f["false_findings"], 2);
  EXPECT_DOUBLE_EQ(f["per_scan"].get<double>(), 1.75);
  EXPECT_DOUBLE_EQ(f["false_per_scan"].get<double>(), 0.5);
  EXPECT_EQ(f["on_excluded"], 0);
  EXPECT_EQ(f["nodules"], 6);
  EXPECT_EQ(f["nodules_hit"], 4);
  EXPECT_EQ(f["malignant"], 3);
  EXPECT_EQ(f["malignant_hit"], 2);

  const CommandResult cut = with("cut", {"--min-probability", "0.45"});
  ASSERT_EQ(cut.exit_code, 0) << cut.err;
  EXPECT_NE(
      cut.out.find("findings at probability >= 0.45: 1.25 per scan, 0.25 false per scan; they hit 3 of 6"),
      std::string::npos)
      << cut.out;
  const auto m = metrics(fx.tmp / "cut");
  EXPECT_EQ(m["findings"]["min_probability"], 0.45);
  EXPECT_EQ(m["findings"]["findings"], 5);
  EXPECT_EQ(m["findings"]["false_findings"], 1);
  EXPECT_EQ(m["findings"]["malignant_hit"], 2);
  EXPECT_NEAR(m["malignancy"]["auc"].get<double>(), 7.0 / 9, 1e-12);
  EXPECT_EQ(m["malignancy"]["nodules_matched"], 3);
  // A threshold at or below every finding's changes nothing.
  const CommandResult low = with("low", {"--min-probability", "0.3"});
  ASSERT_EQ(low.exit_code, 0) << low.err;
  EXPECT_EQ(metrics(fx.tmp / "low")["findings"]["findings"], 7);
  EXPECT_EQ(metrics(fx.tmp / "low")["malignancy"], metrics(fx.tmp / "all")["malignancy"]);

  EXPECT_TRUE(f["written_at_min_probability"].is_null());  // the fixture's files do not say
  // A file that says which threshold it was written at: a lower --min-probability
  // is read as the run is, with a warning.
  {
    const fs::path fb = fx.batch / "study_b" / "findings.json";
    std::string text = read_text(fb);
    text.replace(text.find("\"findings\""), 10, "\"reporting\": {\"min_probability\": 0.5}, \"findings\"");
    write_text(fb, text);
    const CommandResult w = with("w", {"--min-probability", "0.3"});
    ASSERT_EQ(w.exit_code, 0) << w.err;
    EXPECT_NE(w.err.find("--min-probability 0.3 is below the 0.5 the run wrote its findings at"),
              std::string::npos)
        << w.err;
    EXPECT_EQ(metrics(fx.tmp / "w")["findings"]["written_at_min_probability"], 0.5);
    const CommandResult quiet = with("q", {"--min-probability", "0.6"});
    ASSERT_EQ(quiet.exit_code, 0) << quiet.err;
    EXPECT_EQ(quiet.err.find("is below"), std::string::npos) << quiet.err;
  }

  // A finding on an excluded annotation is neither a hit nor false.
  write_text(fx.tmp / "excluded.csv", "seriesuid,coordX,coordY,coordZ,diameter_mm\n1.2.3.1,100,100,100,4\n");
  const CommandResult ex = with("ex", {"--excluded", (fx.tmp / "excluded.csv").string()});
  ASSERT_EQ(ex.exit_code, 0) << ex.err;
  EXPECT_EQ(metrics(fx.tmp / "ex")["findings"]["false_findings"], 1);
  EXPECT_EQ(metrics(fx.tmp / "ex")["findings"]["on_excluded"], 1);

  for (const char* bad : {"1.5", "-0.1", "nan"}) {
    Args a = base;
    a.push_back((fx.tmp / "bad").string());
    a.insert(a.end(), {"--min-probability", bad});
    const CommandResult r = hilum(a);
    EXPECT_EQ(r.exit_code, 2) << bad;
    EXPECT_NE(r.err.find("--min-probability"), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(fx.tmp / "bad")) << bad;
  }
}

// With the run's combined candidates.csv the detection uses it instead of the
// findings: an extra FP at .95 on study c leads the ranking (and a mark on an
// unknown series is ignored). Cumulative (TP, FP): .95 (0,1) .9 (1,1) .8 (2,1)
// .7 (3,1) .6 (3,2) .4 (4,2) .3 (4,3); (1,1) and (2,1) are dropped. x = FP/4:
// 0 .25 .25 .5 .5 .75, y = TP/6: 0 0 1/2 1/2 2/3 2/3. At 1/8 -> 0, at 1/4 -> 1/2,
// at 1/2 and above -> 2/3. CPM = (0 + 1/2 + 5 * 2/3) / 7 = 23/42.
TEST(CliEvalBatch, CombinedCandidatesCsvIsPreferred) {
  BatchFixture fx;
  write_text(fx.batch / "candidates.csv",
             "seriesuid,coordX,coordY,coordZ,probability\n"
             "1.2.3.1,10,11,10,0.9\n1.2.3.1,10,10,12,0.5\n1.2.3.1,-40,1,0,0.7\n1.2.3.1,100,100,100,0.6\n"
             "1.2.3.2,0,0,1,0.8\n1.2.3.3,20,20,21,0.4\n1.2.3.4,30,0,0,0.3\n"
             "1.2.3.3,-50,-50,-50,0.95\n7.7.7,0,0,0,0.5\n");
  const fs::path out = fx.tmp / "out";
  const CommandResult r = hilum({"eval", "batch", "--batch", fx.batch.string(), "--truth", fx.truth.string(),
                                 "--out", out.string(), "--bootstrap", "50", "--seed", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto m = metrics(out);
  EXPECT_EQ(m["batch"]["marks_source"], "candidates.csv");
  EXPECT_NEAR(m["detection"]["cpm"].get<double>(), 23.0 / 42, 1e-12);
  EXPECT_EQ(m["detection"]["false_positives"], 3);
  EXPECT_EQ(m["detection"]["marks"]["on_unlisted_scans"], 1);
  EXPECT_TRUE(m["detection"].contains("bootstrap"));
  EXPECT_TRUE(m["malignancy"].contains("bootstrap_ci_low"));
  EXPECT_NEAR(m["malignancy"]["auc"].get<double>(), 6.5 / 9, 1e-12);  // from the findings, unchanged
}

// scripts/gpu/average_candidates.py: two runs of the same candidates scored by
// their mean logit (an ensemble of bundles measured without building it). Run B
// scores the leading false positive 0.05 where run A scores it 0.95: their mean
// logit is 0, so it falls to 0.5; every other row agrees. `hilum eval batch` on
// the average gives what it gives on those probabilities written by hand.
TEST(CliEvalBatch, AveragedCandidatesOfTwoRunsScoreTheirMeanLogit) {
  BatchFixture fx;
  const std::string rows =
      "seriesuid,coordX,coordY,coordZ,probability\n"
      "1.2.3.1,10,11,10,0.9\n1.2.3.1,10,10,12,0.5\n1.2.3.1,-40,1,0,0.7\n1.2.3.1,100,100,100,0.6\n"
      "1.2.3.2,0,0,1,0.8\n1.2.3.3,20,20,21,0.4\n1.2.3.4,30,0,0,0.3\n";
  write_text(fx.batch / "candidates.csv", rows + "1.2.3.3,-50,-50,-50,0.95\n");
  const fs::path b = fx.tmp / "b", hand = fx.tmp / "hand", ens = fx.tmp / "ens";
  write_text(b / "candidates.csv", rows + "1.2.3.3,-50,-50,-50,0.05\n");
  fs::copy(fx.batch, hand, fs::copy_options::recursive);
  write_text(hand / "candidates.csv", rows + "1.2.3.3,-50,-50,-50,0.5\n");
  const std::string script = std::string(HILUM_SOURCE_DIR) + "/scripts/gpu/average_candidates.py";
  const CommandResult avg =
      hilum::testing::run_command({"/usr/bin/python3", script, "--out", ens.string(), fx.batch.string(), b.string()});
  ASSERT_EQ(avg.exit_code, 0) << avg.err;
  const std::string written = read_text(ens / "candidates.csv");
  EXPECT_NE(written.find("\n1.2.3.3,-50,-50,-50,0.5\n"), std::string::npos) << written;
  EXPECT_NE(written.find("\n1.2.3.1,10,11,10,0.9\n"), std::string::npos) << written;
  EXPECT_TRUE(fs::is_symlink(ens / "study_a"));
  EXPECT_FALSE(fs::exists(ens / "logs"));  // no findings.json: not a study
  for (const fs::path& run : {ens, hand}) {
    const CommandResult r = hilum({"eval", "batch", "--batch", run.string(), "--truth", fx.truth.string(), "--out",
                                   (fx.tmp / ("eval-" + run.filename().string())).string()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  EXPECT_EQ(metrics(fx.tmp / "eval-ens")["detection"], metrics(fx.tmp / "eval-hand")["detection"]);
  EXPECT_NE(metrics(fx.tmp / "eval-ens")["detection"]["cpm"].get<double>(), 23.0 / 42);  // run A's alone

  // Runs whose candidates differ are refused in one line naming the file; nothing is written.
  write_text(fx.tmp / "short" / "candidates.csv", rows);
  write_text(fx.tmp / "moved" / "candidates.csv", rows + "1.2.3.3,-50,-50,-49,0.05\n");
  write_text(fx.tmp / "header" / "candidates.csv", "uid,x,y,z,p\n");
  write_text(fx.tmp / "text" / "candidates.csv", rows + "1.2.3.3,-50,-50,-50,high\n");
  const struct {
    const char* run;
    const char* message;
  } bad[] = {{"short", "/short/candidates.csv: 7 candidates, "},
             {"moved", "/moved/candidates.csv: line 9 is another candidate than in "},
             {"header", "/header/candidates.csv: the header is not seriesuid,coordX,coordY,coordZ,probability"},
             {"text", "/text/candidates.csv: line 9: probability 'high' is not a number"},
             {"none", "/none/candidates.csv: No such file or directory"}};
  for (const auto& k : bad) {
    const fs::path out = fx.tmp / (std::string("out-") + k.run);
    const CommandResult r = hilum::testing::run_command(
        {"/usr/bin/python3", script, "--out", out.string(), fx.batch.string(), (fx.tmp / k.run).string()});
    EXPECT_EQ(r.exit_code, 2) << k.run;
    EXPECT_NE(r.err.find(k.message), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_FALSE(fs::exists(out)) << k.run;
  }
}

TEST(CliEvalBatch, BadInputs) {
  BatchFixture fx;
  const fs::path out = fx.tmp / "out";
  const Args base = {"eval",    "batch",           "--batch", fx.batch.string(),
                     "--truth", fx.truth.string(), "--out",   out.string()};
  auto run_with = [&](const fs::path& file, const std::string& text,
                      const std::vector<std::string>& needles) {
    const std::string saved = fs::exists(file) ? read_text(file) : "";
    write_text(file, text);
    expect_bad_input(base, out, needles);
    if (saved.empty()) {
      fs::remove(file);
    } else {
      write_text(file, saved);
    }
  };
  const fs::path fa = fx.batch / "study_a" / "findings.json";
  run_with(fa, "{\"series_uid\": \"1.2.3.1\", \"findings\": [", {"study_a/findings.json", "not valid JSON"});
  run_with(fa, "{\"findings\": []}", {"study_a/findings.json", "series_uid"});
  run_with(fa, "{\"series_uid\": \"1.2.3.1\", \"findings\": [{\"center_mm\": [1, 2], \"probability\": 0.5}]}",
           {"study_a/findings.json: findings[0]: 'center_mm' must be an array of 3 numbers"});
  run_with(fa,
           "{\"series_uid\": \"1.2.3.1\", \"findings\": [{\"center_mm\": [1, 2, 3], \"probability\": 0.5}]}",
           {"study_a/findings.json: findings[0]: missing 'malignancy'"});
  run_with(fa, "{\"series_uid\": \"1.2.3.2\", \"findings\": []}", {"series '1.2.3.2' also in", "study_b"});
  run_with(fx.truth, "seriesuid,coordX,coordY,coordZ,diameter_mm\n1.2.3.1,10,10,10,8\n",
           {"truth.csv", "missing column 'malignant'"});
  run_with(fx.truth, "seriesuid,coordX,coordY,coordZ,diameter_mm,malignant\n1.2.3.1,10,10,10,8,yes\n",
           {"truth.csv:2: column 'malignant': 'yes' is not 0 or 1"});
  run_with(fx.truth,
           "seriesuid,coordX,coordY,coordZ,diameter_mm,malignant\n1.2.3.1,10,10,10,8,1\n1.2.3.2,0,0,0,10,0\n"
           "1.2.3.3,20,20,20,5,0\n",
           {"truth.csv", "1 malignant and 2 benign", "at least 2"});
  run_with(fx.batch / "candidates.csv", "seriesuid,coordX,coordY,coordZ,probability\n1.2.3.1,1,2,3,\n",
           {"candidates.csv:2: column 'probability': empty value"});

  TempDir empty("cli_batch_empty");
  expect_bad_input({"eval", "batch", "--batch", empty.path().string(), "--truth", fx.truth.string(), "--out",
                    out.string()},
                   out, {"no study folder with a findings.json"});
  expect_bad_input({"eval", "batch", "--batch", (fx.tmp / "nope").string(), "--truth", fx.truth.string(),
                    "--out", out.string()},
                   out, {"nope: not a directory"});
  EXPECT_EQ(hilum({"eval", "batch", "--batch", fx.batch.string(), "--truth", fx.truth.string(), "--out",
                   out.string(), "--unmatched", "maybe"})
                .exit_code,
            2);
}

// The findings' measurements against the truth (docs/evaluation.md,
// "Measurements"). By hand: the truth's axial_mean_mm is the reference; its
// Lung-RADS comes from type, that size and (part-solid) the solid part:
//   T1 solid 7.0 -> 3      F1: 7.4 solid 3        diff +0.4
//   T2 ground-glass 5.0 -> 2  F2: 4.0 ground-glass 2   -1.0
//   T3 part-solid 11.0, solid 5 -> 3  F3: 12.5 solid 4A  +1.5 (type and category differ)
//   T4 solid 4.0 -> 2      F4: 6.0 solid 3        +2.0
//   T5 (no finding) is not measured.
// Bias 0.725, sd sqrt(5.3075 / 3), |error| 0.4 1.0 1.5 2.0: mean 1.225, median
// 1.25, within 1 mm 1/2, within 2 mm 1. Types agree 3/4. Lung-RADS agrees 2/4,
// the finding higher 2/4. Linear weighted kappa over 2, 3, 4A (ranks 0, 1, 2):
// pairs (1,1) (0,0) (1,2) (0,1), observed disagreement 2, truth margins (2, 2, 0),
// finding margins (1, 2, 1): expected (2 * (2 + 2) + 2 * (1 + 1)) / 4 = 3, kappa 1/3.
TEST(CliEvalBatch, MeasurementsAgainstTheTruth) {
  TempDir tmp("cli_batch_measure");
  const fs::path batch = tmp / "batch", truth = tmp / "truth.csv", out = tmp / "out";
  auto f = [](double x, double p, double m, double mean, const char* type, const char* extra) {
    char buf[300];
    std::snprintf(
        buf, sizeof buf,
        "{\"center_mm\": [%g, 0, 0], \"probability\": %g, \"malignancy\": %g, \"mean_diameter_mm\": %g, "
        "\"type\": \"%s\"%s}",
        x, p, m, mean, type, extra);
    return std::string(buf);
  };
  write_text(batch / "a" / "findings.json",
             "{\"series_uid\": \"1.2.3.1\", \"findings\": [" +
                 f(10, 0.9, 0.8, 7.4, "solid", ", \"lung_rads\": {\"category\": \"3\"}") + "," +
                 f(-40, 0.8, 0.2, 4.0, "ground-glass", ", \"lung_rads\": \"2\"") + "]}");
  write_text(batch / "b" / "findings.json",
             "{\"series_uid\": \"1.2.3.2\", \"findings\": [" +
                 f(0, 0.7, 0.6, 12.5, "solid",
                   ", \"solid_component_mm\": 12.5, \"lung_rads\": {\"category\": \"4A\"}") +
                 "," + f(60, 0.6, 0.3, 6.0, "solid", ", \"lung_rads\": {\"category\": \"3\"}") + "]}");
  const std::string header =
      "seriesuid,coordX,coordY,coordZ,diameter_mm,type,solid_diameter_mm,malignant,axial_mean_mm\n";
  write_text(truth, header +
                        "1.2.3.1,10,0,0,8,solid,8,1,7.0\n"
                        "1.2.3.1,-40,0,0,6,ground-glass,0,0,5.0\n"
                        "1.2.3.2,0,0,0,12,part-solid,5,1,11.0\n"
                        "1.2.3.2,60,0,0,5,solid,5,0,4.0\n"
                        "1.2.3.2,-60,0,0,10,solid,10,1,9.0\n");
  const CommandResult r =
      hilum({"eval", "batch", "--batch", batch.string(), "--truth", truth.string(), "--out", out.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(
      r.out.find("measurement (4 nodules with a finding, against the truth's axial_mean_mm): mean diameter "
                 "bias +0.73 mm"),
      std::string::npos)
      << r.out;
  EXPECT_NE(
      r.out.find("type agrees for 75.0 %; Lung-RADS agrees for 50.0 % (finding higher 50.0 %, lower 0.0 %; "
                 "linear weighted kappa 0.333)"),
      std::string::npos)
      << r.out;
  const auto m = metrics(out)["measurement"];
  EXPECT_EQ(m["reference"], "axial_mean_mm");
  EXPECT_EQ(m["pairs"], 4);
  const auto& d = m["mean_diameter"];
  EXPECT_NEAR(d["bias_mm"].get<double>(), 0.725, 1e-12);
  EXPECT_NEAR(d["sd_mm"].get<double>(), std::sqrt(5.3075 / 3), 1e-12);
  EXPECT_NEAR(d["limits_of_agreement_mm"][0].get<double>(), 0.725 - 1.96 * std::sqrt(5.3075 / 3), 1e-12);
  EXPECT_NEAR(d["mean_abs_error_mm"].get<double>(), 1.225, 1e-12);
  EXPECT_NEAR(d["median_abs_error_mm"].get<double>(), 1.25, 1e-12);
  EXPECT_EQ(d["within_1mm"], 0.5);
  EXPECT_EQ(d["within_2mm"], 1.0);
  EXPECT_EQ(m["type"]["agreement"], 0.75);
  EXPECT_EQ(m["type"]["confusion"]["part-solid"]["solid"], 1);
  EXPECT_EQ(m["type"]["confusion"]["solid"]["solid"], 2);
  const auto& lr = m["lung_rads"];
  EXPECT_EQ(lr["pairs"], 4);
  EXPECT_EQ(lr["agreement"], 0.5);
  EXPECT_EQ(lr["finding_higher"], 0.5);
  EXPECT_EQ(lr["finding_lower"], 0.0);
  EXPECT_NEAR(lr["weighted_kappa"].get<double>(), 1.0 / 3, 1e-12);
  EXPECT_EQ(lr["confusion"]["3"]["4A"], 1);
  EXPECT_EQ(lr["confusion"]["2"]["3"], 1);
  EXPECT_FALSE(lr["confusion"].contains("4B"));  // only the categories either side used
  const std::string rows = read_text(out / "measurements.csv");
  EXPECT_EQ(
      rows.substr(0, rows.find('\n')),
      "seriesuid,coordX,coordY,coordZ,truth_mean_mm,finding_mean_mm,truth_type,finding_type,truth_solid_mm,"
      "finding_solid_mm,truth_lung_rads,finding_lung_rads");
  EXPECT_NE(rows.find("\n1.2.3.2,0.000,0.000,0.000,11.0,12.5,part-solid,solid,5.0,,3,4A\n"),
            std::string::npos)
      << rows;
  EXPECT_EQ(std::count(rows.begin(), rows.end(), '\n'), 5);

  // A LUNA16-style truth (no type, no axial_mean_mm): sizes against diameter_mm, no Lung-RADS.
  write_text(truth,
             "seriesuid,coordX,coordY,coordZ,diameter_mm,malignant\n1.2.3.1,10,0,0,8,1\n1.2.3.1,-40,0,0,6,0\n"
             "1.2.3.2,0,0,0,12,1\n1.2.3.2,60,0,0,5,0\n");
  const CommandResult luna = hilum({"eval", "batch", "--batch", batch.string(), "--truth", truth.string(),
                                    "--out", (tmp / "luna").string()});
  ASSERT_EQ(luna.exit_code, 0) << luna.err;
  const auto ml = metrics(tmp / "luna")["measurement"];
  EXPECT_EQ(ml["reference"], "diameter_mm");
  EXPECT_NEAR(ml["mean_diameter"]["bias_mm"].get<double>(), (-0.6 - 2.0 + 0.5 + 1.0) / 4, 1e-12);
  EXPECT_EQ(ml["type"]["pairs"], 0);
  EXPECT_EQ(ml["lung_rads"]["pairs"], 0);
  EXPECT_TRUE(ml["lung_rads"]["weighted_kappa"].is_null());

  // Findings without sizes (the hand-made fixture): no measurement section, no table.
  BatchFixture fx;
  const CommandResult plain = hilum({"eval", "batch", "--batch", fx.batch.string(), "--truth",
                                     fx.truth.string(), "--out", (tmp / "plain").string()});
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  EXPECT_TRUE(metrics(tmp / "plain")["measurement"].is_null());
  EXPECT_FALSE(fs::exists(tmp / "plain" / "measurements.csv"));

  // Malformed measurements are refused, naming the file and the key.
  write_text(truth, header + "1.2.3.1,10,0,0,8,cystic,8,1,7.0\n");
  expect_bad_input(
      {"eval", "batch", "--batch", batch.string(), "--truth", truth.string(), "--out", out.string() + "2"},
      out.string() + "2", {"truth.csv:2: column 'type': 'cystic' is not solid, part-solid or ground-glass"});
  write_text(truth, header + "1.2.3.1,10,0,0,8,solid,8,1,\n");
  expect_bad_input(
      {"eval", "batch", "--batch", batch.string(), "--truth", truth.string(), "--out", out.string() + "2"},
      out.string() + "2", {"truth.csv:2: column 'axial_mean_mm'"});
  write_text(batch / "c" / "findings.json",
             "{\"series_uid\": \"1.2.3.3\", \"findings\": [" + f(0, 0.5, 0.5, 5, "cystic", "") + "]}");
  expect_bad_input(
      {"eval", "batch", "--batch", batch.string(), "--truth", truth.string(), "--out", out.string() + "2"},
      out.string() + "2", {"c/findings.json: findings[0]: 'type' is not"});
  write_text(batch / "c" / "findings.json", "{\"series_uid\": \"1.2.3.3\", \"findings\": [" +
                                                f(0, 0.5, 0.5, 5, "solid", ", \"lung_rads\": \"5\"") + "]}");
  expect_bad_input(
      {"eval", "batch", "--batch", batch.string(), "--truth", truth.string(), "--out", out.string() + "2"},
      out.string() + "2", {"c/findings.json: findings[0]: 'lung_rads.category' is not a Lung-RADS category"});
  write_text(batch / "c" / "findings.json",
             "{\"series_uid\": \"1.2.3.3\", \"findings\": [{\"center_mm\": [0, 0, 0], \"probability\": 0.5, "
             "\"malignancy\": 0.5, \"mean_diameter_mm\": \"big\"}]}");
  expect_bad_input(
      {"eval", "batch", "--batch", batch.string(), "--truth", truth.string(), "--out", out.string() + "2"},
      out.string() + "2", {"c/findings.json: findings[0]: 'mean_diameter_mm' is not a number"});
  write_text(batch / "c" / "findings.json",
             "{\"series_uid\": \"1.2.3.3\", \"findings\": [" +
                 f(0, 0.5, 0.5, 5, "part-solid", ", \"solid_component_mm\": null") + "]}");
  expect_bad_input(
      {"eval", "batch", "--batch", batch.string(), "--truth", truth.string(), "--out", out.string() + "2"},
      out.string() + "2", {"c/findings.json: findings[0]: 'solid_component_mm' is not a number"});
  fs::remove(batch / "c" / "findings.json");
  write_text(truth, header + "1.2.3.1,10,0,0,8,part-solid,some,1,7.0\n");
  expect_bad_input(
      {"eval", "batch", "--batch", batch.string(), "--truth", truth.string(), "--out", out.string() + "2"},
      out.string() + "2", {"truth.csv:2: column 'solid_diameter_mm'"});
}

// Subgroups (--by). The fixture's truth with a site column, T1-T7:
//   a a a a b a b; T6 (site a, 8 mm) lies on a series not in the batch.
// Site a: T1 .9, T3 .8, T2 .7, T4 .4 against the run's FPs .6 and .3 (T5 and T7
// are excluded for this group: marks on them would be neither hits nor FPs).
// Cumulative (TP, FP): (1,0) (2,0) (3,0) (3,1) (4,1) (4,2); x = FP/4, y = TP/4:
// at 1/8 -> 3/4, from 1/4 on -> 1; CPM (3/4 + 6) / 7 = 27/28. Malignant {.8, .6}
// vs benign {.35, .4}: AUC 1. Site b: T5 and T7, no finding: CPM 0; one
// malignant and one benign, so no AUC.
// Diameter bins 7,11: < 7 holds T2 (6 mm, .7) and T4 (5 mm, .4): (1,0) (1,1)
// (2,1) (2,2), y = TP/2: 1/2 at 1/8, then 1; CPM 13/14. [7,11) holds T1 and T3
// (and T6, not on a scan): both before any FP, CPM 1. >= 11 holds T5 and T7: 0.
TEST(CliEvalBatch, Subgroups) {
  BatchFixture fx;
  write_text(fx.truth,
             "seriesuid,coordX,coordY,coordZ,diameter_mm,malignant,site\n"
             "1.2.3.1,10,10,10,8,1,a\n"
             "1.2.3.1,-40,0,0,6,0,a\n"
             "1.2.3.2,0,0,0,10,1,a\n"
             "1.2.3.3,20,20,20,5,0,a\n"
             "1.2.3.4,0,0,0,12,0,b\n"
             "1.2.3.9,0,0,0,8,1,a\n"
             "1.2.3.2,50,0,0,20,1,b\n");
  const fs::path out = fx.tmp / "out";
  const CommandResult r = hilum({"eval", "batch", "--batch", fx.batch.string(), "--truth", fx.truth.string(),
                                 "--out", out.string(), "--by", "site", "--by", "diameter_mm:7,11"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("by site a: 4 nodules, 4 hit, CPM 0.964, malignancy AUC 1.000"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("by site b: 2 nodules, 0 hit, CPM 0.000"), std::string::npos) << r.out;
  const auto m = metrics(out);
  EXPECT_NEAR(m["detection"]["cpm"].get<double>(), 9.0 / 14, 1e-12);  // the whole run, unchanged
  const auto& site = m["by"]["site"];
  ASSERT_EQ(site.size(), 2u);
  EXPECT_EQ(site[0]["group"], "a");
  EXPECT_EQ(site[0]["nodules"], 4);
  EXPECT_EQ(site[0]["nodules_detected"], 4);
  EXPECT_NEAR(site[0]["sensitivities"][0].get<double>(), 0.75, 1e-12);
  EXPECT_NEAR(site[0]["sensitivities"][1].get<double>(), 1.0, 1e-12);
  EXPECT_NEAR(site[0]["cpm"].get<double>(), 27.0 / 28, 1e-12);
  EXPECT_EQ(site[0]["malignant"], 2);
  EXPECT_EQ(site[0]["benign"], 2);
  EXPECT_NEAR(site[0]["malignancy_auc"].get<double>(), 1.0, 1e-12);
  EXPECT_EQ(site[1]["group"], "b");
  EXPECT_EQ(site[1]["nodules"], 2);
  EXPECT_EQ(site[1]["nodules_detected"], 0);
  EXPECT_NEAR(site[1]["cpm"].get<double>(), 0.0, 1e-12);
  EXPECT_TRUE(site[1]["malignancy_auc"].is_null());
  const auto& bins = m["by"]["diameter_mm:7,11"];
  ASSERT_EQ(bins.size(), 3u);
  EXPECT_EQ(bins[0]["group"], "<7");
  EXPECT_EQ(bins[1]["group"], "[7,11)");
  EXPECT_EQ(bins[2]["group"], ">=11");
  EXPECT_NEAR(bins[0]["cpm"].get<double>(), 13.0 / 14, 1e-12);
  EXPECT_NEAR(bins[0]["sensitivities"][0].get<double>(), 0.5, 1e-12);
  EXPECT_EQ(bins[1]["nodules"], 2);  // T6 lies on no scan of the batch
  EXPECT_NEAR(bins[1]["cpm"].get<double>(), 1.0, 1e-12);
  EXPECT_NEAR(bins[2]["cpm"].get<double>(), 0.0, 1e-12);
  // Weighted by their nodules, the groups' sensitivities give back the whole run's.
  for (const char* spec : {"site", "diameter_mm:7,11"}) {
    for (size_t i = 0; i < 7; ++i) {
      double sum = 0, n = 0;
      for (const auto& g : m["by"][spec]) {
        sum += g["nodules"].get<double>() * g["sensitivities"][i].get<double>();
        n += g["nodules"].get<double>();
      }
      EXPECT_NEAR(sum / n, m["detection"]["sensitivities"][i].get<double>(), 1e-12) << spec << " " << i;
    }
  }
  const std::string csv = read_text(out / "by_group.csv");
  EXPECT_EQ(csv.substr(0, csv.find('\n')),
            "by,group,nodules,nodules_detected,sensitivity_at_0.125,sensitivity_at_0.25,sensitivity_at_0.5,"
            "sensitivity_at_1,sensitivity_at_2,sensitivity_at_4,sensitivity_at_8,cpm,malignant,benign,"
            "malignancy_auc");
  EXPECT_NE(csv.find("site,b,2,0,0,0,0,0,0,0,0,0,1,1,\n"), std::string::npos) << csv;
  EXPECT_NE(csv.find("\"diameter_mm:7,11\",\"[7,11)\",2,2,1,1,1,1,1,1,1,1,2,0,\n"), std::string::npos) << csv;

  // An empty bin is listed, with no FROC and no AUC.
  const fs::path wide = fx.tmp / "wide";
  ASSERT_EQ(hilum({"eval", "batch", "--batch", fx.batch.string(), "--truth", fx.truth.string(), "--out",
                   wide.string(), "--by", "diameter_mm:30"})
                .exit_code,
            0);
  const auto w = metrics(wide)["by"]["diameter_mm:30"];
  ASSERT_EQ(w.size(), 2u);
  EXPECT_EQ(w[0]["nodules"], 6);
  EXPECT_NEAR(w[0]["cpm"].get<double>(), 9.0 / 14, 1e-12);  // every nodule: the whole run
  EXPECT_EQ(w[1]["group"], ">=30");
  EXPECT_EQ(w[1]["nodules"], 0);
  EXPECT_TRUE(w[1]["cpm"].is_null());
  EXPECT_TRUE(w[1]["sensitivities"].is_null());
  EXPECT_NE(read_text(wide / "by_group.csv").find("diameter_mm:30,>=30,0,0,,,,,,,,,0,0,\n"), std::string::npos);

  // Bad subgroup specs: one line naming the problem, nothing written.
  const fs::path bad = fx.tmp / "bad";
  const Args base = {"eval",    "batch",           "--batch", fx.batch.string(),
                     "--truth", fx.truth.string(), "--out",   bad.string()};
  auto with = [&](const std::string& spec) {
    Args a = base;
    a.push_back("--by");
    a.push_back(spec);
    return a;
  };
  expect_bad_input(with("lobe"), bad, {"truth.csv", "missing column 'lobe'"});
  expect_bad_input(with("diameter_mm:7,x"), bad, {"--by 'diameter_mm:7,x'", "bin edge 'x' is not a number"});
  expect_bad_input(with("diameter_mm:11,7"), bad, {"--by 'diameter_mm:11,7'", "bin edges must increase"});
  expect_bad_input(with("site:1"), bad, {"truth.csv:2: column 'site'", "'a' is not a number"});
  expect_bad_input(with(":5"), bad, {"--by ':5'", "no column named"});
}

TEST(CliEval, HelpListsTheSubcommands) {
  const CommandResult r = hilum({"eval", "--help"});
  EXPECT_EQ(r.exit_code, 0);
  for (const char* c : {"roc", "froc", "batch"}) EXPECT_NE(r.out.find(c), std::string::npos) << c;
}

}  // namespace
}  // namespace hilum
