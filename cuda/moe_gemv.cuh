// Bandwidth-bound matrix-vector kernels for decoding (up to 16 activation rows):
// a dense GEMV over a bf16 weight, and the grouped expert FFN that reads each
// routed expert's weights once for all tokens routed to it. One warp per output
// row, 16-byte weight loads (8 bf16), fp32 accumulation.
#pragma once

#include "cuda/moe_common.cuh"

namespace hilum::cuda::moe::detail {

template <int MAXT>
__global__ void gemv_kernel(const uint16_t* __restrict__ W, const float* __restrict__ bias, int64_t N,
                            int64_t K, const float* __restrict__ x, int64_t ldx, int T, float* y, int64_t ldy,
                            int accumulate);

template <int MAXP>
__global__ void expert_gate_up_kernel(int act, const uint16_t* __restrict__ gate_up, int64_t H, int64_t I,
                                      const float* __restrict__ x, int64_t ldx, const int32_t* offsets,
                                      const int32_t* active, const int32_t* sorted_pairs, int K, float* h);

template <int MAXP>
__global__ void expert_down_kernel(const uint16_t* __restrict__ down, int64_t H, int64_t I,
                                   const float* __restrict__ h, const int32_t* offsets, const int32_t* active,
                                   float* y);

}  // namespace hilum::cuda::moe::detail
