// CPU kernels for convolutional networks over NCHW float32 arrays: the plain
// C++ reference path of the image branch (always built), and the CPU
// references that the CUDA kernels are checked against.
//
// conv2d_nchw() is the fast path: im2col + hilum::sgemm on the thread pool,
// with bias, residual addition and ReLU fused into the pass that stores the
// result. conv2d_nchw_reference() is a direct loop with double accumulation,
// slow and obviously right, for tests.
//
// All pointers are caller-owned, dense and C-ordered; nothing here allocates
// caller-visible memory. Safe to call from several threads at once (scratch
// buffers are per calling thread).
#pragma once

#include <cstdint>

namespace hilum {

struct Conv2dGeometry {
  int64_t batch = 1;
  int64_t in_channels = 1, in_h = 1, in_w = 1;
  int64_t out_channels = 1, kernel_h = 1, kernel_w = 1;
  int64_t stride = 1, pad = 0;  // the same in both spatial dimensions (all ResNet needs)

  int64_t out_h() const { return (in_h + 2 * pad - kernel_h) / stride + 1; }
  int64_t out_w() const { return (in_w + 2 * pad - kernel_w) / stride + 1; }
};

// What happens to each output element after the convolution sum:
//   y = act(sum + bias[c] + residual[n, c, y, x])
// A null bias or residual is skipped. `residual` may alias the output.
struct Conv2dEpilogue {
  const float* bias = nullptr;
  const float* residual = nullptr;
  bool relu = false;
};

// x: [batch, in_channels, in_h, in_w]; w: [out_channels, in_channels, kh, kw];
// y: [batch, out_channels, out_h, out_w]. y must not alias x.
void conv2d_nchw(const Conv2dGeometry& g, const float* x, const float* w, const Conv2dEpilogue& epilogue,
                 float* y);
void conv2d_nchw_reference(const Conv2dGeometry& g, const float* x, const float* w,
                           const Conv2dEpilogue& epilogue, float* y);

// The same convolution on channel-major arrays: x [in_channels, batch, in_h,
// in_w], y and residual [out_channels, batch, out_h, out_w]. One GEMM spans the
// whole batch and a 1x1 stride-1 convolution needs no im2col, so a network kept
// in this layout avoids most copies (the CPU ResNet engine does).
void conv2d_cnhw(const Conv2dGeometry& g, const float* x, const float* w, const Conv2dEpilogue& epilogue,
                 float* y);

// Max pooling (PyTorch semantics: padded positions never win). y is
// [batch, channels, (h + 2p - k)/s + 1, (w + 2p - k)/s + 1].
void max_pool2d_nchw(int64_t batch, int64_t channels, int64_t h, int64_t w, int64_t kernel, int64_t stride,
                     int64_t pad, const float* x, float* y);

// Mean over the spatial dimensions: x [batch, channels, h, w] -> y [batch, channels].
void global_avg_pool_nchw(int64_t batch, int64_t channels, int64_t h, int64_t w, const float* x, float* y);

// A fully connected layer with PyTorch's nn.Linear layout:
//   y[rows, out] = x[rows, in] * weight[out, in]^T + bias[out] (bias may be null).
void linear_f32(int64_t rows, int64_t in_features, int64_t out_features, const float* x, const float* weight,
                const float* bias, float* y);

}  // namespace hilum
