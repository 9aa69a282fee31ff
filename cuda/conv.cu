#include <cudnn.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <sstream>
#include <utility>
#include <vector>

#include "cuda/common.cuh"
#include "cuda/conv.h"
#include "cuda/epilogue.h"

namespace hilum::cuda {
namespace {

Status dnn_check(cudnnStatus_t s, const char* what) {
  if (s == CUDNN_STATUS_SUCCESS) return Status::Ok();
  return internal_error(std::string(what) + ": " + cudnnGetErrorString(s));
}

cudnnDataType_t dnn_type(Precision p) { return p == Precision::kF16 ? CUDNN_DATA_HALF : CUDNN_DATA_BFLOAT16; }

bool fits_int(const ConvShape& s) {
  const int64_t lim = 0x7fffffff;
  return s.n * s.c * s.h * s.w < lim && s.n * s.k * s.out_h() * s.out_w() < lim &&
         s.k * s.r * s.s * s.c < lim;
}

// How many of cuDNN's heuristic candidates are timed per shape, and how many
// of those also in the fused form (a fused call may build its kernel on first
// use, which costs planning time).
constexpr int kMaxCandidates = 4;
constexpr int kMaxFusedCandidates = 2;

// HILUM_CUDNN_FUSED=0 plans without the fused call (for diagnosis).
bool fused_allowed() {
  const char* v = std::getenv("HILUM_CUDNN_FUSED");
  return !(v && v[0] == '0');
}

}  // namespace

std::string ConvShape::describe() const {
  std::ostringstream os;
  os << "n" << n << " c" << c << " " << h << "x" << w << " -> k" << k << " " << r << "x" << s << " s"
     << stride << " p" << pad;
  return os.str();
}

struct ConvPlan {
  ConvShape shape;
  ConvEpilogue epilogue = ConvEpilogue::kNone;
  Precision precision = Precision::kF16;
  cudnnTensorDescriptor_t x = nullptr, y = nullptr, bias_native = nullptr, bias_float = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  cudnnActivationDescriptor_t act = nullptr;
  cudnnConvolutionFwdAlgo_t algo = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM;
  cudnnMathType_t math = CUDNN_TENSOR_OP_MATH;
  bool fused = false;       // cudnnConvolutionBiasActivationForward, else forward + epilogue pass
  bool float_bias = false;  // the fused call reads the f32 bias
  size_t workspace = 0;
  float ms = 0;

  ~ConvPlan() {
    if (x) cudnnDestroyTensorDescriptor(x);
    if (y) cudnnDestroyTensorDescriptor(y);
    if (bias_native) cudnnDestroyTensorDescriptor(bias_native);
    if (bias_float) cudnnDestroyTensorDescriptor(bias_float);
    if (w) cudnnDestroyFilterDescriptor(w);
    if (conv) cudnnDestroyConvolutionDescriptor(conv);
    if (act) cudnnDestroyActivationDescriptor(act);
  }
};

struct Convolutions::Impl {
  const Stream* stream = nullptr;
  Precision precision = Precision::kF16;
  cudnnHandle_t handle = nullptr;
  std::map<std::pair<decltype(ConvShape{}.key()), ConvEpilogue>, std::unique_ptr<ConvPlan>> plans;

  ~Impl() {
    plans.clear();
    if (handle) cudnnDestroy(handle);
  }

