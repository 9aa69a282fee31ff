#include <algorithm>

#include <cooperative_groups.h>

#include "cuda/moe_fused.cuh"
#include "cuda/moe_router.cuh"
#include "model/env.h"

namespace hilum::cuda::moe {
namespace detail {

int multiprocessor_count() {
  static const int n = [] {
    int dev = 0, v = 0;
    if (cudaGetDevice(&dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&v, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess) {
      cudaGetLastError();
      v = 0;
    }
    return v > 0 ? v : 132;
  }();
  return n;
}

namespace {

__device__ __forceinline__ int64_t kv_row(const KvLayout& kv, int slot, int64_t pos, int head) {
  return (static_cast<int64_t>(slot) * kv.capacity + pos) * kv.kv_heads + head;
}

// acc + w[0:8] . (a, b), the 8 bf16 weights in k order.
__device__ __forceinline__ float dot8_staged(const uint4 w, const float4 a, const float4 b, float acc) {
  acc = fmaf(bf16_lo(w.x), a.x, acc);
  acc = fmaf(bf16_hi(w.x), a.y, acc);
  acc = fmaf(bf16_lo(w.y), a.z, acc);
  acc = fmaf(bf16_hi(w.y), a.w, acc);
  acc = fmaf(bf16_lo(w.z), b.x, acc);
  acc = fmaf(bf16_hi(w.z), b.y, acc);
  acc = fmaf(bf16_lo(w.w), b.z, acc);
  acc = fmaf(bf16_hi(w.w), b.w, acc);
  return acc;
}

// One batch of U 256-value steps (from step s0) of RR weight rows: lane l's
// 16-byte loads at k = 256 s + 8 l (zero past klen).
template <int RR, int U>
__device__ __forceinline__ void load_batch(const uint16_t* const (&wrow)[RR], int klen, int s0,
                                           uint4 (&w)[U][RR]) {
  const int lane = threadIdx.x & 31;
#pragma unroll
  for (int u = 0; u < U; ++u) {
    const int k = (s0 + u) * 256 + lane * 8;
#pragma unroll
    for (int r = 0; r < RR; ++r) {
      w[u][r] = k < klen ? __ldg(reinterpret_cast<const uint4*>(wrow[r] + k)) : make_uint4(0u, 0u, 0u, 0u);
    }
  }
}

// acc += the batch's weights . the n staged rows of xs (row stride KC).
template <int MAXT, int RR, int U>
__device__ __forceinline__ void dot_batch(const uint4 (&w)[U][RR], int klen, int s0, const float* __restrict__ xs,
                                          int KC, int n, float (&acc)[RR][MAXT]) {
  const int lane = threadIdx.x & 31;
#pragma unroll
  for (int u = 0; u < U; ++u) {
    const int k = (s0 + u) * 256 + lane * 8;
    if (k < klen) {
      const float* xb = xs + (s0 + u) * 256 + lane * 4;
#pragma unroll
      for (int t = 0; t < MAXT; ++t) {
        if (t < n) {
          const float4 a = *reinterpret_cast<const float4*>(xb + t * KC);
          const float4 b = *reinterpret_cast<const float4*>(xb + t * KC + 128);
#pragma unroll
          for (int r = 0; r < RR; ++r) acc[r][t] = dot8_staged(w[u][r], a, b, acc[r][t]);
        }
      }
    }
  }
}

// Per-lane partial dot products of RR weight rows (wrow[r] points at the
// chunk's first weight) with the n staged rows of xs (row stride KC), added
// to acc, from step s_first on. vec: 16-byte weight loads (the row length is
// a multiple of 8 and the rows 16-byte aligned); otherwise one bf16 at a time.
template <int MAXT, int RR, int U>
__device__ __forceinline__ void dot_rows(const uint16_t* const (&wrow)[RR], bool vec, int klen,
                                         const float* __restrict__ xs, int KC, int n,
                                         float (&acc)[RR][MAXT], int s_first = 0) {
  const int lane = threadIdx.x & 31;
  if (vec) {
    const int steps = (klen + 255) >> 8;
    for (int s0 = s_first; s0 < steps; s0 += U) {
      uint4 w[U][RR];
      load_batch<RR, U>(wrow, klen, s0, w);
      dot_batch<MAXT, RR, U>(w, klen, s0, xs, KC, n, acc);
    }
  } else {
    for (int k = lane; k < klen; k += 32) {
      float wv[RR];
#pragma unroll
      for (int r = 0; r < RR; ++r) wv[r] = bf16_val(wrow[r][k]);
      const float* xb = xs + stage_pos(k);
#pragma unroll
      for (int t = 0; t < MAXT; ++t) {
        if (t < n) {
          const float xv = xb[t * KC];
#pragma unroll
          for (int r = 0; r < RR; ++r) acc[r][t] = fmaf(wv[r], xv, acc[r][t]);
        }
      }
    }
  }
}

// Stages src[t][k0 : k0 + klen) for t < n into xs (row stride KC); with
// norm_w the values are multiplied by norm_w[k] and their squares (before
// that) are added to the thread's ss[t]. The whole block takes part.
template <int MAXT>
__device__ __forceinline__ void stage_rows(float* xs, int KC, const float* const* src, int n, int64_t k0,
                                           int klen, const float* norm_w, float (&ss)[MAXT]) {
  constexpr int kBatch = 8;  // loads in flight per thread
#pragma unroll
  for (int t = 0; t < MAXT; ++t) {
    if (t < n) {
      const float* s = src[t] + k0;
      float* d = xs + t * KC;
      for (int base = threadIdx.x; base < klen; base += blockDim.x * kBatch) {
        float v[kBatch], w[kBatch];
#pragma unroll
        for (int u = 0; u < kBatch; ++u) {
          const int kk = base + u * blockDim.x;
          v[u] = kk < klen ? s[kk] : 0.0f;
          w[u] = norm_w && kk < klen ? norm_w[k0 + kk] : 1.0f;
        }
#pragma unroll
        for (int u = 0; u < kBatch; ++u) {
          const int kk = base + u * blockDim.x;
          if (kk < klen) {
            if (norm_w) ss[t] = fmaf(v[u], v[u], ss[t]);
            d[stage_pos(kk)] = norm_w ? v[u] * w[u] : v[u];
          }
        }
      }
    }
  }
}

// scale[t] = 1 / sqrt(sum of every thread's ss[t] / K + eps) for t < n, summed
// in a fixed order (deterministic). Every thread of the block calls it.
template <int MAXT>
__device__ __forceinline__ void norm_scales(float (&ss)[MAXT], int n, int64_t K, float eps,
                                            float (*partial)[kMaxFusedRows], float* scale) {
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
#pragma unroll
  for (int t = 0; t < MAXT; ++t) {
    if (t < n) {
      const float v = warp_sum(ss[t]);
      if (lane == 0) partial[warp][t] = v;
    }
  }
  __syncthreads();
  if (threadIdx.x < n) {
    float total = 0.0f;
    for (int w = 0; w < kFusedThreads / 32; ++w) total += partial[w][threadIdx.x];
    scale[threadIdx.x] = 1.0f / sqrtf(total / static_cast<float>(K) + eps);
  }
  __syncthreads();
}

// Sums acc[r][t] over the warp; lane t (< n) gets row t's totals in mine[r].
template <int MAXT, int RR>
__device__ __forceinline__ void reduce_to_lanes(const float (&acc)[RR][MAXT], int n, float (&mine)[RR]) {
  const int lane = threadIdx.x & 31;
#pragma unroll
  for (int r = 0; r < RR; ++r) mine[r] = 0.0f;
#pragma unroll
  for (int t = 0; t < MAXT; ++t) {
    if (t < n) {
#pragma unroll
      for (int r = 0; r < RR; ++r) {
        const float v = warp_sum(acc[r][t]);
        if (lane == t) mine[r] = v;
      }
    }
  }
}

template <int MAXT, int RR>
__device__ __forceinline__ void zero(float (&acc)[RR][MAXT]) {
#pragma unroll
  for (int r = 0; r < RR; ++r) {
#pragma unroll
    for (int t = 0; t < MAXT; ++t) acc[r][t] = 0.0f;
  }
}

__device__ __forceinline__ void prefetch_row(const uint16_t* row, int64_t k) {
  for (int64_t b = (threadIdx.x & 31) * 64; b < k; b += 32 * 64) prefetch_l2(row + b);
}

}  // namespace

// RMSNorm folded in: the staged values are x * norm_w, and the products are
// scaled by 1 / rms(x) at the end (the sum of squares is gathered while
// staging, so no pass over x comes first).
template <int MAXT, bool GLU>
__global__ void __launch_bounds__(kFusedThreads, 2) staged_gemv_kernel(StagedGemvParams a) {
  constexpr int R = GLU ? 1 : FusedShape<MAXT>::R;
  constexpr int RR = GLU ? 2 : R;
  constexpr int U = FusedShape<MAXT>::U;
  extern __shared__ float4 staged_smem[];
  float* xs = reinterpret_cast<float*>(staged_smem);
  __shared__ const float* src[kMaxFusedRows];
  __shared__ float scale[kMaxFusedRows];
  __shared__ float partial[kFusedThreads / 32][kMaxFusedRows];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int64_t row0 = (static_cast<int64_t>(blockIdx.x) * (kFusedThreads / 32) + warp) * R;
  const bool vec = (a.k & 7) == 0;
  const uint16_t* wrow[RR];
#pragma unroll
  for (int r = 0; r < R; ++r) {
    const int64_t o = min(row0 + r, a.n - 1);  // rows past n repeat the last one; results dropped
    wrow[r] = a.w + o * a.k;
    if constexpr (GLU) wrow[1] = a.w + (a.n + o) * a.k;
  }
  if (a.prefetch && row0 < a.n) {
#pragma unroll
    for (int r = 0; r < RR; ++r) prefetch_row(wrow[r], a.k);
  }
  const int KC = a.kc;
  // One row, one chunk: the first batch of weights (constant, so before the
  // wait for the previous kernel) is in flight while the activations are staged.
  const bool early = MAXT == 1 && vec && a.k <= KC;
  uint4 w_first[U][RR];
  if (early) load_batch<RR, U>(wrow, static_cast<int>(a.k), 0, w_first);
  // The first row group's values to add to, when the previous kernel leaves y alone.
  float y_first[R];
  const bool y_early = early && !GLU && a.accumulate && a.y_ready;
  if (y_early && lane == 0) {
#pragma unroll
    for (int r = 0; r < R; ++r) y_first[r] = row0 + r < a.n ? a.y[row0 + r] : 0.0f;
  }
  pdl_wait();
  pdl_trigger();
  const int n = a.rows;
  if (threadIdx.x < n) src[threadIdx.x] = a.x + threadIdx.x * a.ldx;
  __syncthreads();
  float acc[RR][MAXT];
  zero(acc);
  float ss[MAXT];
#pragma unroll
  for (int t = 0; t < MAXT; ++t) ss[t] = 0.0f;
  // The results of the row group at r0: lane t < n writes row t's outputs.
  auto emit = [&](int64_t r0, const float (&acc_)[RR][MAXT]) {
    float mine[RR];
    reduce_to_lanes<MAXT, RR>(acc_, n, mine);
    if (lane >= n) return;
    const float sc = a.norm_w ? scale[lane] : 1.0f;
    if constexpr (GLU) {
      const int64_t o = r0;
      const float g = mine[0] * sc + (a.bias ? a.bias[o] : 0.0f);
      const float u = mine[1] * sc + (a.bias ? a.bias[a.n + o] : 0.0f);
      a.y[lane * a.ldy + o] = activate(a.act, g) * u;
    } else {
#pragma unroll
      for (int r = 0; r < R; ++r) {
        const int64_t o = r0 + r;
        if (o < a.n) {
          const float v = mine[r] * sc + (a.bias ? a.bias[o] : 0.0f);
          float* dst = a.y + lane * a.ldy + o;
          *dst = a.accumulate ? (y_early && r0 == row0 ? y_first[r] : *dst) + v : v;
        }
      }
    }
  };
  if (early) {
    // Persistent: the activations are staged (and normalised) once, then
    // each warp walks its row groups a grid apart.
    const int klen = static_cast<int>(a.k);
    stage_rows<MAXT>(xs, KC, src, n, 0, klen, a.norm_w, ss);
    __syncthreads();
    if (a.norm_w) norm_scales<MAXT>(ss, n, a.k, a.eps, partial, scale);
    const int64_t group_stride = static_cast<int64_t>(gridDim.x) * (kFusedThreads / 32) * R;
    if (row0 < a.n) {
      dot_batch<MAXT, RR, U>(w_first, klen, 0, xs, KC, n, acc);
      dot_rows<MAXT, RR, U>(wrow, vec, klen, xs, KC, n, acc, U);
      emit(row0, acc);
    }
    for (int64_t r0 = row0 + group_stride; r0 < a.n; r0 += group_stride) {
      const uint16_t* wr[RR];
#pragma unroll
      for (int r = 0; r < R; ++r) {
        const int64_t o = min(r0 + r, a.n - 1);
        wr[r] = a.w + o * a.k;
        if constexpr (GLU) wr[1] = a.w + (a.n + o) * a.k;
      }
      zero(acc);
      dot_rows<MAXT, RR, U>(wr, vec, klen, xs, KC, n, acc);
      emit(r0, acc);
    }
    return;
  }
  for (int64_t k0 = 0; k0 < a.k; k0 += KC) {
    const int klen = static_cast<int>(min(static_cast<int64_t>(KC), a.k - k0));
    if (k0 > 0) __syncthreads();
    stage_rows<MAXT>(xs, KC, src, n, k0, klen, a.norm_w, ss);
    __syncthreads();
    if (row0 < a.n) {
      const uint16_t* wr[RR];
#pragma unroll
      for (int r = 0; r < RR; ++r) wr[r] = wrow[r] + k0;
      dot_rows<MAXT, RR, U>(wr, vec, klen, xs, KC, n, acc);
    }
  }
  if (a.norm_w) norm_scales<MAXT>(ss, n, a.k, a.eps, partial, scale);
  if (row0 >= a.n) return;
  emit(row0, acc);
}

// grid (ceil(I / 8), rows * K): block (x, p) computes rows x*8 .. of the
// expert of pair p for every pair routed to it, unless an earlier pair has
// the same expert (then that pair's blocks do it).
template <int MAXT>
__global__ void __launch_bounds__(kFusedThreads, 2) expert_glu_kernel(ExpertParams a) {
  constexpr int U = FusedShape<MAXT>::U;
  extern __shared__ float4 staged_smem[];
  float* xs = reinterpret_cast<float*>(staged_smem);
  __shared__ const float* src[kMaxFusedRows];
  __shared__ int pairs[kMaxFusedRows];
  __shared__ int npairs, duplicate;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int p = blockIdx.y;
  const int64_t i0 = static_cast<int64_t>(blockIdx.x) * (kFusedThreads / 32) + warp;
  pdl_wait();
  pdl_trigger();
  const int TK = a.rows * a.K;
  const int e = a.ids[p];
  const int64_t i = min(i0, a.I - 1);
  const uint16_t* wrow[2] = {a.w + (static_cast<int64_t>(e) * 2 * a.I + i) * a.H,
                             a.w + (static_cast<int64_t>(e) * 2 * a.I + a.I + i) * a.H};
  const bool vec = (a.H & 7) == 0;
  const int KC = a.kc;
  // One row, one chunk: the first batch of weights goes in flight at once,
  // while the pairs are scanned and the activations staged.
  const bool early = MAXT == 1 && vec && a.H <= KC;
  uint4 w_first[U][2];
  if (early) load_batch<2, U>(wrow, static_cast<int>(a.H), 0, w_first);
  if (warp == 0) {
    int n = 0;
    bool dup = false;
    for (int base = 0; base < TK; base += 32) {
      const int q = base + lane;
      const bool m = q < TK && a.ids[q] == e;
      const unsigned bal = __ballot_sync(0xffffffffu, m);
      if (__any_sync(0xffffffffu, m && q < p)) dup = true;
      if (m) {
        const int idx = n + __popc(bal & ((1u << lane) - 1u));
        if (idx < kMaxFusedRows) pairs[idx] = q;
      }
      n += __popc(bal);
    }
    if (lane == 0) {
      npairs = min(n, kMaxFusedRows);
      duplicate = dup ? 1 : 0;
    }
  }
  __syncthreads();
  if (a.groups && blockIdx.x == 0 && threadIdx.x == 0) {
    // The pairs of each expert, for expert_down_combine: leader flags [TK],
    // counts [TK], pair lists [TK][16].
    int32_t* lead = a.groups;
    int32_t* cnt = lead + TK;
    int32_t* lst = cnt + TK;
    lead[p] = duplicate ? 0 : 1;
    cnt[p] = npairs;
    for (int j = 0; j < npairs; ++j) lst[p * kMaxFusedRows + j] = pairs[j];
  }
  if (duplicate) return;
  const int n = npairs;
  if (threadIdx.x < n) src[threadIdx.x] = a.x + static_cast<int64_t>(pairs[threadIdx.x] / a.K) * a.ldx;
  __syncthreads();
  float acc[2][MAXT];
  zero(acc);
  float unused_ss[MAXT];
  if (early) {
    const int klen = static_cast<int>(a.H);
    stage_rows<MAXT>(xs, KC, src, n, 0, klen, nullptr, unused_ss);
    __syncthreads();
    if (i0 < a.I) {
      dot_batch<MAXT, 2, U>(w_first, klen, 0, xs, KC, n, acc);
      dot_rows<MAXT, 2, U>(wrow, vec, klen, xs, KC, n, acc, U);
    }
  }
  for (int64_t k0 = 0; k0 < (early ? 0 : a.H); k0 += KC) {
    const int klen = static_cast<int>(min(static_cast<int64_t>(KC), a.H - k0));
    if (k0 > 0) __syncthreads();
    stage_rows<MAXT>(xs, KC, src, n, k0, klen, nullptr, unused_ss);
    __syncthreads();
    if (i0 < a.I) {
      const uint16_t* wr[2] = {wrow[0] + k0, wrow[1] + k0};
      dot_rows<MAXT, 2, U>(wr, vec, klen, xs, KC, n, acc);
    }
  }
  if (i0 >= a.I) return;
  float mine[2];
  reduce_to_lanes<MAXT, 2>(acc, n, mine);
  if (lane < n) a.out[static_cast<int64_t>(pairs[lane]) * a.I + i0] = activate(a.act, mine[0]) * mine[1];
}

// One activation row (batch-1 decode), H a multiple of 8 and at most 2048:
// persistent blocks (two per multiprocessor) stage the row once, and warp w
// of the grid takes the work items w, w + warps, ... (item j: gate and up row
// j % I of the expert of pair j / I, so neighbouring warps read neighbouring
// rows). A warp's two rows are in flight whole (16 loads of 16 bytes per
// lane); the first item's while the row is staged, the next item's while the
// current one is reduced. Every pair is computed on its own (one token's
// experts are distinct), and `groups` says so for expert_down_combine.
constexpr int kGluB1MaxH = 256 * FusedShape<1>::U;
__global__ void __launch_bounds__(kFusedThreads, 2) expert_glu_b1_kernel(ExpertParams a) {
  constexpr int U = FusedShape<1>::U;
  extern __shared__ float4 staged_smem[];
  float* xs = reinterpret_cast<float*>(staged_smem);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * (kFusedThreads / 32);
  const int64_t items = static_cast<int64_t>(a.K) * a.I;
  const int klen = static_cast<int>(a.H);
  pdl_wait();
  pdl_trigger();
  if (a.groups && blockIdx.x == 0 && threadIdx.x < a.K) {
    const int p = threadIdx.x;
    a.groups[p] = 1;                                  // leader
    a.groups[a.K + p] = 1;                            // pairs of its expert
    a.groups[2 * a.K + p * kMaxFusedRows] = p;        // the pair itself
  }
  auto rows_of = [&](int64_t j, const uint16_t* (&wr)[2]) {
    const int64_t p = j / a.I, i = j - p * a.I;
    wr[0] = a.w + (static_cast<int64_t>(a.ids[p]) * 2 * a.I + i) * a.H;
    wr[1] = wr[0] + a.I * a.H;
  };
  int64_t it = static_cast<int64_t>(blockIdx.x) * (kFusedThreads / 32) + warp;
  uint4 w[U][2];
  const uint16_t* wr[2] = {a.w, a.w};
  if (it < items) {
    rows_of(it, wr);
    load_batch<2, U>(wr, klen, 0, w);
  }
  const float* src[1] = {a.x};
  float unused_ss[1] = {0.0f};
  stage_rows<1>(xs, a.kc, src, 1, 0, klen, nullptr, unused_ss);
  __syncthreads();
  for (; it < items; it += warps) {
    float acc[2][1] = {{0.0f}, {0.0f}};
    dot_batch<1, 2, U>(w, klen, 0, xs, a.kc, 1, acc);
    const int64_t next = it + warps;
    if (next < items) {
      rows_of(next, wr);
      load_batch<2, U>(wr, klen, 0, w);
    }
    const float g = warp_sum(acc[0][0]), u = warp_sum(acc[1][0]);
    if (lane == 0) a.out[it] = activate(a.act, g) * u;  // item j is h[j / I][j % I]
  }
}

// grid ceil(H / (8 R)): each warp owns R output rows and loops over the
// active experts (in the order of their first pair), then the shared expert;
// lane t accumulates token t's weighted sum and adds it to the residual.
template <int MAXT>
__global__ void __launch_bounds__(kFusedThreads, 2) expert_down_combine_kernel(ExpertParams a) {
  // One row per warp (twice the blocks of the dense GEMV: the per-expert
  // staging phases are latency-bound), four loads in flight per row.
  constexpr int R = kDownRowsPerWarp;
  constexpr int U = MAXT <= 1 ? 8 : 4;
  extern __shared__ float4 staged_smem[];
  float* xs = reinterpret_cast<float*>(staged_smem);
  __shared__ const float* src[kMaxFusedRows];
  __shared__ float wgt[kMaxFusedRows];
  __shared__ int tok[kMaxFusedRows];
  __shared__ int leaders[kMaxFusedRows * kMaxFusedRows];
  __shared__ int n_leaders;
  // whole mode: every pair in expert order (flat), with its token and weight,
  // and where each expert's rows start.
  __shared__ int flat[kMaxFusedRows * kMaxFusedRows], ftok[kMaxFusedRows * kMaxFusedRows];
  __shared__ float fwgt[kMaxFusedRows * kMaxFusedRows];
  __shared__ int gstart[kMaxFusedRows * kMaxFusedRows + 1];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int64_t o0 = (static_cast<int64_t>(blockIdx.x) * (kFusedThreads / 32) + warp) * R;
  if (a.shared_w && a.prefetch && o0 < a.H) {
#pragma unroll
    for (int r = 0; r < R; ++r) prefetch_row(a.shared_w + min(o0 + r, a.H - 1) * a.Is, a.Is);
  }
  pdl_wait();
  pdl_trigger();
  const int TK = a.rows * a.K;
  const int32_t* lead = a.groups;
  const int32_t* cnt = lead + TK;
  const int32_t* lst = cnt + TK;
  if (warp == 0) {
    int n = 0;
    for (int base = 0; base < TK; base += 32) {
      const int q = base + lane;
      const bool m = q < TK && lead[q] != 0;
      const unsigned bal = __ballot_sync(0xffffffffu, m);
      if (m) leaders[n + __popc(bal & ((1u << lane) - 1u))] = q;
      n += __popc(bal);
    }
    if (lane == 0) n_leaders = n;
  }
  __syncthreads();
  const int KC = a.kc;
  float unused_ss[MAXT];
  float mine[R];
#pragma unroll
  for (int r = 0; r < R; ++r) mine[r] = 0.0f;
  const int nl = n_leaders;
  if (a.whole) {
    // Every routed row fits: stage them all once, grouped by expert, then
    // stream the experts' weights with no block-wide barrier in between.
    const int ipad = a.ipad;
    if (threadIdx.x == 0) {
      int f = 0;
      for (int g = 0; g < nl; ++g) {
        const int q = leaders[g];
        gstart[g] = f;
        const int n = min(static_cast<int>(cnt[q]), kMaxFusedRows);
        for (int j = 0; j < n; ++j, ++f) {
          const int pr = lst[q * kMaxFusedRows + j];
          flat[f] = pr;
          ftok[f] = pr / a.K;
          fwgt[f] = a.weights[pr];
        }
      }
      gstart[nl] = f;
    }
    __syncthreads();
    const int rows_total = gstart[nl], I = static_cast<int>(a.I);
    const int total = rows_total * I;
    constexpr int kBatch = 8;  // loads in flight per thread
    for (int base = threadIdx.x; base < total; base += blockDim.x * kBatch) {
      float v[kBatch];
#pragma unroll
      for (int u = 0; u < kBatch; ++u) {
        const int idx = base + u * blockDim.x;
        v[u] = 0.0f;
        if (idx < total) {
          const int f = idx / I;
          v[u] = a.x[static_cast<int64_t>(flat[f]) * a.I + (idx - f * I)];
        }
      }
#pragma unroll
      for (int u = 0; u < kBatch; ++u) {
        const int idx = base + u * blockDim.x;
        if (idx < total) {
          const int f = idx / I;
          xs[f * ipad + stage_pos(idx - f * I)] = v[u];
        }
      }
    }
    __syncthreads();
    const bool vec = (a.I & 7) == 0;
    if (o0 < a.H) {
      for (int g = 0; g < nl; ++g) {
        const int f0 = gstart[g], n = gstart[g + 1] - f0;
        const int e = a.ids[leaders[g]];
        const uint16_t* wr[R];
#pragma unroll
        for (int r = 0; r < R; ++r)
          wr[r] = a.w + (static_cast<int64_t>(e) * a.H + min(o0 + r, a.H - 1)) * a.I;
        float acc[R][MAXT];
        zero(acc);
        dot_rows<MAXT, R, U>(wr, vec, static_cast<int>(a.I), xs + f0 * ipad, ipad, n, acc);
#pragma unroll
        for (int j = 0; j < MAXT; ++j) {
          if (j < n) {
#pragma unroll
            for (int r = 0; r < R; ++r) {
              const float v = warp_sum(acc[r][j]);
              if (lane == ftok[f0 + j]) mine[r] += fwgt[f0 + j] * v;
            }
          }
        }
      }
    }
  }
  for (int g = 0; g < (a.whole ? 0 : nl); ++g) {
    const int q = leaders[g];
    const int e = a.ids[q];
    const int n = min(static_cast<int>(cnt[q]), kMaxFusedRows);
    __syncthreads();  // the previous expert's rows are consumed
    if (threadIdx.x < n) {
      const int pr = lst[q * kMaxFusedRows + threadIdx.x];
      src[threadIdx.x] = a.x + static_cast<int64_t>(pr) * a.I;
      wgt[threadIdx.x] = a.weights[pr];
      tok[threadIdx.x] = pr / a.K;
    }
    __syncthreads();
    const uint16_t* wrow[R];
#pragma unroll
    for (int r = 0; r < R; ++r) wrow[r] = a.w + (static_cast<int64_t>(e) * a.H + min(o0 + r, a.H - 1)) * a.I;
    float acc[R][MAXT];
    zero(acc);
    const bool vec = (a.I & 7) == 0;
    for (int64_t k0 = 0; k0 < a.I; k0 += KC) {
      const int klen = static_cast<int>(min(static_cast<int64_t>(KC), a.I - k0));
      if (k0 > 0) __syncthreads();
      stage_rows<MAXT>(xs, KC, src, n, k0, klen, nullptr, unused_ss);
      __syncthreads();
      if (o0 < a.H) {
        const uint16_t* wr[R];
#pragma unroll
        for (int r = 0; r < R; ++r) wr[r] = wrow[r] + k0;
        dot_rows<MAXT, R, U>(wr, vec, klen, xs, KC, n, acc);
      }
    }
    if (o0 < a.H) {
#pragma unroll
      for (int j = 0; j < MAXT; ++j) {
        if (j < n) {
#pragma unroll
          for (int r = 0; r < R; ++r) {
            const float v = warp_sum(acc[r][j]);
            if (lane == tok[j]) mine[r] += wgt[j] * v;
          }
        }
      }
    }
  }
  if (a.shared_w) {
    const int n = a.rows;
    __syncthreads();
    if (threadIdx.x < n) {
      src[threadIdx.x] = a.hs + threadIdx.x * a.Is;
      wgt[threadIdx.x] = a.shared_gate_logit ? 1.0f / (1.0f + expf(-a.shared_gate_logit[threadIdx.x])) : 1.0f;
      tok[threadIdx.x] = threadIdx.x;
    }
    __syncthreads();
    const uint16_t* wrow[R];
#pragma unroll
    for (int r = 0; r < R; ++r) wrow[r] = a.shared_w + min(o0 + r, a.H - 1) * a.Is;
    float acc[R][MAXT];
    zero(acc);
    const bool vec = (a.Is & 7) == 0;
    for (int64_t k0 = 0; k0 < a.Is; k0 += KC) {
      const int klen = static_cast<int>(min(static_cast<int64_t>(KC), a.Is - k0));
      __syncthreads();
      stage_rows<MAXT>(xs, KC, src, n, k0, klen, nullptr, unused_ss);
      __syncthreads();
      if (o0 < a.H) {
        const uint16_t* wr[R];
#pragma unroll
        for (int r = 0; r < R; ++r) wr[r] = wrow[r] + k0;
        dot_rows<MAXT, R, U>(wr, vec, klen, xs, KC, n, acc);
      }
    }
    if (o0 < a.H) {
#pragma unroll
      for (int j = 0; j < MAXT; ++j) {
        if (j < n) {
#pragma unroll
          for (int r = 0; r < R; ++r) {
            float v = warp_sum(acc[r][j]);
            if (a.shared_bias) v += a.shared_bias[min(o0 + r, a.H - 1)];
            if (lane == j) mine[r] += wgt[j] * v;
          }
        }
      }
    }
  }
  if (o0 >= a.H || lane >= a.rows) return;
#pragma unroll
  for (int r = 0; r < R; ++r) {
    const int64_t o = o0 + r;
    if (o < a.H) a.out[lane * a.ldo + o] += mine[r];
  }
}

// One activation row (batch-1 decode), every row length a multiple of 8:
// block b owns output rows 4b .. 4b+3; its warp w takes the work items w,
// w + 8, ... (item k < K: routed expert ids[k] with weight weights[k]; item
// K: the shared expert), so a warp streams 4 rows of one expert with all
// their loads in flight and no barrier, and the block adds the items' sums to
// the residual in item order (deterministic, no second pass).
constexpr int kDownB1Rows = 4;
constexpr int kDownB1Unroll = 4;  // 256-value steps per batch of loads
// Wide: twice the rows per block, half the steps per batch (as many loads in
// flight per warp): ceil(H / 8) blocks, one wave of two per multiprocessor at H = 2048.
constexpr int kDownB1WideRows = 8;
constexpr int kDownB1WideUnroll = 2;
template <int R, int U>
__global__ void __launch_bounds__(kFusedThreads, 2) expert_down_b1_kernel(ExpertParams a) {
  constexpr int NW = kFusedThreads / 32;
  __shared__ float red[kMaxFusedRows + 1][R];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int64_t o0 = static_cast<int64_t>(blockIdx.x) * R;
  const int items = a.K + (a.shared_w ? 1 : 0);
  // The weight rows of an item, and one batch of their loads.
  auto rows_of = [&](int it, const uint16_t* (&wr)[R]) {
    const bool shared = it == a.K;
    const int64_t len = shared ? a.Is : a.I;
    const uint16_t* w0 = shared ? a.shared_w : a.w + static_cast<int64_t>(a.ids[it]) * a.H * a.I;
#pragma unroll
    for (int r = 0; r < R; ++r) wr[r] = w0 + min(o0 + r, a.H - 1) * len;
  };
  auto load_w = [&](const uint16_t* const (&wr)[R], int64_t len, int s0, uint4 (&wv)[U][R]) {
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int64_t k = static_cast<int64_t>(s0 + u) * 256 + lane * 8;
#pragma unroll
      for (int r = 0; r < R; ++r)
        wv[u][r] = k < len ? __ldg(reinterpret_cast<const uint4*>(wr[r] + k)) : make_uint4(0u, 0u, 0u, 0u);
    }
  };
  // prefetch 2: the first batch of the warp's first item is loaded before the
  // wait for the GLU kernel. Its expert id comes from the router, which
  // finished before the GLU kernel passed its own wait and let this one start;
  // the weights are constant. Only the GLU outputs need the wait.
  const bool early = a.prefetch >= 2 && warp < items;
  uint4 wv[U][R];  // one batch of weights (the first one loaded early)
  if (early) {
    const uint16_t* wr[R];
    rows_of(warp, wr);
    load_w(wr, warp == a.K ? a.Is : a.I, 0, wv);
  }
  // prefetch 3: the residual rows too (the o projection wrote them three kernels ago).
  const bool out_early = a.prefetch == 3 && threadIdx.x < R && o0 + threadIdx.x < a.H;
  const float out_first = out_early ? a.out[o0 + threadIdx.x] : 0.0f;
  pdl_wait();
  pdl_trigger();
  for (int it = warp; it < items; it += NW) {
    const bool shared = it == a.K;
    const int64_t len = shared ? a.Is : a.I;
    const float* h = shared ? a.hs : a.x + static_cast<int64_t>(it) * a.I;
    const uint16_t* wr[R];
    rows_of(it, wr);
    float acc[R];
#pragma unroll
    for (int r = 0; r < R; ++r) acc[r] = 0.0f;
    const int steps = static_cast<int>((len + 255) >> 8);
    for (int s0 = 0; s0 < steps; s0 += U) {
      float4 hv[U][2];
      if (!(early && it == warp && s0 == 0)) load_w(wr, len, s0, wv);
#pragma unroll
      for (int u = 0; u < U; ++u) {
        const int64_t k = static_cast<int64_t>(s0 + u) * 256 + lane * 8;
        const bool in = k < len;
        hv[u][0] = in ? __ldg(reinterpret_cast<const float4*>(h + k)) : make_float4(0.f, 0.f, 0.f, 0.f);
        hv[u][1] = in ? __ldg(reinterpret_cast<const float4*>(h + k + 4)) : make_float4(0.f, 0.f, 0.f, 0.f);
      }
#pragma unroll
      for (int u = 0; u < U; ++u) {
#pragma unroll
        for (int r = 0; r < R; ++r) acc[r] = dot8_staged(wv[u][r], hv[u][0], hv[u][1], acc[r]);
      }
    }
    float wgt = 1.0f;
    if (!shared) {
      wgt = a.weights[it];
    } else if (a.shared_gate_logit) {
      wgt = 1.0f / (1.0f + expf(-a.shared_gate_logit[0]));
    }
#pragma unroll
    for (int r = 0; r < R; ++r) {
      float v = warp_sum(acc[r]);
      if (shared && a.shared_bias) v += a.shared_bias[min(o0 + r, a.H - 1)];
      if (lane == 0) red[it][r] = wgt * v;
    }
  }
  __syncthreads();
  if (threadIdx.x < R && o0 + threadIdx.x < a.H) {
    float total = 0.0f;
    for (int it = 0; it < items; ++it) total += red[it][threadIdx.x];
    a.out[o0 + threadIdx.x] = (out_early ? out_first : a.out[o0 + threadIdx.x]) + total;
  }
}

// grid (rows, splits): block (t, s) normalises x[t] (block s = 0 also writes
// hn[t]), each of its warps computes one router row, s*8 + warp (row E is the
// shared-expert gate); the experts are picked from the logits of all blocks
// by block 0 of the token's cluster (a.cluster) or by the last block of token
// t to finish.
__global__ void __launch_bounds__(kFusedThreads) route_fused_kernel(RouteFusedParams a) {
  extern __shared__ float4 route_smem[];
  __shared__ float scratch[33];
  __shared__ int is_last;
  __shared__ int picked[16];
  const RouterParams& p = a.p;
  const int E = p.num_experts;
  const int64_t H = a.H;
  float* hs = reinterpret_cast<float*>(route_smem);
  float* lg = hs + ((H + 3) & ~int64_t{3});
  float* score = lg + E;
  float* choice = score + E;
  const int64_t t = blockIdx.x;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int row = blockIdx.y * (kFusedThreads / 32) + warp;
  const int rows = E + (a.shared_gate_w ? 1 : 0);
  const uint16_t* wr = row < E ? a.router_w + static_cast<int64_t>(row) * H : a.shared_gate_w;
  const float* xr = a.x + t * a.ldx;
  // The router row's first 2048 weights go in flight before anything else
  // (they are constant); the dot product is taken with x * norm_w and scaled
  // by 1 / rms(x) at the end, so it does not wait for the norm.
  constexpr int U = 8;
  const bool vec = (H & 7) == 0 && (a.ldx & 3) == 0 && (reinterpret_cast<uintptr_t>(a.x) & 15) == 0 &&
                   (reinterpret_cast<uintptr_t>(a.norm_w) & 15) == 0;
  uint4 w_first[U];
  if (vec && row < rows) {
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int64_t k = static_cast<int64_t>(u) * 256 + lane * 8;
      w_first[u] = k < H ? __ldg(reinterpret_cast<const uint4*>(wr + k)) : make_uint4(0u, 0u, 0u, 0u);
    }
  }
  if (a.prefetch && row < rows && H > U * 256) prefetch_row(wr + U * 256, H - U * 256);
  // The whole row in one batch of 16-byte loads (H <= 2048): each warp holds
  // all of x (lane l the values at k = 256 u + 8 l ..), so its sum of squares
  // needs no block-wide step; norm_w (constant) is loaded before the wait.
  const bool one_batch = a.one_pass && vec && H <= U * 256;
  if (one_batch) {
    for (int64_t i = threadIdx.x * 4; i < H; i += blockDim.x * 4)
      *reinterpret_cast<float4*>(hs + i) = __ldg(reinterpret_cast<const float4*>(a.norm_w + i));
    __syncthreads();
  }
  pdl_wait();
  pdl_trigger();
  float logit = 0.0f;  // this warp's router row (lane 0 of a warp with a row)
  if (one_batch) {
    float4 xv[U][2];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int64_t k = static_cast<int64_t>(u) * 256 + lane * 8;
      xv[u][0] = k < H ? *reinterpret_cast<const float4*>(xr + k) : make_float4(0.f, 0.f, 0.f, 0.f);
      xv[u][1] = k < H ? *reinterpret_cast<const float4*>(xr + k + 4) : make_float4(0.f, 0.f, 0.f, 0.f);
    }
    float sq = 0.0f, s = 0.0f;
#pragma unroll
    for (int u = 0; u < U; ++u) {
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const float4 v = xv[u][h];
        sq = fmaf(v.x, v.x, fmaf(v.y, v.y, fmaf(v.z, v.z, fmaf(v.w, v.w, sq))));
        const int64_t k = static_cast<int64_t>(u) * 256 + lane * 8 + 4 * h;
        const float4 g = k < H ? *reinterpret_cast<const float4*>(hs + k) : make_float4(0.f, 0.f, 0.f, 0.f);
        xv[u][h] = make_float4(v.x * g.x, v.y * g.y, v.z * g.z, v.w * g.w);
      }
      if (row < rows) s = dot8_staged(w_first[u], xv[u][0], xv[u][1], s);
    }
    const float r = 1.0f / sqrtf(warp_sum(sq) / static_cast<float>(H) + a.eps);
    // hn: block 0 of the token, warp w the steps u = w, w + 8, ...
    if (blockIdx.y == 0) {
#pragma unroll
      for (int u = 0; u < U; ++u) {
        const int64_t k = static_cast<int64_t>(u) * 256 + lane * 8;
        if (u % (kFusedThreads / 32) == warp && k < H) {
          float4* d = reinterpret_cast<float4*>(a.hn + t * H + k);
          d[0] = make_float4(xv[u][0].x * r, xv[u][0].y * r, xv[u][0].z * r, xv[u][0].w * r);
          d[1] = make_float4(xv[u][1].x * r, xv[u][1].y * r, xv[u][1].z * r, xv[u][1].w * r);
        }
      }
    }
    if (row < rows) logit = warp_sum(s) * r;
  } else {
    float ss = 0.0f;
    for (int64_t i = threadIdx.x; i < H; i += blockDim.x) {
      const float v = xr[i];
      ss = fmaf(v, v, ss);
    }
    float s = 0.0f;
    if (row < rows) {
      if (vec) {
        for (int64_t s0 = 0; s0 < H; s0 += U * 256) {
          uint4 w[U];
#pragma unroll
          for (int u = 0; u < U; ++u) {
            const int64_t k = s0 + static_cast<int64_t>(u) * 256 + lane * 8;
            w[u] = s0 == 0 ? w_first[u]
                   : k < H ? __ldg(reinterpret_cast<const uint4*>(wr + k))
                           : make_uint4(0u, 0u, 0u, 0u);
          }
#pragma unroll
          for (int u = 0; u < U; ++u) {
            const int64_t k = s0 + static_cast<int64_t>(u) * 256 + lane * 8;
            if (k < H) {
              float4 x0 = *reinterpret_cast<const float4*>(xr + k), x1 = *reinterpret_cast<const float4*>(xr + k + 4);
              const float4 n0 = __ldg(reinterpret_cast<const float4*>(a.norm_w + k)),
                           n1 = __ldg(reinterpret_cast<const float4*>(a.norm_w + k + 4));
              x0.x *= n0.x, x0.y *= n0.y, x0.z *= n0.z, x0.w *= n0.w;
              x1.x *= n1.x, x1.y *= n1.y, x1.z *= n1.z, x1.w *= n1.w;
              s = dot8_staged(w[u], x0, x1, s);
            }
          }
        }
      } else {
        for (int64_t k = lane; k < H; k += 32) s = fmaf(bf16_val(wr[k]), a.norm_w[k] * xr[k], s);
      }
    }
    ss = block_sum(ss, scratch);
    const float r = 1.0f / sqrtf(ss / static_cast<float>(H) + a.eps);
    // The normalised row for the experts: every block writes its share.
    const int64_t chunk = (H + gridDim.y - 1) / gridDim.y;
    const int64_t h0 = blockIdx.y * chunk, h1 = min(H, h0 + chunk);
    for (int64_t i = h0 + threadIdx.x; i < h1; i += blockDim.x) a.hn[t * H + i] = a.norm_w[i] * (xr[i] * r);
    if (row < rows) logit = warp_sum(s) * r;
  }
  if (row < rows && lane == 0 && row >= E) a.shared_gate_logit[t] = logit;
  if (a.cluster) {
    // Every block's logits into block 0's shared memory, one cluster barrier,
    // and block 0 routes: no hand-over through global memory.
    namespace cg = cooperative_groups;
    cg::cluster_group cluster = cg::this_cluster();
    if (row < E && lane == 0) cluster.map_shared_rank(lg, 0)[row] = logit;
    cluster.sync();
    if (cluster.block_rank() != 0) return;
    route_row_block(p, lg, a.score_bias, score, choice, picked, a.ids + t * p.top_k, a.weights + t * p.top_k);
    return;
  }
  if (row < E && lane == 0) a.logits[t * E + row] = logit;
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) is_last = atomicAdd(&a.counters[t], 1) == static_cast<int>(gridDim.y) - 1 ? 1 : 0;
  __syncthreads();
  if (!is_last) return;
  __threadfence();
  for (int e = threadIdx.x; e < E; e += blockDim.x) lg[e] = __ldcg(a.logits + t * E + e);
  __syncthreads();
  if (a.one_pass && E <= 256) {
    route_row_block(p, lg, a.score_bias, score, choice, picked, a.ids + t * p.top_k, a.weights + t * p.top_k);
    if (threadIdx.x == 0) a.counters[t] = 0;  // ready for the next launch
  } else if (warp == 0) {
    route_row(p, lg, a.score_bias, score, choice, a.ids + t * p.top_k, a.weights + t * p.top_k);
    if (lane == 0) a.counters[t] = 0;  // ready for the next launch
  }
}

