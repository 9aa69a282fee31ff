// Routing kernels of the text engine: the router's top-k (softmax or sigmoid
// scores, group-limited selection, score-correction bias, renormalisation and
// scaling; CPU reference model/moe/router.h), grouping of (token, expert) pairs
// by expert, padded gathers for batched expert GEMMs, and the weighted combine
// of expert outputs into the residual stream.
#pragma once

#include <climits>

#include "cuda/moe_common.cuh"

namespace hilum::cuda::moe::detail {

constexpr int kRouterWarps = 4;  // tokens per block

// Warp-wide argmax of (value, index); ties go to the lower index. Every lane
// gets the winner.
__device__ __forceinline__ void warp_argmax(float& v, int& i) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, v, o);
    const int oi = __shfl_xor_sync(0xffffffffu, i, o);
    if (ov > v || (ov == v && oi < i)) {
      v = ov;
      i = oi;
    }
  }
}

// Index of the largest of the n values (lower index on ties), over the warp.
__device__ __forceinline__ int warp_select(const float* values, int n) {
  const int lane = threadIdx.x & 31;
  float best = -INFINITY;
  int idx = INT_MAX;
  for (int e = lane; e < n; e += 32) {
    if (values[e] > best || (values[e] == best && e < idx)) {
      best = values[e];
      idx = e;
    }
  }
  warp_argmax(best, idx);
  return idx;
}

// One warp: the scores of logits lg[E] (softmax or sigmoid) into score[E],
// and what the top-k picks from into choice[E] (with the score-correction
// bias; groups outside the kept ones at -inf).
__device__ __forceinline__ void route_choices(const RouterParams& p, const float* lg, const float* score_bias,
                                              float* score, float* choice) {
  const int lane = threadIdx.x & 31;
  const int E = p.num_experts;
  if (p.kind == RouterKind::kSigmoidNoAuxTc) {
    for (int e = lane; e < E; e += 32) {
      score[e] = 1.0f / (1.0f + expf(-lg[e]));
      choice[e] = score[e] + (score_bias ? score_bias[e] : 0.0f);
    }
  } else {
    float mx = -INFINITY;
    for (int e = lane; e < E; e += 32) mx = fmaxf(mx, lg[e]);
    mx = warp_max(mx);
    float sum = 0.0f;
    for (int e = lane; e < E; e += 32) sum += expf(lg[e] - mx);
    sum = warp_sum(sum);
    const float inv = 1.0f / sum;
    for (int e = lane; e < E; e += 32) {
      score[e] = expf(lg[e] - mx) * inv;
      choice[e] = score[e];
    }
  }
  __syncwarp();
  if (p.kind == RouterKind::kSoftmaxGroupLimited || p.kind == RouterKind::kSigmoidNoAuxTc) {
    const int G = p.n_group, per = E / G;
    float gs = -INFINITY;  // lane g holds group g's score
    if (lane < G) {
      const float* c = choice + lane * per;
      if (p.kind == RouterKind::kSoftmaxGroupLimited) {
        for (int i = 0; i < per; ++i) gs = fmaxf(gs, c[i]);
      } else {
        float a = -INFINITY, b = -INFINITY;
        for (int i = 0; i < per; ++i) {
          if (c[i] > a) {
            b = a;
            a = c[i];
          } else if (c[i] > b) {
            b = c[i];
          }
        }
        gs = a + b;
      }
    }
    unsigned kept = 0;
    for (int k = 0; k < p.topk_group; ++k) {
      float v = gs;
      int i = lane < G ? lane : INT_MAX;
      warp_argmax(v, i);
      kept |= 1u << i;
      if (lane == i) gs = -INFINITY;
    }
    for (int e = lane; e < E; e += 32) {
      if (!((kept >> (e / per)) & 1u)) choice[e] = -INFINITY;
    }
    __syncwarp();
  }
}

// Lane k < K of a warp with the k-th choice my_sel: ids[k] and its weight
// (renormalised and scaled as the router kind says).
__device__ __forceinline__ void route_weights(const RouterParams& p, const float* score, int my_sel, int32_t* ids,
                                              float* weights) {
  const int lane = threadIdx.x & 31;
  const int K = p.top_k;
  float w = lane < K ? score[my_sel] : 0.0f;
  const float sum = warp_sum(w);
  if (lane < K) {
    switch (p.kind) {
      case RouterKind::kSoftmaxTopK:
        if (p.norm_topk_prob) w = w / sum;
        break;
      case RouterKind::kSoftmaxGreedy:
      case RouterKind::kSoftmaxGroupLimited:
        w *= p.routed_scaling_factor;
        break;
      case RouterKind::kSigmoidNoAuxTc:
        w = (p.norm_topk_prob ? w / (sum + 1e-20f) : w) * p.routed_scaling_factor;
        break;
    }
    ids[lane] = my_sel;
    weights[lane] = w;
  }
  __syncwarp();
}

