#include <algorithm>

#include "cuda/moe_fused.cuh"
#include "cuda/moe_router.cuh"

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

// Per-lane partial dot products of RR weight rows (wrow[r] points at the
// chunk's first weight) with the n staged rows of xs (row stride KC), added
// to acc. vec: 16-byte weight loads (the row length is a multiple of 8 and
// the rows 16-byte aligned); otherwise one bf16 at a time.
template <int MAXT, int RR, int U>
__device__ __forceinline__ void dot_rows(const uint16_t* const (&wrow)[RR], bool vec, int klen,
                                         const float* __restrict__ xs, int KC, int n,
                                         float (&acc)[RR][MAXT]) {
  const int lane = threadIdx.x & 31;
  if (vec) {
    const int steps = (klen + 255) >> 8;
    for (int s0 = 0; s0 < steps; s0 += U) {
      uint4 w[U][RR];
#pragma unroll
      for (int u = 0; u < U; ++u) {
        const int k = (s0 + u) * 256 + lane * 8;
#pragma unroll
        for (int r = 0; r < RR; ++r) {
          w[u][r] =
              k < klen ? __ldg(reinterpret_cast<const uint4*>(wrow[r] + k)) : make_uint4(0u, 0u, 0u, 0u);
        }
      }
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
  const int KC = a.kc;
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
  float mine[RR];
  reduce_to_lanes<MAXT, RR>(acc, n, mine);
  if (lane >= n) return;
  const float sc = a.norm_w ? scale[lane] : 1.0f;
  if constexpr (GLU) {
    const int64_t o = row0;
    const float g = mine[0] * sc + (a.bias ? a.bias[o] : 0.0f);
    const float u = mine[1] * sc + (a.bias ? a.bias[a.n + o] : 0.0f);
    a.y[lane * a.ldy + o] = activate(a.act, g) * u;
  } else {
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const int64_t o = row0 + r;
      if (o < a.n) {
        const float v = mine[r] * sc + (a.bias ? a.bias[o] : 0.0f);
        float* dst = a.y + lane * a.ldy + o;
        *dst = a.accumulate ? *dst + v : v;
      }
    }
  }
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
  const int64_t i = min(i0, a.I - 1);
  const uint16_t* wrow[2] = {a.w + (static_cast<int64_t>(e) * 2 * a.I + i) * a.H,
                             a.w + (static_cast<int64_t>(e) * 2 * a.I + a.I + i) * a.H};
  const bool vec = (a.H & 7) == 0;
  float acc[2][MAXT];
  zero(acc);
  float unused_ss[MAXT];
  const int KC = a.kc;
  for (int64_t k0 = 0; k0 < a.H; k0 += KC) {
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

// grid (rows, splits): block (t, s) normalises x[t] (block s = 0 also writes
// hn[t]), each of its warps computes one router row, s*8 + warp (row E is the
// shared-expert gate), and the last block of token t to finish picks the
// experts from the logits of all blocks.
__global__ void __launch_bounds__(kFusedThreads) route_fused_kernel(RouteFusedParams a) {
  extern __shared__ float4 route_smem[];
  __shared__ float scratch[33];
  __shared__ int is_last;
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
  if (a.prefetch && row < rows) prefetch_row(wr, H);
  pdl_wait();
  pdl_trigger();
  const float* xr = a.x + t * a.ldx;
  float ss = 0.0f;
  for (int64_t i = threadIdx.x; i < H; i += blockDim.x) {
    const float v = xr[i];
    ss += v * v;
  }
  ss = block_sum(ss, scratch);
  const float r = 1.0f / sqrtf(ss / static_cast<float>(H) + a.eps);
  for (int64_t i = threadIdx.x; i < H; i += blockDim.x) {
    const float v = a.norm_w[i] * (xr[i] * r);
    hs[i] = v;
    if (blockIdx.y == 0) a.hn[t * H + i] = v;
  }
  __syncthreads();
  if (row < rows) {
    float s = 0.0f;
    if ((H & 7) == 0) {
#pragma unroll 8
      for (int64_t k = lane * 8; k < H; k += 256) {
        const uint4 w = __ldg(reinterpret_cast<const uint4*>(wr + k));
        const float4 x0 = *reinterpret_cast<const float4*>(hs + k);
        const float4 x1 = *reinterpret_cast<const float4*>(hs + k + 4);
        s = dot8_staged(w, x0, x1, s);
      }
    } else {
      for (int64_t k = lane; k < H; k += 32) s = fmaf(bf16_val(wr[k]), hs[k], s);
    }
    s = warp_sum(s);
    if (lane == 0) {
      if (row < E) {
        a.logits[t * E + row] = s;
      } else {
        a.shared_gate_logit[t] = s;
      }
    }
  }
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) is_last = atomicAdd(&a.counters[t], 1) == static_cast<int>(gridDim.y) - 1 ? 1 : 0;
  __syncthreads();
  if (!is_last) return;
  __threadfence();
  for (int e = threadIdx.x; e < E; e += blockDim.x) lg[e] = __ldcg(a.logits + t * E + e);
  __syncthreads();
  if (warp == 0) {
    route_row(p, lg, a.score_bias, score, choice, a.ids + t * p.top_k, a.weights + t * p.top_k);
    if (lane == 0) a.counters[t] = 0;  // ready for the next launch
  }
}

// One block of kQkvThreads per token.
__global__ void __launch_bounds__(kQkvThreads)
    qkv_finish_kernel(QkvFinish f, KvLayout kv, float* k_cache, float* v_cache) {
  __shared__ float scratch[33];
  pdl_wait();
  pdl_trigger();
  const int64_t t = blockIdx.x;
  float* row = f.proj + t * f.ldp;
  const int hd = f.hd, nq = f.nh * hd, nk = f.nkv * hd;
  float qs = 1.0f, ks = 1.0f;
  if (f.q_norm_w) {
    float a = 0.0f, b = 0.0f;
#pragma unroll 4
    for (int i = threadIdx.x; i < nq; i += blockDim.x) a += row[i] * row[i];
#pragma unroll 4
    for (int i = threadIdx.x; i < nk; i += blockDim.x) b += row[nq + i] * row[nq + i];
    a = block_sum(a, scratch);
    b = block_sum(b, scratch);
    qs = 1.0f / sqrtf(a / static_cast<float>(nq) + f.eps);
    ks = 1.0f / sqrtf(b / static_cast<float>(nk) + f.eps);
  }
  const int64_t pos = f.positions[t];
  const int slot = f.slots[t];
  const int half = f.rope_dim / 2;
  const int units = half + (hd - f.rope_dim);  // rotated pairs, then untouched values
  const float clip = f.clip;
  const float p = static_cast<float>(pos);
#pragma unroll 2
  for (int idx = threadIdx.x; idx < (f.nh + f.nkv) * units; idx += blockDim.x) {
    const int h = idx / units, u = idx - h * units;
    const bool is_q = h < f.nh;
    const int base = h * hd;
    const float* nw = is_q ? f.q_norm_w : f.k_norm_w;
    const int nbase = is_q ? base : base - nq;
    const float sc = is_q ? qs : ks;
    int da, db = -1;
    if (u < half) {
      da = f.interleaved ? 2 * u : u;
      db = f.interleaved ? 2 * u + 1 : u + half;
    } else {
      da = f.rope_dim + (u - half);
    }
    float va = row[base + da];
    float vb = db >= 0 ? row[base + db] : 0.0f;
    if (nw) {
      va = nw[nbase + da] * (va * sc);
      if (db >= 0) vb = nw[nbase + db] * (vb * sc);
    }
    if (clip > 0.0f) {
      va = fminf(fmaxf(va, -clip), clip);
      vb = fminf(fmaxf(vb, -clip), clip);
    }
    if (db >= 0) {
      const float angle = f.inv_freq[u] * p;
      const float c = cosf(angle) * f.attention_scaling, s = sinf(angle) * f.attention_scaling;
      const float ra = va * c - vb * s, rb = vb * c + va * s;
      va = ra;
      vb = rb;
    }
    float* dst = is_q ? row + base : k_cache + kv_row(kv, slot, pos, h - f.nh) * kv.dk;
    dst[da] = va;
    if (db >= 0) dst[db] = vb;
  }
  const float* vsrc = row + nq + nk;
#pragma unroll 4
  for (int i = threadIdx.x; i < nk; i += blockDim.x) {
    float v = vsrc[i];
    if (clip > 0.0f) v = fminf(fmaxf(v, -clip), clip);
    const int h = i / hd, d = i - h * hd;
    v_cache[kv_row(kv, slot, pos, h) * kv.dv + d] = v;
  }
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
  __shared__ int is_last;
  pdl_wait();
  pdl_trigger();
  const int c = blockIdx.x, h = blockIdx.y;
  const int64_t t = blockIdx.z;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int64_t pos = positions[t];
  const int slot = slots[t];
  const int64_t lo = window > 0 ? max(int64_t{0}, pos - window + 1) : 0;
  const int64_t per = (pos - lo + 1 + splits - 1) / splits;
  const int64_t start = lo + c * per;
  const int64_t end = min(start + per, pos + 1);
  const int kh = h / (nh / kv.kv_heads);
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
  const int64_t stride = dv + 2;
  float* part = partial + ((t * nh + h) * splits + c) * stride;
  if (tid == 0) {
    part[0] = m_run;
    part[1] = l_run;
  }
  if (tid < dv) part[2 + tid] = acc0;
  if (tid + 128 < dv) part[2 + tid + 128] = acc1;
  __threadfence();
  __syncthreads();
  if (tid == 0) is_last = atomicAdd(&counters[t * nh + h], 1) == splits - 1 ? 1 : 0;
  __syncthreads();
  if (!is_last) return;
  __threadfence();
  const float* base = partial + (t * nh + h) * splits * stride;
  float M = -INFINITY;
  for (int s = 0; s < splits; ++s) M = fmaxf(M, __ldcg(base + s * stride));
  float L = 0.0f, o0 = 0.0f, o1 = 0.0f;
  for (int s = 0; s < splits; ++s) {
    const float* ps_ = base + s * stride;
    const float m = __ldcg(ps_);
    if (m == -INFINITY) continue;
    const float f = expf(m - M);
    L += f * __ldcg(ps_ + 1);
    if (tid < dv) o0 += f * __ldcg(ps_ + 2 + tid);
    if (tid + 128 < dv) o1 += f * __ldcg(ps_ + 2 + tid + 128);
  }
  const float inv = 1.0f / L;
  float* dst = out + t * ldo + static_cast<int64_t>(h) * dv;
  if (tid < dv) dst[tid] = o0 * inv;
  if (tid + 128 < dv) dst[tid + 128] = o1 * inv;
  if (tid == 0) counters[t * nh + h] = 0;  // ready for the next launch
}

}  // namespace detail

using namespace detail;

namespace {

int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

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
  a.act = static_cast<int>(g.act);
  a.prefetch = l.pdl ? 1 : 0;
  a.kc = kc;
  const size_t smem = sizeof(float) * static_cast<size_t>(g.rows) * kc;
  if (g.glu) {
    const unsigned grid = blocks_for(g.n, kFusedThreads / 32);
    return launch_result(
        launch_kernel(staged_gemv_kernel<MAXT, true>, dim3(grid), dim3(kFusedThreads), smem, l, a),
        "staged_gemv (glu)");
  }
  const unsigned grid = blocks_for(g.n, (kFusedThreads / 32) * FusedShape<MAXT>::R);
  return launch_result(
      launch_kernel(staged_gemv_kernel<MAXT, false>, dim3(grid), dim3(kFusedThreads), smem, l, a),
      "staged_gemv");
}

template <int MAXT>
Status launch_expert_glu(const ExpertParams& a, const Launch& l) {
  const unsigned gy = static_cast<unsigned>(a.rows * a.K);
  const size_t smem = sizeof(float) * static_cast<size_t>(a.rows) * a.kc;
  return launch_result(launch_kernel(expert_glu_kernel<MAXT>, dim3(blocks_for(a.I, kFusedThreads / 32), gy),
                                     dim3(kFusedThreads), smem, l, a),
                       "expert_glu");
}

template <int MAXT>
Status launch_expert_down(const ExpertParams& a, const Launch& l) {
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
  const int router_rows = p.num_experts + (shared_gate_w ? 1 : 0);
  const unsigned splits =
      static_cast<unsigned>((router_rows + kFusedThreads / 32 - 1) / (kFusedThreads / 32));
  const size_t smem = sizeof(float) * static_cast<size_t>(round_up(H, 4) + 3 * p.num_experts);
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
      f.rope_dim % 2 != 0 || kv.kv_heads != f.nkv || kv.dk != f.hd || kv.dv != f.hd || f.rows > 0x7fffffff) {
    return internal_error("qkv_finish: unsupported shape");
  }
  return launch_result(launch_kernel(qkv_finish_kernel, dim3(static_cast<unsigned>(f.rows)),
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
  return launch_result(launch_kernel(flash_decode_kernel,
                                     dim3(static_cast<unsigned>(splits), static_cast<unsigned>(nh),
                                          static_cast<unsigned>(rows)),
                                     dim3(128), 0, l, q, ldq, nh, slots, positions, window, scale, kv,
                                     k_cache, v_cache, splits, partial, counters, out, ldo),
                       "attention_decode_split");
}

}  // namespace hilum::cuda::moe
