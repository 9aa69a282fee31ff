// Device code of the pooling family (pool.h).
#pragma once

#include "cuda/common.cuh"

namespace hilum::cuda {

// One thread per (output pixel, group of `kVec` channels); kVec is 8 (c % 8 == 0) or 1.
template <typename T, int kVec>
__global__ void max_pool_nhwc_kernel(const T* __restrict__ x, long long n, int h, int w, long long c, int ho,
                                     int wo, int kernel, int stride, int pad, T* __restrict__ y) {
  const long long groups = c / kVec;
  const long long total = n * ho * wo * groups;
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long g = i % groups;
    const long long pix = i / groups;
    const int ox = static_cast<int>(pix % wo);
    const int oy = static_cast<int>((pix / wo) % ho);
    const long long img = pix / (static_cast<long long>(wo) * ho);
    const int y0 = max(0, oy * stride - pad), y1 = min(h, oy * stride - pad + kernel);
    const int x0 = max(0, ox * stride - pad), x1 = min(w, ox * stride - pad + kernel);
    float m[kVec];
#pragma unroll
    for (int k = 0; k < kVec; ++k) m[k] = -INFINITY;
    for (int iy = y0; iy < y1; ++iy) {
      for (int ix = x0; ix < x1; ++ix) {
        const T* src = x + ((img * h + iy) * w + ix) * c + g * kVec;
        if constexpr (kVec == 8) {
          const Pack8<T> v = load8(src);
#pragma unroll
          for (int k = 0; k < 8; ++k) m[k] = fmaxf(m[k], to_f32(v.v[k]));
        } else {
          m[0] = fmaxf(m[0], to_f32(src[0]));
        }
      }
    }
    T* dst = y + pix * c + g * kVec;
    if constexpr (kVec == 8) {
      Pack8<T> out;
#pragma unroll
      for (int k = 0; k < 8; ++k) out.v[k] = from_f32<T>(m[k]);
      store8(dst, out);
    } else {
      dst[0] = from_f32<T>(m[0]);
    }
  }
}

// One thread per (image, channel): adjacent threads read adjacent channels.
template <typename T>
__global__ void global_avg_pool_nhwc_kernel(const T* __restrict__ x, long long n, long long hw, long long c,
                                            float* __restrict__ y) {
  const long long total = n * c;
  const float inv = 1.0f / static_cast<float>(hw);
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long ch = i % c;
    const long long img = i / c;
    const T* src = x + img * hw * c + ch;
    float s = 0.0f;
    for (long long p = 0; p < hw; ++p) s += to_f32(src[p * c]);
    y[i] = s * inv;
  }
}

}  // namespace hilum::cuda
