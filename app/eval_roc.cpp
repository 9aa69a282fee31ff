#include "app/eval_roc.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>

#include "app/eval_stats.h"

namespace hilum {

double auc_mann_whitney(const ScoredSample& s) {
  const size_t m = s.positives.size(), n = s.negatives.size();
  assert(m > 0 && n > 0);
  std::vector<double> pooled(s.positives);
  pooled.insert(pooled.end(), s.negatives.begin(), s.negatives.end());
  const std::vector<double> ranks = midranks(pooled);
  double rank_sum = 0;
  for (size_t i = 0; i < m; ++i) rank_sum += ranks[i];
  const double md = static_cast<double>(m), nd = static_cast<double>(n);
  return (rank_sum - md * (md + 1) / 2) / (md * nd);
}

DelongEstimate fast_delong(const std::vector<ScoredSample>& samples) {
  assert(!samples.empty());
  const size_t k = samples.size();
  const size_t m = samples[0].positives.size(), n = samples[0].negatives.size();
  assert(m >= 2 && n >= 2);
  const double md = static_cast<double>(m), nd = static_cast<double>(n);

  DelongEstimate est;
  est.auc.resize(k);
  std::vector<std::vector<double>> v10(k), v01(k);
  for (size_t r = 0; r < k; ++r) {
    const ScoredSample& s = samples[r];
    assert(s.positives.size() == m && s.negatives.size() == n);
    std::vector<double> pooled(s.positives);
    pooled.insert(pooled.end(), s.negatives.begin(), s.negatives.end());
    const std::vector<double> tz = midranks(pooled);
    const std::vector<double> tx = midranks(s.positives);
    const std::vector<double> ty = midranks(s.negatives);
    double rank_sum = 0;
    for (size_t i = 0; i < m; ++i) rank_sum += tz[i];
    est.auc[r] = rank_sum / md / nd - (md + 1) / (2 * nd);
    // V10[i]: the fraction of negatives below positive i (ties 1/2) = (rank among
    // all - rank among positives) / n. V01[j]: the fraction of positives above
    // negative j.
    v10[r].resize(m);
    v01[r].resize(n);
    for (size_t i = 0; i < m; ++i) v10[r][i] = (tz[i] - tx[i]) / nd;
    for (size_t j = 0; j < n; ++j) v01[r][j] = 1.0 - (tz[m + j] - ty[j]) / md;
  }
  est.covariance.assign(k, std::vector<double>(k, 0.0));
  for (size_t a = 0; a < k; ++a) {
    for (size_t b = a; b < k; ++b) {
      double s10 = 0, s01 = 0;
      for (size_t i = 0; i < m; ++i) s10 += (v10[a][i] - est.auc[a]) * (v10[b][i] - est.auc[b]);
      for (size_t j = 0; j < n; ++j) s01 += (v01[a][j] - est.auc[a]) * (v01[b][j] - est.auc[b]);
      const double c = s10 / (md - 1) / md + s01 / (nd - 1) / nd;
      est.covariance[a][b] = est.covariance[b][a] = c;
    }
  }
  return est;
}

AucInterval delong_interval(const ScoredSample& sample) {
  const DelongEstimate est = fast_delong({sample});
  AucInterval out;
  out.auc = est.auc[0];
  out.variance = std::max(0.0, est.covariance[0][0]);
  const double sd = std::sqrt(out.variance);
  out.ci_low = std::clamp(out.auc - kNormalQuantile975 * sd, 0.0, 1.0);
  out.ci_high = std::clamp(out.auc + kNormalQuantile975 * sd, 0.0, 1.0);
  return out;
}

PairedDelongTest delong_paired_test(const ScoredSample& a, const ScoredSample& b) {
  const DelongEstimate est = fast_delong({a, b});
  PairedDelongTest t;
  t.auc_a = est.auc[0];
  t.auc_b = est.auc[1];
  const double var = est.covariance[0][0] + est.covariance[1][1] - 2 * est.covariance[0][1];
  const double sd = std::sqrt(std::max(0.0, var));
  const double d = t.auc_a - t.auc_b;
  if (sd == 0) {
    // pROC: 0/0 is taken as "no difference"; d/0 stays infinite.
    t.z = d == 0 ? 0.0 : std::copysign(std::numeric_limits<double>::infinity(), d);
  } else {
    t.z = d / sd;
  }
  t.p_value = normal_two_sided_p(t.z);
  return t;
}

BootstrapInterval bootstrap_auc_interval(const ScoredSample& sample, int replicates, uint64_t seed) {
  assert(replicates >= 1);
  SplitMix64 rng(seed);
  const size_t m = sample.positives.size(), n = sample.negatives.size();
  std::vector<double> aucs;
  aucs.reserve(replicates);
  ScoredSample draw;
  draw.positives.resize(m);
  draw.negatives.resize(n);
  for (int r = 0; r < replicates; ++r) {
    for (size_t i = 0; i < m; ++i) draw.positives[i] = sample.positives[rng.index(m)];
    for (size_t j = 0; j < n; ++j) draw.negatives[j] = sample.negatives[rng.index(n)];
    aucs.push_back(auc_mann_whitney(draw));
  }
  BootstrapInterval out;
  out.replicates = replicates;
  out.ci_low = quantile_type7(aucs, 0.025);
  out.ci_high = quantile_type7(aucs, 0.975);
  return out;
}

std::vector<RocPoint> roc_curve(const ScoredSample& s) {
  std::vector<double> pos(s.positives), neg(s.negatives);
  std::sort(pos.begin(), pos.end());
  std::sort(neg.begin(), neg.end());
  std::vector<double> distinct(pos);
  distinct.insert(distinct.end(), neg.begin(), neg.end());
  std::sort(distinct.begin(), distinct.end());
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());

  const double inf = std::numeric_limits<double>::infinity();
  const double md = static_cast<double>(pos.size()), nd = static_cast<double>(neg.size());
  std::vector<RocPoint> curve;
  curve.reserve(distinct.size() + 1);
  curve.push_back({-inf, 1.0, 0.0});
  for (size_t i = 0; i + 1 < distinct.size(); ++i) {
    const double t = (distinct[i] + distinct[i + 1]) / 2;
    // Scores <= distinct[i] are below t, scores >= distinct[i+1] above it.
    const auto pos_below = std::upper_bound(pos.begin(), pos.end(), distinct[i]) - pos.begin();
    const auto neg_below = std::upper_bound(neg.begin(), neg.end(), distinct[i]) - neg.begin();
    curve.push_back({t, (md - static_cast<double>(pos_below)) / md, static_cast<double>(neg_below) / nd});
  }
  curve.push_back({inf, 0.0, 1.0});
  return curve;
}

RocPoint youden_point(const std::vector<RocPoint>& curve) {
  assert(!curve.empty());
  const RocPoint* best = nullptr;
  for (const RocPoint& p : curve) {
    // Equal indices computed from different fractions may differ in the last
    // bit; a margin keeps the first of truly tied points.
    if (!best || p.sensitivity + p.specificity > best->sensitivity + best->specificity + 1e-12) best = &p;
  }
  return best ? *best : curve.front();
}

}  // namespace hilum
