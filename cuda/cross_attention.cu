// Cross-attention kernels (see cross_attention.h for the contract and
// cross_attention.cuh for the fragment layouts).
#include <cuda_runtime.h>

#include <cmath>
#include <string>

#include "cuda/cross_attention.cuh"
#include "cuda/cross_attention.h"

namespace hilum::cuda {
namespace attention {
namespace {

constexpr float kLog2e = 1.4426950408889634f;

// Flash-attention forward for one head and WARPS*16 query rows per block; each
// warp owns 16 rows and keeps Q, S/P and O in registers. K/V tiles of BC keys
// stream through double-buffered shared memory (cp.async).
template <typename T, int D, int WARPS>
__global__ void __launch_bounds__(WARPS * 32)
    tensor_core_kernel(const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
                       T* __restrict__ out, int64_t queries, int keys, int heads, float scale_log2) {
  using Ops = Mma16816<T>;
  constexpr int BR = WARPS * 16;
  constexpr int BC = D <= 64 ? 64 : 32;
  constexpr int STRIDE = D + 8;  // elements per shared row: 16-byte rows, no ldmatrix bank conflicts
  constexpr int CHUNKS = D / 8;  // 16-byte chunks per row
  __shared__ __align__(16) T smem[2][2][BC * STRIDE];  // [buffer][K, V]

  const int warp = threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  const int g = lane >> 2;
  const int t = lane & 3;
  const int h = blockIdx.y;
  const int64_t width = static_cast<int64_t>(heads) * D;
  const int64_t row_a = static_cast<int64_t>(blockIdx.x) * BR + warp * 16 + g;
  const int64_t row_b = row_a + 8;

  auto load_tile = [&](int tile, int buffer) {
    const int key0 = tile * BC;
    for (int c = threadIdx.x; c < BC * CHUNKS; c += WARPS * 32) {
      const int r = c / CHUNKS;
      const int cc = c % CHUNKS;
      const int key = key0 + r;
      const bool valid = key < keys;
      const int64_t offset = (valid ? static_cast<int64_t>(key) * width : 0) + static_cast<int64_t>(h) * D + cc * 8;
      cp_async_16(&smem[buffer][0][r * STRIDE + cc * 8], k + offset, valid ? 16 : 0);
      cp_async_16(&smem[buffer][1][r * STRIDE + cc * 8], v + offset, valid ? 16 : 0);
    }
    cp_async_commit();
  };

  const int tiles = (keys + BC - 1) / BC;
  load_tile(0, 0);

  // Q fragments straight from global memory (rows past the end are zeros).
  uint32_t qa[D / 16][4];
  {
    const uint32_t* qa_row = row_a < queries ? reinterpret_cast<const uint32_t*>(q + row_a * width + h * D) : nullptr;
    const uint32_t* qb_row = row_b < queries ? reinterpret_cast<const uint32_t*>(q + row_b * width + h * D) : nullptr;
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      const int word = (kk * 16 + 2 * t) / 2;
      qa[kk][0] = qa_row ? qa_row[word] : 0u;
      qa[kk][1] = qb_row ? qb_row[word] : 0u;
      qa[kk][2] = qa_row ? qa_row[word + 4] : 0u;
      qa[kk][3] = qb_row ? qb_row[word + 4] : 0u;
    }
  }

  float o[D / 8][4];
#pragma unroll
  for (int i = 0; i < D / 8; ++i) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.f;
  float row_max[2] = {-INFINITY, -INFINITY};
  float row_sum[2] = {0.f, 0.f};

