// Internal to hilum_cuda: the convolution families the planner (conv.cu)
// chooses among. A ConvRunner is one built way of computing a convolution
// (a cuDNN graph-API execution plan, a legacy cuDNN algorithm, a cuBLASLt
// GEMM); a ConvCandidate is one not built yet (building may be slow or fail).
#pragma once

#include <cublasLt.h>
#include <cudnn.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cuda/conv.h"

namespace hilum::cuda::detail {

class ConvRunner {
 public:
  virtual ~ConvRunner() = default;
  // Enqueues on the handles' stream; args.workspace_bytes >= workspace().
  virtual Status enqueue(const ConvArgs& args) const = 0;
  virtual size_t workspace() const = 0;
  // The epilogue is applied inside; otherwise the planner adds the epilogue pass.
  virtual bool fused() const = 0;
  virtual std::string describe() const = 0;
};

struct ConvCandidate {
  std::string family;             // "graph-fused", "graph", "gemm", "legacy-fused", "legacy"
  std::string label;              // what is known before building ("engine 12 knob2=3 ...")
  bool runtime_compiled = false;  // building compiles a kernel (slow)
  std::function<Result<std::unique_ptr<ConvRunner>>()> build;
};

struct ConvContext {
  cudnnHandle_t dnn = nullptr;
  cublasLtHandle_t lt = nullptr;
  const Stream* stream = nullptr;
  Precision precision = Precision::kF16;
};

// Candidates of each family for (shape, epilogue), in the library's order of
// preference; an empty list when the family cannot express the problem. An
// error only for a failure worth reporting (the planner records it and goes on).
//   graph: fused = conv + pointwise epilogue in one graph (bias in f32 when
//   bias_f32, else in the precision), or conv alone. `note` receives what was
//   left out (runtime-compiled or inexact engines), for the search report.
Result<std::vector<ConvCandidate>> graph_candidates(const ConvContext& ctx, const ConvShape& shape,
                                                    ConvEpilogue epilogue, bool fused, bool bias_f32,
                                                    const ConvSearch& search, size_t workspace_limit,
                                                    std::string* note);
Result<std::vector<ConvCandidate>> legacy_candidates(const ConvContext& ctx, const ConvShape& shape,
                                                     ConvEpilogue epilogue, bool fused,
                                                     const ConvSearch& search, size_t workspace_limit);
//   gemm: `bias` is a representative bias pointer (cuBLASLt's heuristics look
//   at the epilogue's attributes, the pointer's alignment included).
Result<std::vector<ConvCandidate>> gemm_candidates(const ConvContext& ctx, const ConvShape& shape,
                                                   ConvEpilogue epilogue, const void* bias,
                                                   const ConvSearch& search, size_t workspace_limit);

cudnnDataType_t dnn_type(Precision p);
// A failed cuDNN call as an error, with cuDNN's own last message when it has one.
Status dnn_check(cudnnStatus_t s, const char* what);

}  // namespace hilum::cuda::detail