  Status describe_tensors(ConvPlan& p) {
    const ConvShape& s = p.shape;
    const cudnnDataType_t dt = dnn_type(p.precision);
    HILUM_RETURN_IF_ERROR(dnn_check(cudnnCreateTensorDescriptor(&p.x), "cudnnCreateTensorDescriptor"));
    HILUM_RETURN_IF_ERROR(dnn_check(cudnnCreateTensorDescriptor(&p.y), "cudnnCreateTensorDescriptor"));
    HILUM_RETURN_IF_ERROR(
        dnn_check(cudnnCreateTensorDescriptor(&p.bias_native), "cudnnCreateTensorDescriptor"));
    HILUM_RETURN_IF_ERROR(
        dnn_check(cudnnCreateTensorDescriptor(&p.bias_float), "cudnnCreateTensorDescriptor"));
    HILUM_RETURN_IF_ERROR(dnn_check(cudnnCreateFilterDescriptor(&p.w), "cudnnCreateFilterDescriptor"));
    HILUM_RETURN_IF_ERROR(
        dnn_check(cudnnCreateConvolutionDescriptor(&p.conv), "cudnnCreateConvolutionDescriptor"));
    HILUM_RETURN_IF_ERROR(
        dnn_check(cudnnCreateActivationDescriptor(&p.act), "cudnnCreateActivationDescriptor"));
    const int n = static_cast<int>(s.n), c = static_cast<int>(s.c), h = static_cast<int>(s.h),
              w = static_cast<int>(s.w), k = static_cast<int>(s.k);
    HILUM_RETURN_IF_ERROR(dnn_check(cudnnSetTensor4dDescriptor(p.x, CUDNN_TENSOR_NHWC, dt, n, c, h, w),
                                    "cudnnSetTensor4dDescriptor x"));
    HILUM_RETURN_IF_ERROR(dnn_check(cudnnSetFilter4dDescriptor(p.w, dt, CUDNN_TENSOR_NHWC, k, c,
                                                               static_cast<int>(s.r), static_cast<int>(s.s)),
                                    "cudnnSetFilter4dDescriptor"));
    HILUM_RETURN_IF_ERROR(
        dnn_check(cudnnSetConvolution2dDescriptor(p.conv, static_cast<int>(s.pad), static_cast<int>(s.pad),
                                                  static_cast<int>(s.stride), static_cast<int>(s.stride), 1,
                                                  1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT),
                  "cudnnSetConvolution2dDescriptor"));
    int on = 0, oc = 0, oh = 0, ow = 0;
    HILUM_RETURN_IF_ERROR(
        dnn_check(cudnnGetConvolution2dForwardOutputDim(p.conv, p.x, p.w, &on, &oc, &oh, &ow),
                  "cudnnGetConvolution2dForwardOutputDim"));
    if (on != n || oc != k || oh != s.out_h() || ow != s.out_w()) {
      return internal_error("cuDNN output shape disagrees for conv " + s.describe());
    }
    HILUM_RETURN_IF_ERROR(dnn_check(cudnnSetTensor4dDescriptor(p.y, CUDNN_TENSOR_NHWC, dt, n, k, oh, ow),
                                    "cudnnSetTensor4dDescriptor y"));
    HILUM_RETURN_IF_ERROR(
        dnn_check(cudnnSetTensor4dDescriptor(p.bias_native, CUDNN_TENSOR_NCHW, dt, 1, k, 1, 1),
                  "cudnnSetTensor4dDescriptor bias"));
    HILUM_RETURN_IF_ERROR(
        dnn_check(cudnnSetTensor4dDescriptor(p.bias_float, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, k, 1, 1),
                  "cudnnSetTensor4dDescriptor bias f32"));
    HILUM_RETURN_IF_ERROR(
        dnn_check(cudnnSetActivationDescriptor(p.act, CUDNN_ACTIVATION_RELU, CUDNN_NOT_PROPAGATE_NAN, 0.0),
                  "cudnnSetActivationDescriptor"));
    return Status::Ok();
  }

  Status enqueue(const ConvPlan& p, const ConvArgs& a) const {
    const bool residual = p.epilogue == ConvEpilogue::kBiasResidualRelu;
    if (p.fused) {
      const float alpha1 = 1.0f, alpha2 = residual ? 1.0f : 0.0f;
      // Without a residual, z is y itself with weight zero (cuDNN reads nothing useful from it).
      const void* z = residual ? a.z : a.y;
      const void* bias = p.float_bias ? static_cast<const void*>(a.bias_f32) : a.bias;
      return dnn_check(
          cudnnConvolutionBiasActivationForward(
              handle, &alpha1, p.x, a.x, p.w, a.w, p.conv, p.algo, a.workspace, a.workspace_bytes, &alpha2,
              p.y, z, p.float_bias ? p.bias_float : p.bias_native, bias, p.act, p.y, a.y),
          "cudnnConvolutionBiasActivationForward");
    }
    const float alpha = 1.0f, beta = 0.0f;
    HILUM_RETURN_IF_ERROR(
        dnn_check(cudnnConvolutionForward(handle, &alpha, p.x, a.x, p.w, a.w, p.conv, p.algo, a.workspace,
                                          a.workspace_bytes, &beta, p.y, a.y),
                  "cudnnConvolutionForward"));
    if (p.epilogue == ConvEpilogue::kNone) return Status::Ok();
    return bias_residual_relu_nhwc(*stream, p.precision, a.y, a.bias_f32, residual ? a.z : nullptr,
                                   p.shape.n * p.shape.out_h() * p.shape.out_w(), p.shape.k, true);
  }