// grid (rows, nh + nkv), kQkvThreads threads: block (t, h) finishes head h of
// token t (q heads first, then k heads; a k head's block also stores its v
// row). With q/k norms over the whole projection each block sums the squares
// of its part (q or k) itself: a few kB from L2 instead of a second launch.
__global__ void __launch_bounds__(kQkvThreads)
    qkv_finish_kernel(QkvFinish f, KvLayout kv, float* k_cache, float* v_cache) {
  __shared__ float scratch[33];
  constexpr int kUnits = 256 / kQkvThreads;  // rotated pairs and plain values per thread (hd <= 256)
  constexpr int kBatch = 16;                 // loads in flight per thread for the sum of squares
  const int64_t t = blockIdx.x;
  const int h = blockIdx.y;
  const int hd = f.hd, nq = f.nh * hd, nk = f.nkv * hd;
  const bool is_q = h < f.nh;
  const float* nw = is_q ? f.q_norm_w : f.k_norm_w;
  const int half = f.rope_dim / 2;
  const int units = half + (hd - f.rope_dim);  // rotated pairs, then untouched values
  const int base = h * hd;
  const int nbase = is_q ? base : base - nq;
  // Everything that does not depend on the projection comes before the wait:
  // the position, the norm weights and the rotation of this thread's units.
  const int64_t pos = f.positions[t];
  const int slot = f.slots[t];
  const float p = static_cast<float>(pos);
  int da[kUnits], db[kUnits];
  float wa[kUnits], wb[kUnits], cs[kUnits], sn[kUnits];
#pragma unroll
  for (int i = 0; i < kUnits; ++i) {
    const int u = threadIdx.x + i * kQkvThreads;
    da[i] = -1;
    db[i] = -1;
    if (u < units) {
      if (u < half) {
        da[i] = f.interleaved ? 2 * u : u;
        db[i] = f.interleaved ? 2 * u + 1 : u + half;
        sincosf(f.inv_freq[u] * p, &sn[i], &cs[i]);
        cs[i] *= f.attention_scaling;
        sn[i] *= f.attention_scaling;
      } else {
        da[i] = f.rope_dim + (u - half);
      }
      wa[i] = nw ? nw[nbase + da[i]] : 1.0f;
      wb[i] = nw && db[i] >= 0 ? nw[nbase + db[i]] : 1.0f;
    }
  }
  pdl_wait();
  pdl_trigger();
  float* row = f.proj + t * f.ldp;
  // This thread's values of the head (and, for a k head, of its v row).
  float va[kUnits], vb[kUnits], vv[kUnits];
  const int kh = h - f.nh;
  const float* vsrc = row + nq + nk + static_cast<int64_t>(kh) * hd;
#pragma unroll
  for (int i = 0; i < kUnits; ++i) {
    const int d = threadIdx.x + i * kQkvThreads;
    va[i] = da[i] >= 0 ? row[base + da[i]] : 0.0f;
    vb[i] = db[i] >= 0 ? row[base + db[i]] : 0.0f;
    vv[i] = !is_q && d < hd ? vsrc[d] : 0.0f;
  }
  float sc = 1.0f;
  if (nw) {
    // The norm runs over the whole q (or k) part: kBatch loads in flight per thread.
    const float* part = is_q ? row : row + nq;
    const int len = is_q ? nq : nk;
    float acc = 0.0f;
    for (int b0 = threadIdx.x; b0 < len; b0 += kQkvThreads * kBatch) {
      float v[kBatch];
#pragma unroll
      for (int u = 0; u < kBatch; ++u) {
        const int i = b0 + u * kQkvThreads;
        v[u] = i < len ? part[i] : 0.0f;
      }
#pragma unroll
      for (int u = 0; u < kBatch; ++u) acc = fmaf(v[u], v[u], acc);
    }
    const float ss = block_sum(acc, scratch);
    sc = 1.0f / sqrtf(ss / static_cast<float>(len) + f.eps);
  }
  const float clip = f.clip;
  float* dst = is_q ? (f.q_out ? f.q_out + t * f.ldq + base : row + base)
                    : k_cache + kv_row(kv, slot, pos, kh) * kv.dk;
#pragma unroll
  for (int i = 0; i < kUnits; ++i) {
    if (da[i] < 0) continue;
    float a = va[i], b = vb[i];
    if (nw) {
      a = wa[i] * (a * sc);
      b = wb[i] * (b * sc);
    }
    if (clip > 0.0f) {
      a = fminf(fmaxf(a, -clip), clip);
      b = fminf(fmaxf(b, -clip), clip);
    }
    if (db[i] >= 0) {
      const float ra = a * cs[i] - b * sn[i], rb = b * cs[i] + a * sn[i];
      a = ra;
      b = rb;
      dst[db[i]] = b;
    }
    dst[da[i]] = a;
  }
  if (!is_q) {
    float* vdst = v_cache + kv_row(kv, slot, pos, kh) * kv.dv;
#pragma unroll
    for (int i = 0; i < kUnits; ++i) {
      const int d = threadIdx.x + i * kQkvThreads;
      if (d < hd) vdst[d] = clip > 0.0f ? fminf(fmaxf(vv[i], -clip), clip) : vv[i];
    }
  }
}

