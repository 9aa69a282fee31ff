// On/off switches read from the environment, for side-by-side timing of a
// code path against its alternative (HILUM_KEEP_LARGE_BUFFERS=0,
// HILUM_CANDIDATES_ON_CPU=1, ...). Header-only: hilum_cuda uses it too.
#pragma once

#include <charconv>
#include <cstdlib>
#include <string_view>

namespace hilum {

// "0" is off, "1" is on; unset or anything else is `fallback`.
inline bool env_switch(const char* name, bool fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr) return fallback;
  const std::string_view s(v);
  return s == "1" ? true : s == "0" ? false : fallback;
}

// A whole number from 1 to `most` (decimal digits only); unset or anything else is `fallback`.
inline int env_count(const char* name, int fallback, int most = 1 << 20) {
  const char* v = std::getenv(name);
  if (v == nullptr) return fallback;
  const std::string_view s(v);
  int n = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty() || s[0] == '-' || s[0] == '+') return fallback;
  return n >= 1 && n <= most ? n : fallback;
}

// A decimal number in [lo, hi] (digits and one point, no sign or exponent); unset or anything else is
// `fallback`.
inline double env_number(const char* name, double fallback, double lo, double hi) {
  const char* v = std::getenv(name);
  if (v == nullptr) return fallback;
  const std::string_view s(v);
  if (s.empty() || s.find_first_not_of("0123456789.") != std::string_view::npos) return fallback;
  double x = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), x, std::chars_format::fixed);
  if (ec != std::errc() || end != s.data() + s.size()) return fallback;
  return x >= lo && x <= hi ? x : fallback;
}

}  // namespace hilum
