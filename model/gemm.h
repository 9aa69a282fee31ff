// Single-precision matrix multiply on the CPU (the fp32 reference path's
// workhorse: linear layers, attention, im2col convolutions).
//
//   C[M, N] = alpha * A[M, K] * op(B) + beta * C
//
// All matrices are row-major with leading dimensions lda/ldb/ldc (elements).
// op(B) = B[K, N] when trans_b is false, or B[N, K]^T when true (the layout of
// a PyTorch nn.Linear weight). beta == 0 ignores C's previous contents (NaNs
// included). Runs on the hilum::parallel_for pool; cache-blocked and packed
// with an AVX2/FMA micro-kernel chosen at run time where the CPU has it.
#pragma once

#include <cstdint>

namespace hilum {

void sgemm(bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
           const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// Plain triple loop (double accumulation), the reference the tests compare against.
void sgemm_reference(bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                     const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

}  // namespace hilum