// The keys of split c of row t: only as many splits take part as the keys
// need (at least `keys` each; the grid is fixed when a graph is captured, the
// position is not). active == 0 marks a split that takes no part.
struct SplitKeys {
  int active;
  int64_t start, end;
};
__device__ __forceinline__ SplitKeys split_keys(const int32_t* positions, int64_t t, int64_t window, int splits,
                                                int c, int keys) {
  const int64_t pos = positions[t];
  const int64_t lo = window > 0 ? max(int64_t{0}, pos - window + 1) : 0;
  const int64_t len = pos - lo + 1;
  SplitKeys k;
  k.active = static_cast<int>(min(static_cast<int64_t>(splits), (len + keys - 1) / keys));
  const int64_t per = (len + k.active - 1) / k.active;
  k.start = lo + c * per;
  k.end = min(k.start + per, pos + 1);
  if (c >= k.active) k.active = 0;
  return k;
}

// What block (c, h, t) of a split decode attention works on: its keys
// [start, end) among `active` splits (active == 0: the block takes no part).
struct SplitTask {
  int c, h, kh, slot, active;
  int64_t t, start, end;
};
__device__ __forceinline__ SplitTask split_task(const int32_t* slots, const int32_t* positions, int64_t window,
                                                int splits, int nh, int kv_heads, int keys) {
  SplitTask k;
  k.c = blockIdx.x;
  k.h = blockIdx.y;
  k.t = blockIdx.z;
  k.kh = k.h / (nh / kv_heads);
  k.slot = slots[k.t];
  const SplitKeys sk = split_keys(positions, k.t, window, splits, k.c, keys);
  k.active = sk.active;
  k.start = sk.start;
  k.end = sk.end;
  return k;
}