  Result<const ConvPlan*> make_plan(const ConvShape& shape, ConvEpilogue epilogue, const ConvArgs& trial,
                                    size_t workspace_limit) {
    if (!fits_int(shape))
      return internal_error("conv " + shape.describe() + " is too large for cuDNN's int sizes");
    auto plan = std::make_unique<ConvPlan>();
    plan->shape = shape;
    plan->epilogue = epilogue;
    plan->precision = precision;
    HILUM_RETURN_IF_ERROR(describe_tensors(*plan));

    int max_algos = 0;
    HILUM_RETURN_IF_ERROR(dnn_check(cudnnGetConvolutionForwardAlgorithmMaxCount(handle, &max_algos),
                                    "cudnnGetConvolutionForwardAlgorithmMaxCount"));
    std::vector<cudnnConvolutionFwdAlgoPerf_t> perf(static_cast<size_t>(std::max(max_algos, 1)));
    int returned = 0;
    HILUM_RETURN_IF_ERROR(
        dnn_check(cudnnGetConvolutionForwardAlgorithm_v7(handle, plan->x, plan->w, plan->conv, plan->y,
                                                         max_algos, &returned, perf.data()),
                  "cudnnGetConvolutionForwardAlgorithm_v7"));

    struct Candidate {
      cudnnConvolutionFwdAlgo_t algo;
      cudnnMathType_t math;
      size_t workspace;
    };
    std::vector<Candidate> candidates;
    for (int i = 0; i < returned && static_cast<int>(candidates.size()) < kMaxCandidates; ++i) {
      if (perf[i].status != CUDNN_STATUS_SUCCESS) continue;
      const bool seen = std::any_of(candidates.begin(), candidates.end(), [&](const Candidate& c) {
        return c.algo == perf[i].algo && c.math == perf[i].mathType;
      });
      if (seen) continue;
      if (cudnnSetConvolutionMathType(plan->conv, perf[i].mathType) != CUDNN_STATUS_SUCCESS) continue;
      size_t ws = 0;
      if (cudnnGetConvolutionForwardWorkspaceSize(handle, plan->x, plan->w, plan->conv, plan->y, perf[i].algo,
                                                  &ws) != CUDNN_STATUS_SUCCESS) {
        continue;
      }
      if (ws > workspace_limit || ws > trial.workspace_bytes) continue;
      candidates.push_back({perf[i].algo, perf[i].mathType, ws});
    }

    struct Variant {
      bool fused, float_bias;
    };
    std::vector<Variant> variants;
    if (epilogue != ConvEpilogue::kNone) {
      variants.push_back({true, false});
      variants.push_back({true, true});
    }
    variants.push_back({false, false});

    bool found = false;
    ConvPlan best_choice;  // only the scalar fields are used
    std::string last_error = "no candidate algorithm";
    const bool try_fused = fused_allowed();
    for (size_t ci = 0; ci < candidates.size(); ++ci) {
      const Candidate& c = candidates[ci];
      bool fused_works = false;
      for (const Variant& v : variants) {
        if (v.fused && (!try_fused || static_cast<int>(ci) >= kMaxFusedCandidates)) continue;
        if (v.fused && v.float_bias && fused_works) continue;  // the native-bias form already works
        plan->algo = c.algo;
        plan->math = c.math;
        plan->fused = v.fused;
        plan->float_bias = v.float_bias;
        plan->workspace = c.workspace;
        if (cudnnSetConvolutionMathType(plan->conv, c.math) != CUDNN_STATUS_SUCCESS) continue;
        ConvArgs args = trial;
        args.workspace_bytes = c.workspace;
        Status first = enqueue(*plan, args);  // unsupported combinations fail here, before any launch
        if (!first.ok()) {
          last_error = first.error().message();
          continue;
        }
        auto ms = time_on_stream(
            *stream, [&] { return enqueue(*plan, args); }, 1, 2);
        if (!ms.ok()) {
          last_error = ms.error().message();
          continue;
        }
        if (v.fused) fused_works = true;
        if (!found || *ms < best_choice.ms) {
          found = true;
          best_choice.algo = c.algo;
          best_choice.math = c.math;
          best_choice.fused = v.fused;
          best_choice.float_bias = v.float_bias;
          best_choice.workspace = c.workspace;
          best_choice.ms = *ms;
        }
      }
    }
    best_choice.x = best_choice.y = best_choice.bias_native = best_choice.bias_float = nullptr;
    if (!found) {
      return internal_error("cuDNN found no working " + std::string(precision_name(precision)) +
                            " algorithm for conv " + shape.describe() + " within " +
                            std::to_string(workspace_limit >> 20) + " MiB of workspace (" + last_error + ")");
    }
    plan->algo = best_choice.algo;
    plan->math = best_choice.math;
    plan->fused = best_choice.fused;
    plan->float_bias = best_choice.float_bias;
    plan->workspace = best_choice.workspace;
    plan->ms = best_choice.ms;
    HILUM_RETURN_IF_ERROR(
        dnn_check(cudnnSetConvolutionMathType(plan->conv, plan->math), "cudnnSetConvolutionMathType"));
    const ConvPlan* result = plan.get();
    plans[{shape.key(), epilogue}] = std::move(plan);
    return result;
  }
};

Convolutions::Convolutions(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Convolutions::~Convolutions() = default;

Result<std::unique_ptr<Convolutions>> Convolutions::create(const Stream& stream, Precision precision) {
  auto impl = std::make_unique<Impl>();
  impl->stream = &stream;
  impl->precision = precision;
  HILUM_RETURN_IF_ERROR(dnn_check(cudnnCreate(&impl->handle), "cudnnCreate"));
  HILUM_RETURN_IF_ERROR(
      dnn_check(cudnnSetStream(impl->handle, as_stream(stream.native())), "cudnnSetStream"));
  return std::unique_ptr<Convolutions>(new Convolutions(std::move(impl)));
}

Precision Convolutions::precision() const { return impl_->precision; }

Result<const ConvPlan*> Convolutions::plan(const ConvShape& shape, ConvEpilogue epilogue,
                                           const ConvArgs& trial, size_t workspace_limit) {
  auto it = impl_->plans.find({shape.key(), epilogue});
  if (it != impl_->plans.end()) return static_cast<const ConvPlan*>(it->second.get());
  return impl_->make_plan(shape, epilogue, trial, workspace_limit);
}

Status Convolutions::run(const ConvPlan& plan, const ConvArgs& args) const {
  if (args.workspace_bytes < plan.workspace) {
    return internal_error("conv " + plan.shape.describe() + ": workspace of " +
                          std::to_string(args.workspace_bytes) + " bytes, needs " +
                          std::to_string(plan.workspace));
  }
  return impl_->enqueue(plan, args);
}

size_t Convolutions::workspace_bytes(const ConvPlan& plan) { return plan.workspace; }

std::string Convolutions::describe(const ConvPlan& plan) {
  std::ostringstream os;
  os << plan.shape.describe() << ": algo " << static_cast<int>(plan.algo)
     << (plan.math == CUDNN_DEFAULT_MATH ? " default-math" : " tensor-op")
     << (plan.fused ? " fused" : " unfused") << (plan.fused && plan.float_bias ? " f32-bias" : "") << ", "
     << plan.ms << " ms";
  return os.str();
}

}  // namespace hilum::cuda
