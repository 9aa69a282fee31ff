#include <mma.h>

#include <algorithm>

#include "cuda/moe_tensorcore.cuh"

namespace hilum::cuda::moe {
namespace detail {
namespace {

namespace wmma = nvcuda::wmma;
using bf16_t = __nv_bfloat16;

__device__ __forceinline__ int64_t cache_at(const KvLayout& kv, int slot, int64_t pos, int head) {
  return (static_cast<int64_t>(slot) * kv.capacity + pos) * kv.kv_heads + head;
}

__host__ __device__ constexpr size_t align128(size_t v) { return (v + 127) & ~size_t{127}; }

// Shared-memory plan of the flash prefill kernel (byte offsets; every
// region 128-byte aligned so that WMMA's 32-byte alignment holds for tiles
// starting at multiples of 16 rows and 16 columns).
struct FaLayout {
  int ldq, ldk, ldv, lds, ldp, ldo;
  size_t q, k, v, s, p, o, m, l, alpha, total;
};

__host__ __device__ inline FaLayout fa_layout(int dk, int dv) {
  FaLayout L{};
  L.ldq = dk + 8;
  L.ldk = dk + 8;
  L.ldv = dv + 8;
  L.lds = kFaKeys + 4;
  L.ldp = kFaKeys + 8;
  L.ldo = dv + 4;
  size_t off = 0;
  L.q = off;
  off = align128(off + sizeof(uint16_t) * kFaRows * L.ldq);
  L.k = off;
  off = align128(off + sizeof(uint16_t) * kFaKeys * L.ldk);
  L.v = off;
  off = align128(off + sizeof(uint16_t) * kFaKeys * L.ldv);
  L.s = off;
  off = align128(off + sizeof(float) * kFaRows * L.lds);
  L.p = off;
  off = align128(off + sizeof(uint16_t) * kFaRows * L.ldp);
  L.o = off;
  off = align128(off + sizeof(float) * kFaRows * L.ldo);
  L.m = off;
  off = align128(off + sizeof(float) * kFaRows);
  L.l = off;
  off = align128(off + sizeof(float) * kFaRows);
  L.alpha = off;
  off = align128(off + sizeof(float) * kFaRows);
  L.total = off;
  return L;
}

// Four fp32 values to four bf16 at dst (8-byte aligned).
__device__ __forceinline__ void store4_bf16(uint16_t* dst, float4 v) {
  const uint32_t lo =
      static_cast<uint32_t>(to_bf16_bits(v.x)) | (static_cast<uint32_t>(to_bf16_bits(v.y)) << 16);
  const uint32_t hi =
      static_cast<uint32_t>(to_bf16_bits(v.z)) | (static_cast<uint32_t>(to_bf16_bits(v.w)) << 16);
  *reinterpret_cast<uint2*>(dst) = make_uint2(lo, hi);
}

// dst[r * ld + c] = bf16(src_row(r)[c]) for r < rows, c < cols (cols a
// multiple of 4; src_row(r) == nullptr gives zeros), eight 16-byte loads in
// flight per thread.
template <typename RowPtr>
__device__ __forceinline__ void load_tile_bf16(uint16_t* dst, int ld, int rows, int cols, RowPtr src_row) {
  constexpr int kBatch = 8;
  const int c4 = cols / 4, total = rows * c4;
  for (int base = threadIdx.x; base < total; base += blockDim.x * kBatch) {
    float4 v[kBatch];
#pragma unroll
    for (int u = 0; u < kBatch; ++u) {
      const int i = base + u * blockDim.x;
      v[u] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
      if (i < total) {
        const int r = i / c4;
        const float* row = src_row(r);
        if (row) v[u] = *reinterpret_cast<const float4*>(row + (i - r * c4) * 4);
      }
    }
#pragma unroll
    for (int u = 0; u < kBatch; ++u) {
      const int i = base + u * blockDim.x;
      if (i < total) {
        const int r = i / c4;
        store4_bf16(dst + r * ld + (i - r * c4) * 4, v[u]);
      }
    }
  }
}

__device__ __forceinline__ void cp_async16(void* smem, const void* gmem, bool valid) {
  const unsigned dst = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  const int bytes = valid ? 16 : 0;  // 0: fill the 16 bytes with zeros
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(gmem), "r"(bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

}  // namespace

// grid (ceil(T / 64), nh), 128 threads: warp w owns queries 16w .. 16w+15 of
// the block (scores S, probabilities P, output O, running max m and sum l).
__global__ void __launch_bounds__(128)
    flash_prefill_kernel(const float* q, int64_t ldq, int64_t T, int nh, int slot, int64_t pos0,
                         int64_t window, float scale, KvLayout kv, const float* k_cache, const float* v_cache,
                         float* out, uint16_t* out_b, int64_t ldo) {
  extern __shared__ __align__(128) unsigned char fa_smem[];
  const int dk = kv.dk, dv = kv.dv;
  const FaLayout L = fa_layout(dk, dv);
  uint16_t* Qs = reinterpret_cast<uint16_t*>(fa_smem + L.q);
  uint16_t* Ks = reinterpret_cast<uint16_t*>(fa_smem + L.k);
  uint16_t* Vs = reinterpret_cast<uint16_t*>(fa_smem + L.v);
  float* S = reinterpret_cast<float*>(fa_smem + L.s);
  uint16_t* P = reinterpret_cast<uint16_t*>(fa_smem + L.p);
  float* O = reinterpret_cast<float*>(fa_smem + L.o);
  float* m = reinterpret_cast<float*>(fa_smem + L.m);
  float* l = reinterpret_cast<float*>(fa_smem + L.l);
  float* alpha_s = reinterpret_cast<float*>(fa_smem + L.alpha);
  const int64_t q0 = static_cast<int64_t>(blockIdx.x) * kFaRows;
  const int h = blockIdx.y;
  const int kh = h / (nh / kv.kv_heads);
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int rows = static_cast<int>(min(static_cast<int64_t>(kFaRows), T - q0));
  load_tile_bf16(Qs, L.ldq, kFaRows, dk, [&](int r) -> const float* {
    return r < rows ? q + (q0 + r) * ldq + static_cast<int64_t>(h) * dk : nullptr;
  });
  for (int i = tid; i < kFaRows * dv; i += blockDim.x) {
    const int r = i / dv;
    O[r * L.ldo + (i - r * dv)] = 0.0f;
  }
  if (tid < kFaRows) {
    m[tid] = -INFINITY;
    l[tid] = 0.0f;
  }
  const int64_t first = pos0 + q0, last = pos0 + q0 + rows - 1;
  const int64_t klo = window > 0 ? max(int64_t{0}, first - window + 1) : 0;
  const int r_own = 16 * warp + (lane >> 1);  // softmax: two lanes per query row
  const int c_own = (lane & 1) * (kFaKeys / 2);
  for (int64_t k0 = klo; k0 <= last; k0 += kFaKeys) {
    __syncthreads();  // the previous tile is consumed (and the set-up above is visible)
    load_tile_bf16(Ks, L.ldk, kFaKeys, dk, [&](int j) -> const float* {
      return k0 + j <= last ? k_cache + cache_at(kv, slot, k0 + j, kh) * dk : nullptr;
    });
    load_tile_bf16(Vs, L.ldv, kFaKeys, dv, [&](int j) -> const float* {
      return k0 + j <= last ? v_cache + cache_at(kv, slot, k0 + j, kh) * dv : nullptr;
    });
    __syncthreads();
    // S = Q K^T for this warp's 16 rows and the tile's 64 keys.
    for (int nt = 0; nt < kFaKeys / 16; ++nt) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
      wmma::fill_fragment(acc, 0.0f);
      for (int kk = 0; kk < dk; kk += 16) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16_t, wmma::row_major> a;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16_t, wmma::col_major> b;
        wmma::load_matrix_sync(a, reinterpret_cast<const bf16_t*>(Qs + 16 * warp * L.ldq + kk), L.ldq);
        wmma::load_matrix_sync(b, reinterpret_cast<const bf16_t*>(Ks + 16 * nt * L.ldk + kk), L.ldk);
        wmma::mma_sync(acc, a, b, acc);
      }
      wmma::store_matrix_sync(S + 16 * warp * L.lds + 16 * nt, acc, L.lds, wmma::mem_row_major);
    }
    __syncwarp();
    {
      // Online softmax of row r_own over the columns c_own .. c_own + 31.
      const int64_t qpos = pos0 + q0 + r_own;
      const bool valid_row = r_own < rows;
      float* srow = S + r_own * L.lds + c_own;
      uint16_t* prow = P + r_own * L.ldp + c_own;
      float mx = -INFINITY;
      for (int j = 0; j < kFaKeys / 2; ++j) {
        const int64_t key = k0 + c_own + j;
        const bool ok = valid_row && key <= qpos && (window <= 0 || qpos - key < window);
        const float s = ok ? srow[j] * scale : -INFINITY;
        srow[j] = s;
        mx = fmaxf(mx, s);
      }
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      const float m_old = m[r_own];
      const float m_new = fmaxf(m_old, mx);
      float alpha = 1.0f, sum = 0.0f;
      if (m_new == -INFINITY) {
        for (int j = 0; j < kFaKeys / 2; ++j) prow[j] = 0;
      } else {
        alpha = expf(m_old - m_new);  // 0 while m_old is -inf
        for (int j = 0; j < kFaKeys / 2; ++j) {
          const float pj = srow[j] == -INFINITY ? 0.0f : expf(srow[j] - m_new);
          sum += pj;
          prow[j] = to_bf16_bits(pj);
        }
      }
      sum += __shfl_xor_sync(0xffffffffu, sum, 1);
      if ((lane & 1) == 0) {
        m[r_own] = m_new;
        l[r_own] = l[r_own] * alpha + sum;
        alpha_s[r_own] = alpha;
      }
    }
    __syncwarp();
    for (int i = lane; i < 16 * dv; i += 32) {
      const int r = 16 * warp + i / dv;
      O[r * L.ldo + (i % dv)] *= alpha_s[r];
    }
    __syncwarp();
    // O += P V.
    for (int dt = 0; dt < dv / 16; ++dt) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
      float* optr = O + 16 * warp * L.ldo + 16 * dt;
      wmma::load_matrix_sync(acc, optr, L.ldo, wmma::mem_row_major);
      for (int kk = 0; kk < kFaKeys; kk += 16) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16_t, wmma::row_major> a;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16_t, wmma::row_major> b;
        wmma::load_matrix_sync(a, reinterpret_cast<const bf16_t*>(P + 16 * warp * L.ldp + kk), L.ldp);
        wmma::load_matrix_sync(b, reinterpret_cast<const bf16_t*>(Vs + kk * L.ldv + 16 * dt), L.ldv);
        wmma::mma_sync(acc, a, b, acc);
      }
      wmma::store_matrix_sync(optr, acc, L.ldo, wmma::mem_row_major);
    }
    __syncwarp();
  }
  __syncwarp();
  for (int i = lane; i < 16 * dv; i += 32) {
    const int r = 16 * warp + i / dv, d = i % dv;
    if (r >= rows) continue;
    const float v = O[r * L.ldo + d] / l[r];
    const int64_t at = (q0 + r) * ldo + static_cast<int64_t>(h) * dv + d;
    if (out) out[at] = v;
    if (out_b) out_b[at] = to_bf16_bits(v);
  }
}

