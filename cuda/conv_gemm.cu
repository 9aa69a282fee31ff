// The GEMM family: a 1x1 stride-1 unpadded convolution on NHWC data is the
// matrix product y[m, k] = x[m, c] w[k, c]^T over the m = n*h*w pixel rows.
// cuBLASLt runs it with the epilogue fused: in cuBLASLt's column-major view
// D[k, m] = relu(W^T' X + beta Z + bias) with W read transposed ("TN"), bias
// per row of D (= per output channel) and Z (= the residual) as the C matrix.
#include <sstream>
#include <vector>

#include "cuda/common.cuh"
#include "cuda/conv_internal.h"

namespace hilum::cuda::detail {
namespace {

Status lt_check(cublasStatus_t s, const char* what) {
  if (s == CUBLAS_STATUS_SUCCESS) return Status::Ok();
  return internal_error(std::string(what) + ": cuBLASLt status " + std::to_string(static_cast<int>(s)));
}

struct LtGemm {
  cublasLtHandle_t handle = nullptr;
  cudaStream_t stream = nullptr;
  ConvEpilogue epilogue = ConvEpilogue::kNone;
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  ~LtGemm() {
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (c) cublasLtMatrixLayoutDestroy(c);
    if (op) cublasLtMatmulDescDestroy(op);
  }
};

class GemmRunner final : public ConvRunner {
 public:
  GemmRunner(std::shared_ptr<LtGemm> g, cublasLtMatmulAlgo_t algo, size_t workspace, std::string label)
      : g_(std::move(g)), algo_(algo), workspace_(workspace), label_(std::move(label)) {}

  Status enqueue(const ConvArgs& args) const override {
    const bool residual = g_->epilogue == ConvEpilogue::kBiasResidualRelu;
    if (g_->epilogue != ConvEpilogue::kNone) {
      // The plan is shared by convolutions with different biases: the pointer
      // is set for each call (a host-side attribute, captured by value).
      const void* bias = args.bias;
      HILUM_RETURN_IF_ERROR(lt_check(
          cublasLtMatmulDescSetAttribute(g_->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)),
          "cublasLtMatmulDescSetAttribute bias"));
    }
    const float alpha = 1.0f, beta = residual ? 1.0f : 0.0f;
    const void* c = residual ? args.z : args.y;
    return lt_check(cublasLtMatmul(g_->handle, g_->op, &alpha, args.w, g_->a, args.x, g_->b, &beta, c, g_->c,
                                   args.y, g_->c, &algo_, args.workspace, workspace_, g_->stream),
                    "cublasLtMatmul");
  }
  size_t workspace() const override { return workspace_; }
  bool fused() const override { return true; }
  std::string describe() const override { return label_; }

 private:
  std::shared_ptr<LtGemm> g_;
  cublasLtMatmulAlgo_t algo_;
  size_t workspace_;
  std::string label_;
};

}  // namespace

