#include "cuda/moe_elementwise.cuh"

namespace hilum::cuda::moe {
namespace detail {

__global__ void embed_kernel(const uint16_t* table, int64_t dim, const int32_t* ids, float* out) {
  pdl_wait();
  pdl_trigger();
  const int64_t t = blockIdx.x;
  const uint16_t* row = table + static_cast<int64_t>(ids[t]) * dim;
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) out[t * dim + i] = bf16_val(row[i]);
}

__global__ void rms_norm_kernel(float* x, int64_t ldx, const float* delta, int64_t ld_delta, const float* w,
                                int64_t dim, float eps, float* y, int64_t ldy, uint16_t* yb, int64_t ldyb) {
  __shared__ float scratch[33];
  const int64_t t = blockIdx.x;
  float* xr = x + t * ldx;
  float ss = 0.0f;
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) {
    float v = xr[i];
    if (delta) {
      v += delta[t * ld_delta + i];
      xr[i] = v;
    }
    ss += v * v;
  }
  ss = block_sum(ss, scratch);
  const float r = 1.0f / sqrtf(ss / static_cast<float>(dim) + eps);
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) {
    const float v = w[i] * (xr[i] * r);
    if (y) y[t * ldy + i] = v;
    if (yb) yb[t * ldyb + i] = to_bf16_bits(v);
  }
}

__global__ void add_bias_kernel(float* x, int64_t ld, const float* bias, int64_t T, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < T * n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    x[(i / n) * ld + i % n] += bias[i % n];
  }
}

__global__ void clamp_kernel(float* x, int64_t ld, int64_t T, int64_t n, float limit) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < T * n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float& v = x[(i / n) * ld + i % n];
    v = fminf(fmaxf(v, -limit), limit);
  }
}

__global__ void to_bf16_kernel(const float* x, int64_t ldx, int64_t T, int64_t n, uint16_t* out,
                               int64_t ldo) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < T * n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    out[(i / n) * ldo + i % n] = to_bf16_bits(x[(i / n) * ldx + i % n]);
  }
}

__global__ void glu_kernel(int act, const float* gu, int64_t rows, int64_t inter, float* h, uint16_t* hb) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < rows * inter;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = i / inter, c = i % inter;
    const float v = activate(act, gu[r * 2 * inter + c]) * gu[r * 2 * inter + inter + c];
    if (h) h[i] = v;
    if (hb) hb[i] = to_bf16_bits(v);
  }
}

// grid (T, heads); thread i rotates pair i of head blockIdx.y of token blockIdx.x.
__global__ void rope_kernel(float* x, int64_t ld, int64_t head_stride, int64_t offset, int64_t half,
                            const float* inv_freq, float scaling, int interleaved, const int32_t* positions) {
  const int64_t t = blockIdx.x, h = blockIdx.y;
  float* v = x + t * ld + h * head_stride + offset;
  const float p = static_cast<float>(positions[t]);
  for (int64_t i = threadIdx.x; i < half; i += blockDim.x) {
    const float angle = inv_freq[i] * p;
    const float c = cosf(angle) * scaling, s = sinf(angle) * scaling;
    const int64_t ia = interleaved ? 2 * i : i, ib = interleaved ? 2 * i + 1 : i + half;
    const float a = v[ia], b = v[ib];
    v[ia] = a * c - b * s;
    v[ib] = b * c + a * s;
  }
}

// One block per row.
__global__ void greedy_advance_kernel(const float* logits, int64_t V, int32_t* ids, int32_t* positions,
                                      int32_t* history) {
  __shared__ float best_v[32];
  __shared__ int64_t best_i[32];
  pdl_wait();
  pdl_trigger();
  const int64_t b = blockIdx.x;
  const float* row = logits + b * V;
  float v = -INFINITY;
  int64_t idx = V;
  // Strided in increasing order (keeps the lowest index on ties), eight
  // loads in flight per thread.
  const int64_t step = blockDim.x;
  int64_t i = threadIdx.x;
  for (; i + 7 * step < V; i += 8 * step) {
    float r[8];
#pragma unroll
    for (int u = 0; u < 8; ++u) r[u] = row[i + u * step];
#pragma unroll
    for (int u = 0; u < 8; ++u) {
      if (r[u] > v) {
        v = r[u];
        idx = i + u * step;
      }
    }
  }
  for (; i < V; i += step) {
    if (row[i] > v) {
      v = row[i];
      idx = i;
    }
  }
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, v, o);
    const int64_t oi = __shfl_xor_sync(0xffffffffu, idx, o);
    if (ov > v || (ov == v && oi < idx)) {
      v = ov;
      idx = oi;
    }
  }
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) {
    best_v[warp] = v;
    best_i[warp] = idx;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int w = 1; w < static_cast<int>(blockDim.x >> 5); ++w) {
      if (best_v[w] > v || (best_v[w] == v && best_i[w] < idx)) {
        v = best_v[w];
        idx = best_i[w];
      }
    }
    ids[b] = static_cast<int32_t>(idx);
    positions[b] += 1;
    if (history) history[b] = static_cast<int32_t>(idx);
  }
}