  for (int tile = 0; tile < tiles; ++tile) {
    const int buffer = tile & 1;
    if (tile + 1 < tiles) {
      load_tile(tile + 1, buffer ^ 1);
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    const T* ks = smem[buffer][0];
    const T* vs = smem[buffer][1];

    // S = Q K^T for this warp's 16 rows and BC keys.
    float s[BC / 8][4];
#pragma unroll
    for (int i = 0; i < BC / 8; ++i) s[i][0] = s[i][1] = s[i][2] = s[i][3] = 0.f;
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
#pragma unroll
      for (int np = 0; np < BC / 16; ++np) {
        uint32_t b[4];
        ldmatrix_x4(b, ks + (np * 16 + (lane >> 4) * 8 + (lane & 7)) * STRIDE + kk * 16 + ((lane >> 3) & 1) * 8);
        Ops::run(s[2 * np], qa[kk], b[0], b[1]);
        Ops::run(s[2 * np + 1], qa[kk], b[2], b[3]);
      }
    }

    // Online softmax (base 2). The four lanes of a quad share rows g and g+8.
    const int key_base = tile * BC + 2 * t;
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      float mx = -INFINITY;
#pragma unroll
      for (int nt = 0; nt < BC / 8; ++nt) {
#pragma unroll
        for (int c = 0; c < 2; ++c) {
          const int key = key_base + nt * 8 + c;
          float x = s[nt][2 * r + c] * scale_log2;
          if (key >= keys) x = -INFINITY;
          s[nt][2 * r + c] = x;
          mx = fmaxf(mx, x);
        }
      }
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      const float new_max = fmaxf(row_max[r], mx);  // finite: every tile has a valid key
      const float alpha = exp2f(row_max[r] - new_max);
      row_max[r] = new_max;
      float sum = 0.f;
#pragma unroll
      for (int nt = 0; nt < BC / 8; ++nt) {
#pragma unroll
        for (int c = 0; c < 2; ++c) {
          const float p = exp2f(s[nt][2 * r + c] - new_max);
          s[nt][2 * r + c] = p;
          sum += p;
        }
      }
      row_sum[r] = row_sum[r] * alpha + sum;
#pragma unroll
      for (int nt = 0; nt < D / 8; ++nt) {
        o[nt][2 * r] *= alpha;
        o[nt][2 * r + 1] *= alpha;
      }
    }

    // O += P V: the S accumulators become A fragments of P.
#pragma unroll
    for (int kk = 0; kk < BC / 16; ++kk) {
      const uint32_t pa[4] = {Ops::pack(s[2 * kk][0], s[2 * kk][1]), Ops::pack(s[2 * kk][2], s[2 * kk][3]),
                              Ops::pack(s[2 * kk + 1][0], s[2 * kk + 1][1]),
                              Ops::pack(s[2 * kk + 1][2], s[2 * kk + 1][3])};
#pragma unroll
      for (int dp = 0; dp < D / 16; ++dp) {
        uint32_t b[4];
        ldmatrix_x4_trans(b, vs + (kk * 16 + ((lane >> 3) & 1) * 8 + (lane & 7)) * STRIDE + dp * 16 + (lane >> 4) * 8);
        Ops::run(o[2 * dp], pa, b[0], b[1]);
        Ops::run(o[2 * dp + 1], pa, b[2], b[3]);
      }
    }
    __syncthreads();  // the next iteration's prefetch overwrites this buffer
  }

  float inv[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    float l = row_sum[r];
    l += __shfl_xor_sync(0xffffffffu, l, 1);
    l += __shfl_xor_sync(0xffffffffu, l, 2);
    inv[r] = 1.f / l;
  }
  uint32_t* out_a = row_a < queries ? reinterpret_cast<uint32_t*>(out + row_a * width + h * D) : nullptr;
  uint32_t* out_b = row_b < queries ? reinterpret_cast<uint32_t*>(out + row_b * width + h * D) : nullptr;
#pragma unroll
  for (int nt = 0; nt < D / 8; ++nt) {
    const int word = (nt * 8 + 2 * t) / 2;
    if (out_a) out_a[word] = Ops::pack(o[nt][0] * inv[0], o[nt][1] * inv[0]);
    if (out_b) out_b[word] = Ops::pack(o[nt][2] * inv[1], o[nt][3] * inv[1]);
  }
}

// One warp per (query row, head); lane i holds dims i, i+32, ... Plain fp32
// maths; the fallback for head sizes the tensor-core kernel does not take.
template <typename T>
__global__ void simple_kernel(const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
                              T* __restrict__ out, int64_t queries, int keys, int heads, int d, float scale_log2) {
  using Ops = Mma16816<T>;
  constexpr int kMaxPerLane = 8;  // head_dim <= 256
  const int64_t warp_id = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  const int lane = threadIdx.x % 32;
  if (warp_id >= queries * heads) return;
  const int64_t row = warp_id / heads;
  const int h = static_cast<int>(warp_id % heads);
  const int64_t width = static_cast<int64_t>(heads) * d;
  float qv[kMaxPerLane], acc[kMaxPerLane];
#pragma unroll
  for (int i = 0; i < kMaxPerLane; ++i) {
    const int dim = lane + 32 * i;
    qv[i] = dim < d ? Ops::to_float(q[row * width + h * d + dim]) : 0.f;
    acc[i] = 0.f;
  }
  float m = -INFINITY, l = 0.f;
  for (int key = 0; key < keys; ++key) {
    const T* kr = k + static_cast<int64_t>(key) * width + h * d;
    float dot = 0.f;
#pragma unroll
    for (int i = 0; i < kMaxPerLane; ++i) {
      const int dim = lane + 32 * i;
      if (dim < d) dot += qv[i] * Ops::to_float(kr[dim]);
    }
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, off);
    const float x = dot * scale_log2;
    const float new_m = fmaxf(m, x);
    const float alpha = exp2f(m - new_m);
    const float p = exp2f(x - new_m);
    l = l * alpha + p;
    const T* vr = v + static_cast<int64_t>(key) * width + h * d;
#pragma unroll
    for (int i = 0; i < kMaxPerLane; ++i) {
      const int dim = lane + 32 * i;
      acc[i] = acc[i] * alpha + (dim < d ? p * Ops::to_float(vr[dim]) : 0.f);
    }
    m = new_m;
  }
  const float inv = keys > 0 ? 1.f / l : 0.f;
#pragma unroll
  for (int i = 0; i < kMaxPerLane; ++i) {
    const int dim = lane + 32 * i;
    if (dim < d) out[row * width + h * d + dim] = Ops::from_float(acc[i] * inv);
  }
}