// grid (column tiles, tile bound), 128 threads (2 x 2 warps of 32 x 64).
template <bool GLU, bool GATHER>
__global__ void __launch_bounds__(128) grouped_gemm_kernel(GroupedGemmParams p) {
  extern __shared__ __align__(128) unsigned char gg_smem[];
  __shared__ int64_t arow[kGemmBM];
  __shared__ int s_e, s_m0, s_rows;
  uint16_t* As = reinterpret_cast<uint16_t*>(gg_smem);
  uint16_t* Bs = As + kGemmStages * kGemmBM * kGemmLd;
  const int tid = threadIdx.x, warp = tid >> 5;
  const int by = blockIdx.y;
  if (tid == 0) {
    int e = -1;
    if (by < p.tile_offsets[p.experts]) {
      int lo = 0, hi = p.experts - 1;  // the last expert with tile_offsets[e] <= by
      while (lo < hi) {
        const int mid = (lo + hi + 1) / 2;
        if (p.tile_offsets[mid] <= by) {
          lo = mid;
        } else {
          hi = mid - 1;
        }
      }
      e = lo;
      s_m0 = p.offsets[e] + (by - p.tile_offsets[e]) * kGemmBM;
      s_rows = min(kGemmBM, p.offsets[e + 1] - s_m0);
    }
    s_e = e;
  }
  __syncthreads();
  const int e = s_e;
  if (e < 0) return;
  const int m0 = s_m0, rows = s_rows;
  if (tid < kGemmBM) {
    int64_t at = -1;
    if (tid < rows) {
      at = GATHER ? static_cast<int64_t>(p.sorted_pairs[m0 + tid] / p.top_k) * p.lda
                  : static_cast<int64_t>(m0 + tid) * p.lda;
    }
    arow[tid] = at;
  }
  __syncthreads();
  constexpr int kCols = GLU ? kGemmBN / 2 : kGemmBN;
  const int64_t n0 = static_cast<int64_t>(blockIdx.x) * kCols;
  const uint16_t* we = p.w + static_cast<int64_t>(e) * (GLU ? 2 * p.n : p.n) * p.kd;
  const int ktiles = static_cast<int>((p.kd + kGemmBK - 1) / kGemmBK);
  auto load_stage = [&](int st, int kt) {
    const int64_t k0 = static_cast<int64_t>(kt) * kGemmBK;
    uint16_t* as = As + st * kGemmBM * kGemmLd;
    uint16_t* bs = Bs + st * kGemmBN * kGemmLd;
    for (int c = tid; c < kGemmBM * 4; c += blockDim.x) {
      const int r = c >> 2, ch = c & 3;
      const int64_t kk = k0 + ch * 8;
      const bool ok = arow[r] >= 0 && kk < p.kd;
      cp_async16(as + r * kGemmLd + ch * 8, ok ? p.a + arow[r] + kk : p.a, ok);
    }
    for (int c = tid; c < kGemmBN * 4; c += blockDim.x) {
      const int j = c >> 2, ch = c & 3;
      const int64_t kk = k0 + ch * 8;
      const int64_t col = n0 + (GLU ? (j & (kCols - 1)) : j);
      const int64_t wrow = GLU && j >= kCols ? p.n + col : col;
      const bool ok = col < p.n && kk < p.kd;
      cp_async16(bs + j * kGemmLd + ch * 8, ok ? we + wrow * p.kd + kk : p.w, ok);
    }
  };
  const int wm = warp >> 1, wn = warp & 1;
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2][4];
#pragma unroll
  for (int i = 0; i < 2; ++i) {
#pragma unroll
    for (int j = 0; j < 4; ++j) wmma::fill_fragment(acc[i][j], 0.0f);
  }
