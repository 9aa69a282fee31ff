// Small statistics helpers shared by the ROC and FROC evaluations: a seeded
// random generator whose stream is the same on every platform (so bootstrap
// intervals are reproducible from --seed and a Python reference can replay
// them), the standard normal distribution and sample quantiles.
#pragma once

#include <cstdint>
#include <vector>

namespace hilum {

// SplitMix64 (Steele, Lea & Flood 2014): state += 0x9E3779B97F4A7C15, then two
// xor-shift-multiply rounds. Not for cryptography.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t next();
  // A uniform index in [0, n) for n >= 1, without modulo bias: draws until the
  // value is below the largest multiple of n that fits in 2^64, then takes it
  // modulo n.
  uint64_t index(uint64_t n);

 private:
  uint64_t state_;
};

// Standard normal cumulative distribution Phi(x).
double normal_cdf(double x);
// Two-sided p value of a standard normal statistic: 2 * Phi(-|z|).
double normal_two_sided_p(double z);
// Phi^-1(0.975): the 95 % two-sided normal quantile R's qnorm(0.975) gives.
inline constexpr double kNormalQuantile975 = 1.959963984540054;

// Sample quantile by linear interpolation between order statistics (R's
// default, type 7): sorts a copy. p in [0, 1]; `values` must not be empty.
double quantile_type7(std::vector<double> values, double p);

// Average ranks (1-based) with ties sharing the mean of their ranks.
std::vector<double> midranks(const std::vector<double>& values);

}  // namespace hilum
