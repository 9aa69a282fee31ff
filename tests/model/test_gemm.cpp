#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <random>
#include <vector>

#include "model/gemm.h"
#include "model/parallel.h"

namespace hilum {
namespace {

struct Case {
  int64_t M, N, K;
  bool trans_b;
  float alpha, beta;
};

// Awkward sizes: primes, one less/more than block multiples, degenerate shapes.
const Case kCases[] = {
    {1, 1, 1, false, 1, 0},     {1, 17, 5, true, 1, 0},     {7, 1, 9, false, 1, 0},
    {6, 16, 256, false, 1, 0},  {5, 15, 255, true, 1, 1},   {73, 1025, 257, false, 0.5f, 0},
    {71, 33, 513, true, 1, 2},  {200, 48, 3, true, -1, 0.25f}, {13, 130, 0, false, 1, 0.5f},
    {1, 2048, 768, true, 1, 0}, {129, 31, 100, false, 1, 0},
};

TEST(Gemm, MatchesReferenceOnAwkwardSizes) {
  std::mt19937 rng(42);
  std::uniform_real_distribution<float> dist(-1, 1);
  for (const Case& c : kCases) {
    const int64_t lda = c.K + 3, ldb = (c.trans_b ? c.K : c.N) + 1, ldc = c.N + 2;
    std::vector<float> A(c.M * lda), B((c.trans_b ? c.N : c.K) * ldb), C(c.M * ldc);
    for (auto& v : A) v = dist(rng);
    for (auto& v : B) v = dist(rng);
    for (auto& v : C) v = dist(rng);
    std::vector<float> want = C;
    sgemm(c.trans_b, c.M, c.N, c.K, c.alpha, A.data(), lda, B.data(), ldb, c.beta, C.data(), ldc);
    sgemm_reference(c.trans_b, c.M, c.N, c.K, c.alpha, A.data(), lda, B.data(), ldb, c.beta, want.data(), ldc);
    for (int64_t i = 0; i < c.M; ++i) {
      for (int64_t j = 0; j < ldc; ++j) {
        const float ref = want[i * ldc + j];
        // fp32 accumulation over K terms of magnitude <= 1: atol grows like sqrt(K) * eps.
        const float tol = 1e-5f * std::sqrt(static_cast<float>(c.K + 1)) * 4 + 1e-5f * std::fabs(ref);
        ASSERT_NEAR(C[i * ldc + j], ref, tol) << c.M << "x" << c.N << "x" << c.K << " at " << i << "," << j;
      }
    }
  }
}

TEST(Gemm, BetaZeroIgnoresNaNInOutput) {
  std::vector<float> A{1, 2}, B{3, 4}, C{NAN};
  sgemm(false, 1, 1, 2, 1, A.data(), 2, B.data(), 1, 0, C.data(), 1);
  EXPECT_EQ(C[0], 11.0f);
}

TEST(Parallel, CoversRangeExactlyOnceAndNests) {
  std::vector<int> hits(1000, 0);
  parallel_for(1000, 7, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      ++hits[i];
      parallel_for(3, 1, [&](int64_t, int64_t) {});  // nested: runs inline
    }
  });
  for (int h : hits) EXPECT_EQ(h, 1);
  for (int rep = 0; rep < 200; ++rep) {  // many short regions back to back
    std::atomic<int> n{0};
    parallel_for(64, 1, [&](int64_t b, int64_t e) { n += static_cast<int>(e - b); });
    ASSERT_EQ(n.load(), 64);
  }
}

}  // namespace
}  // namespace hilum