#pragma unroll
  for (int s = 0; s < kGemmStages - 1; ++s) {
    if (s < ktiles) load_stage(s, s);
    cp_async_commit();
  }
  for (int kt = 0; kt < ktiles; ++kt) {
    cp_async_wait<kGemmStages - 2>();
    __syncthreads();  // tile kt landed for every thread; tile kt - 1 is consumed
    const int next = kt + kGemmStages - 1;
    if (next < ktiles) load_stage(next % kGemmStages, next);
    cp_async_commit();
    const uint16_t* as = As + (kt % kGemmStages) * kGemmBM * kGemmLd;
    const uint16_t* bs = Bs + (kt % kGemmStages) * kGemmBN * kGemmLd;
#pragma unroll
    for (int kk = 0; kk < kGemmBK; kk += 16) {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16_t, wmma::row_major> a[2];
      wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16_t, wmma::col_major> b[4];
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        wmma::load_matrix_sync(a[i], reinterpret_cast<const bf16_t*>(as + (wm * 32 + i * 16) * kGemmLd + kk),
                               kGemmLd);
      }
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        wmma::load_matrix_sync(b[j], reinterpret_cast<const bf16_t*>(bs + (wn * 64 + j * 16) * kGemmLd + kk),
                               kGemmLd);
      }
