#include <climits>

#include "cuda/moe_router.cuh"

namespace hilum::cuda::moe {
namespace detail {
namespace {

__device__ __forceinline__ int find_expert(const int32_t* offsets, int E, int p) {
  int lo = 0, hi = E - 1;  // the expert e with offsets[e] <= p < offsets[e + 1]
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (offsets[mid] <= p) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  return lo;
}

}  // namespace

// One warp per token; shared memory: 2 * E floats per warp.
__global__ void route_kernel(RouterParams p, const float* logits, int64_t T, const float* score_bias,
                             int32_t* ids, float* weights) {
  extern __shared__ float smem[];
  const int warp = threadIdx.x >> 5;
  const int64_t t = static_cast<int64_t>(blockIdx.x) * kRouterWarps + warp;
  if (t >= T) return;
  float* score = smem + warp * 2 * p.num_experts;
  route_row(p, logits + t * p.num_experts, score_bias, score, score + p.num_experts, ids + t * p.top_k,
            weights + t * p.top_k);
}

// One block of 1024 threads.
__global__ void group_by_expert_kernel(const int32_t* ids, int64_t TK, int E, int32_t* offsets,
                                       int32_t* sorted_pairs, int32_t* pair_pos, int32_t* max_count,
                                       int32_t* active, int32_t* tile_offsets, int tile_rows) {
  extern __shared__ int32_t counts[];  // E counts, then E cursors
  int32_t* cursor = counts + E;
  for (int e = threadIdx.x; e < E; e += blockDim.x) counts[e] = 0;
  __syncthreads();
  for (int64_t i = threadIdx.x; i < TK; i += blockDim.x) atomicAdd(&counts[ids[i]], 1);
  __syncthreads();
  if (threadIdx.x == 0) {
    int32_t run = 0, mx = 0, n_active = 0, tiles = 0;
    for (int e = 0; e < E; ++e) {
      offsets[e] = run;
      cursor[e] = run;
      if (tile_offsets) tile_offsets[e] = tiles;
      run += counts[e];
      if (tile_offsets) tiles += (counts[e] + tile_rows - 1) / tile_rows;
      mx = counts[e] > mx ? counts[e] : mx;
      if (counts[e] > 0) active[n_active++] = e;
    }
    for (int e = n_active; e < E; ++e) active[e] = -1;
    offsets[E] = run;
    if (tile_offsets) tile_offsets[E] = tiles;
    *max_count = mx;
  }
  __syncthreads();
  for (int64_t i = threadIdx.x; i < TK; i += blockDim.x) {
    const int32_t pos = atomicAdd(&cursor[ids[i]], 1);
    sorted_pairs[pos] = static_cast<int32_t>(i);
    pair_pos[i] = pos;
  }
}

// grid: one block per sorted pair.
__global__ void gather_padded_kernel(const float* x, int64_t ldx, int64_t H, const int32_t* offsets,
                                     const int32_t* sorted_pairs, int K, int E, int64_t max_rows,
                                     uint16_t* xp) {
  const int p = blockIdx.x;
  const int e = find_expert(offsets, E, p);
  const int64_t row = static_cast<int64_t>(e) * max_rows + (p - offsets[e]);
  const float* src = x + static_cast<int64_t>(sorted_pairs[p] / K) * ldx;
  for (int64_t d = threadIdx.x; d < H; d += blockDim.x) xp[row * H + d] = to_bf16_bits(src[d]);
}

__global__ void glu_padded_kernel(int act, const float* gu, int E, int64_t max_rows, int64_t I,
                                  const int32_t* offsets, uint16_t* hp) {
  const int p = blockIdx.x;
  const int e = find_expert(offsets, E, p);
  const int64_t row = static_cast<int64_t>(e) * max_rows + (p - offsets[e]);
  const float* g = gu + row * 2 * I;
  for (int64_t i = threadIdx.x; i < I; i += blockDim.x)
    hp[row * I + i] = to_bf16_bits(activate(act, g[i]) * g[I + i]);
}

// grid: one block per token.
__global__ void combine_kernel(float* x, int64_t ldx, int64_t H, int K, const int32_t* ids,
                               const float* weights, const int32_t* pair_pos, const int32_t* offsets,
                               int64_t padded_rows, const float* y, const float* shared,
                               const float* shared_gate_logit) {
  const int64_t t = blockIdx.x;
  int64_t rows[16];
  float w[16];
  for (int k = 0; k < K; ++k) {
    const int32_t p = pair_pos[t * K + k];
    const int32_t e = ids[t * K + k];
    rows[k] = padded_rows > 0 ? static_cast<int64_t>(e) * padded_rows + (p - offsets[e]) : p;
    w[k] = weights[t * K + k];
  }
  const float g = shared_gate_logit ? 1.0f / (1.0f + expf(-shared_gate_logit[t])) : 1.0f;
  for (int64_t o = threadIdx.x; o < H; o += blockDim.x) {
    float s = 0.0f;
    for (int k = 0; k < K; ++k) s += w[k] * y[rows[k] * H + o];
    if (shared) s += g * shared[t * H + o];
    x[t * ldx + o] += s;
  }
}

}  // namespace detail

using namespace detail;

Status route(const RouterParams& p, const float* logits, int64_t T, const float* score_bias, int32_t* ids,
             float* weights, Stream s) {
  if (T <= 0) return Status::Ok();
  if (p.num_experts <= 0 || p.num_experts > 1024 || p.top_k <= 0 || p.top_k > 16 || p.top_k > p.num_experts ||
      p.n_group <= 0 || p.n_group > 32 || p.num_experts % p.n_group != 0) {
    return internal_error("route: unsupported router shape");
  }
  const size_t smem = sizeof(float) * 2 * p.num_experts * kRouterWarps;
  route_kernel<<<blocks_for(T, kRouterWarps), kRouterWarps * 32, smem, stream_of(s)>>>(
      p, logits, T, score_bias, ids, weights);
  return launch_status("route");
}

Status group_by_expert(const int32_t* ids, int64_t TK, int E, int32_t* offsets, int32_t* sorted_pairs,
                       int32_t* pair_pos, int32_t* max_count, int32_t* active, Stream s,
                       int32_t* tile_offsets, int tile_rows) {
  if (E <= 0 || E > 1024 || TK < 0 || TK > (int64_t{1} << 20))
    return internal_error("group_by_expert: bad shape");
  if (tile_offsets && tile_rows <= 0) return internal_error("group_by_expert: tile_rows must be positive");
  group_by_expert_kernel<<<1, 1024, sizeof(int32_t) * 2 * E, stream_of(s)>>>(
      ids, TK, E, offsets, sorted_pairs, pair_pos, max_count, active, tile_offsets, tile_rows);
  return launch_status("group_by_expert");
}

Status gather_padded(const float* x, int64_t ldx, int64_t H, const int32_t* offsets,
                     const int32_t* sorted_pairs, int K, int E, int64_t TK, int64_t max_rows, bf16* xp,
                     Stream s) {
  if (TK <= 0) return Status::Ok();
  if (TK > 0x7fffffff) return internal_error("gather_padded: too many pairs");
  gather_padded_kernel<<<static_cast<unsigned>(TK), 256, 0, stream_of(s)>>>(x, ldx, H, offsets, sorted_pairs,
                                                                            K, E, max_rows, xp);
  return launch_status("gather_padded");
}

Status glu_padded(Act act, const float* gu, int E, int64_t TK, int64_t max_rows, int64_t I,
                  const int32_t* offsets, bf16* hp, Stream s) {
  if (TK <= 0) return Status::Ok();
  glu_padded_kernel<<<static_cast<unsigned>(TK), 256, 0, stream_of(s)>>>(static_cast<int>(act), gu, E,
                                                                         max_rows, I, offsets, hp);
  return launch_status("glu_padded");
}

Status combine_experts(float* x, int64_t ldx, int64_t T, int64_t H, int K, const int32_t* ids,
                       const float* weights, const int32_t* pair_pos, const int32_t* offsets,
                       int64_t padded_rows, const float* y, const float* shared,
                       const float* shared_gate_logit, Stream s) {
  if (T <= 0) return Status::Ok();
  if (K > 16) return internal_error("combine_experts: top_k above 16");
  combine_kernel<<<static_cast<unsigned>(T), 256, 0, stream_of(s)>>>(
      x, ldx, H, K, ids, weights, pair_pos, offsets, padded_rows, y, shared, shared_gate_logit);
  return launch_status("combine_experts");
}

}  // namespace hilum::cuda::moe