// The end of a split decode attention block: it publishes its partial result
// (row maximum M, sum L and the dv unnormalised outputs value(d)), and the
// last split of its (row, head) to arrive combines every split's into out
// (the counter left at zero for the next launch). With one active split the
// block writes out itself. Every thread of the block calls it; at most
// blockDim.x splits.
template <typename Value>
__device__ __forceinline__ void publish_and_combine_split(const SplitTask& k, const Value& value, float M, float L,
                                                          int nh, int splits, int dv, float* partial,
                                                          int32_t* counters, float* out, int64_t ldo) {
  __shared__ float fac[kMaxDecodeSplits];
  __shared__ float scratch[33];
  __shared__ int is_last;
  const int tid = threadIdx.x;
  const int64_t th = k.t * nh + k.h;
  float* dst = out + k.t * ldo + static_cast<int64_t>(k.h) * dv;
  if (k.active == 1) {
    const float inv = 1.0f / L;
    for (int d = tid; d < dv; d += blockDim.x) dst[d] = value(d) * inv;
    return;
  }
  const int64_t stride = dv + 2;
  float* part = partial + (th * splits + k.c) * stride;
  if (tid == 0) {
    part[0] = M;
    part[1] = L;
  }
  for (int d = tid; d < dv; d += blockDim.x) part[2 + d] = value(d);
  __threadfence();
  __syncthreads();
  if (tid == 0) is_last = atomicAdd(&counters[th], 1) == k.active - 1 ? 1 : 0;
  __syncthreads();
  if (!is_last) return;
  __threadfence();
  const float* base = partial + th * splits * stride;
  // Every split's maximum and sum at once (one load per thread), then the
  // outputs with all their loads independent.
  const float m_s = tid < k.active ? __ldcg(base + tid * stride) : -INFINITY;
  const float l_s = tid < k.active ? __ldcg(base + tid * stride + 1) : 0.0f;
  const float MM = block_max(m_s, scratch);
  const float f_s = m_s == -INFINITY ? 0.0f : expf(m_s - MM);
  if (tid < k.active) fac[tid] = f_s;
  const float LL = block_sum(f_s * l_s, scratch);  // also publishes fac
  const float inv = 1.0f / LL;
  for (int d = tid; d < dv; d += blockDim.x) {
    float o = 0.0f;
#pragma unroll 4
    for (int sp = 0; sp < k.active; ++sp) o = fmaf(fac[sp], __ldcg(base + sp * stride + 2 + d), o);
    dst[d] = o * inv;
  }
  if (tid == 0) counters[th] = 0;
}

