#include "app/eval_stats.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <numeric>

namespace hilum {

uint64_t SplitMix64::next() {
  state_ += 0x9E3779B97F4A7C15ULL;
  uint64_t z = state_;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

uint64_t SplitMix64::index(uint64_t n) {
  assert(n >= 1);
  // 2^64 mod n, computed without 128-bit arithmetic: (2^64 - n) mod n.
  const uint64_t rejected_below_wrap = (0 - n) % n;
  const uint64_t limit = 0 - rejected_below_wrap;  // 2^64 - (2^64 mod n), 0 meaning 2^64
  while (true) {
    const uint64_t x = next();
    if (limit == 0 || x < limit) return x % n;
  }
}

double normal_cdf(double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); }

double normal_two_sided_p(double z) {
  if (std::isnan(z)) return z;
  return std::erfc(std::fabs(z) / std::sqrt(2.0));
}

double quantile_type7(std::vector<double> values, double p) {
  assert(!values.empty());
  std::sort(values.begin(), values.end());
  const double h = (static_cast<double>(values.size()) - 1.0) * p;
  const size_t lo = static_cast<size_t>(std::floor(h));
  const size_t hi = std::min(lo + 1, values.size() - 1);
  return values[lo] + (h - static_cast<double>(lo)) * (values[hi] - values[lo]);
}

std::vector<double> midranks(const std::vector<double>& values) {
  const size_t n = values.size();
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return values[a] < values[b]; });
  std::vector<double> ranks(n);
  size_t i = 0;
  while (i < n) {
    size_t j = i;
    while (j < n && values[order[j]] == values[order[i]]) ++j;
    // Positions i..j-1 (0-based) share the rank mean of i+1..j.
    const double rank = 0.5 * static_cast<double>(i + 1 + j);
    for (size_t k = i; k < j; ++k) ranks[order[k]] = rank;
    i = j;
  }
  return ranks;
}

}  // namespace hilum
