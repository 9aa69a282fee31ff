// The legacy cuDNN family: cudnnConvolutionForward (the epilogue pass follows)
// and cudnnConvolutionBiasActivationForward (relu(conv + z + bias) in one
// call), always with tensor-core math. The convolution descriptor carries the
// math type before the heuristics are asked: with the default math type cuDNN
// only offers its CUDA-core (FMA) kernels.
#include <algorithm>
#include <sstream>
#include <vector>

#include "cuda/common.cuh"
#include "cuda/conv_internal.h"

namespace hilum::cuda::detail {
namespace {

struct LegacyDescs {
  cudnnHandle_t handle = nullptr;
  ConvEpilogue epilogue = ConvEpilogue::kNone;
  cudnnTensorDescriptor_t x = nullptr, y = nullptr, bias_native = nullptr, bias_float = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  cudnnActivationDescriptor_t act = nullptr;

  ~LegacyDescs() {
    if (x) cudnnDestroyTensorDescriptor(x);
    if (y) cudnnDestroyTensorDescriptor(y);
    if (bias_native) cudnnDestroyTensorDescriptor(bias_native);
    if (bias_float) cudnnDestroyTensorDescriptor(bias_float);
    if (w) cudnnDestroyFilterDescriptor(w);
    if (conv) cudnnDestroyConvolutionDescriptor(conv);
    if (act) cudnnDestroyActivationDescriptor(act);
  }
};

bool fits_int(const ConvShape& s) {
  const int64_t lim = 0x7fffffff;
  return s.n * s.c * s.h * s.w < lim && s.n * s.k * s.out_h() * s.out_w() < lim &&
         s.k * s.r * s.s * s.c < lim;
}

Result<std::shared_ptr<LegacyDescs>> describe(const ConvContext& ctx, const ConvShape& s,
                                              ConvEpilogue epilogue) {
  auto d = std::make_shared<LegacyDescs>();
  d->handle = ctx.dnn;
  d->epilogue = epilogue;
  const cudnnDataType_t dt = dnn_type(ctx.precision);
  HILUM_RETURN_IF_ERROR(dnn_check(cudnnCreateTensorDescriptor(&d->x), "cudnnCreateTensorDescriptor"));
  HILUM_RETURN_IF_ERROR(dnn_check(cudnnCreateTensorDescriptor(&d->y), "cudnnCreateTensorDescriptor"));
  HILUM_RETURN_IF_ERROR(
      dnn_check(cudnnCreateTensorDescriptor(&d->bias_native), "cudnnCreateTensorDescriptor"));
  HILUM_RETURN_IF_ERROR(
      dnn_check(cudnnCreateTensorDescriptor(&d->bias_float), "cudnnCreateTensorDescriptor"));
  HILUM_RETURN_IF_ERROR(dnn_check(cudnnCreateFilterDescriptor(&d->w), "cudnnCreateFilterDescriptor"));
  HILUM_RETURN_IF_ERROR(
      dnn_check(cudnnCreateConvolutionDescriptor(&d->conv), "cudnnCreateConvolutionDescriptor"));
  HILUM_RETURN_IF_ERROR(
      dnn_check(cudnnCreateActivationDescriptor(&d->act), "cudnnCreateActivationDescriptor"));
  const int n = static_cast<int>(s.n), c = static_cast<int>(s.c), h = static_cast<int>(s.h),
            w = static_cast<int>(s.w), k = static_cast<int>(s.k);
  HILUM_RETURN_IF_ERROR(dnn_check(cudnnSetTensor4dDescriptor(d->x, CUDNN_TENSOR_NHWC, dt, n, c, h, w),
                                  "cudnnSetTensor4dDescriptor x"));
  HILUM_RETURN_IF_ERROR(dnn_check(cudnnSetFilter4dDescriptor(d->w, dt, CUDNN_TENSOR_NHWC, k, c,
                                                             static_cast<int>(s.r), static_cast<int>(s.s)),
                                  "cudnnSetFilter4dDescriptor"));
  HILUM_RETURN_IF_ERROR(
      dnn_check(cudnnSetConvolution2dDescriptor(d->conv, static_cast<int>(s.pad), static_cast<int>(s.pad),
                                                static_cast<int>(s.stride), static_cast<int>(s.stride), 1, 1,
                                                CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT),
                "cudnnSetConvolution2dDescriptor"));
  HILUM_RETURN_IF_ERROR(
      dnn_check(cudnnSetConvolutionMathType(d->conv, CUDNN_TENSOR_OP_MATH), "cudnnSetConvolutionMathType"));
  int on = 0, oc = 0, oh = 0, ow = 0;
  HILUM_RETURN_IF_ERROR(
      dnn_check(cudnnGetConvolution2dForwardOutputDim(d->conv, d->x, d->w, &on, &oc, &oh, &ow),
                "cudnnGetConvolution2dForwardOutputDim"));
  if (on != n || oc != k || oh != s.out_h() || ow != s.out_w()) {
    return internal_error("cuDNN output shape disagrees for conv " + s.describe());
  }
  HILUM_RETURN_IF_ERROR(dnn_check(cudnnSetTensor4dDescriptor(d->y, CUDNN_TENSOR_NHWC, dt, n, k, oh, ow),
                                  "cudnnSetTensor4dDescriptor y"));
  HILUM_RETURN_IF_ERROR(
      dnn_check(cudnnSetTensor4dDescriptor(d->bias_native, CUDNN_TENSOR_NCHW, dt, 1, k, 1, 1),
                "cudnnSetTensor4dDescriptor bias"));
  HILUM_RETURN_IF_ERROR(
      dnn_check(cudnnSetTensor4dDescriptor(d->bias_float, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, k, 1, 1),
                "cudnnSetTensor4dDescriptor bias f32"));
  HILUM_RETURN_IF_ERROR(
      dnn_check(cudnnSetActivationDescriptor(d->act, CUDNN_ACTIVATION_RELU, CUDNN_NOT_PROPAGATE_NAN, 0.0),
                "cudnnSetActivationDescriptor"));
  return d;
}

class LegacyRunner final : public ConvRunner {
 public:
  LegacyRunner(std::shared_ptr<LegacyDescs> d, cudnnConvolutionFwdAlgo_t algo, bool fused, bool float_bias,
               size_t workspace, std::string label)
      : d_(std::move(d)),
        algo_(algo),
        fused_(fused),
        float_bias_(float_bias),
        workspace_(workspace),
        label_(std::move(label)) {}

