// Fully connected layers through cuBLAS (the ResNet fc head), fp32 in and out.
// CPU reference: linear_f32 in model/conv2d.h (tests/cuda/test_linear.cpp).
#pragma once

#include <cstdint>
#include <memory>

#include "cuda/stream.h"
#include "model/result.h"

namespace hilum::cuda {

// A cuBLAS handle bound to one stream, with its own workspace so that calls
// can be captured into a CUDA graph. Not thread-safe.
class Blas {
 public:
  static Result<std::unique_ptr<Blas>> create(const Stream& stream);
  ~Blas();
  Blas(const Blas&) = delete;
  Blas& operator=(const Blas&) = delete;

  // y [rows, out] = x [rows, in] * w [out, in]^T + bias [out] (bias may be
  // null). Device pointers, f32, no TF32: the fp32 answer.
  Status linear_f32(int64_t rows, int64_t in_features, int64_t out_features, const float* x, const float* w,
                    const float* bias, float* y);

 private:
  struct Impl;
  explicit Blas(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace hilum::cuda