// grid (splits, nh, rows), 128 threads: block c takes the c-th part of its
// query's keys, the last block of each (row, head) to finish combines.
__global__ void __launch_bounds__(128)
    flash_decode_kernel(const float* q, int64_t ldq, int nh, const int32_t* slots, const int32_t* positions,
                        int64_t window, float scale, KvLayout kv, const float* k_cache, const float* v_cache,
                        int splits, float* partial, int32_t* counters, float* out, int64_t ldo) {
  __shared__ float qs[256];
  __shared__ float sc[kFlashDecodeKeys];
  __shared__ float red[4 * 256];
  __shared__ float scratch[33];
  pdl_wait();
  pdl_trigger();
  const SplitTask task = split_task(slots, positions, window, splits, nh, kv.kv_heads, kFlashDecodeKeys);
  if (task.active == 0) return;
  const int h = task.h, kh = task.kh, slot = task.slot;
  const int64_t t = task.t, start = task.start, end = task.end;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int dk = kv.dk, dv = kv.dv;
  for (int d = tid; d < dk; d += blockDim.x) qs[d] = q[t * ldq + static_cast<int64_t>(h) * dk + d];
  __syncthreads();
  float m_run = -INFINITY, l_run = 0.0f, acc0 = 0.0f, acc1 = 0.0f;  // dims tid and tid + 128
  for (int64_t j0 = start; j0 < end; j0 += kFlashDecodeKeys) {
    const int tile = static_cast<int>(min(static_cast<int64_t>(kFlashDecodeKeys), end - j0));
    for (int jb = warp * 4; jb < tile; jb += 16) {
      const float* kr[4];
      float s[4];
#pragma unroll
      for (int u = 0; u < 4; ++u) {
        kr[u] = k_cache + kv_row(kv, slot, j0 + min(jb + u, tile - 1), kh) * dk;
        s[u] = 0.0f;
      }
#pragma unroll 4
      for (int d = lane; d < dk; d += 32) {
        const float qv = qs[d];
#pragma unroll
        for (int u = 0; u < 4; ++u) s[u] = fmaf(qv, kr[u][d], s[u]);
      }
#pragma unroll
      for (int u = 0; u < 4; ++u) s[u] = warp_sum(s[u]);
      if (lane == 0) {
#pragma unroll
        for (int u = 0; u < 4; ++u) {
          if (jb + u < tile) sc[jb + u] = s[u] * scale;
        }
      }
    }
    __syncthreads();
    float mx = -INFINITY;
    for (int j = tid; j < tile; j += blockDim.x) mx = fmaxf(mx, sc[j]);
    mx = block_max(mx, scratch);
    const float m_new = fmaxf(m_run, mx);
    const float alpha = expf(m_run - m_new);  // 0 while m_run is -inf
    float ps = 0.0f;
    for (int j = tid; j < tile; j += blockDim.x) {
      const float pj = expf(sc[j] - m_new);
      sc[j] = pj;
      ps += pj;
    }
    ps = block_sum(ps, scratch);  // also publishes sc
    l_run = l_run * alpha + ps;
    m_run = m_new;
    // P V: warp w takes keys w, w + 4, ... (all their loads in flight), lanes
    // the dimensions; the four warps' sums meet in shared memory.
    float part[8];
#pragma unroll
    for (int i = 0; i < 8; ++i) part[i] = 0.0f;
#pragma unroll 4
    for (int j = warp; j < tile; j += 4) {
      const float* vr = v_cache + kv_row(kv, slot, j0 + j, kh) * dv;
      const float pj = sc[j];
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        const int d = lane + 32 * i;
        if (d < dv) part[i] = fmaf(pj, vr[d], part[i]);
      }
    }
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const int d = lane + 32 * i;
      if (d < dv) red[warp * 256 + d] = part[i];
    }
    __syncthreads();
    const float a0 = tid < dv ? (red[tid] + red[256 + tid]) + (red[512 + tid] + red[768 + tid]) : 0.0f;
    const float a1 = tid + 128 < dv ? (red[tid + 128] + red[256 + tid + 128]) +
                                          (red[512 + tid + 128] + red[768 + tid + 128])
                                    : 0.0f;
    acc0 = acc0 * alpha + a0;
    acc1 = acc1 * alpha + a1;
    __syncthreads();  // sc and red are rewritten by the next tile
  }
  // Thread tid holds dimensions tid and tid + 128 (dv <= 256).
  publish_and_combine_split(
      task, [&](int d) { return d < static_cast<int>(blockDim.x) ? acc0 : acc1; }, m_run, l_run, nh, splits, dv,
      partial, counters, out, ldo);
}

