// Device code of the epilogue family (epilogue.h).
#pragma once

#include "cuda/common.cuh"

namespace hilum::cuda {

template <typename T, int kVec>
__global__ void bias_residual_relu_kernel(T* __restrict__ y, const float* __restrict__ bias,
                                          const T* __restrict__ z, long long rows, long long c, bool relu) {
  const long long groups = rows * c / kVec;
  for (long long g = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; g < groups;
       g += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long i = g * kVec;
    const long long ch = i % c;  // kVec divides c, so the group stays in one row
    if constexpr (kVec == 8) {
      Pack8<T> v = load8(y + i);
      Pack8<T> r;
      if (z) r = load8(z + i);
#pragma unroll
      for (int k = 0; k < 8; ++k) {
        float s = to_f32(v.v[k]);
        if (bias) s += bias[ch + k];
        if (z) s += to_f32(r.v[k]);
        if (relu) s = fmaxf(s, 0.0f);
        v.v[k] = from_f32<T>(s);
      }
      store8(y + i, v);
    } else {
      float s = to_f32(y[i]);
      if (bias) s += bias[ch];
      if (z) s += to_f32(z[i]);
      if (relu) s = fmaxf(s, 0.0f);
      y[i] = from_f32<T>(s);
    }
  }
}

__global__ void broadcast_rows_kernel(const float* __restrict__ bias, long long rows, long long c,
                                      float* __restrict__ y) {
  const long long total = rows * c;
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    y[i] = bias[i % c];
  }
}

}  // namespace hilum::cuda
