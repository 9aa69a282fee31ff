#include "model/gemm.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "model/parallel.h"

// The v8 helpers pass 32-byte vectors by value; in the non-AVX clone GCC warns
// that the ABI differs, which does not matter for these internal functions.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace hilum {
namespace {

constexpr int64_t kMR = 6;    // rows of C per micro-kernel
constexpr int64_t kNR = 16;   // columns of C per micro-kernel (two 8-float vectors)
constexpr int64_t kKC = 256;  // depth of a packed block
constexpr int64_t kMC = 72;   // rows of A per packed block (multiple of kMR)
constexpr int64_t kNC = 1024; // columns of B per packed block (multiple of kNR)

using v8 = float __attribute__((vector_size(32)));

// Always inlined: called from the target_clones micro-kernel, an out-of-line
// copy (unoptimized builds) would pass the 32-byte vectors under the default
// ABI while the AVX2 clone expects them in registers.
__attribute__((always_inline)) inline v8 load8(const float* p) {
  v8 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
__attribute__((always_inline)) inline void store8(float* p, v8 v) { std::memcpy(p, &v, sizeof v); }

// acc[MR x NR] = sum_k a[k*MR + i] * b[k*NR + j] for packed panels a, b.
__attribute__((target_clones("arch=x86-64-v3", "default")))
void micro_kernel(int64_t kc, const float* a, const float* b, float* acc) {
  v8 c[kMR][2] = {};
  for (int64_t k = 0; k < kc; ++k) {
    const v8 b0 = load8(b + k * kNR);
    const v8 b1 = load8(b + k * kNR + 8);
    const float* ak = a + k * kMR;
    for (int i = 0; i < kMR; ++i) {
      const v8 ai = v8{} + ak[i];
      c[i][0] += ai * b0;
      c[i][1] += ai * b1;
    }
  }
  for (int i = 0; i < kMR; ++i) {
    store8(acc + i * kNR, c[i][0]);
    store8(acc + i * kNR + 8, c[i][1]);
  }
}

// Packs B[pc:pc+kc, jc:jc+nc] (of op(B)) into panels of kNR columns, zero-padded.
void pack_b(bool trans_b, const float* B, int64_t ldb, int64_t pc, int64_t kc, int64_t jc, int64_t nc,
            float* out) {
  const int64_t panels = (nc + kNR - 1) / kNR;
  parallel_for(panels, 1, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      float* dst = out + p * kc * kNR;
      const int64_t j0 = jc + p * kNR;
      const int64_t w = std::min(kNR, jc + nc - j0);
      for (int64_t k = 0; k < kc; ++k) {
        float* row = dst + k * kNR;
        if (!trans_b) {
          const float* src = B + (pc + k) * ldb + j0;
          for (int64_t j = 0; j < w; ++j) row[j] = src[j];
        } else {
          for (int64_t j = 0; j < w; ++j) row[j] = B[(j0 + j) * ldb + pc + k];
        }
        for (int64_t j = w; j < kNR; ++j) row[j] = 0;
      }
    }
  });
}

// Packs A[ic:ic+mc, pc:pc+kc] into panels of kMR rows, zero-padded.
void pack_a(const float* A, int64_t lda, int64_t ic, int64_t mc, int64_t pc, int64_t kc, float* out) {
  const int64_t panels = (mc + kMR - 1) / kMR;
  for (int64_t p = 0; p < panels; ++p) {
    float* dst = out + p * kc * kMR;
    const int64_t i0 = ic + p * kMR;
    const int64_t h = std::min(kMR, ic + mc - i0);
    for (int64_t k = 0; k < kc; ++k) {
      for (int64_t i = 0; i < h; ++i) dst[k * kMR + i] = A[(i0 + i) * lda + pc + k];
      for (int64_t i = h; i < kMR; ++i) dst[k * kMR + i] = 0;
    }
  }
}

}  // namespace

void sgemm(bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
           const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  // Scale (or clear) C first; the blocked loop then only accumulates.
  parallel_for(M, std::max<int64_t>(1, 4096 / std::max<int64_t>(N, 1)), [&](int64_t r0, int64_t r1) {
    for (int64_t i = r0; i < r1; ++i) {
      float* row = C + i * ldc;
      if (beta == 0) {
        std::fill(row, row + N, 0.0f);
      } else if (beta != 1) {
        for (int64_t j = 0; j < N; ++j) row[j] *= beta;
      }
    }
  });
  if (K <= 0 || alpha == 0) return;

  std::vector<float> bpack(static_cast<size_t>(kKC * ((std::min(N, kNC) + kNR - 1) / kNR) * kNR));
  for (int64_t jc = 0; jc < N; jc += kNC) {
    const int64_t nc = std::min(kNC, N - jc);
    const int64_t npanels = (nc + kNR - 1) / kNR;
    for (int64_t pc = 0; pc < K; pc += kKC) {
      const int64_t kc = std::min(kKC, K - pc);
      pack_b(trans_b, B, ldb, pc, kc, jc, nc, bpack.data());
      const int64_t mblocks = (M + kMC - 1) / kMC;
      // Parallel over (row block, column panel group) so that small M still
      // keeps every thread busy.
      const int64_t ngroups = std::max<int64_t>(1, std::min<int64_t>(npanels, 2 * num_threads() / std::max<int64_t>(1, mblocks) + 1));
      const int64_t panels_per_group = (npanels + ngroups - 1) / ngroups;
      parallel_for(mblocks * ngroups, 1, [&](int64_t t0, int64_t t1) {
        std::vector<float> apack(static_cast<size_t>(kMC * kKC));
        alignas(32) float acc[kMR * kNR];
        int64_t packed_block = -1;
        for (int64_t t = t0; t < t1; ++t) {
          const int64_t mb = t / ngroups;
          const int64_t g = t % ngroups;
          const int64_t ic = mb * kMC;
          const int64_t mc = std::min(kMC, M - ic);
          if (packed_block != mb) {
            pack_a(A, lda, ic, mc, pc, kc, apack.data());
            packed_block = mb;
          }
          const int64_t p_begin = g * panels_per_group;
          const int64_t p_end = std::min(npanels, p_begin + panels_per_group);
          for (int64_t p = p_begin; p < p_end; ++p) {
            const int64_t j0 = jc + p * kNR;
            const int64_t w = std::min(kNR, jc + nc - j0);
            for (int64_t ir = 0; ir < mc; ir += kMR) {
              const int64_t h = std::min(kMR, mc - ir);
              micro_kernel(kc, apack.data() + (ir / kMR) * kc * kMR, bpack.data() + p * kc * kNR, acc);
              for (int64_t i = 0; i < h; ++i) {
                float* crow = C + (ic + ir + i) * ldc + j0;
                const float* arow = acc + i * kNR;
                for (int64_t j = 0; j < w; ++j) crow[j] += alpha * arow[j];
              }
            }
          }
        }
      });
    }
  }
}

void sgemm_reference(bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                     const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i) {
    for (int64_t j = 0; j < N; ++j) {
      double s = 0;
      for (int64_t k = 0; k < K; ++k) {
        const float b = trans_b ? B[j * ldb + k] : B[k * ldb + j];
        s += static_cast<double>(A[i * lda + k]) * b;
      }
      const double prev = beta == 0 ? 0.0 : static_cast<double>(beta) * C[i * ldc + j];
      C[i * ldc + j] = static_cast<float>(alpha * s + prev);
    }
  }
}

}  // namespace hilum