// The split decode attention for rows of whole float4s (dk, dv multiples of
// 4, at most 256): grid (splits, nh, rows), 4 warps. Each warp walks its own
// keys, KPW at a time with every K and V load in flight, and keeps its own
// online softmax (no block barrier in the loop); the four warps merge in
// shared memory, and the last split of a head to finish combines the splits.
// Only ceil(len / (4 KPW)) splits take part (the grid is fixed when a graph
// is captured, the position is not); a single one writes the output itself.
template <int D4K, int D4V>
__global__ void __launch_bounds__(128)
    flash_decode_vec_kernel(const float* q, int64_t ldq, int nh, const int32_t* slots, const int32_t* positions,
                            int64_t window, float scale, KvLayout kv, const float* k_cache, const float* v_cache,
                            int splits, float* partial, int32_t* counters, float* out, int64_t ldo) {
  constexpr int KPW = D4K == 1 && D4V == 1 ? 8 : 4;  // keys per warp and step
  constexpr int NW = 4;
  __shared__ float wm[NW], wl[NW];
  __shared__ float4 wacc[NW][D4V * 32];
  pdl_wait();
  pdl_trigger();
  const SplitTask task = split_task(slots, positions, window, splits, nh, kv.kv_heads, NW * KPW);
  if (task.active == 0) return;
  const int h = task.h, kh = task.kh, slot = task.slot;
  const int64_t t = task.t, start = task.start, end = task.end;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int dk = kv.dk, dv = kv.dv;
  float4 q4[D4K];
#pragma unroll
  for (int i = 0; i < D4K; ++i) {
    const int d = 4 * lane + 128 * i;
    q4[i] = d < dk ? *reinterpret_cast<const float4*>(q + t * ldq + static_cast<int64_t>(h) * dk + d)
                   : make_float4(0.f, 0.f, 0.f, 0.f);
  }
  float m_run = -INFINITY, l_run = 0.0f;
  float4 acc[D4V];
#pragma unroll
  for (int i = 0; i < D4V; ++i) acc[i] = make_float4(0.f, 0.f, 0.f, 0.f);
  for (int64_t j0 = start + warp * KPW; j0 < end; j0 += NW * KPW) {
    float4 k4[KPW][D4K], v4[KPW][D4V];
#pragma unroll
    for (int u = 0; u < KPW; ++u) {
      const int64_t j = min(j0 + u, end - 1);
      const float* kr = k_cache + kv_row(kv, slot, j, kh) * dk;
      const float* vr = v_cache + kv_row(kv, slot, j, kh) * dv;
#pragma unroll
      for (int i = 0; i < D4K; ++i) {
        const int d = 4 * lane + 128 * i;
        k4[u][i] = d < dk ? __ldcg(reinterpret_cast<const float4*>(kr + d)) : make_float4(0.f, 0.f, 0.f, 0.f);
      }
#pragma unroll
      for (int i = 0; i < D4V; ++i) {
        const int d = 4 * lane + 128 * i;
        v4[u][i] = d < dv ? __ldcg(reinterpret_cast<const float4*>(vr + d)) : make_float4(0.f, 0.f, 0.f, 0.f);
      }
    }
    float sc[KPW];
#pragma unroll
    for (int u = 0; u < KPW; ++u) {
      float d = 0.0f;
#pragma unroll
      for (int i = 0; i < D4K; ++i) {
        d = fmaf(q4[i].x, k4[u][i].x, d);
        d = fmaf(q4[i].y, k4[u][i].y, d);
        d = fmaf(q4[i].z, k4[u][i].z, d);
        d = fmaf(q4[i].w, k4[u][i].w, d);
      }
      sc[u] = d;
    }
    float mx = m_run;
#pragma unroll
    for (int u = 0; u < KPW; ++u) {
      sc[u] = j0 + u < end ? warp_sum(sc[u]) * scale : -INFINITY;
      mx = fmaxf(mx, sc[u]);
    }
    const float alpha = expf(m_run - mx);  // 0 while m_run is -inf
    l_run *= alpha;
#pragma unroll
    for (int i = 0; i < D4V; ++i) {
      acc[i].x *= alpha, acc[i].y *= alpha, acc[i].z *= alpha, acc[i].w *= alpha;
    }
#pragma unroll
    for (int u = 0; u < KPW; ++u) {
      const float pj = expf(sc[u] - mx);  // 0 past the end
      l_run += pj;
#pragma unroll
      for (int i = 0; i < D4V; ++i) {
        acc[i].x = fmaf(pj, v4[u][i].x, acc[i].x);
        acc[i].y = fmaf(pj, v4[u][i].y, acc[i].y);
        acc[i].z = fmaf(pj, v4[u][i].z, acc[i].z);
        acc[i].w = fmaf(pj, v4[u][i].w, acc[i].w);
      }
    }
    m_run = mx;
  }
  if (lane == 0) {
    wm[warp] = m_run;
    wl[warp] = l_run;
  }
#pragma unroll
  for (int i = 0; i < D4V; ++i) wacc[warp][lane + 32 * i] = acc[i];
  __syncthreads();
  // Merge the warps: thread d (and d + 128) owns output dimension d.
  float M = -INFINITY;
#pragma unroll
  for (int w = 0; w < NW; ++w) M = fmaxf(M, wm[w]);
  float f[NW], L = 0.0f;
#pragma unroll
  for (int w = 0; w < NW; ++w) {
    f[w] = wm[w] == -INFINITY ? 0.0f : expf(wm[w] - M);
    L += f[w] * wl[w];
  }
  const float* wa = reinterpret_cast<const float*>(&wacc[0][0]);
  constexpr int WS = D4V * 128;  // floats per warp in wacc
  auto merged = [&](int d) {
    // wacc[w] holds lane l's float4 i at (l + 32 i) * 4: dimension d = 4 l + 128 i + e.
    const int i = d >> 7, l = (d & 127) >> 2, e = d & 3;
    const int at = (l + 32 * i) * 4 + e;
    float o = 0.0f;
#pragma unroll
    for (int w = 0; w < NW; ++w) o = fmaf(f[w], wa[w * WS + at], o);
    return o;
  };
  publish_and_combine_split(task, merged, M, L, nh, splits, dv, partial, counters, out, ldo);
}

}  // namespace detail

