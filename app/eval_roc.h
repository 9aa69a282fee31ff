// ROC analysis of a continuous score against a binary truth: the empirical
// AUC, DeLong's variance and interval (computed with the fast algorithm of Sun
// & Xu 2014), DeLong's paired test of two scores on the same subjects, a
// stratified bootstrap interval and the Youden operating point.
//
// Conventions follow R's pROC with direction "<": a higher score means "more
// likely positive"; a positive and a negative with equal scores count 1/2 in
// the AUC; thresholds lie halfway between adjacent distinct scores, and a
// subject is called positive when its score is above the threshold.
//
// Every function here expects at least two positives and two negatives (the
// callers check and report bad input); they are pure and thread-safe.
#pragma once

#include <cstdint>
#include <vector>

namespace hilum {

// Scores of one rater/model, split by truth. For paired analyses the i-th
// positive (negative) of two samples is the same subject.
struct ScoredSample {
  std::vector<double> positives;
  std::vector<double> negatives;
};

// AUC = P(score of a positive > score of a negative) + 1/2 P(equal), the
// Mann-Whitney statistic divided by (#positives * #negatives).
double auc_mann_whitney(const ScoredSample& sample);

struct DelongEstimate {
  std::vector<double> auc;                      // one per sample
  std::vector<std::vector<double>> covariance;  // DeLong covariance matrix of the AUCs
};
// Fast DeLong (Sun & Xu 2014): midranks of the pooled, positive and negative
// scores give the structural components V10 (per positive) and V01 (per
// negative) of every sample at once; covariance = S10/m + S01/n with sample
// covariances S10, S01 (denominators m-1, n-1). All samples share the subjects
// (same sizes).
DelongEstimate fast_delong(const std::vector<ScoredSample>& samples);

struct AucInterval {
  double auc = 0;
  double variance = 0;
  double ci_low = 0;  // auc -/+ 1.96 sqrt(variance), clipped to [0, 1] as pROC does
  double ci_high = 0;
};
AucInterval delong_interval(const ScoredSample& sample);

struct PairedDelongTest {
  double auc_a = 0, auc_b = 0;
  double z = 0;        // (auc_a - auc_b) / sd of the difference; 0 when both are 0; +-inf when only sd is 0
  double p_value = 1;  // two-sided, 2 * Phi(-|z|)
};
PairedDelongTest delong_paired_test(const ScoredSample& a, const ScoredSample& b);

struct BootstrapInterval {
  double ci_low = 0, ci_high = 0;  // 2.5 % and 97.5 % quantiles (type 7) of the replicate AUCs
  int replicates = 0;
};
// Stratified bootstrap: every replicate draws #positives positives and
// #negatives negatives with replacement (SplitMix64 seeded with `seed`; the
// positives of a replicate are drawn before its negatives), so the result is
// the same for the same seed on every machine.
BootstrapInterval bootstrap_auc_interval(const ScoredSample& sample, int replicates, uint64_t seed);

struct RocPoint {
  double threshold;    // -inf, midpoints between distinct scores, +inf (ascending)
  double sensitivity;  // fraction of positives with score > threshold
  double specificity;  // fraction of negatives with score < threshold
};
// The empirical ROC curve, one point per threshold, from (sens 1, spec 0) to (0, 1).
std::vector<RocPoint> roc_curve(const ScoredSample& sample);

// The curve point that maximises Youden's index, sensitivity + specificity - 1,
// taking the first (lowest threshold) of tied points as pROC lists it first.
// When no threshold beats chance this is the point at -inf (index 0: every
// subject called positive).
RocPoint youden_point(const std::vector<RocPoint>& curve);

}  // namespace hilum