__device__ __forceinline__ uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

__global__ void fill_random_kernel(uint16_t* w, int64_t n, float std, float mean, uint64_t seed) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const uint64_t a = mix64(seed * 0x9e3779b97f4a7c15ull + static_cast<uint64_t>(i) * 2 + 1);
    const uint64_t b = mix64(a + 0x632be59bd9b4e019ull);
    // Sum of four uniforms, centred and scaled to unit variance.
    const float u = static_cast<float>(a & 0xffffffu) + static_cast<float>((a >> 32) & 0xffffffu) +
                    static_cast<float>(b & 0xffffffu) + static_cast<float>((b >> 32) & 0xffffffu);
    const float z = (u / 16777216.0f - 2.0f) * 1.7320508f;
    w[i] = to_bf16_bits(mean + std * z);
  }
}

}  // namespace detail

using namespace detail;

namespace {
unsigned grid_for(int64_t n) {
  const int64_t b = (n + 255) / 256;
  return static_cast<unsigned>(b < 65536 ? (b > 0 ? b : 1) : 65536);
}
}  // namespace

Status embed(const bf16* table, int64_t dim, const int32_t* ids, int64_t T, float* out, Stream s, bool pdl) {
  if (T <= 0) return Status::Ok();
  return launch_result(launch_kernel(embed_kernel, dim3(static_cast<unsigned>(T)), dim3(256), 0,
                                     Launch{s, pdl}, table, dim, ids, out),
                       "embed");
}

Status rms_norm(float* x, int64_t ldx, const float* delta, int64_t ld_delta, const float* w, int64_t T,
                int64_t dim, float eps, float* y, int64_t ldy, bf16* yb, int64_t ldyb, Stream s) {
  if (T <= 0) return Status::Ok();
  const int threads = dim >= 1024 ? 512 : (dim >= 256 ? 256 : 128);
  rms_norm_kernel<<<static_cast<unsigned>(T), threads, 0, stream_of(s)>>>(x, ldx, delta, ld_delta, w, dim,
                                                                          eps, y, ldy, yb, ldyb);
  return launch_status("rms_norm");
}

Status add_bias(float* x, int64_t ld, const float* bias, int64_t T, int64_t n, Stream s) {
  if (T * n <= 0) return Status::Ok();
  add_bias_kernel<<<grid_for(T * n), 256, 0, stream_of(s)>>>(x, ld, bias, T, n);
  return launch_status("add_bias");
}

Status clamp(float* x, int64_t ld, int64_t T, int64_t n, float limit, Stream s) {
  if (T * n <= 0) return Status::Ok();
  clamp_kernel<<<grid_for(T * n), 256, 0, stream_of(s)>>>(x, ld, T, n, limit);
  return launch_status("clamp");
}

Status to_bf16(const float* x, int64_t ldx, int64_t T, int64_t n, bf16* out, int64_t ldo, Stream s) {
  if (T * n <= 0) return Status::Ok();
  to_bf16_kernel<<<grid_for(T * n), 256, 0, stream_of(s)>>>(x, ldx, T, n, out, ldo);
  return launch_status("to_bf16");
}

Status glu(Act act, const float* gu, int64_t rows, int64_t inter, float* h, bf16* hb, Stream s) {
  if (rows * inter <= 0) return Status::Ok();
  glu_kernel<<<grid_for(rows * inter), 256, 0, stream_of(s)>>>(static_cast<int>(act), gu, rows, inter, h, hb);
  return launch_status("glu");
}

Status rope(float* x, int64_t T, int64_t heads, int64_t ld, int64_t head_stride, int64_t offset, int64_t dim,
            const float* inv_freq, float attention_scaling, bool interleaved, const int32_t* positions,
            Stream s) {
  if (T <= 0 || heads <= 0) return Status::Ok();
  if (dim % 2 != 0 || heads > 65535) return internal_error("rope: bad dimensions");
  const int64_t half = dim / 2;
  const int threads = half >= 128 ? 128 : (half > 32 ? 64 : 32);
  rope_kernel<<<dim3(static_cast<unsigned>(T), static_cast<unsigned>(heads)), threads, 0, stream_of(s)>>>(
      x, ld, head_stride, offset, half, inv_freq, attention_scaling, interleaved ? 1 : 0, positions);
  return launch_status("rope");
}

Status greedy_advance(const float* logits, int64_t B, int64_t V, int32_t* ids, int32_t* positions,
                      int32_t* history, Stream s, bool pdl) {
  if (B <= 0) return Status::Ok();
  return launch_result(launch_kernel(greedy_advance_kernel, dim3(static_cast<unsigned>(B)), dim3(1024), 0,
                                     Launch{s, pdl}, logits, V, ids, positions, history),
                       "greedy_advance");
}

Status fill_random_bf16(bf16* w, int64_t n, float std, float mean, uint64_t seed, Stream s) {
  if (n <= 0) return Status::Ok();
  fill_random_kernel<<<grid_for(n), 256, 0, stream_of(s)>>>(w, n, std, mean, seed);
  return launch_status("fill_random_bf16");
}

}  // namespace hilum::cuda::moe
