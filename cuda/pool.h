// Pooling over NHWC half-precision tensors (device pointers, enqueued on
// `stream`). CPU references: max_pool2d_nchw / global_avg_pool_nchw in
// model/conv2d.h (tests/cuda/test_pool.cpp compares them on awkward sizes).
#pragma once

#include <cstdint>

#include "cuda/stream.h"
#include "model/result.h"

namespace hilum::cuda {

// y [n, ho, wo, c] = max over kernel x kernel windows of x [n, h, w, c], with
// ho = (h + 2 pad - kernel) / stride + 1 (PyTorch semantics: padding never wins).
Status max_pool_nhwc(const Stream& stream, Precision precision, const void* x, int64_t n, int64_t h,
                     int64_t w, int64_t c, int kernel, int stride, int pad, void* y);

// y [n, c] (f32) = mean over the h*w positions of x [n, h, w, c], summed in f32.
Status global_avg_pool_nhwc(const Stream& stream, Precision precision, const void* x, int64_t n, int64_t hw,
                            int64_t c, float* y);

}  // namespace hilum::cuda