#pragma unroll
      for (int i = 0; i < 2; ++i) {
#pragma unroll
        for (int j = 0; j < 4; ++j) wmma::mma_sync(acc[i][j], a[i], b[j], acc[i][j]);
      }
    }
  }
  cp_async_wait<0>();
  __syncthreads();  // the pipeline buffers become the output tile
  constexpr int ldc = kGemmBN + 4;
  float* Cs = reinterpret_cast<float*>(gg_smem);
#pragma unroll
  for (int i = 0; i < 2; ++i) {
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      wmma::store_matrix_sync(Cs + (wm * 32 + i * 16) * ldc + wn * 64 + j * 16, acc[i][j], ldc,
                              wmma::mem_row_major);
    }
  }
  __syncthreads();
  for (int idx = tid; idx < kGemmBM * kCols; idx += blockDim.x) {
    const int r = idx / kCols, c = idx - r * kCols;
    const int64_t col = n0 + c;
    if (r >= rows || col >= p.n) continue;
    const int64_t at = static_cast<int64_t>(m0 + r) * p.n + col;
    if constexpr (GLU) {
      p.out_b[at] = to_bf16_bits(activate(p.act, Cs[r * ldc + c]) * Cs[r * ldc + kCols + c]);
    } else {
      p.out_f[at] = Cs[r * ldc + c];
    }
  }
}

}  // namespace detail

using namespace detail;