Status check(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return Status::Ok();
  return internal_error(std::string(what) + ": " + cudaGetErrorString(err));
}

bool aligned(const void* p, uintptr_t bytes) { return (reinterpret_cast<uintptr_t>(p) % bytes) == 0; }

template <typename T, int D>
void launch_tensor_core(const void* q, const void* k, const void* v, void* out, const CrossAttentionShape& s,
                        float scale_log2, cudaStream_t stream) {
  constexpr int kWarps = 4;
  const dim3 grid(static_cast<unsigned>((s.queries + kWarps * 16 - 1) / (kWarps * 16)), static_cast<unsigned>(s.heads));
  tensor_core_kernel<T, D, kWarps><<<grid, kWarps * 32, 0, stream>>>(
      static_cast<const T*>(q), static_cast<const T*>(k), static_cast<const T*>(v), static_cast<T*>(out), s.queries,
      static_cast<int>(s.keys), s.heads, scale_log2);
}

template <typename T>
Status dispatch(const void* q, const void* k, const void* v, void* out, const CrossAttentionShape& s,
                float scale, CrossAttentionKernel kernel, cudaStream_t stream) {
  const float scale_log2 = scale * kLog2e;
  const bool tc_ok = cross_attention_tensor_core_supports(s.head_dim) && aligned(k, 16) && aligned(v, 16) &&
                     aligned(q, 4) && aligned(out, 4);
  if (kernel == CrossAttentionKernel::kTensorCore && !tc_ok) {
    return unsupported("tensor-core cross-attention needs head_dim 32, 64 or 128 and aligned buffers (head_dim " +
                       std::to_string(s.head_dim) + ")");
  }
  if (kernel != CrossAttentionKernel::kSimple && tc_ok) {
    switch (s.head_dim) {
      case 32: launch_tensor_core<T, 32>(q, k, v, out, s, scale_log2, stream); break;
      case 64: launch_tensor_core<T, 64>(q, k, v, out, s, scale_log2, stream); break;
      default: launch_tensor_core<T, 128>(q, k, v, out, s, scale_log2, stream); break;
    }
  } else {
    const int64_t warps = s.queries * s.heads;
    const int threads = 256;
    const int64_t blocks = (warps * 32 + threads - 1) / threads;
    if (blocks > 0x7fffffff) return unsupported("cross-attention: too many query rows for one launch");
    simple_kernel<T><<<static_cast<unsigned>(blocks), threads, 0, stream>>>(
        static_cast<const T*>(q), static_cast<const T*>(k), static_cast<const T*>(v), static_cast<T*>(out), s.queries,
        static_cast<int>(s.keys), s.heads, s.head_dim, scale_log2);
  }
  return check(cudaGetLastError(), "cross-attention launch");
}

__global__ void fill_random(uint16_t* p, int64_t n, uint32_t seed, bool bf16) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  uint32_t x = static_cast<uint32_t>(i) * 2654435761u ^ seed;
  x ^= x >> 13;
  x *= 0x5bd1e995u;
  x ^= x >> 15;
  const float f = (x & 0xffffff) / 16777216.0f * 2.f - 1.f;
  if (bf16) {
    __nv_bfloat16 b = __float2bfloat16_rn(f);
    p[i] = *reinterpret_cast<uint16_t*>(&b);
  } else {
    __half h = __float2half_rn(f);
    p[i] = *reinterpret_cast<uint16_t*>(&h);
  }
}

}  // namespace
}  // namespace attention