  Status enqueue(const ConvArgs& a) const override {
    if (fused_) {
      const bool residual = d_->epilogue == ConvEpilogue::kBiasResidualRelu;
      const float alpha1 = 1.0f, alpha2 = residual ? 1.0f : 0.0f;
      // Without a residual, z is y itself with weight zero.
      const void* z = residual ? a.z : a.y;
      const void* bias = float_bias_ ? static_cast<const void*>(a.bias_f32) : a.bias;
      return dnn_check(
          cudnnConvolutionBiasActivationForward(
              d_->handle, &alpha1, d_->x, a.x, d_->w, a.w, d_->conv, algo_, a.workspace, a.workspace_bytes,
              &alpha2, d_->y, z, float_bias_ ? d_->bias_float : d_->bias_native, bias, d_->act, d_->y, a.y),
          "cudnnConvolutionBiasActivationForward");
    }
    const float alpha = 1.0f, beta = 0.0f;
    return dnn_check(cudnnConvolutionForward(d_->handle, &alpha, d_->x, a.x, d_->w, a.w, d_->conv, algo_,
                                             a.workspace, a.workspace_bytes, &beta, d_->y, a.y),
                     "cudnnConvolutionForward");
  }
  size_t workspace() const override { return workspace_; }
  bool fused() const override { return fused_; }
  std::string describe() const override { return label_; }

