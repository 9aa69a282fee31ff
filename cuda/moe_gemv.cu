#include <algorithm>

#include "cuda/moe_gemv.cuh"

namespace hilum::cuda::moe {
namespace detail {
namespace {

constexpr int kWarps = 8;  // rows per block

// acc[j] += w[k : k+8] . x_j[k : k+8] for the activation rows xs[0 .. n).
template <int MAXT>
__device__ __forceinline__ void dot8(const uint4 raw, const float* const* xs, int n, int64_t k, float* acc) {
  const float w0 = bf16_lo(raw.x), w1 = bf16_hi(raw.x), w2 = bf16_lo(raw.y), w3 = bf16_hi(raw.y);
  const float w4 = bf16_lo(raw.z), w5 = bf16_hi(raw.z), w6 = bf16_lo(raw.w), w7 = bf16_hi(raw.w);
#pragma unroll
  for (int j = 0; j < MAXT; ++j) {
    if (j < n) {
      const float* xr = xs[j] + k;
      acc[j] += w0 * xr[0] + w1 * xr[1] + w2 * xr[2] + w3 * xr[3] + w4 * xr[4] + w5 * xr[5] + w6 * xr[6] +
                w7 * xr[7];
    }
  }
}

// Dot products of one bf16 weight row with n <= MAXT activation rows, summed
// over the warp (every lane returns the totals in acc).
template <int MAXT>
__device__ __forceinline__ void row_dots(const uint16_t* __restrict__ w, int64_t K, const float* const* xs,
                                         int n, float* acc) {
  const int lane = threadIdx.x & 31;
#pragma unroll
  for (int j = 0; j < MAXT; ++j) acc[j] = 0.0f;
  if ((K & 7) == 0) {
    const uint4* w4 = reinterpret_cast<const uint4*>(w);
#pragma unroll 4
    for (int64_t k = lane * 8; k < K; k += 256) dot8<MAXT>(__ldg(w4 + k / 8), xs, n, k, acc);
  } else {
    for (int64_t k = lane; k < K; k += 32) {
      const float wv = bf16_val(w[k]);
#pragma unroll
      for (int j = 0; j < MAXT; ++j) {
        if (j < n) acc[j] += wv * xs[j][k];
      }
    }
  }
#pragma unroll
  for (int j = 0; j < MAXT; ++j) {
    if (j < n) acc[j] = warp_sum(acc[j]);
  }
}

}  // namespace

template <int MAXT>
__global__ void gemv_kernel(const uint16_t* __restrict__ W, const float* __restrict__ bias, int64_t N,
                            int64_t K, const float* __restrict__ x, int64_t ldx, int T, float* y, int64_t ldy,
                            int accumulate) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarps + (threadIdx.x >> 5);
  if (row >= N) return;
  const float* xs[MAXT];
#pragma unroll
  for (int j = 0; j < MAXT; ++j) xs[j] = x + (j < T ? j : 0) * ldx;
  float acc[MAXT];
  row_dots<MAXT>(W + row * K, K, xs, T, acc);
  if ((threadIdx.x & 31) == 0) {
    const float b = bias ? bias[row] : 0.0f;
#pragma unroll
    for (int j = 0; j < MAXT; ++j) {
      if (j < T) {
        float* dst = y + j * ldy + row;
        *dst = accumulate ? *dst + acc[j] + b : acc[j] + b;
      }
    }
  }
}

template <int MAXP>
__global__ void expert_gate_up_kernel(int act, const uint16_t* __restrict__ gate_up, int64_t H, int64_t I,
                                      const float* __restrict__ x, int64_t ldx, const int32_t* offsets,
                                      const int32_t* active, const int32_t* sorted_pairs, int K, float* h) {
  const int e = active[blockIdx.y];
  if (e < 0) return;
  const int p0 = offsets[e];
  int n = offsets[e + 1] - p0;
  if (n <= 0) return;
  n = n < MAXP ? n : MAXP;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * kWarps + (threadIdx.x >> 5);
  if (i >= I) return;
  const float* xs[MAXP];
#pragma unroll
  for (int j = 0; j < MAXP; ++j)
    xs[j] = x + static_cast<int64_t>(sorted_pairs[p0 + (j < n ? j : 0)] / K) * ldx;
  const uint16_t* wg = gate_up + (static_cast<int64_t>(e) * 2 * I + i) * H;
  const uint16_t* wu = wg + I * H;
  float g[MAXP], u[MAXP];
  row_dots<MAXP>(wg, H, xs, n, g);
  row_dots<MAXP>(wu, H, xs, n, u);
  if ((threadIdx.x & 31) == 0) {
#pragma unroll
    for (int j = 0; j < MAXP; ++j) {
      if (j < n) h[static_cast<int64_t>(p0 + j) * I + i] = activate(act, g[j]) * u[j];
    }
  }
}

template <int MAXP>
__global__ void expert_down_kernel(const uint16_t* __restrict__ down, int64_t H, int64_t I,
                                   const float* __restrict__ h, const int32_t* offsets, const int32_t* active,
                                   float* y) {
  const int e = active[blockIdx.y];
  if (e < 0) return;
  const int p0 = offsets[e];
  int n = offsets[e + 1] - p0;
  if (n <= 0) return;
  n = n < MAXP ? n : MAXP;
  const int64_t o = static_cast<int64_t>(blockIdx.x) * kWarps + (threadIdx.x >> 5);
  if (o >= H) return;
  const float* hs[MAXP];
#pragma unroll
  for (int j = 0; j < MAXP; ++j) hs[j] = h + static_cast<int64_t>(p0 + (j < n ? j : 0)) * I;
  float acc[MAXP];
  row_dots<MAXP>(down + (static_cast<int64_t>(e) * H + o) * I, I, hs, n, acc);
  if ((threadIdx.x & 31) == 0) {
#pragma unroll
    for (int j = 0; j < MAXP; ++j) {
      if (j < n) y[static_cast<int64_t>(p0 + j) * H + o] = acc[j];
    }
  }
}

}  // namespace detail

