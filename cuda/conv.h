// 2-D convolutions through cuDNN on NHWC half-precision tensors, with the
// ResNet epilogues fused where cuDNN can (cudnnConvolutionBiasActivationForward:
// y = relu(conv(x) + z + bias)) and a separate pass where it cannot.
//
// For each (shape, epilogue) the first plan() request times cuDNN's candidate
// algorithms, fused and unfused, on the caller's buffers and keeps the fastest;
// later requests return the cached plan without running anything. run() only
// enqueues (no allocation, no synchronization), so it can be captured into a
// CUDA graph. CPU reference: conv2d_nchw_reference in model/conv2d.h
// (tests/cuda/test_conv.cpp compares them on awkward shapes).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <tuple>

#include "cuda/stream.h"
#include "model/result.h"

namespace hilum::cuda {

struct ConvShape {
  int64_t n = 1, c = 1, h = 1, w = 1;  // input [n, h, w, c]
  int64_t k = 1, r = 1, s = 1;         // filters [k, r, s, c]
  int64_t stride = 1, pad = 0;

  int64_t out_h() const { return (h + 2 * pad - r) / stride + 1; }
  int64_t out_w() const { return (w + 2 * pad - s) / stride + 1; }
  auto key() const { return std::make_tuple(n, c, h, w, k, r, s, stride, pad); }
  std::string describe() const;  // "n64 c256 56x56 -> k64 1x1 s1 p0"
};

enum class ConvEpilogue : unsigned char {
  kNone,              // y = conv(x, w)
  kBiasRelu,          // y = relu(conv(x, w) + bias)
  kBiasResidualRelu,  // y = relu(conv(x, w) + bias + z)
};

// Device pointers for one convolution. Both bias forms are given: cuDNN's
// fused call reads `bias` (in the tensors' precision, or f32 where cuDNN wants
// that), the separate epilogue pass reads `bias_f32`.
struct ConvArgs {
  const void* x = nullptr;
  const void* w = nullptr;
  const void* bias = nullptr;
  const float* bias_f32 = nullptr;
  const void* z = nullptr;  // residual [n, out_h, out_w, k]; must not alias y
  void* y = nullptr;
  void* workspace = nullptr;
  size_t workspace_bytes = 0;
};

struct ConvPlan;  // descriptors and the chosen algorithm (defined in conv.cu)

// One cuDNN handle bound to a stream, and the plans made with it. Not
// thread-safe. Plans live as long as this object.
class Convolutions {
 public:
  static Result<std::unique_ptr<Convolutions>> create(const Stream& stream, Precision precision);
  ~Convolutions();
  Convolutions(const Convolutions&) = delete;
  Convolutions& operator=(const Convolutions&) = delete;

  Precision precision() const;

  // The plan for `shape` and `epilogue`. On first request runs candidates on
  // `trial` (y and up to `workspace_limit` bytes of its workspace are
  // overwritten; call outside graph capture). An error when cuDNN offers no
  // working algorithm within the limit.
  Result<const ConvPlan*> plan(const ConvShape& shape, ConvEpilogue epilogue, const ConvArgs& trial,
                               size_t workspace_limit);
  // Enqueues the convolution; args.workspace must hold workspace_bytes(plan).
  Status run(const ConvPlan& plan, const ConvArgs& args) const;

  static size_t workspace_bytes(const ConvPlan& plan);
  // "algo 1 fused, 0.123 ms" (what the planner chose, for logs and benchmarks).
  static std::string describe(const ConvPlan& plan);

 private:
  struct Impl;
  explicit Convolutions(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace hilum::cuda
