// Internal to hilum_cuda: status conversion and element access helpers shared
// by the .cu files. Never included by public headers.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <string>
#include <vector>

#include "model/result.h"

namespace hilum::cuda {

inline Status cuda_check(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return Status::Ok();
  cudaGetLastError();  // clear a non-sticky error so later calls are not confused
  return internal_error(std::string(what) + ": " + cudaGetErrorString(err));
}

// After a kernel launch: reports a bad configuration or an earlier error.
inline Status launch_check(const char* kernel) { return cuda_check(cudaGetLastError(), kernel); }

inline cudaStream_t as_stream(void* s) { return static_cast<cudaStream_t>(s); }

// One call's own stream and the device buffers it allocates there: on leaving
// scope the buffers are freed on the stream, which is then drained and destroyed.
class CallStream {
 public:
  explicit CallStream(const char* what) : what_(what) {}
  CallStream(const CallStream&) = delete;
  CallStream& operator=(const CallStream&) = delete;
  ~CallStream() {
    for (void* p : held_) cudaFreeAsync(p, stream_);
    if (stream_) {
      cudaStreamSynchronize(stream_);
      cudaStreamDestroy(stream_);
    }
  }
  Status create() {
    return cuda_check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking),
                      (std::string(what_) + ": stream").c_str());
  }
  cudaStream_t get() const { return stream_; }
  // `count` elements of T (at least one, so that an empty result still has an address).
  template <typename T>
  Result<T*> alloc(size_t count) {
    void* p = nullptr;
    HILUM_RETURN_IF_ERROR(cuda_check(cudaMallocAsync(&p, (count ? count : 1) * sizeof(T), stream_),
                                     (std::string(what_) + ": cudaMallocAsync").c_str()));
    held_.push_back(p);
    return static_cast<T*>(p);
  }

 private:
  const char* what_;
  cudaStream_t stream_ = nullptr;
  std::vector<void*> held_;
};

// Blocks for a grid-stride loop over n items.
inline unsigned grid_for(long long n, int threads) {
  long long blocks = (n + threads - 1) / threads;
  if (blocks > 65535LL * 32) blocks = 65535LL * 32;
  return static_cast<unsigned>(blocks < 1 ? 1 : blocks);
}

// Storage types as fp32 values.
__device__ __forceinline__ float to_f32(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_f32(__nv_bfloat16 v) { return __bfloat162float(v); }
__device__ __forceinline__ float to_f32(float v) { return v; }

template <typename T>
__device__ __forceinline__ T from_f32(float v);
template <>
__device__ __forceinline__ __half from_f32<__half>(float v) {
  return __float2half_rn(v);
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_f32<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}
template <>
__device__ __forceinline__ float from_f32<float>(float v) {
  return v;
}

// Eight consecutive channels moved as one 16-byte access.
template <typename T>
struct alignas(16) Pack8 {
  T v[8];
};

template <typename T>
__device__ __forceinline__ Pack8<T> load8(const T* p) {
  Pack8<T> out;
  *reinterpret_cast<uint4*>(&out) = *reinterpret_cast<const uint4*>(p);
  return out;
}

template <typename T>
__device__ __forceinline__ void store8(T* p, const Pack8<T>& v) {
  *reinterpret_cast<uint4*>(p) = *reinterpret_cast<const uint4*>(&v);
}

}  // namespace hilum::cuda