 private:
  std::shared_ptr<LegacyDescs> d_;
  cudnnConvolutionFwdAlgo_t algo_;
  bool fused_, float_bias_;
  size_t workspace_;
  std::string label_;
};

bool accurate(cudnnConvolutionFwdAlgo_t algo) {
  return algo != CUDNN_CONVOLUTION_FWD_ALGO_FFT && algo != CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING &&
         algo != CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD && algo != CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED;
}

}  // namespace

Result<std::vector<ConvCandidate>> legacy_candidates(const ConvContext& ctx, const ConvShape& shape,
                                                     ConvEpilogue epilogue, bool fused,
                                                     const ConvSearch& search, size_t workspace_limit) {
  std::vector<ConvCandidate> out;
  if (fused && epilogue == ConvEpilogue::kNone) return out;
  if (!fits_int(shape)) return out;
  HILUM_ASSIGN_OR_RETURN(std::shared_ptr<LegacyDescs> d, describe(ctx, shape, epilogue));
  int max_algos = 0;
  HILUM_RETURN_IF_ERROR(dnn_check(cudnnGetConvolutionForwardAlgorithmMaxCount(ctx.dnn, &max_algos),
                                  "cudnnGetConvolutionForwardAlgorithmMaxCount"));
  std::vector<cudnnConvolutionFwdAlgoPerf_t> perf(static_cast<size_t>(std::max(max_algos, 1)));
  int returned = 0;
  HILUM_RETURN_IF_ERROR(
      dnn_check(cudnnGetConvolutionForwardAlgorithm_v7(ctx.dnn, d->x, d->w, d->conv, d->y,
                                                       static_cast<int>(perf.size()), &returned, perf.data()),
                "cudnnGetConvolutionForwardAlgorithm_v7"));
  // At most two algorithms: the legacy API reaches fewer kernels than the
  // graph API, and planning time is better spent there.
  const int max_algos_tried = std::min(search.per_family, 2);
  std::vector<cudnnConvolutionFwdAlgo_t> algos;
  for (int i = 0; i < returned && static_cast<int>(algos.size()) < max_algos_tried; ++i) {
    if (perf[i].status != CUDNN_STATUS_SUCCESS || !accurate(perf[i].algo)) continue;
    if (std::find(algos.begin(), algos.end(), perf[i].algo) != algos.end()) continue;
    algos.push_back(perf[i].algo);
  }
  // The tensor-core algorithm (and the fused call's documented fast path).
  if (algos.empty()) algos.push_back(CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM);

  for (cudnnConvolutionFwdAlgo_t algo : algos) {
    size_t ws = 0;
    if (cudnnGetConvolutionForwardWorkspaceSize(ctx.dnn, d->x, d->w, d->conv, d->y, algo, &ws) !=
            CUDNN_STATUS_SUCCESS ||
        ws > workspace_limit) {
      continue;
    }
    // The f32-bias form of the fused call for the first algorithm only.
    const bool first = algo == algos.front();
    for (bool float_bias : fused&& first ? std::vector<bool>{false, true} : std::vector<bool>{false}) {
      ConvCandidate c;
      c.family = fused ? "legacy-fused" : "legacy";
      std::ostringstream label;
      label << "algo " << static_cast<int>(algo) << " tensor-op" << (float_bias ? " f32-bias" : "");
      c.label = label.str();
      const std::string full = c.family + " " + c.label;
      c.build = [d, algo, fused, float_bias, ws, full]() -> Result<std::unique_ptr<ConvRunner>> {
        return std::unique_ptr<ConvRunner>(
            std::make_unique<LegacyRunner>(d, algo, fused, float_bias, ws, full));
      };
      out.push_back(std::move(c));
    }
  }
  return out;
}

}  // namespace hilum::cuda::detail