using namespace detail;

Status gemv(const bf16* W, const float* bias, int64_t N, int64_t K, const float* x, int64_t ldx, int64_t T,
            float* y, int64_t ldy, bool accumulate, Stream s) {
  if (T <= 0 || N <= 0) return Status::Ok();
  if (T > kMaxGemvRows) return internal_error("gemv: more than 16 activation rows");
  const dim3 grid(blocks_for(N, kWarps));
  const int acc = accumulate ? 1 : 0, t = static_cast<int>(T);
  cudaStream_t st = stream_of(s);
  if (T == 1) {
    gemv_kernel<1><<<grid, kWarps * 32, 0, st>>>(W, bias, N, K, x, ldx, t, y, ldy, acc);
  } else if (T <= 4) {
    gemv_kernel<4><<<grid, kWarps * 32, 0, st>>>(W, bias, N, K, x, ldx, t, y, ldy, acc);
  } else if (T <= 8) {
    gemv_kernel<8><<<grid, kWarps * 32, 0, st>>>(W, bias, N, K, x, ldx, t, y, ldy, acc);
  } else {
    gemv_kernel<16><<<grid, kWarps * 32, 0, st>>>(W, bias, N, K, x, ldx, t, y, ldy, acc);
  }
  return launch_status("gemv");
}

Status expert_gate_up_gemv(Act act, const bf16* gate_up, int E, int64_t H, int64_t I, const float* x,
                           int64_t ldx, const int32_t* offsets, const int32_t* active,
                           const int32_t* sorted_pairs, int K, int64_t TK, float* h, Stream s) {
  if (E <= 0 || I <= 0 || TK <= 0) return Status::Ok();
  if (E > 65535) return internal_error("expert_gate_up_gemv: too many experts");
  const dim3 grid(blocks_for(I, kWarps), static_cast<unsigned>(std::min<int64_t>(E, TK)));
  // A token visits an expert at most once, so a group holds at most T = TK / K pairs.
  const int64_t T = TK / std::max(K, 1);
  cudaStream_t st = stream_of(s);
  const int a = static_cast<int>(act);
  if (T <= 1) {
    expert_gate_up_kernel<1><<<grid, kWarps * 32, 0, st>>>(a, gate_up, H, I, x, ldx, offsets, active, sorted_pairs, K, h);
  } else if (T <= 4) {
    expert_gate_up_kernel<4><<<grid, kWarps * 32, 0, st>>>(a, gate_up, H, I, x, ldx, offsets, active, sorted_pairs, K, h);
  } else if (T <= 8) {
    expert_gate_up_kernel<8><<<grid, kWarps * 32, 0, st>>>(a, gate_up, H, I, x, ldx, offsets, active, sorted_pairs, K, h);
  } else {
    expert_gate_up_kernel<16><<<grid, kWarps * 32, 0, st>>>(a, gate_up, H, I, x, ldx, offsets, active, sorted_pairs, K,
                                                           h);
  }
  return launch_status("expert_gate_up_gemv");
}

Status expert_down_gemv(const bf16* down, int E, int64_t H, int64_t I, const float* h, const int32_t* offsets,
                        const int32_t* active, int K, int64_t TK, float* y, Stream s) {
  if (E <= 0 || H <= 0 || TK <= 0) return Status::Ok();
  if (E > 65535) return internal_error("expert_down_gemv: too many experts");
  const dim3 grid(blocks_for(H, kWarps), static_cast<unsigned>(std::min<int64_t>(E, TK)));
  const int64_t T = TK / std::max(K, 1);
  cudaStream_t st = stream_of(s);
  if (T <= 1) {
    expert_down_kernel<1><<<grid, kWarps * 32, 0, st>>>(down, H, I, h, offsets, active, y);
  } else if (T <= 4) {
    expert_down_kernel<4><<<grid, kWarps * 32, 0, st>>>(down, H, I, h, offsets, active, y);
  } else if (T <= 8) {
    expert_down_kernel<8><<<grid, kWarps * 32, 0, st>>>(down, H, I, h, offsets, active, y);
  } else {
    expert_down_kernel<16><<<grid, kWarps * 32, 0, st>>>(down, H, I, h, offsets, active, y);
  }
  return launch_status("expert_down_gemv");
}

}  // namespace hilum::cuda::moe