bool cross_attention_tensor_core_supports(int head_dim) {
  return head_dim == 32 || head_dim == 64 || head_dim == 128;
}

Status cross_attention(const void* q, const void* k, const void* v, void* out, const CrossAttentionShape& shape,
                       AttentionDType dtype, float scale, CrossAttentionKernel kernel, void* stream) {
  if (shape.queries < 0 || shape.keys < 0 || shape.heads <= 0 || shape.head_dim <= 0) {
    return bad_input("cross-attention: negative or zero size");
  }
  if (shape.head_dim > 256) return unsupported("cross-attention: head_dim > 256 is not supported");
  if (shape.keys > 0x7fffffff || shape.heads > 65535) return unsupported("cross-attention: too many keys or heads");
  auto st = static_cast<cudaStream_t>(stream);
  const size_t out_bytes = static_cast<size_t>(shape.queries) * shape.heads * shape.head_dim * 2;
  if (shape.queries == 0) return Status::Ok();
  if (shape.keys == 0) return attention::check(cudaMemsetAsync(out, 0, out_bytes, st), "cudaMemsetAsync");
  if (dtype == AttentionDType::kF16) return attention::dispatch<__half>(q, k, v, out, shape, scale, kernel, st);
  return attention::dispatch<__nv_bfloat16>(q, k, v, out, shape, scale, kernel, st);
}

Result<double> time_cross_attention(const CrossAttentionShape& s, AttentionDType dtype, CrossAttentionKernel kernel,
                                    int warmup, int iters) {
  using attention::check;
  const int64_t q_elems = s.queries * s.heads * s.head_dim;
  const int64_t kv_elems = s.keys * s.heads * s.head_dim;
  uint16_t *q = nullptr, *k = nullptr, *v = nullptr, *o = nullptr;
  cudaEvent_t start = nullptr, stop = nullptr;
  auto cleanup = [&] {
    cudaFree(q), cudaFree(k), cudaFree(v), cudaFree(o);
    if (start) cudaEventDestroy(start);
    if (stop) cudaEventDestroy(stop);
  };
  auto body = [&]() -> Result<double> {
    HILUM_RETURN_IF_ERROR(check(cudaMalloc(&q, q_elems * 2), "cudaMalloc"));
    HILUM_RETURN_IF_ERROR(check(cudaMalloc(&o, q_elems * 2), "cudaMalloc"));
    HILUM_RETURN_IF_ERROR(check(cudaMalloc(&k, kv_elems * 2 + 16), "cudaMalloc"));
    HILUM_RETURN_IF_ERROR(check(cudaMalloc(&v, kv_elems * 2 + 16), "cudaMalloc"));
    const bool bf16 = dtype == AttentionDType::kBF16;
    uint32_t seed = 1;
    for (auto [p, n] : {std::pair{q, q_elems}, std::pair{k, kv_elems}, std::pair{v, kv_elems}}) {
      if (n > 0) attention::fill_random<<<static_cast<unsigned>((n + 255) / 256), 256>>>(p, n, seed++, bf16);
    }
    HILUM_RETURN_IF_ERROR(check(cudaGetLastError(), "fill"));
    const float scale = 1.0f / std::sqrt(static_cast<float>(s.head_dim));
    for (int i = 0; i < warmup; ++i) HILUM_RETURN_IF_ERROR(cross_attention(q, k, v, o, s, dtype, scale, kernel));
    HILUM_RETURN_IF_ERROR(check(cudaEventCreate(&start), "cudaEventCreate"));
    HILUM_RETURN_IF_ERROR(check(cudaEventCreate(&stop), "cudaEventCreate"));
    HILUM_RETURN_IF_ERROR(check(cudaEventRecord(start), "cudaEventRecord"));
    for (int i = 0; i < iters; ++i) HILUM_RETURN_IF_ERROR(cross_attention(q, k, v, o, s, dtype, scale, kernel));
    HILUM_RETURN_IF_ERROR(check(cudaEventRecord(stop), "cudaEventRecord"));
    HILUM_RETURN_IF_ERROR(check(cudaEventSynchronize(stop), "cudaEventSynchronize"));
    float ms = 0;
    HILUM_RETURN_IF_ERROR(check(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime"));
    return static_cast<double>(ms) / std::max(iters, 1);
  };
  Result<double> r = body();
  cleanup();
  return r;
}

}  // namespace hilum::cuda