Result<std::vector<ConvCandidate>> gemm_candidates(const ConvContext& ctx, const ConvShape& s,
                                                   ConvEpilogue epilogue, const void* bias,
                                                   const ConvSearch& search, size_t workspace_limit) {
  std::vector<ConvCandidate> out;
  if (s.r != 1 || s.s != 1 || s.stride != 1 || s.pad != 0 || !ctx.lt) return out;
  auto g = std::make_shared<LtGemm>();
  g->handle = ctx.lt;
  g->stream = as_stream(ctx.stream->native());
  g->epilogue = epilogue;
  const cudaDataType_t type = ctx.precision == Precision::kF16 ? CUDA_R_16F : CUDA_R_16BF;
  const uint64_t m = static_cast<uint64_t>(s.k), rows = static_cast<uint64_t>(s.n * s.h * s.w),
                 depth = static_cast<uint64_t>(s.c);
  HILUM_RETURN_IF_ERROR(
      lt_check(cublasLtMatmulDescCreate(&g->op, CUBLAS_COMPUTE_32F, CUDA_R_32F), "cublasLtMatmulDescCreate"));
  const cublasOperation_t transa = CUBLAS_OP_T, transb = CUBLAS_OP_N;
  HILUM_RETURN_IF_ERROR(lt_check(
      cublasLtMatmulDescSetAttribute(g->op, CUBLASLT_MATMUL_DESC_TRANSA, &transa, sizeof(transa)), "transa"));
  HILUM_RETURN_IF_ERROR(lt_check(
      cublasLtMatmulDescSetAttribute(g->op, CUBLASLT_MATMUL_DESC_TRANSB, &transb, sizeof(transb)), "transb"));
  const cublasLtEpilogue_t ep =
      epilogue == ConvEpilogue::kNone ? CUBLASLT_EPILOGUE_DEFAULT : CUBLASLT_EPILOGUE_RELU_BIAS;
  HILUM_RETURN_IF_ERROR(lt_check(
      cublasLtMatmulDescSetAttribute(g->op, CUBLASLT_MATMUL_DESC_EPILOGUE, &ep, sizeof(ep)), "epilogue"));
  if (epilogue != ConvEpilogue::kNone) {
    HILUM_RETURN_IF_ERROR(lt_check(
        cublasLtMatmulDescSetAttribute(g->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)),
        "bias"));
  }
  // W is [k, c] row-major = [c, k] column-major, read transposed; X is [rows, c]
  // row-major = [c, rows] column-major; Y/Z are [rows, k] row-major = [k, rows].
  HILUM_RETURN_IF_ERROR(lt_check(cublasLtMatrixLayoutCreate(&g->a, type, depth, m, depth), "layout w"));
  HILUM_RETURN_IF_ERROR(lt_check(cublasLtMatrixLayoutCreate(&g->b, type, depth, rows, depth), "layout x"));
  HILUM_RETURN_IF_ERROR(lt_check(cublasLtMatrixLayoutCreate(&g->c, type, m, rows, m), "layout y"));

  cublasLtMatmulPreference_t pref = nullptr;
  HILUM_RETURN_IF_ERROR(lt_check(cublasLtMatmulPreferenceCreate(&pref), "cublasLtMatmulPreferenceCreate"));
  const uint64_t limit = workspace_limit;
  cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &limit, sizeof(limit));
  std::vector<cublasLtMatmulHeuristicResult_t> results(static_cast<size_t>(std::max(search.per_family, 1)) +
                                                       1);
  int returned = 0;
  const cublasStatus_t st =
      cublasLtMatmulAlgoGetHeuristic(ctx.lt, g->op, g->a, g->b, g->c, g->c, pref,
                                     static_cast<int>(results.size()), results.data(), &returned);
  cublasLtMatmulPreferenceDestroy(pref);
  if (st == CUBLAS_STATUS_NOT_SUPPORTED) return out;
  HILUM_RETURN_IF_ERROR(lt_check(st, "cublasLtMatmulAlgoGetHeuristic"));
  for (int i = 0; i < returned && static_cast<int>(out.size()) < search.per_family + 1; ++i) {
    if (results[i].state != CUBLAS_STATUS_SUCCESS) continue;
    int algo_id = -1, tile = -1, stages = -1;
    size_t got = 0;
    cublasLtMatmulAlgoConfigGetAttribute(&results[i].algo, CUBLASLT_ALGO_CONFIG_ID, &algo_id, sizeof(algo_id),
                                         &got);
    cublasLtMatmulAlgoConfigGetAttribute(&results[i].algo, CUBLASLT_ALGO_CONFIG_TILE_ID, &tile, sizeof(tile),
                                         &got);
    cublasLtMatmulAlgoConfigGetAttribute(&results[i].algo, CUBLASLT_ALGO_CONFIG_STAGES_ID, &stages,
                                         sizeof(stages), &got);
    ConvCandidate c;
    c.family = "gemm";
    std::ostringstream label;
    label << "cublasLt #" << i << " algo " << algo_id << " tile " << tile << " stages " << stages;
    c.label = label.str();
    const std::string full = "gemm " + c.label;
    const cublasLtMatmulAlgo_t algo = results[i].algo;
    const size_t ws = results[i].workspaceSize;
    c.build = [g, algo, ws, full]() -> Result<std::unique_ptr<ConvRunner>> {
      return std::unique_ptr<ConvRunner>(std::make_unique<GemmRunner>(g, algo, ws, full));
    };
    out.push_back(std::move(c));
  }
  return out;
}

}  // namespace hilum::cuda::detail