namespace {
constexpr size_t kGemmSmem = sizeof(uint16_t) * kGemmStages * (kGemmBM + kGemmBN) * kGemmLd;
static_assert(sizeof(float) * kGemmBM * (kGemmBN + 4) <= kGemmSmem, "output tile fits the pipeline buffers");
static_assert(kGemmSmem + sizeof(int64_t) * kGemmBM + 64 <= 48 * 1024, "grouped GEMM stays under 48 KB");

Status check_grouped(int E, int64_t TK, int64_t H, int64_t I) {
  if (E <= 0 || E > 1024 || TK <= 0 || H <= 0 || I <= 0 || H % 8 != 0 || I % 8 != 0) {
    return internal_error("grouped expert GEMM: needs 1..1024 experts and sizes that are multiples of 8");
  }
  if ((TK + kGemmBM - 1) / kGemmBM + E > 65535) return internal_error("grouped expert GEMM: too many pairs");
  return Status::Ok();
}

unsigned tile_bound(int64_t TK, int E) { return static_cast<unsigned>((TK + kGemmBM - 1) / kGemmBM + E); }
}  // namespace

bool attention_prefill_tc_supported(const KvLayout& kv) {
  return kv.dk > 0 && kv.dv > 0 && kv.dk % 16 == 0 && kv.dv % 16 == 0 && kv.dk <= 256 && kv.dv <= 256;
}

Status attention_prefill_tc(const float* q, int64_t ldq, int64_t T, int nh, int slot, int64_t pos0,
                            int64_t window, float scale, const KvLayout& kv, const float* k_cache,
                            const float* v_cache, float* out, bf16* out_b, int64_t ldo, Stream s) {
  if (T <= 0) return Status::Ok();
  if (!attention_prefill_tc_supported(kv) || kv.kv_heads <= 0 || nh % kv.kv_heads != 0 || ldq % 4 != 0 ||
      nh > 65535) {
    return internal_error("attention_prefill_tc: unsupported attention shape");
  }
  const size_t bytes = fa_layout(kv.dk, kv.dv).total;
  const cudaError_t e = cudaFuncSetAttribute(
      flash_prefill_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes));
  if (e != cudaSuccess) {
    cudaGetLastError();
    return internal_error(std::string("attention_prefill_tc: ") + cudaGetErrorString(e));
  }
  const int64_t blocks = (T + kFaRows - 1) / kFaRows;
  flash_prefill_kernel<<<dim3(static_cast<unsigned>(blocks), static_cast<unsigned>(nh)), 128, bytes,
                         stream_of(s)>>>(q, ldq, T, nh, slot, pos0, window, scale, kv, k_cache, v_cache, out,
                                         out_b, ldo);
  return launch_status("attention_prefill_tc");
}

Status expert_gemm_glu(Act act, const bf16* x, int64_t ldx, const int32_t* sorted_pairs, int K,
                       const int32_t* offsets, const int32_t* tile_offsets, int E, int64_t TK,
                       const bf16* gate_up, int64_t H, int64_t I, bf16* hs, Stream s) {
  if (TK <= 0) return Status::Ok();
  HILUM_RETURN_IF_ERROR(check_grouped(E, TK, H, I));
  if (ldx % 8 != 0) return internal_error("expert_gemm_glu: row stride must be a multiple of 8");
  GroupedGemmParams p{};
  p.a = x;
  p.lda = ldx;
  p.sorted_pairs = sorted_pairs;
  p.top_k = K;
  p.offsets = offsets;
  p.tile_offsets = tile_offsets;
  p.experts = E;
  p.w = gate_up;
  p.n = I;
  p.kd = H;
  p.out_b = hs;
  p.act = static_cast<int>(act);
  const dim3 grid(static_cast<unsigned>((I + kGemmBN / 2 - 1) / (kGemmBN / 2)), tile_bound(TK, E));
  grouped_gemm_kernel<true, true><<<grid, 128, kGemmSmem, stream_of(s)>>>(p);
  return launch_status("expert_gemm_glu");
}

Status expert_gemm_down(const bf16* hs, const int32_t* offsets, const int32_t* tile_offsets, int E,
                        int64_t TK, const bf16* down, int64_t H, int64_t I, float* ys, Stream s) {
  if (TK <= 0) return Status::Ok();
  HILUM_RETURN_IF_ERROR(check_grouped(E, TK, H, I));
  GroupedGemmParams p{};
  p.a = hs;
  p.lda = I;
  p.offsets = offsets;
  p.tile_offsets = tile_offsets;
  p.experts = E;
  p.w = down;
  p.n = H;
  p.kd = I;
  p.out_f = ys;
  const dim3 grid(static_cast<unsigned>((H + kGemmBN - 1) / kGemmBN), tile_bound(TK, E));
  grouped_gemm_kernel<false, false><<<grid, 128, kGemmSmem, stream_of(s)>>>(p);
  return launch_status("expert_gemm_down");
}

}  // namespace hilum::cuda::moe
