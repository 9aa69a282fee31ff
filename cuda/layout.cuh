// Device code of the layout family (layout.h).
#pragma once

#include "cuda/common.cuh"

namespace hilum::cuda {

template <typename T>
__global__ void nchw_f32_to_nhwc_kernel(const float* __restrict__ src, long long n, long long c, long long hw,
                                        long long cp, T* __restrict__ dst) {
  const long long total = n * hw * cp;
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long ch = i % cp;
    const long long pix = i / cp;
    const long long img = pix / hw;
    const long long p = pix % hw;
    const float v = ch < c ? src[(img * c + ch) * hw + p] : 0.0f;
    dst[i] = from_f32<T>(v);
  }
}

template <typename T>
__global__ void nhwc_to_nchw_f32_kernel(const T* __restrict__ src, long long n, long long c, long long hw,
                                        float* __restrict__ dst) {
  const long long total = n * c * hw;
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long p = i % hw;
    const long long ch = (i / hw) % c;
    const long long img = i / (hw * c);
    dst[i] = to_f32(src[(img * hw + p) * c + ch]);
  }
}

}  // namespace hilum::cuda
