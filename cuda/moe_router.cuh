// Routing kernels of the text engine: the router's top-k (softmax or sigmoid
// scores, group-limited selection, score-correction bias, renormalisation and
// scaling; CPU reference model/moe/router.h), grouping of (token, expert) pairs
// by expert, padded gathers for batched expert GEMMs, and the weighted combine
// of expert outputs into the residual stream.
#pragma once

#include "cuda/moe_common.cuh"

namespace hilum::cuda::moe::detail {

constexpr int kRouterWarps = 4;  // tokens per block

__global__ void route_kernel(RouterParams p, const float* logits, int64_t T, const float* score_bias,
                             int32_t* ids, float* weights);
__global__ void group_by_expert_kernel(const int32_t* ids, int64_t TK, int E, int32_t* offsets,
                                       int32_t* sorted_pairs, int32_t* pair_pos, int32_t* max_count,
                                       int32_t* active);
__global__ void gather_padded_kernel(const float* x, int64_t ldx, int64_t H, const int32_t* offsets,
                                     const int32_t* sorted_pairs, int K, int E, int64_t max_rows,
                                     uint16_t* xp);
__global__ void glu_padded_kernel(int act, const float* gu, int E, int64_t max_rows, int64_t I,
                                  const int32_t* offsets, uint16_t* hp);
__global__ void combine_kernel(float* x, int64_t ldx, int64_t H, int K, const int32_t* ids,
                               const float* weights, const int32_t* pair_pos, const int32_t* offsets,
                               int64_t padded_rows, const float* y, const float* shared,
                               const float* shared_gate_logit);

}  // namespace hilum::cuda::moe::detail
