// The convolution epilogue as a separate pass, for convolutions whose fused
// cuDNN call is unavailable or slower: on NHWC data with c channels,
//   y = act(y + bias[channel] + z)
// in place (device pointers, enqueued on `stream`). CPU reference: the
// epilogue of conv2d_nchw_reference (model/conv2d.h); tests/cuda/test_epilogue.cpp.
#pragma once

#include <cstdint>

#include "cuda/stream.h"
#include "model/result.h"

namespace hilum::cuda {

// rows = n * h * w. bias: f32 [c] or null; z: [rows, c] in `precision` or null.
// Sums in f32, rounds once.
Status bias_residual_relu_nhwc(const Stream& stream, Precision precision, void* y, const float* bias,
                               const void* z, int64_t rows, int64_t c, bool relu);

// y [rows, c] (f32) = bias broadcast over rows (the fc output's starting value).
Status broadcast_rows_f32(const Stream& stream, const float* bias, int64_t rows, int64_t c, float* y);

}  // namespace hilum::cuda
