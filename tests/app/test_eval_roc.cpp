#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>
#include <sstream>

#include "app/eval_roc.h"
#include "app/eval_run.h"
#include "app/eval_stats.h"
#include "tests/app/eval_test_util.h"

namespace hilum {
namespace {

using ::hilum::testing::fixtures_dir;
using ::hilum::testing::golden_dir;
using ::hilum::testing::TempDir;

// The worked example also used in docs/evaluation.md.
ScoredSample small_example() { return {{0.4, 0.5, 0.6}, {0.1, 0.5, 0.3}}; }

// DeLong's structural components computed from their definition, O(m n):
// psi(x, y) = 1 if x > y, 1/2 if equal, 0 otherwise.
DelongEstimate naive_delong(const std::vector<ScoredSample>& samples) {
  const size_t k = samples.size(), m = samples[0].positives.size(), n = samples[0].negatives.size();
  std::vector<std::vector<double>> v10(k, std::vector<double>(m)), v01(k, std::vector<double>(n));
  DelongEstimate e;
  e.auc.assign(k, 0);
  for (size_t r = 0; r < k; ++r) {
    for (size_t i = 0; i < m; ++i) {
      for (size_t j = 0; j < n; ++j) {
        const double x = samples[r].positives[i], y = samples[r].negatives[j];
        const double psi = x > y ? 1.0 : x == y ? 0.5 : 0.0;
        v10[r][i] += psi / n;
        v01[r][j] += psi / m;
        e.auc[r] += psi / (m * n);
      }
    }
  }
  e.covariance.assign(k, std::vector<double>(k));
  for (size_t a = 0; a < k; ++a) {
    for (size_t b = 0; b < k; ++b) {
      double s10 = 0, s01 = 0;
      for (size_t i = 0; i < m; ++i) s10 += (v10[a][i] - e.auc[a]) * (v10[b][i] - e.auc[b]);
      for (size_t j = 0; j < n; ++j) s01 += (v01[a][j] - e.auc[a]) * (v01[b][j] - e.auc[b]);
      e.covariance[a][b] = s10 / (m - 1) / m + s01 / (n - 1) / n;
    }
  }
  return e;
}

// Scores with many ties: three correlated raters on 0..10 integer scales.
std::vector<ScoredSample> random_raters(unsigned seed, int m, int n) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> noise(0, 1);
  std::vector<ScoredSample> out(3);
  for (int i = 0; i < m + n; ++i) {
    const bool pos = i < m;
    const double latent = noise(rng) + (pos ? 1.0 : 0.0);
    for (int r = 0; r < 3; ++r) {
      const double s = std::round(std::clamp(5 + 2 * (latent + (r + 1) * 0.5 * noise(rng)), 0.0, 10.0));
      (pos ? out[r].positives : out[r].negatives).push_back(s);
    }
  }
  return out;
}

TEST(EvalStats, Midranks) {
  EXPECT_EQ(midranks({3, 1, 3, 2, 3}), (std::vector<double>{4, 1, 4, 2, 4}));
  EXPECT_EQ(midranks({5}), (std::vector<double>{1}));
  EXPECT_EQ(midranks({2, 2}), (std::vector<double>{1.5, 1.5}));
}

TEST(EvalStats, QuantileType7MatchesR) {
  // R: quantile(c(1, 2, 3, 4, 10), c(0.025, 0.5, 0.975)) = 1.1, 3, 9.4
  EXPECT_NEAR(quantile_type7({10, 1, 3, 2, 4}, 0.025), 1.1, 1e-12);
  EXPECT_NEAR(quantile_type7({10, 1, 3, 2, 4}, 0.5), 3.0, 1e-12);
  EXPECT_NEAR(quantile_type7({10, 1, 3, 2, 4}, 0.975), 9.4, 1e-12);
  EXPECT_EQ(quantile_type7({7}, 0.975), 7.0);
}

TEST(EvalStats, NormalDistribution) {
  EXPECT_NEAR(normal_cdf(kNormalQuantile975), 0.975, 1e-15);
  EXPECT_NEAR(normal_two_sided_p(1.959963984540054), 0.05, 1e-15);
  EXPECT_EQ(normal_two_sided_p(0), 1.0);
  EXPECT_EQ(normal_two_sided_p(INFINITY), 0.0);
}

TEST(EvalStats, SplitMixIndexIsInRangeAndRoughlyUniform) {
  SplitMix64 rng(42);
  std::vector<int> counts(7);
  for (int i = 0; i < 70000; ++i) {
    const uint64_t k = rng.index(7);
    ASSERT_LT(k, 7u);
    ++counts[k];
  }
  for (int c : counts) EXPECT_NEAR(c, 10000, 400);
  SplitMix64 a(9), b(9), c(10);
  EXPECT_EQ(a.next(), b.next());
  EXPECT_NE(SplitMix64(9).next(), c.next());
  EXPECT_EQ(SplitMix64(3).index(1), 0u);
}

TEST(EvalRoc, AucCountsTiesAsHalf) {
  // Pairs (positive > negative): 0.4 beats 0.1, 0.3; 0.5 beats 0.1, 0.3 and
  // ties 0.5; 0.6 beats all three: 7.5 of 9.
  EXPECT_DOUBLE_EQ(auc_mann_whitney(small_example()), 7.5 / 9);
  EXPECT_DOUBLE_EQ(auc_mann_whitney({{1, 1}, {1, 1}}), 0.5);
  EXPECT_DOUBLE_EQ(auc_mann_whitney({{0, 0}, {1, 2}}), 0.0);
}

TEST(EvalRoc, FastDelongEqualsTheDefinition) {
  for (unsigned seed : {1u, 2u, 3u}) {
    for (auto [m, n] : {std::pair{2, 2}, std::pair{3, 17}, std::pair{40, 25}}) {
      const auto samples = random_raters(seed, m, n);
      const DelongEstimate fast = fast_delong(samples), slow = naive_delong(samples);
      for (size_t a = 0; a < 3; ++a) {
        EXPECT_NEAR(fast.auc[a], slow.auc[a], 1e-12);
        for (size_t b = 0; b < 3; ++b) EXPECT_NEAR(fast.covariance[a][b], slow.covariance[a][b], 1e-12);
      }
    }
  }
}

TEST(EvalRoc, DelongIntervalOfPerfectSeparationIsOneOne) {
  const AucInterval ci = delong_interval({{3, 4, 5}, {0, 1, 2}});
  EXPECT_EQ(ci.auc, 1.0);
  EXPECT_EQ(ci.variance, 0.0);
  EXPECT_EQ(ci.ci_low, 1.0);
  EXPECT_EQ(ci.ci_high, 1.0);
}

TEST(EvalRoc, PairedTestIsAntisymmetricAndZeroForEqualCurves) {
  const auto s = random_raters(5, 30, 30);
  const PairedDelongTest ab = delong_paired_test(s[0], s[1]), ba = delong_paired_test(s[1], s[0]);
  EXPECT_NEAR(ab.z, -ba.z, 1e-12);
  EXPECT_NEAR(ab.p_value, ba.p_value, 1e-12);
  const PairedDelongTest same = delong_paired_test(s[0], s[0]);
  EXPECT_EQ(same.z, 0.0);
  EXPECT_EQ(same.p_value, 1.0);
  // A monotone transform leaves every rank and so the whole test unchanged.
  ScoredSample scaled = s[0];
  for (double& v : scaled.positives) v = 3 * v + 1;
  for (double& v : scaled.negatives) v = 3 * v + 1;
  EXPECT_EQ(delong_paired_test(s[0], scaled).z, 0.0);
}

TEST(EvalRoc, CurveEndsAndAreaEqualsAuc) {
  for (unsigned seed : {11u, 12u}) {
    const ScoredSample s = random_raters(seed, 25, 35)[1];
    const auto curve = roc_curve(s);
    ASSERT_GE(curve.size(), 2u);
    EXPECT_EQ(curve.front().threshold, -INFINITY);
    EXPECT_EQ(curve.front().sensitivity, 1.0);
    EXPECT_EQ(curve.front().specificity, 0.0);
    EXPECT_EQ(curve.back().threshold, INFINITY);
    EXPECT_EQ(curve.back().sensitivity, 0.0);
    EXPECT_EQ(curve.back().specificity, 1.0);
    double area = 0;  // trapezoids over (1 - specificity, sensitivity)
    for (size_t i = 0; i + 1 < curve.size(); ++i) {
      area += (curve[i + 1].specificity - curve[i].specificity) *
              (curve[i].sensitivity + curve[i + 1].sensitivity) / 2;
    }
    EXPECT_NEAR(area, auc_mann_whitney(s), 1e-12);
  }
}

TEST(EvalRoc, YoudenPointOfTheSmallExample) {
  const RocPoint p = youden_point(roc_curve(small_example()));
  EXPECT_DOUBLE_EQ(p.threshold, 0.35);
  EXPECT_DOUBLE_EQ(p.sensitivity, 1.0);
  EXPECT_DOUBLE_EQ(p.specificity, 2.0 / 3);
  // Worse than chance everywhere: the trivial "all positive" point (index 0) wins.
  EXPECT_EQ(youden_point(roc_curve({{0, 1}, {2, 3}})).threshold, -INFINITY);
}

TEST(EvalRoc, BootstrapReplaysTheStratifiedDraws) {
  const ScoredSample s = random_raters(21, 12, 20)[0];
  const BootstrapInterval got = bootstrap_auc_interval(s, 300, 77);
  EXPECT_EQ(got.replicates, 300);
  // Redraw with the documented order (positives, then negatives, per replicate)
  // and the O(m n) AUC.
  SplitMix64 rng(77);
  std::vector<double> aucs;
  for (int r = 0; r < 300; ++r) {
    ScoredSample d;
    for (size_t i = 0; i < s.positives.size(); ++i)
      d.positives.push_back(s.positives[rng.index(s.positives.size())]);
    for (size_t j = 0; j < s.negatives.size(); ++j)
      d.negatives.push_back(s.negatives[rng.index(s.negatives.size())]);
    aucs.push_back(naive_delong({d}).auc[0]);
  }
  EXPECT_NEAR(got.ci_low, quantile_type7(aucs, 0.025), 1e-12);
  EXPECT_NEAR(got.ci_high, quantile_type7(aucs, 0.975), 1e-12);
  const BootstrapInterval again = bootstrap_auc_interval(s, 300, 77);
  EXPECT_EQ(again.ci_low, got.ci_low);
  EXPECT_EQ(again.ci_high, got.ci_high);
  const BootstrapInterval other = bootstrap_auc_interval(s, 300, 78);
  EXPECT_TRUE(other.ci_low != got.ci_low || other.ci_high != got.ci_high);
}

TEST(EvalRoc, BootstrapAgreesWithDelongOnALargeSample) {
  const ScoredSample s = random_raters(8, 150, 200)[0];
  const AucInterval d = delong_interval(s);
  const BootstrapInterval b = bootstrap_auc_interval(s, 1000, 1);
  EXPECT_LT(b.ci_low, d.auc);
  EXPECT_GT(b.ci_high, d.auc);
  EXPECT_NEAR(b.ci_low, d.ci_low, 0.02);
  EXPECT_NEAR(b.ci_high, d.ci_high, 0.02);
}

// ---- Agreement with R's pROC -------------------------------------------------

struct ProcSpec {
  std::string file, label, score, score_b;
};

const std::vector<ProcSpec>& proc_specs() {
  static const std::vector<ProcSpec> specs = {
      {"roc_ties.csv", "label", "rating", ""},
      {"roc_perfect.csv", "label", "score", ""},
      {"roc_tiny.csv", "label", "score", ""},
      {"roc_unbalanced.csv", "label", "score", ""},
      {"roc_inverse.csv", "label", "score", ""},
      {"roc_compare.csv", "label", "model_a", "model_b"},
      {"roc_compare_messy.csv", "label", "model_a", "model_b"},
  };
  return specs;
}

// Runs tests/golden/eval_proc.R once on every fixture: file -> key -> value.
std::map<std::string, std::map<std::string, double>> run_proc(std::string& skip_reason) {
  std::map<std::string, std::map<std::string, double>> out;
  if (!hilum::testing::have_program("Rscript")) {
    skip_reason = "Rscript is not installed";
    return out;
  }
  std::vector<std::string> args = {"sh", "-c", "", "sh"};
  std::string cmd = "cd " + hilum::testing::shell_quote(fixtures_dir().string()) + " && Rscript " +
                    hilum::testing::shell_quote((golden_dir() / "eval_proc.R").string()) + " \"$@\"";
  args[2] = cmd;
  for (const ProcSpec& s : proc_specs()) {
    args.push_back(s.file + "," + s.label + "," + s.score + (s.score_b.empty() ? "" : "," + s.score_b));
  }
  const auto r = hilum::testing::run_command(args);
  if (r.exit_code == 3) {
    skip_reason = "R package pROC is not installed";
    return out;
  }
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::istringstream lines(r.out);
  std::string file, key, value;
  while (std::getline(lines, file, '\t') && std::getline(lines, key, '\t') && std::getline(lines, value)) {
    out[file][key] = value == "-Inf" ? -INFINITY : value == "Inf" ? INFINITY : std::stod(value);
  }
  return out;
}

double json_number(const nlohmann::json& j) {
  return j.is_null() ? -INFINITY : j.get<double>();  // metrics.json writes -inf as null
}

TEST(EvalRocProc, AucDelongIntervalAndPairedTestMatchPRoc) {
  std::string skip;
  const auto proc = run_proc(skip);
  if (!skip.empty()) GTEST_SKIP() << skip;
  for (const ProcSpec& s : proc_specs()) {
    SCOPED_TRACE(s.file);
    ASSERT_TRUE(proc.count(s.file));
    const auto& want = proc.at(s.file);
    TempDir out("proc");
    RocEvalOptions o;
    o.csv = fixtures_dir() / s.file;
    o.out_dir = out.path();
    o.label_column = s.label;
    o.score_column = s.score;
    if (!s.score_b.empty()) o.compare = std::make_pair(s.score, s.score_b);
    const auto st = run_roc_eval(o);
    ASSERT_TRUE(st.ok()) << st.error().message();
    const auto m = nlohmann::json::parse(hilum::testing::read_text(out / "metrics.json"));
    constexpr double kTol = 1e-6;  // the contract; observed differences are ~1e-15
    EXPECT_NEAR(m["auc"].get<double>(), want.at("auc"), kTol);
    EXPECT_NEAR(m["ci_low"].get<double>(), want.at("ci_low"), kTol);
    EXPECT_NEAR(m["ci_high"].get<double>(), want.at("ci_high"), kTol);
    EXPECT_NEAR(m["auc_variance"].get<double>(), want.at("variance"), kTol);
    const double t = json_number(m["youden"]["threshold"]);
    if (std::isinf(want.at("youden_threshold"))) {
      EXPECT_EQ(t, want.at("youden_threshold"));
    } else {
      EXPECT_NEAR(t, want.at("youden_threshold"), kTol);
    }
    EXPECT_NEAR(m["youden"]["sensitivity"].get<double>(), want.at("youden_sensitivity"), kTol);
    EXPECT_NEAR(m["youden"]["specificity"].get<double>(), want.at("youden_specificity"), kTol);
    if (!s.score_b.empty()) {
      const auto& c = m["compare"];
      EXPECT_NEAR(c["auc_a"].get<double>(), want.at("auc"), kTol);
      EXPECT_NEAR(c["auc_b"].get<double>(), want.at("auc_b"), kTol);
      EXPECT_NEAR(c["ci_b"][0].get<double>(), want.at("ci_low_b"), kTol);
      EXPECT_NEAR(c["ci_b"][1].get<double>(), want.at("ci_high_b"), kTol);
      EXPECT_NEAR(c["z"].get<double>(), want.at("z"), kTol);
      EXPECT_NEAR(c["p_value"].get<double>(), want.at("p_value"), kTol);
    }
  }
}

}  // namespace
}  // namespace hilum
