// Seeded pseudo-random numbers that are the same on every platform and build
// (std::mt19937's distributions are not): splitmix64 to spread a seed, and
// xoshiro256** (Blackman and Vigna) for the stream. For reproducible sampling
// and synthetic data, not for anything secret. Not thread-safe: one owner.
#pragma once

#include <cstdint>

namespace hilum {

// Advances `state` and returns its next well-mixed 64-bit output.
inline uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

class Xoshiro256 {
 public:
  // The four state words are splitmix64 outputs of `seed`.
  explicit Xoshiro256(uint64_t seed) {
    uint64_t s = seed;
    for (uint64_t& w : s_) w = splitmix64(s);
  }

  uint64_t bits() {
    const uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

  // [0, 1) from the top 53 bits.
  double uniform() { return static_cast<double>(bits() >> 11) * 0x1.0p-53; }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

}  // namespace hilum
