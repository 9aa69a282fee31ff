// Layout conversions between the caller's float32 NCHW arrays and the NHWC
// half-precision tensors the cuDNN engine runs on. Device pointers; work is
// enqueued on `stream` (nothing waits). CPU references: model/half.h
// conversions applied element by element (see tests/cuda/test_layout.cpp).
#pragma once

#include <cstdint>

#include "cuda/stream.h"
#include "model/result.h"

namespace hilum::cuda {

// src f32 [n, c, h, w] -> dst [n, h, w, c_padded] in `precision`, rounded to
// nearest even; channels c .. c_padded-1 are zero (c_padded >= c).
Status nchw_f32_to_nhwc(const Stream& stream, const float* src, int64_t n, int64_t c, int64_t h, int64_t w,
                        int64_t c_padded, Precision precision, void* dst);

// src [n, h, w, c] in `precision` -> dst f32 [n, c, h, w] (exact).
Status nhwc_to_nchw_f32(const Stream& stream, const void* src, int64_t n, int64_t c, int64_t h, int64_t w,
                        Precision precision, float* dst);

}  // namespace hilum::cuda
