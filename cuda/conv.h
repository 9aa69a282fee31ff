// 2-D convolutions on NHWC half-precision tensors, with the ResNet epilogues
// (bias, residual, ReLU) fused where the chosen implementation can.
//
// For each (shape, epilogue) the first plan() request searches several
// implementations and keeps the fastest one that computes the right answer:
//   - cuDNN's graph API (engine heuristics; conv alone, or conv + bias
//     (+ residual) + ReLU as one fused graph),
//   - cuDNN's legacy calls (cudnnConvolutionForward / ...BiasActivationForward)
//     with tensor-core math,
//   - cuBLASLt for 1x1 stride-1 convolutions (a plain GEMM over the NHWC rows,
//     epilogue fused: relu(x w^T + bias + z)).
// Unfused candidates run Hilum's epilogue pass (epilogue.h) after the
// convolution. Every candidate is first checked against a direct computation
// of sampled outputs on pseudo-random data (conv_check.h) and then timed from a
// CUDA graph (what the engines replay). Later requests return the cached plan.
// run() only enqueues (no allocation, no synchronization), so it can be
// captured into a CUDA graph. CPU reference: conv2d_nchw_reference in
// model/conv2d.h (tests/cuda/test_conv.cpp compares every family with it).
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
  double flops() const { return 2.0 * n * k * out_h() * out_w() * c * r * s; }
};

enum class ConvEpilogue : unsigned char {
  kNone,              // y = conv(x, w)
  kBiasRelu,          // y = relu(conv(x, w) + bias)
  kBiasResidualRelu,  // y = relu(conv(x, w) + bias + z)
};
const char* epilogue_name(ConvEpilogue e);  // "none", "bias+relu", "bias+residual+relu"

// Device pointers for one convolution. Both bias forms are given: fused
// implementations read `bias` (in the tensors' precision) or `bias_f32`, the
// separate epilogue pass reads `bias_f32`. All pointers 16-byte aligned.
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

// Which implementations the planner may try. The defaults are what the
// engines use; tests and diagnosis narrow them. from_env() reads:
//   HILUM_CONV_FAMILIES=graph,legacy,gemm   (any subset; default all)
//   HILUM_CUDNN_FUSED=0                      (no fused candidates)
//   HILUM_CUDNN_RTC=1                        (also cuDNN engines compiled at run time: 0.1-2 s each)
//   HILUM_CONV_CANDIDATES=N                  (heuristic candidates per family, default 4)
//   HILUM_CONV_BUDGET_MS=T                   (planning time per convolution, default 1500)
struct ConvSearch {
  bool graph = true;    // cuDNN graph API
  bool legacy = true;   // cuDNN legacy calls
  bool gemm = true;     // cuBLASLt (1x1 stride-1 only)
  bool fused = true;    // candidates with the epilogue inside
  bool unfused = true;  // candidates followed by the epilogue pass
  bool runtime_compiled = false;
  int per_family = 4;
  double budget_ms = 1500;  // no new candidate is tried after this, once one works
  static ConvSearch from_env();
};

struct ConvPlan;  // the chosen implementation and the search record (conv.cu)

// One cuDNN handle and one cuBLASLt handle bound to a stream, and the plans
// made with them. Not thread-safe. Plans live as long as this object.
class Convolutions {
 public:
  static Result<std::unique_ptr<Convolutions>> create(const Stream& stream, Precision precision);
  ~Convolutions();
  Convolutions(const Convolutions&) = delete;
  Convolutions& operator=(const Convolutions&) = delete;

  Precision precision() const;
  // Applies to plans made from now on (default: ConvSearch::from_env()).
  void set_search(const ConvSearch& search);

  // The plan for `shape` and `epilogue`. On first request tries candidates on
  // `trial`: x, z, y and up to `workspace_limit` bytes of the workspace are
  // overwritten (call outside graph capture). An error naming the shape and
  // the last failure when no candidate works.
  Result<const ConvPlan*> plan(const ConvShape& shape, ConvEpilogue epilogue, const ConvArgs& trial,
                               size_t workspace_limit);
  // Enqueues the convolution (and the epilogue pass when the chosen
  // implementation is unfused); args.workspace must hold workspace_bytes(plan).
  Status run(const ConvPlan& plan, const ConvArgs& args) const;

  static size_t workspace_bytes(const ConvPlan& plan);
  static bool fused(const ConvPlan& plan);
  static float planned_ms(const ConvPlan& plan);  // the chosen candidate's time when planned
  // False when no candidate passed the sampled check and the planner fell
  // back to the fastest that ran (a bug in a family or in the check: see the report).
  static bool checked(const ConvPlan& plan);
  // "n64 c256 56x56 -> k64 1x1 s1 p0 bias+relu: gemm algo 21 fused, ws 0 MiB, 0.031 ms"
  static std::string describe(const ConvPlan& plan);
  // Every candidate tried (time, or why it was rejected), one per line, the chosen one starred.
  static std::string search_report(const ConvPlan& plan);
  // cuDNN and cuBLASLt versions, for reports ("cuDNN 9.14.0 (built with 9.14.0), cuBLASLt 130000").
  static std::string library_versions();

 private:
  struct Impl;
  explicit Convolutions(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace hilum::cuda
