#include "cuda/moe_attention.cuh"

namespace hilum::cuda::moe {
namespace detail {
namespace {

__device__ __forceinline__ int64_t cache_row(const KvLayout& kv, int slot, int64_t pos, int head) {
  return (static_cast<int64_t>(slot) * kv.capacity + pos) * kv.kv_heads + head;
}

}  // namespace

// grid (T, kv_heads)
__global__ void kv_append_kernel(const float* k, int64_t ldk, const float* v, int64_t ldv,
                                 const int32_t* slots, const int32_t* positions, KvLayout kv, float* k_cache,
                                 float* v_cache) {
  const int64_t t = blockIdx.x;
  const int h = blockIdx.y;
  const int64_t row = cache_row(kv, slots[t], positions[t], h);
  for (int d = threadIdx.x; d < kv.dk; d += blockDim.x) k_cache[row * kv.dk + d] = k[t * ldk + h * kv.dk + d];
  for (int d = threadIdx.x; d < kv.dv; d += blockDim.x) v_cache[row * kv.dv + d] = v[t * ldv + h * kv.dv + d];
}

// grid (T, heads): key = [kvb[t, h, :nope] | k_pe[t, :rope_dim]], value = kvb[t, h, nope:].
__global__ void mla_append_kernel(const float* kvb, const float* k_pe, int64_t ld_pe, int nope, int rope_dim,
                                  const int32_t* slots, const int32_t* positions, KvLayout kv, float* k_cache,
                                  float* v_cache) {
  const int64_t t = blockIdx.x;
  const int h = blockIdx.y;
  const int64_t row = cache_row(kv, slots[t], positions[t], h);
  const float* src = kvb + (t * kv.kv_heads + h) * static_cast<int64_t>(nope + kv.dv);
  for (int d = threadIdx.x; d < kv.dk; d += blockDim.x) {
    k_cache[row * kv.dk + d] = d < nope ? src[d] : k_pe[t * ld_pe + (d - nope)];
  }
  for (int d = threadIdx.x; d < kv.dv; d += blockDim.x) v_cache[row * kv.dv + d] = src[nope + d];
}

// grid (n_chunks, nh, T), 128 threads. Writes [m, l, acc[dv]] per (t, h, chunk).
__global__ void decode_partial_kernel(const float* q, int64_t ldq, int nh, const int32_t* slots,
                                      const int32_t* positions, int64_t window, float scale, KvLayout kv,
                                      const float* k_cache, const float* v_cache, float* partial) {
  __shared__ float qs[256];
  __shared__ float sc[kDecodeChunk];
  __shared__ float scratch[33];
  const int c = blockIdx.x, h = blockIdx.y;
  const int64_t t = blockIdx.z;
  const int n_chunks = gridDim.x;
  const int64_t pos = positions[t];
  const int slot = slots[t];
  const int64_t lo = window > 0 ? max(int64_t{0}, pos - window + 1) : 0;
  const int64_t start = max(lo, static_cast<int64_t>(c) * kDecodeChunk);
  const int64_t end = min(pos + 1, static_cast<int64_t>(c + 1) * kDecodeChunk);
  float* out = partial + ((t * nh + h) * n_chunks + c) * static_cast<int64_t>(kv.dv + 2);
  if (start >= end) {
    if (threadIdx.x == 0) {
      out[0] = -INFINITY;
      out[1] = 0.0f;
    }
    return;
  }
  const int n = static_cast<int>(end - start);
  const int kh = h / (nh / kv.kv_heads);
  for (int d = threadIdx.x; d < kv.dk; d += blockDim.x)
    qs[d] = q[t * ldq + static_cast<int64_t>(h) * kv.dk + d];
  __syncthreads();
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, nwarps = blockDim.x >> 5;
  for (int j = warp; j < n; j += nwarps) {
    const float* kr = k_cache + cache_row(kv, slot, start + j, kh) * kv.dk;
    float s = 0.0f;
    for (int d = lane; d < kv.dk; d += 32) s += qs[d] * kr[d];
    s = warp_sum(s);
    if (lane == 0) sc[j] = s * scale;
  }
  __syncthreads();
  float mx = -INFINITY;
  for (int j = threadIdx.x; j < n; j += blockDim.x) mx = fmaxf(mx, sc[j]);
  mx = block_max(mx, scratch);
  float l = 0.0f;
  for (int j = threadIdx.x; j < n; j += blockDim.x) {
    const float p = expf(sc[j] - mx);
    sc[j] = p;
    l += p;
  }
  l = block_sum(l, scratch);  // also orders the sc writes before the reads below
  for (int d = threadIdx.x; d < kv.dv; d += blockDim.x) {
    float acc = 0.0f;
    for (int j = 0; j < n; ++j) acc += sc[j] * v_cache[cache_row(kv, slot, start + j, kh) * kv.dv + d];
    out[2 + d] = acc;
  }
  if (threadIdx.x == 0) {
    out[0] = mx;
    out[1] = l;
  }
}

// grid (nh, T), 128 threads.
__global__ void decode_combine_kernel(const float* partial, int n_chunks, int nh, int dv, float* out,
                                      int64_t ldo) {
  const int h = blockIdx.x;
  const int64_t t = blockIdx.y;
  const float* base = partial + (t * nh + h) * n_chunks * static_cast<int64_t>(dv + 2);
  float M = -INFINITY;
  for (int c = 0; c < n_chunks; ++c) M = fmaxf(M, base[c * (dv + 2)]);
  float L = 0.0f;
  for (int c = 0; c < n_chunks; ++c) {
    const float m = base[c * (dv + 2)];
    if (m != -INFINITY) L += expf(m - M) * base[c * (dv + 2) + 1];
  }
  for (int d = threadIdx.x; d < dv; d += blockDim.x) {
    float acc = 0.0f;
    for (int c = 0; c < n_chunks; ++c) {
      const float m = base[c * (dv + 2)];
      if (m != -INFINITY) acc += expf(m - M) * base[c * (dv + 2) + 2 + d];
    }
    out[t * ldo + static_cast<int64_t>(h) * dv + d] = acc / L;
  }
}

// grid (ceil(T / kPrefillQ), nh), 128 threads; dynamic shared memory laid out
// as Q [kPrefillQ][dk], K [kPrefillK][dk + 1], V [kPrefillK][dv],
// S [kPrefillQ][kPrefillK], m/l/alpha [kPrefillQ].
__global__ void prefill_kernel(const float* q, int64_t ldq, int64_t T, int nh, int slot, int64_t pos0,
                               int64_t window, float scale, KvLayout kv, const float* k_cache,
                               const float* v_cache, float* out, int64_t ldo) {
  extern __shared__ float sm[];
  const int dk = kv.dk, dv = kv.dv, ldks = dk + 1;
  float* Qs = sm;
  float* Ks = Qs + kPrefillQ * dk;
  float* Vs = Ks + kPrefillK * ldks;
  float* S = Vs + kPrefillK * dv;
  float* m = S + kPrefillQ * kPrefillK;
  float* l = m + kPrefillQ;
  float* alpha = l + kPrefillQ;
  const int64_t q0 = static_cast<int64_t>(blockIdx.x) * kPrefillQ;
  const int h = blockIdx.y;
  const int kh = h / (nh / kv.kv_heads);
  const int tid = threadIdx.x;
  const int rows = static_cast<int>(min(static_cast<int64_t>(kPrefillQ), T - q0));
  for (int i = tid; i < kPrefillQ * dk; i += blockDim.x) {
    const int r = i / dk, d = i % dk;
    Qs[i] = r < rows ? q[(q0 + r) * ldq + static_cast<int64_t>(h) * dk + d] : 0.0f;
  }
  if (tid < kPrefillQ) {
    m[tid] = -INFINITY;
    l[tid] = 0.0f;
  }
  // Each thread owns row tid / 8 and columns (tid % 8) + 8 i of the output.
  const int my_row = tid >> 3, my_col = tid & 7;
  float acc[32];
#pragma unroll
  for (int i = 0; i < 32; ++i) acc[i] = 0.0f;
  const int64_t first_pos = pos0 + q0, last_pos = pos0 + q0 + rows - 1;
  const int64_t klo = window > 0 ? max(int64_t{0}, first_pos - window + 1) : 0;
  for (int64_t k0 = klo; k0 <= last_pos; k0 += kPrefillK) {
    __syncthreads();  // the previous tile is consumed
    for (int i = tid; i < kPrefillK * dk; i += blockDim.x) {
      const int j = i / dk, d = i % dk;
      const int64_t key = k0 + j;
      Ks[j * ldks + d] = key <= last_pos ? k_cache[cache_row(kv, slot, key, kh) * dk + d] : 0.0f;
    }
    for (int i = tid; i < kPrefillK * dv; i += blockDim.x) {
      const int j = i / dv, d = i % dv;
      const int64_t key = k0 + j;
      Vs[i] = key <= last_pos ? v_cache[cache_row(kv, slot, key, kh) * dv + d] : 0.0f;
    }
    __syncthreads();
    for (int i = tid; i < kPrefillQ * kPrefillK; i += blockDim.x) {
      const int r = i / kPrefillK, j = i % kPrefillK;
      const int64_t key = k0 + j, qpos = pos0 + q0 + r;
      const bool valid = r < rows && key <= qpos && (window <= 0 || qpos - key < window);
      float s = -INFINITY;
      if (valid) {
        float d = 0.0f;
        for (int e = 0; e < dk; ++e) d += Qs[r * dk + e] * Ks[j * ldks + e];
        s = d * scale;
      }
      S[i] = s;
    }
    __syncthreads();
    if (tid < kPrefillQ) {
      float* srow = S + tid * kPrefillK;
      float tmax = -INFINITY;
      for (int j = 0; j < kPrefillK; ++j) tmax = fmaxf(tmax, srow[j]);
      const float m_new = fmaxf(m[tid], tmax);
      if (m_new == -INFINITY) {
        for (int j = 0; j < kPrefillK; ++j) srow[j] = 0.0f;
        alpha[tid] = 1.0f;
      } else {
        const float a = expf(m[tid] - m_new);  // 0 while m was -inf
        float sum = 0.0f;
        for (int j = 0; j < kPrefillK; ++j) {
          const float p = srow[j] == -INFINITY ? 0.0f : expf(srow[j] - m_new);
          srow[j] = p;
          sum += p;
        }
        l[tid] = l[tid] * a + sum;
        m[tid] = m_new;
        alpha[tid] = a;
      }
    }
    __syncthreads();
    const float a = alpha[my_row];
    const float* srow = S + my_row * kPrefillK;
#pragma unroll
    for (int i = 0; i < 32; ++i) {
      const int d = my_col + 8 * i;
      if (d < dv) {
        float s = acc[i] * a;
        for (int j = 0; j < kPrefillK; ++j) s += srow[j] * Vs[j * dv + d];
        acc[i] = s;
      }
    }
  }
  __syncthreads();
  if (my_row < rows) {
    const float inv = 1.0f / l[my_row];
#pragma unroll
    for (int i = 0; i < 32; ++i) {
      const int d = my_col + 8 * i;
      if (d < dv) out[(q0 + my_row) * ldo + static_cast<int64_t>(h) * dv + d] = acc[i] * inv;
    }
  }
}

}  // namespace detail

using namespace detail;

namespace {
Status check_layout(const KvLayout& kv, int nh, const char* what) {
  if (kv.dk <= 0 || kv.dk > 256 || kv.dv <= 0 || kv.dv > 256 || kv.kv_heads <= 0 || nh % kv.kv_heads != 0 ||
      kv.capacity <= 0) {
    return internal_error(std::string(what) + ": unsupported attention shape");
  }
  return Status::Ok();
}

int64_t decode_chunks(const KvLayout& kv) { return (kv.capacity + kDecodeChunk - 1) / kDecodeChunk; }
}  // namespace

Status kv_append(const float* k, int64_t ldk, const float* v, int64_t ldv, int64_t T, const int32_t* slots,
                 const int32_t* positions, const KvLayout& kv, float* k_cache, float* v_cache, Stream s) {
  if (T <= 0) return Status::Ok();
  HILUM_RETURN_IF_ERROR(check_layout(kv, kv.kv_heads, "kv_append"));
  kv_append_kernel<<<dim3(static_cast<unsigned>(T), static_cast<unsigned>(kv.kv_heads)), 128, 0,
                     stream_of(s)>>>(k, ldk, v, ldv, slots, positions, kv, k_cache, v_cache);
  return launch_status("kv_append");
}

Status mla_append(const float* kvb, const float* k_pe, int64_t ld_pe, int64_t T, int nope, int rope_dim,
                  const int32_t* slots, const int32_t* positions, const KvLayout& kv, float* k_cache,
                  float* v_cache, Stream s) {
  if (T <= 0) return Status::Ok();
  HILUM_RETURN_IF_ERROR(check_layout(kv, kv.kv_heads, "mla_append"));
  if (nope + rope_dim != kv.dk) return internal_error("mla_append: key size is not nope + rope");
  mla_append_kernel<<<dim3(static_cast<unsigned>(T), static_cast<unsigned>(kv.kv_heads)), 128, 0,
                      stream_of(s)>>>(kvb, k_pe, ld_pe, nope, rope_dim, slots, positions, kv, k_cache,
                                      v_cache);
  return launch_status("mla_append");
}

int64_t decode_partial_floats(int64_t T, int nh, const KvLayout& kv) {
  return T * nh * decode_chunks(kv) * (kv.dv + 2);
}

Status attention_decode(const float* q, int64_t ldq, int64_t T, int nh, const int32_t* slots,
                        const int32_t* positions, int64_t window, float scale, const KvLayout& kv,
                        const float* k_cache, const float* v_cache, float* partial, float* out, int64_t ldo,
                        Stream s) {
  if (T <= 0) return Status::Ok();
  HILUM_RETURN_IF_ERROR(check_layout(kv, nh, "attention_decode"));
  const int64_t chunks = decode_chunks(kv);
  if (chunks > 65535 || T > 65535 || nh > 65535) return internal_error("attention_decode: grid too large");
  decode_partial_kernel<<<dim3(static_cast<unsigned>(chunks), static_cast<unsigned>(nh),
                               static_cast<unsigned>(T)),
                          128, 0, stream_of(s)>>>(q, ldq, nh, slots, positions, window, scale, kv, k_cache,
                                                  v_cache, partial);
  HILUM_RETURN_IF_ERROR(launch_status("attention_decode (partial)"));
  decode_combine_kernel<<<dim3(static_cast<unsigned>(nh), static_cast<unsigned>(T)), 128, 0, stream_of(s)>>>(
      partial, static_cast<int>(chunks), nh, kv.dv, out, ldo);
  return launch_status("attention_decode (combine)");
}

Status attention_prefill(const float* q, int64_t ldq, int64_t T, int nh, int slot, int64_t pos0,
                         int64_t window, float scale, const KvLayout& kv, const float* k_cache,
                         const float* v_cache, float* out, int64_t ldo, Stream s) {
  if (T <= 0) return Status::Ok();
  HILUM_RETURN_IF_ERROR(check_layout(kv, nh, "attention_prefill"));
  const size_t floats = static_cast<size_t>(kPrefillQ) * kv.dk +
                        static_cast<size_t>(kPrefillK) * (kv.dk + 1) +
                        static_cast<size_t>(kPrefillK) * kv.dv + kPrefillQ * kPrefillK + 3 * kPrefillQ;
  const size_t bytes = floats * sizeof(float);
  if (bytes > 48 * 1024) {
    const cudaError_t e = cudaFuncSetAttribute(prefill_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                               static_cast<int>(bytes));
    if (e != cudaSuccess) return internal_error(std::string("attention_prefill: ") + cudaGetErrorString(e));
  }
  const int64_t blocks = (T + kPrefillQ - 1) / kPrefillQ;
  prefill_kernel<<<dim3(static_cast<unsigned>(blocks), static_cast<unsigned>(nh)), 128, bytes,
                   stream_of(s)>>>(q, ldq, T, nh, slot, pos0, window, scale, kv, k_cache, v_cache, out, ldo);
  return launch_status("attention_prefill");
}

}  // namespace hilum::cuda::moe