using namespace detail;

namespace {

int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

// HILUM_DOWN_B1_EARLY=0 makes the one-row down projection load its weights
// only after the wait for the GLU kernel (for side-by-side timing).
bool down_b1_early_enabled() {
  static const bool on = env_switch("HILUM_DOWN_B1_EARLY", true);
  return on;
}

// HILUM_DOWN_B1_WIDE=0 keeps four output rows per block of the one-row down
// projection (for side-by-side timing).
bool down_b1_wide_enabled() {
  static const bool on = env_switch("HILUM_DOWN_B1_WIDE", true);
  return on;
}

// HILUM_ROUTER_ONE_PASS=0: the fused router's first form (the block-wide sum
// of squares, x read twice, norm_w after the wait, top-k by one warp), for
// side-by-side timing.
bool router_one_pass_enabled() {
  static const bool on = env_switch("HILUM_ROUTER_ONE_PASS", true);
  return on;
}

// HILUM_RESIDUAL_EARLY=0: the one-row o projection (StagedGemv::y_ready) and
// down projection read the residual rows they add to only after the wait for
// the previous kernel (side-by-side timing).
bool residual_early_enabled() {
  static const bool on = env_switch("HILUM_RESIDUAL_EARLY", true);
  return on;
}

// HILUM_ROUTER_CLUSTER=0: the fused router hands its logits to the last
// block through global memory (a fence and an atomic counter) even when a
// token's blocks fit one cluster (side-by-side timing).
bool router_cluster_enabled() {
  static const bool on = env_switch("HILUM_ROUTER_CLUSTER", true);
  return on;
}

// The staging stride for rows of length k with MAXT rows at most.
int stage_stride(int maxt, int64_t k) {
  return static_cast<int>(std::min<int64_t>(kStageFloats / maxt, round_up(std::max<int64_t>(k, 1), 256)));
}

int maxt_for(int64_t rows) { return rows <= 1 ? 1 : rows <= 4 ? 4 : rows <= 8 ? 8 : 16; }

template <int MAXT>
Status launch_staged(const StagedGemv& g, const Launch& l) {
  const int kc = stage_stride(MAXT, g.k);
  StagedGemvParams a{};
  a.w = g.w;
  a.bias = g.bias;
  a.n = g.n;
  a.k = g.k;
  a.x = g.x;
  a.ldx = g.ldx;
  a.rows = static_cast<int>(g.rows);
  a.norm_w = g.norm_w;
  a.eps = g.eps;
  a.y = g.y;
  a.ldy = g.ldy;
  a.accumulate = g.accumulate ? 1 : 0;
  a.y_ready = g.y_ready && residual_early_enabled() ? 1 : 0;
  a.act = static_cast<int>(g.act);
  a.prefetch = l.pdl ? 1 : 0;
  a.kc = kc;
  const size_t smem = sizeof(float) * static_cast<size_t>(g.rows) * kc;
  // One row with k in one chunk (the kernel's persistent path): at most two
  // blocks per multiprocessor, each staging the row once.
  const bool persistent = MAXT == 1 && g.k % 8 == 0 && g.k <= kc;
  const unsigned most = persistent ? static_cast<unsigned>(2 * multiprocessor_count()) : ~0u;
  if (g.glu) {
    const unsigned grid = std::min(most, blocks_for(g.n, kFusedThreads / 32));
    return launch_result(
        launch_kernel(staged_gemv_kernel<MAXT, true>, dim3(grid), dim3(kFusedThreads), smem, l, a),
        "staged_gemv (glu)");
  }
  const unsigned grid = std::min(most, blocks_for(g.n, (kFusedThreads / 32) * FusedShape<MAXT>::R));
  return launch_result(
      launch_kernel(staged_gemv_kernel<MAXT, false>, dim3(grid), dim3(kFusedThreads), smem, l, a),
      "staged_gemv");
}

// HILUM_EXPERT_GLU_B1=0 turns the one-row kernel off (for side-by-side timing).
bool glu_b1_enabled() {
  static const bool on = env_switch("HILUM_EXPERT_GLU_B1", true);
  return on;
}

template <int MAXT>
Status launch_expert_glu(const ExpertParams& a, const Launch& l) {
  if (MAXT == 1 && a.rows == 1 && a.H % 8 == 0 && a.H <= kGluB1MaxH && glu_b1_enabled()) {
    const int64_t items = static_cast<int64_t>(a.K) * a.I;
    const unsigned grid = std::min(static_cast<unsigned>(2 * multiprocessor_count()),
                                   blocks_for(items, kFusedThreads / 32));
    return launch_result(launch_kernel(expert_glu_b1_kernel, dim3(grid), dim3(kFusedThreads),
                                       sizeof(float) * static_cast<size_t>(a.kc), l, a),
                         "expert_glu (one row)");
  }
  const unsigned gy = static_cast<unsigned>(a.rows * a.K);
  const size_t smem = sizeof(float) * static_cast<size_t>(a.rows) * a.kc;
  return launch_result(launch_kernel(expert_glu_kernel<MAXT>, dim3(blocks_for(a.I, kFusedThreads / 32), gy),
                                     dim3(kFusedThreads), smem, l, a),
                       "expert_glu");
}

template <int MAXT>
Status launch_expert_down(const ExpertParams& a, const Launch& l) {
  if (MAXT == 1 && a.rows == 1 && a.I % 8 == 0 && a.Is % 8 == 0) {
    ExpertParams b = a;
    b.prefetch = l.pdl && down_b1_early_enabled() ? (residual_early_enabled() ? 3 : 2) : 0;
    if (down_b1_wide_enabled()) {
      return launch_result(launch_kernel(expert_down_b1_kernel<kDownB1WideRows, kDownB1WideUnroll>,
                                         dim3(blocks_for(a.H, kDownB1WideRows)), dim3(kFusedThreads), 0, l, b),
                           "expert_down_combine (one row)");
    }
    return launch_result(launch_kernel(expert_down_b1_kernel<kDownB1Rows, kDownB1Unroll>,
                                       dim3(blocks_for(a.H, kDownB1Rows)), dim3(kFusedThreads), 0, l, b),
                         "expert_down_combine (one row)");
  }
  const int64_t staged = std::max<int64_t>(static_cast<int64_t>(a.rows) * a.kc,
                                           a.whole ? static_cast<int64_t>(a.rows) * a.K * a.ipad : 0);
  const size_t smem = sizeof(float) * static_cast<size_t>(staged);
  const unsigned grid = blocks_for(a.H, (kFusedThreads / 32) * kDownRowsPerWarp);
  return launch_result(
      launch_kernel(expert_down_combine_kernel<MAXT>, dim3(grid), dim3(kFusedThreads), smem, l, a),
      "expert_down_combine");
}

}  // namespace