// route_row() with the whole block (E <= 256, blockDim.x a multiple of 32):
// warp 0 scores, then every thread takes part in the ranks
// (Q threads per expert, each comparing with a share of the others, their
// counts summed by shuffles), then warp 0 writes the picks. score, choice: E
// floats, picked: K ints, all in shared memory. Every thread calls it.
__device__ __forceinline__ void route_row_block(const RouterParams& p, const float* lg, const float* score_bias,
                                                float* score, float* choice, int* picked, int32_t* ids,
                                                float* weights) {
  const int E = p.num_experts, K = p.top_k;
  if (threadIdx.x < 32) route_choices(p, lg, score_bias, score, choice);
  __syncthreads();
  int P = 1;
  while (P < E) P <<= 1;
  const int Q = min(32, max(1, static_cast<int>(blockDim.x) / P));  // a power of two
  const int span = (E + Q - 1) / Q;
  for (int base = 0; base < P * Q; base += blockDim.x) {
    const int i = base + threadIdx.x, e = i / Q, q = i % Q;
    int n = 0;
    float v = 0.0f;
    if (e < E) {
      v = choice[e];
      const int j1 = min(E, (q + 1) * span);
      for (int j = q * span; j < j1; ++j) {
        const float u = choice[j];
        n += (u > v || (u == v && j < e)) ? 1 : 0;
      }
    }
    for (int o = 1; o < Q; o <<= 1) n += __shfl_xor_sync(0xffffffffu, n, o);
    if (e < E && q == 0 && n < K) picked[n] = e;
  }
  __syncthreads();
  if (threadIdx.x < 32) route_weights(p, score, threadIdx.x < K ? picked[threadIdx.x] : -1, ids, weights);
}

// Routes one token with one full warp: logits lg[E] (any memory) -> ids[K],
// weights[K]. score and choice: E floats each of scratch private to the warp.
__device__ __forceinline__ void route_row(const RouterParams& p, const float* lg, const float* score_bias,
                                          float* score, float* choice, int32_t* ids, float* weights) {
  const int lane = threadIdx.x & 31;
  const int E = p.num_experts, K = p.top_k;
  route_choices(p, lg, score_bias, score, choice);
  // Top-k, best first (lower index on ties). Up to 256 experts: every
  // element's rank among all (independent compares, no serial rounds), the
  // K best written to choice[0:K] as indices; beyond, K rounds of warp argmax.
  int my_sel = -1;  // lane k < K: the k-th choice
  if (E <= 256) {
    int rank[8];
    int cand[8];
#pragma unroll
    for (int r = 0; r < 8; ++r) {
      const int e = lane + 32 * r;
      rank[r] = 0;
      cand[r] = e;
      if (e < E) {
        const float v = choice[e];
        int n = 0;
#pragma unroll 8
        for (int j = 0; j < E; ++j) {
          const float u = choice[j];
          n += (u > v || (u == v && j < e)) ? 1 : 0;
        }
        rank[r] = n;
      }
    }
    __syncwarp();
    int* picked = reinterpret_cast<int*>(choice);
#pragma unroll
    for (int r = 0; r < 8; ++r) {
      if (cand[r] < E && rank[r] < K) picked[rank[r]] = cand[r];
    }
    __syncwarp();
    if (lane < K) my_sel = picked[lane];
    __syncwarp();
  } else {
    for (int k = 0; k < K; ++k) {
      const int idx = warp_select(choice, E);
      if (lane == k) my_sel = idx;
      __syncwarp();
      if (lane == (idx & 31)) choice[idx] = -INFINITY;
      __syncwarp();
    }
  }
  route_weights(p, score, my_sel, ids, weights);
}

__global__ void route_kernel(RouterParams p, const float* logits, int64_t T, const float* score_bias,
                             int32_t* ids, float* weights);
__global__ void group_by_expert_kernel(const int32_t* ids, int64_t TK, int E, int32_t* offsets,
                                       int32_t* sorted_pairs, int32_t* pair_pos, int32_t* max_count,
                                       int32_t* active, int32_t* tile_offsets, int tile_rows);
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
