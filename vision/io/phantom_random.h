// Deterministic randomness for the phantom generator: every object draws from
// its own stream derived from (seed, purpose, index), so results never depend
// on thread scheduling or on the order other objects were drawn in.
#pragma once

#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

#include "model/random.h"

namespace hilum::phantom {

using hilum::splitmix64;

// A well-mixed 64-bit hash of two words.
inline uint64_t hash_mix(uint64_t a, uint64_t b) {
  uint64_t s = a ^ (b * 0xD6E8FEB86659FD93ull + 0x632BE59BD9B4E019ull);
  splitmix64(s);
  return splitmix64(s);
}

// FNV-1a of a short purpose label, so stream names read as words in the code.
constexpr uint64_t stream_id(std::string_view name) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (char c : name) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001B3ull;
  return h;
}

// xoshiro256** seeded through splitmix64 (model/random.h), with the draws the
// generator needs.
class Rng : public Xoshiro256 {
 public:
  explicit Rng(uint64_t seed) : Xoshiro256(seed) {}
  Rng(uint64_t seed, std::string_view purpose, uint64_t index = 0)
      : Rng(hash_mix(hash_mix(seed, stream_id(purpose)), index)) {}

  using Xoshiro256::uniform;  // [0, 1)
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  int integer(int lo, int hi) {  // inclusive
    return lo + static_cast<int>(bits() % static_cast<uint64_t>(hi - lo + 1));
  }
  bool chance(double p) { return uniform() < p; }
  double normal() {  // Box-Muller (object-level draws only; not per voxel)
    double u1 = uniform();
    if (u1 < 1e-300) u1 = 1e-300;
    const double u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }
  // Cheap approximately normal value (sum of four 16-bit uniforms, unit
  // variance) for per-voxel noise, which the reconstruction blur makes
  // Gaussian anyway.
  float fast_normal() {
    const uint64_t b = bits();
    const int sum = static_cast<int>(b & 0xFFFF) + static_cast<int>((b >> 16) & 0xFFFF) +
                    static_cast<int>((b >> 32) & 0xFFFF) + static_cast<int>(b >> 48);
    // Four U(0, 65536) have mean 131070 and variance 4 * 65536^2 / 12.
    return static_cast<float>(sum - 131070) * (1.0f / 37837.23f);
  }
  // Index drawn with the given relative weights.
  size_t weighted(std::initializer_list<double> weights) {
    double total = 0;
    for (double w : weights) total += w;
    double u = uniform() * total;
    size_t i = 0;
    for (double w : weights) {
      if (u < w) return i;
      u -= w;
      ++i;
    }
    return weights.size() - 1;
  }
  template <typename T, size_t N>
  const T& pick(const T (&items)[N]) {
    return items[bits() % N];
  }

};

// A DICOM UID under the 2.25 root (ITU-T X.667: the decimal value of a UUID)
// from a 128-bit hash, with the RFC 9562 version-8 ("custom") and variant bits
// set. Deterministic in (hi, lo).
inline std::string uuid_uid(uint64_t hi, uint64_t lo) {
  hi = (hi & ~0xF000ull) | 0x8000ull;                       // version 8
  lo = (lo & 0x3FFFFFFFFFFFFFFFull) | 0x8000000000000000ull;  // variant 10
  unsigned __int128 v = (static_cast<unsigned __int128>(hi) << 64) | lo;
  std::string digits;
  while (v > 0) {
    digits.insert(digits.begin(), static_cast<char>('0' + static_cast<int>(v % 10)));
    v /= 10;
  }
  return "2.25." + digits;
}

}  // namespace hilum::phantom