Status staged_gemv(const StagedGemv& g, const Launch& l) {
  if (g.rows <= 0 || g.n <= 0) return Status::Ok();
  if (g.rows > kMaxFusedRows || g.k <= 0) return internal_error("staged_gemv: 1..16 rows of positive length");
  switch (maxt_for(g.rows)) {
    case 1:
      return launch_staged<1>(g, l);
    case 4:
      return launch_staged<4>(g, l);
    case 8:
      return launch_staged<8>(g, l);
    default:
      return launch_staged<16>(g, l);
  }
}

Status route_fused(const RouterParams& p, const float* x, int64_t ldx, int64_t H, const float* norm_w,
                   float eps, const bf16* router_w, const float* score_bias, const bf16* shared_gate_w,
                   int64_t rows, float* hn, int32_t* ids, float* weights, float* shared_gate_logit,
                   float* logits, int32_t* counters, const Launch& l) {
  if (rows <= 0) return Status::Ok();
  if (p.num_experts <= 0 || p.num_experts > 1024 || p.top_k <= 0 || p.top_k > 16 || p.top_k > p.num_experts ||
      p.n_group <= 0 || p.n_group > 32 || p.num_experts % p.n_group != 0 || H <= 0 ||
      H > kMaxFusedRouterHidden || rows > kMaxFusedRows) {
    return internal_error("route_fused: unsupported router shape");
  }
  RouteFusedParams a{};
  a.p = p;
  a.x = x;
  a.ldx = ldx;
  a.H = H;
  a.norm_w = norm_w;
  a.eps = eps;
  a.router_w = router_w;
  a.score_bias = score_bias;
  a.shared_gate_w = shared_gate_w;
  a.hn = hn;
  a.ids = ids;
  a.weights = weights;
  a.shared_gate_logit = shared_gate_logit;
  a.logits = logits;
  a.counters = counters;
  a.prefetch = l.pdl ? 1 : 0;
  a.one_pass = router_one_pass_enabled() ? 1 : 0;
  const int router_rows = p.num_experts + (shared_gate_w ? 1 : 0);
  const unsigned splits =
      static_cast<unsigned>((router_rows + kFusedThreads / 32 - 1) / (kFusedThreads / 32));
  const size_t smem = sizeof(float) * static_cast<size_t>(round_up(H, 4) + 3 * p.num_experts);
  // Up to eight blocks per token (the portable cluster size) form one cluster.
  if (a.one_pass && splits <= 8 && p.num_experts <= 256 && router_cluster_enabled()) {
    a.cluster = 1;
    return launch_result(launch_kernel_in_clusters(route_fused_kernel, dim3(static_cast<unsigned>(rows), splits),
                                                   dim3(kFusedThreads), smem, l, dim3(1, splits, 1), a),
                         "route_fused (clusters)");
  }
  return launch_result(launch_kernel(route_fused_kernel, dim3(static_cast<unsigned>(rows), splits),
                                     dim3(kFusedThreads), smem, l, a),
                       "route_fused");
}

int64_t route_fused_counters(int64_t max_rows) { return max_rows; }

int64_t expert_group_ints(int64_t pairs) { return pairs * (2 + kMaxFusedRows); }

Status expert_glu(Act act, const bf16* gate_up, int64_t H, int64_t I, const float* x, int64_t ldx,
                  const int32_t* ids, int K, int64_t rows, float* h, int32_t* groups, const Launch& l) {
  if (rows <= 0 || I <= 0) return Status::Ok();
  if (rows > kMaxFusedRows || K <= 0 || K > 16 || H <= 0) return internal_error("expert_glu: bad shape");
  const int maxt = maxt_for(rows);
  ExpertParams a{};
  a.w = gate_up;
  a.H = H;
  a.I = I;
  a.x = x;
  a.ldx = ldx;
  a.ids = ids;
  a.K = K;
  a.rows = static_cast<int>(rows);
  a.out = h;
  a.groups = groups;
  a.act = static_cast<int>(act);
  a.kc = stage_stride(maxt, H);
  switch (maxt) {
    case 1:
      return launch_expert_glu<1>(a, l);
    case 4:
      return launch_expert_glu<4>(a, l);
    case 8:
      return launch_expert_glu<8>(a, l);
    default:
      return launch_expert_glu<16>(a, l);
  }
}

Status expert_down_combine(const bf16* down, int64_t H, int64_t I, const float* h, const int32_t* ids,
                           const float* weights, int K, int64_t rows, const int32_t* groups,
                           const bf16* shared_down, const float* shared_bias, int64_t Is, const float* hs,
                           const float* shared_gate_logit, float* x, int64_t ldx, const Launch& l) {
  if (rows <= 0 || H <= 0) return Status::Ok();
  if (rows > kMaxFusedRows || K <= 0 || K > 16 || I <= 0 || (shared_down && Is <= 0)) {
    return internal_error("expert_down_combine: bad shape");
  }
  const int maxt = maxt_for(rows);
  ExpertParams a{};
  a.w = down;
  a.H = H;
  a.I = I;
  a.x = h;
  a.ids = ids;
  a.weights = weights;
  a.K = K;
  a.rows = static_cast<int>(rows);
  a.out = x;
  a.ldo = ldx;
  a.groups = const_cast<int32_t*>(groups);
  a.shared_w = shared_down;
  a.shared_bias = shared_down ? shared_bias : nullptr;
  a.Is = shared_down ? Is : 0;
  a.hs = hs;
  a.shared_gate_logit = shared_gate_logit;
  a.prefetch = l.pdl ? 1 : 0;
  a.kc = stage_stride(maxt, std::max(I, a.Is));
  // All routed rows staged at once when they fit (decode of a few tokens).
  a.ipad = static_cast<int>(round_up(I, 256));
  a.whole = rows * K * a.ipad <= kWholeStageFloats ? 1 : 0;
  switch (maxt) {
    case 1:
      return launch_expert_down<1>(a, l);
    case 4:
      return launch_expert_down<4>(a, l);
    case 8:
      return launch_expert_down<8>(a, l);
    default:
      return launch_expert_down<16>(a, l);
  }
}

Status qkv_finish(const QkvFinish& f, const KvLayout& kv, float* k_cache, float* v_cache, const Launch& l) {
  if (f.rows <= 0) return Status::Ok();
  if (f.nh <= 0 || f.nkv <= 0 || f.nh % f.nkv != 0 || f.hd <= 0 || f.rope_dim < 0 || f.rope_dim > f.hd ||
      f.rope_dim % 2 != 0 || f.hd > 256 || kv.kv_heads != f.nkv || kv.dk != f.hd || kv.dv != f.hd ||
      f.rows > 0x7fffffff) {
    return internal_error("qkv_finish: unsupported shape");
  }
  if (f.q_norm_w && !f.q_out) return internal_error("qkv_finish: a q norm needs a separate q output");
  return launch_result(launch_kernel(qkv_finish_kernel,
                                     dim3(static_cast<unsigned>(f.rows), static_cast<unsigned>(f.nh + f.nkv)),
                                     dim3(kQkvThreads), 0, l, f, kv, k_cache, v_cache),
                       "qkv_finish");
}

int decode_splits(int64_t rows, int nh, const KvLayout& kv) {
  const int64_t work = std::max<int64_t>(rows * nh, 1);
  int64_t s = (2 * multiprocessor_count() + work - 1) / work;
  s = std::min<int64_t>(s, kMaxDecodeSplits);
  s = std::min<int64_t>(s, std::max<int64_t>(1, kv.capacity / 32));
  return static_cast<int>(std::max<int64_t>(s, 1));
}

int64_t flash_decode_partial_floats(int64_t max_rows, int nh, const KvLayout& kv) {
  int64_t most = 0;
  for (int64_t r = 1; r <= max_rows; ++r)
    most = std::max(most, r * nh * decode_splits(r, nh, kv) * (kv.dv + 2));
  return most;
}

int64_t flash_decode_counters(int64_t max_rows, int nh) { return max_rows * nh; }

Status attention_decode_split(const float* q, int64_t ldq, int64_t rows, int nh, const int32_t* slots,
                              const int32_t* positions, int64_t window, float scale, const KvLayout& kv,
                              const float* k_cache, const float* v_cache, float* partial, int32_t* counters,
                              float* out, int64_t ldo, const Launch& l) {
  if (rows <= 0) return Status::Ok();
  if (kv.dk <= 0 || kv.dk > 256 || kv.dv <= 0 || kv.dv > 256 || kv.kv_heads <= 0 || nh % kv.kv_heads != 0 ||
      kv.capacity <= 0 || rows > 65535 || nh > 65535) {
    return internal_error("attention_decode_split: unsupported attention shape");
  }
  const int splits = decode_splits(rows, nh, kv);
  const bool vec = kv.dk % 4 == 0 && kv.dv % 4 == 0 && ldq % 4 == 0 && ldo % 4 == 0 &&
                   (reinterpret_cast<uintptr_t>(q) & 15) == 0 && (reinterpret_cast<uintptr_t>(out) & 15) == 0;
  auto kernel = !vec                          ? flash_decode_kernel
                : kv.dk <= 128 && kv.dv <= 128 ? flash_decode_vec_kernel<1, 1>
                : kv.dk <= 128                 ? flash_decode_vec_kernel<1, 2>
                : kv.dv <= 128                 ? flash_decode_vec_kernel<2, 1>
                                               : flash_decode_vec_kernel<2, 2>;
  return launch_result(launch_kernel(kernel,
                                     dim3(static_cast<unsigned>(splits), static_cast<unsigned>(nh),
                                          static_cast<unsigned>(rows)),
                                     dim3(128), 0, l, q, ldq, nh, slots, positions, window, scale, kv,
                                     k_cache, v_cache, splits, partial, counters, out, ldo),
                       "attention_decode_split");
}

}  // namespace hilum::cuda::moe
