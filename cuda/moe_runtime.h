// Streams, cuBLAS GEMMs and CUDA graphs for the text engine, host side (no
// cuda_runtime.h). All calls enqueue on the object's stream.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "cuda/moe_kernels.h"
#include "model/result.h"

namespace hilum::cuda::moe {

// A non-default stream with a cuBLAS handle bound to it, and room for one
// captured CUDA graph (the decode step) per batch size.
class GpuContext {
 public:
  static Result<std::unique_ptr<GpuContext>> create();
  ~GpuContext();
  GpuContext(const GpuContext&) = delete;
  GpuContext& operator=(const GpuContext&) = delete;

  Stream stream() const;
  Status synchronize();

  // C[M, N] (fp32, row stride ldc) = A[M, K] (bf16, lda) . W[N, K]^T (bf16, ldw) + beta * C.
  Status gemm(int64_t M, int64_t N, int64_t K, const bf16* A, int64_t lda, const bf16* W, int64_t ldw,
              float* C, int64_t ldc, float beta);
  // The same in plain fp32 (no tensor-core rounding): A[M, K] . W[N, K]^T.
  Status gemm_f32(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* W, int64_t ldw, float* C,
                  int64_t ldc, float beta);
  // The same for `batch` independent problems, operands `stride*` elements apart.
  Status gemm_batched(int64_t M, int64_t N, int64_t K, const bf16* A, int64_t lda, int64_t stride_a,
                      const bf16* W, int64_t ldw, int64_t stride_w, float* C, int64_t ldc, int64_t stride_c,
                      int64_t batch, float beta);

  Status copy_to_device(void* dst, const void* src, size_t bytes);  // async on the stream
  Status copy_to_host(void* dst, const void* src, size_t bytes);    // async on the stream
  Status copy_device(void* dst, const void* src, size_t bytes);     // async on the stream
  Status memset(void* dst, int value, size_t bytes);

  // Graph capture of everything enqueued between begin_capture() and
  // end_capture() under `key`; launch_graph(key) replays it.
  Status begin_capture();
  Status end_capture(int key);
  bool has_graph(int key) const;
  Status launch_graph(int key);
  void drop_graphs();

  // Milliseconds between two points of the stream (for benchmarks).
  Result<float> time_ms(const std::function<Status()>& body);

 private:
  GpuContext() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Device memory owned by the holder.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  static Result<DeviceBuffer> allocate(size_t bytes);
  ~DeviceBuffer();
  DeviceBuffer(DeviceBuffer&& o) noexcept : ptr_(o.ptr_), bytes_(o.bytes_) {
    o.ptr_ = nullptr;
    o.bytes_ = 0;
  }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  template <typename T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }
  size_t bytes() const { return bytes_; }
  bool empty() const { return ptr_ == nullptr; }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace hilum::cuda::moe
