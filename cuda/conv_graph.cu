// The cuDNN graph (backend) API family: the convolution, alone or with its
// pointwise epilogue, as an operation graph; engine configurations from
// cuDNN's heuristics (mode A, then the fallback list); one execution plan per
// configuration. The same kernels PyTorch's cuDNN v8 path runs, plus fusion.
#include <algorithm>
#include <array>
#include <cstring>
#include <set>
#include <sstream>
#include <utility>

#include "cuda/common.cuh"
#include "cuda/conv_internal.h"

namespace hilum::cuda::detail {

Status dnn_check(cudnnStatus_t s, const char* what) {
  if (s == CUDNN_STATUS_SUCCESS) return Status::Ok();
  char detail[512] = {0};
  cudnnGetLastErrorString(detail, sizeof(detail));
  std::string msg = std::string(what) + ": " + cudnnGetErrorString(s);
  if (detail[0]) msg += " (" + std::string(detail) + ")";
  return internal_error(msg);
}

cudnnDataType_t dnn_type(Precision p) { return p == Precision::kF16 ? CUDNN_DATA_HALF : CUDNN_DATA_BFLOAT16; }

namespace {

// cuDNN 9 headers mark the handle attributes deprecated (newer releases bind a
// device description instead), but binding a handle is still supported and is
// the only way the 9.x releases before the replacement accept.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
constexpr cudnnBackendAttributeName_t kGraphHandle = CUDNN_ATTR_OPERATIONGRAPH_HANDLE;
constexpr cudnnBackendAttributeName_t kPlanHandle = CUDNN_ATTR_EXECUTION_PLAN_HANDLE;
#pragma GCC diagnostic pop

// An owned backend descriptor.
class Desc {
 public:
  Desc() = default;
  ~Desc() { reset(); }
  Desc(Desc&& o) noexcept : d_(std::exchange(o.d_, nullptr)) {}
  Desc& operator=(Desc&& o) noexcept {
    if (this != &o) {
      reset();
      d_ = std::exchange(o.d_, nullptr);
    }
    return *this;
  }
  Desc(const Desc&) = delete;
  Desc& operator=(const Desc&) = delete;

  static Result<Desc> make(cudnnBackendDescriptorType_t type, const char* what) {
    Desc d;
    HILUM_RETURN_IF_ERROR(dnn_check(cudnnBackendCreateDescriptor(type, &d.d_), what));
    return std::move(d);
  }
  cudnnBackendDescriptor_t get() const { return d_; }

  Status set(cudnnBackendAttributeName_t name, cudnnBackendAttributeType_t type, int64_t count,
             const void* values, const char* what) const {
    return dnn_check(cudnnBackendSetAttribute(d_, name, type, count, values), what);
  }
  Status set_i64(cudnnBackendAttributeName_t name, std::initializer_list<int64_t> v, const char* what) const {
    std::vector<int64_t> values(v);
    return set(name, CUDNN_TYPE_INT64, static_cast<int64_t>(values.size()), values.data(), what);
  }
  Status set_desc(cudnnBackendAttributeName_t name, const Desc& other, const char* what) const {
    cudnnBackendDescriptor_t raw = other.get();
    return set(name, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &raw, what);
  }
  Status set_type(cudnnBackendAttributeName_t name, cudnnDataType_t type, const char* what) const {
    return set(name, CUDNN_TYPE_DATA_TYPE, 1, &type, what);
  }
  Status finalize(const char* what) const { return dnn_check(cudnnBackendFinalize(d_), what); }

 private:
  void reset() {
    if (d_) cudnnBackendDestroyDescriptor(d_);
    d_ = nullptr;
  }
  cudnnBackendDescriptor_t d_ = nullptr;
};

// Unique ids of the tensors the variant pack binds.
enum Uid : int64_t { kX = 1, kW = 2, kY = 3, kZ = 4, kBias = 5, kVirtual = 100 };

// A logical [n, c, h, w] tensor stored NHWC (strides c*h*w, 1, w*c, c).
Result<Desc> nhwc_tensor(int64_t uid, cudnnDataType_t type, int64_t n, int64_t c, int64_t h, int64_t w,
                         bool is_virtual) {
  HILUM_ASSIGN_OR_RETURN(Desc t, Desc::make(CUDNN_BACKEND_TENSOR_DESCRIPTOR, "tensor descriptor"));
  HILUM_RETURN_IF_ERROR(t.set_type(CUDNN_ATTR_TENSOR_DATA_TYPE, type, "tensor data type"));
  HILUM_RETURN_IF_ERROR(t.set_i64(CUDNN_ATTR_TENSOR_DIMENSIONS, {n, c, h, w}, "tensor dimensions"));
  HILUM_RETURN_IF_ERROR(t.set_i64(CUDNN_ATTR_TENSOR_STRIDES, {c * h * w, 1, w * c, c}, "tensor strides"));
  HILUM_RETURN_IF_ERROR(t.set_i64(CUDNN_ATTR_TENSOR_UNIQUE_ID, {uid}, "tensor uid"));
  HILUM_RETURN_IF_ERROR(t.set_i64(CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, {16}, "tensor alignment"));
  if (is_virtual) {
    const bool yes = true;
    HILUM_RETURN_IF_ERROR(t.set(CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, 1, &yes, "tensor virtual"));
  }
  HILUM_RETURN_IF_ERROR(t.finalize("tensor finalize"));
  return std::move(t);
}

Result<Desc> pointwise(cudnnPointwiseMode_t mode) {
  HILUM_ASSIGN_OR_RETURN(Desc p, Desc::make(CUDNN_BACKEND_POINTWISE_DESCRIPTOR, "pointwise descriptor"));
  HILUM_RETURN_IF_ERROR(
      p.set(CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, 1, &mode, "pointwise mode"));
  HILUM_RETURN_IF_ERROR(p.set_type(CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_DATA_FLOAT, "pointwise precision"));
  HILUM_RETURN_IF_ERROR(p.finalize("pointwise finalize"));
  return std::move(p);
}

// y = op(x[, b]) as a pointwise operation node.
Result<Desc> pointwise_op(const Desc& pw, const Desc& x, const Desc* b, const Desc& y) {
  HILUM_ASSIGN_OR_RETURN(Desc op,
                         Desc::make(CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR, "pointwise operation"));
  HILUM_RETURN_IF_ERROR(op.set_desc(CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, pw, "pointwise op mode"));
  HILUM_RETURN_IF_ERROR(op.set_desc(CUDNN_ATTR_OPERATION_POINTWISE_XDESC, x, "pointwise op x"));
  if (b) HILUM_RETURN_IF_ERROR(op.set_desc(CUDNN_ATTR_OPERATION_POINTWISE_BDESC, *b, "pointwise op b"));
  HILUM_RETURN_IF_ERROR(op.set_desc(CUDNN_ATTR_OPERATION_POINTWISE_YDESC, y, "pointwise op y"));
  HILUM_RETURN_IF_ERROR(op.finalize("pointwise op finalize"));
  return std::move(op);
}

// The operation graph and every descriptor it was built from (kept alive for
// as long as any plan made from it).
struct OpGraph {
  std::vector<Desc> parts;
  Desc graph;
  cudnnHandle_t handle = nullptr;
  ConvEpilogue epilogue = ConvEpilogue::kNone;
  bool fused = false, bias_f32 = false;
};

Result<std::shared_ptr<OpGraph>> build_graph(const ConvContext& ctx, const ConvShape& s,
                                             ConvEpilogue epilogue, bool fused, bool bias_f32) {
  auto g = std::make_shared<OpGraph>();
  g->handle = ctx.dnn;
  g->epilogue = epilogue;
  g->fused = fused && epilogue != ConvEpilogue::kNone;
  g->bias_f32 = bias_f32;
  const cudnnDataType_t io = dnn_type(ctx.precision);
  const int64_t ho = s.out_h(), wo = s.out_w();

  HILUM_ASSIGN_OR_RETURN(Desc x, nhwc_tensor(kX, io, s.n, s.c, s.h, s.w, false));
  HILUM_ASSIGN_OR_RETURN(Desc w, nhwc_tensor(kW, io, s.k, s.c, s.r, s.s, false));
  HILUM_ASSIGN_OR_RETURN(Desc y, nhwc_tensor(kY, io, s.n, s.k, ho, wo, false));

  HILUM_ASSIGN_OR_RETURN(Desc conv,
                         Desc::make(CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR, "convolution descriptor"));
  const cudnnConvolutionMode_t mode = CUDNN_CROSS_CORRELATION;
  HILUM_RETURN_IF_ERROR(
      conv.set_type(CUDNN_ATTR_CONVOLUTION_COMP_TYPE, CUDNN_DATA_FLOAT, "conv compute type"));
  HILUM_RETURN_IF_ERROR(
      conv.set(CUDNN_ATTR_CONVOLUTION_CONV_MODE, CUDNN_TYPE_CONVOLUTION_MODE, 1, &mode, "conv mode"));
  HILUM_RETURN_IF_ERROR(conv.set_i64(CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS, {2}, "conv spatial dims"));
  HILUM_RETURN_IF_ERROR(conv.set_i64(CUDNN_ATTR_CONVOLUTION_DILATIONS, {1, 1}, "conv dilations"));
  HILUM_RETURN_IF_ERROR(
      conv.set_i64(CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES, {s.stride, s.stride}, "conv strides"));
  HILUM_RETURN_IF_ERROR(conv.set_i64(CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS, {s.pad, s.pad}, "conv paddings"));
  HILUM_RETURN_IF_ERROR(conv.set_i64(CUDNN_ATTR_CONVOLUTION_POST_PADDINGS, {s.pad, s.pad}, "conv paddings"));
  HILUM_RETURN_IF_ERROR(conv.finalize("convolution finalize"));

  std::vector<Desc> ops;
  int64_t next_virtual = kVirtual;
  // The convolution writes y directly, or an f32 virtual tensor the epilogue reads.
  Desc acc;
  if (g->fused) {
    HILUM_ASSIGN_OR_RETURN(acc, nhwc_tensor(next_virtual++, CUDNN_DATA_FLOAT, s.n, s.k, ho, wo, true));
  }
  const Desc& conv_out = g->fused ? acc : y;
  {
    HILUM_ASSIGN_OR_RETURN(
        Desc op, Desc::make(CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR, "convolution operation"));
    const float alpha = 1.0f, beta = 0.0f;
    HILUM_RETURN_IF_ERROR(op.set_desc(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X, x, "conv op x"));
    HILUM_RETURN_IF_ERROR(op.set_desc(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W, w, "conv op w"));
    HILUM_RETURN_IF_ERROR(op.set_desc(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y, conv_out, "conv op y"));
    HILUM_RETURN_IF_ERROR(
        op.set_desc(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC, conv, "conv op desc"));
    HILUM_RETURN_IF_ERROR(
        op.set(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA, CUDNN_TYPE_FLOAT, 1, &alpha, "conv op alpha"));
    HILUM_RETURN_IF_ERROR(
        op.set(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_BETA, CUDNN_TYPE_FLOAT, 1, &beta, "conv op beta"));
    HILUM_RETURN_IF_ERROR(op.finalize("convolution operation finalize"));
    ops.push_back(std::move(op));
  }
  if (g->fused) {
    // PyTorch's order for conv + add + relu: acc (+ z) + bias, then ReLU into y.
    HILUM_ASSIGN_OR_RETURN(Desc add, pointwise(CUDNN_POINTWISE_ADD));
    HILUM_ASSIGN_OR_RETURN(Desc relu, pointwise(CUDNN_POINTWISE_RELU_FWD));
    HILUM_ASSIGN_OR_RETURN(Desc bias,
                           nhwc_tensor(kBias, bias_f32 ? CUDNN_DATA_FLOAT : io, 1, s.k, 1, 1, false));
    Desc summed;
    const Desc* last = &acc;
    if (epilogue == ConvEpilogue::kBiasResidualRelu) {
      HILUM_ASSIGN_OR_RETURN(Desc z, nhwc_tensor(kZ, io, s.n, s.k, ho, wo, false));
      HILUM_ASSIGN_OR_RETURN(summed, nhwc_tensor(next_virtual++, CUDNN_DATA_FLOAT, s.n, s.k, ho, wo, true));
      HILUM_ASSIGN_OR_RETURN(Desc op, pointwise_op(add, acc, &z, summed));
      ops.push_back(std::move(op));
      g->parts.push_back(std::move(z));
      last = &summed;
    }
    HILUM_ASSIGN_OR_RETURN(Desc biased,
                           nhwc_tensor(next_virtual++, CUDNN_DATA_FLOAT, s.n, s.k, ho, wo, true));
    HILUM_ASSIGN_OR_RETURN(Desc add_bias, pointwise_op(add, *last, &bias, biased));
    ops.push_back(std::move(add_bias));
    HILUM_ASSIGN_OR_RETURN(Desc act, pointwise_op(relu, biased, nullptr, y));
    ops.push_back(std::move(act));
    g->parts.push_back(std::move(add));
    g->parts.push_back(std::move(relu));
    g->parts.push_back(std::move(bias));
    g->parts.push_back(std::move(summed));
    g->parts.push_back(std::move(biased));
  }

  HILUM_ASSIGN_OR_RETURN(g->graph, Desc::make(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR, "operation graph"));
  std::vector<cudnnBackendDescriptor_t> raw;
  for (const Desc& op : ops) raw.push_back(op.get());
  HILUM_RETURN_IF_ERROR(g->graph.set(CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR,
                                     static_cast<int64_t>(raw.size()), raw.data(), "graph ops"));
  HILUM_RETURN_IF_ERROR(g->graph.set(kGraphHandle, CUDNN_TYPE_HANDLE, 1, &ctx.dnn, "graph handle"));
  HILUM_RETURN_IF_ERROR(g->graph.finalize("operation graph finalize"));
  for (Desc& op : ops) g->parts.push_back(std::move(op));
  g->parts.push_back(std::move(x));
  g->parts.push_back(std::move(w));
  g->parts.push_back(std::move(y));
  g->parts.push_back(std::move(acc));
  g->parts.push_back(std::move(conv));
  return g;
}

// What an engine configuration is, as far as choosing and reporting go.
struct ConfigInfo {
  int64_t engine = -1;
  std::string knobs;  // "k2=3 k14=4" (knob type id = value; ids as in cudnnBackendKnobType_t)
  bool runtime_compiled = false;
  bool tensor_core = false;
  bool reduced_precision = false;  // accumulates in less than f32
  bool winograd_or_fft = false;
  bool down_convert = false;
  bool notes_known = false;
};

ConfigInfo inspect(const Desc& cfg) {
  ConfigInfo info;
  auto engine = Desc::make(CUDNN_BACKEND_ENGINE_DESCRIPTOR, "engine descriptor");
  if (!engine.ok()) return info;
  cudnnBackendDescriptor_t e = engine->get();
  int64_t n = 0;
  if (cudnnBackendGetAttribute(cfg.get(), CUDNN_ATTR_ENGINECFG_ENGINE, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &n,
                               &e) == CUDNN_STATUS_SUCCESS) {
    int64_t index = -1;
    if (cudnnBackendGetAttribute(e, CUDNN_ATTR_ENGINE_GLOBAL_INDEX, CUDNN_TYPE_INT64, 1, &n, &index) ==
        CUDNN_STATUS_SUCCESS) {
      info.engine = index;
    }
    std::array<cudnnBackendNumericalNote_t, CUDNN_NUMERICAL_NOTE_TYPE_COUNT> notes{};
    n = 0;
    if (cudnnBackendGetAttribute(e, CUDNN_ATTR_ENGINE_NUMERICAL_NOTE, CUDNN_TYPE_NUMERICAL_NOTE,
                                 static_cast<int64_t>(notes.size()), &n,
                                 notes.data()) == CUDNN_STATUS_SUCCESS) {
      info.notes_known = true;
      for (int64_t i = 0; i < n && i < static_cast<int64_t>(notes.size()); ++i) {
        switch (notes[i]) {
          case CUDNN_NUMERICAL_NOTE_TENSOR_CORE:
            info.tensor_core = true;
            break;
          case CUDNN_NUMERICAL_NOTE_REDUCED_PRECISION_REDUCTION:
            info.reduced_precision = true;
            break;
          case CUDNN_NUMERICAL_NOTE_DOWN_CONVERT_INPUTS:
            info.down_convert = true;
            break;
          case CUDNN_NUMERICAL_NOTE_FFT:
          case CUDNN_NUMERICAL_NOTE_WINOGRAD:
          case CUDNN_NUMERICAL_NOTE_WINOGRAD_TILE_4x4:
          case CUDNN_NUMERICAL_NOTE_WINOGRAD_TILE_6x6:
          case CUDNN_NUMERICAL_NOTE_WINOGRAD_TILE_13x13:
            info.winograd_or_fft = true;
            break;
          default:
            break;
        }
      }
    }
    std::array<cudnnBackendBehaviorNote_t, CUDNN_BEHAVIOR_NOTE_TYPE_COUNT> behavior{};
    n = 0;
    if (cudnnBackendGetAttribute(e, CUDNN_ATTR_ENGINE_BEHAVIOR_NOTE, CUDNN_TYPE_BEHAVIOR_NOTE,
                                 static_cast<int64_t>(behavior.size()), &n,
                                 behavior.data()) == CUDNN_STATUS_SUCCESS) {
      for (int64_t i = 0; i < n && i < static_cast<int64_t>(behavior.size()); ++i) {
        if (behavior[i] == CUDNN_BEHAVIOR_NOTE_RUNTIME_COMPILATION) info.runtime_compiled = true;
      }
    }
  }
  // Knob choices.
  std::vector<Desc> knobs;
  std::vector<cudnnBackendDescriptor_t> raw;
  for (int i = 0; i < CUDNN_KNOB_TYPE_COUNTS; ++i) {
    auto k = Desc::make(CUDNN_BACKEND_KNOB_CHOICE_DESCRIPTOR, "knob choice");
    if (!k.ok()) return info;
    raw.push_back(k->get());
    knobs.push_back(std::move(k).value());
  }
  n = 0;
  if (cudnnBackendGetAttribute(cfg.get(), CUDNN_ATTR_ENGINECFG_KNOB_CHOICES, CUDNN_TYPE_BACKEND_DESCRIPTOR,
                               static_cast<int64_t>(raw.size()), &n, raw.data()) == CUDNN_STATUS_SUCCESS) {
    std::ostringstream os;
    for (int64_t i = 0; i < n && i < static_cast<int64_t>(raw.size()); ++i) {
      cudnnBackendKnobType_t type{};
      int64_t value = 0, got = 0;
      if (cudnnBackendGetAttribute(raw[i], CUDNN_ATTR_KNOB_CHOICE_KNOB_TYPE, CUDNN_TYPE_KNOB_TYPE, 1, &got,
                                   &type) != CUDNN_STATUS_SUCCESS ||
          cudnnBackendGetAttribute(raw[i], CUDNN_ATTR_KNOB_CHOICE_KNOB_VALUE, CUDNN_TYPE_INT64, 1, &got,
                                   &value) != CUDNN_STATUS_SUCCESS) {
        continue;
      }
      os << (os.tellp() > 0 ? " " : "") << "k" << static_cast<int>(type) << "=" << value;
    }
    info.knobs = os.str();
  }
  return info;
}

std::string config_label(const ConfigInfo& info) {
  std::ostringstream os;
  os << "engine " << info.engine;
  if (!info.knobs.empty()) os << " {" << info.knobs << "}";
  if (info.runtime_compiled) os << " rtc";
  if (info.notes_known && !info.tensor_core) os << " no-tensor-core";
  return os.str();
}

// Engine configurations for the graph in `mode`, as returned by cuDNN.
Result<std::vector<std::shared_ptr<Desc>>> heuristic_configs(const OpGraph& g, cudnnBackendHeurMode_t mode) {
  HILUM_ASSIGN_OR_RETURN(Desc heur, Desc::make(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR, "engine heuristics"));
  HILUM_RETURN_IF_ERROR(heur.set_desc(CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, g.graph, "heuristics graph"));
  HILUM_RETURN_IF_ERROR(
      heur.set(CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &mode, "heuristics mode"));
  HILUM_RETURN_IF_ERROR(heur.finalize("engine heuristics finalize"));
  int64_t count = 0;
  HILUM_RETURN_IF_ERROR(dnn_check(cudnnBackendGetAttribute(heur.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                                           CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, &count, nullptr),
                                  "heuristics result count"));
  std::vector<std::shared_ptr<Desc>> configs;
  if (count <= 0) return configs;
  std::vector<cudnnBackendDescriptor_t> raw;
  for (int64_t i = 0; i < count; ++i) {
    HILUM_ASSIGN_OR_RETURN(Desc c, Desc::make(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR, "engine config"));
    raw.push_back(c.get());
    configs.push_back(std::make_shared<Desc>(std::move(c)));
  }
  int64_t got = 0;
  HILUM_RETURN_IF_ERROR(
      dnn_check(cudnnBackendGetAttribute(heur.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                         CUDNN_TYPE_BACKEND_DESCRIPTOR, count, &got, raw.data()),
                "heuristics results"));
  configs.resize(static_cast<size_t>(std::clamp<int64_t>(got, 0, count)));
  return configs;
}

class GraphRunner final : public ConvRunner {
 public:
  GraphRunner(std::shared_ptr<OpGraph> graph, Desc plan, size_t workspace, std::string label)
      : graph_(std::move(graph)), plan_(std::move(plan)), workspace_(workspace), label_(std::move(label)) {}

  Status enqueue(const ConvArgs& a) const override {
    std::array<int64_t, 5> uids{};
    std::array<void*, 5> ptrs{};
    int n = 0;
    auto bind = [&](int64_t uid, const void* p) {
      uids[n] = uid;
      ptrs[n] = const_cast<void*>(p);
      ++n;
    };
    bind(kX, a.x);
    bind(kW, a.w);
    bind(kY, a.y);
    if (graph_->fused) {
      bind(kBias, graph_->bias_f32 ? static_cast<const void*>(a.bias_f32) : a.bias);
      if (graph_->epilogue == ConvEpilogue::kBiasResidualRelu) bind(kZ, a.z);
    }
    HILUM_ASSIGN_OR_RETURN(Desc pack, Desc::make(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR, "variant pack"));
    void* workspace = a.workspace;
    HILUM_RETURN_IF_ERROR(
        pack.set(CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, n, uids.data(), "pack uids"));
    HILUM_RETURN_IF_ERROR(pack.set(CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, n, ptrs.data(),
                                   "pack pointers"));
    HILUM_RETURN_IF_ERROR(
        pack.set(CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &workspace, "pack workspace"));
    HILUM_RETURN_IF_ERROR(pack.finalize("variant pack finalize"));
    return dnn_check(cudnnBackendExecute(graph_->handle, plan_.get(), pack.get()), "cudnnBackendExecute");
  }
  size_t workspace() const override { return workspace_; }
  bool fused() const override { return graph_->fused; }
  std::string describe() const override { return label_; }

 private:
  std::shared_ptr<OpGraph> graph_;
  Desc plan_;
  size_t workspace_;
  std::string label_;
};

}  // namespace

Result<std::vector<ConvCandidate>> graph_candidates(const ConvContext& ctx, const ConvShape& shape,
                                                    ConvEpilogue epilogue, bool fused, bool bias_f32,
                                                    const ConvSearch& search, size_t workspace_limit,
                                                    std::string* note) {
  std::vector<ConvCandidate> out;
  if (fused && epilogue == ConvEpilogue::kNone) return out;
  HILUM_ASSIGN_OR_RETURN(std::shared_ptr<OpGraph> graph, build_graph(ctx, shape, epilogue, fused, bias_f32));
  const std::string family = graph->fused ? (bias_f32 ? "graph-fused-f32bias" : "graph-fused") : "graph";

  std::vector<std::shared_ptr<Desc>> configs;
  std::vector<ConfigInfo> infos;
  std::set<std::string> seen;
  int runtime_compiled = 0, skipped_rtc = 0, skipped_inexact = 0, offered = 0;
  std::string last_error;
  for (cudnnBackendHeurMode_t mode : {CUDNN_HEUR_MODE_A, CUDNN_HEUR_MODE_FALLBACK}) {
    if (static_cast<int>(configs.size()) >= search.per_family) break;
    auto found = heuristic_configs(*graph, mode);
    if (!found.ok()) {
      last_error = found.error().message();
      continue;
    }
    for (auto& cfg : *found) {
      if (static_cast<int>(configs.size()) >= search.per_family) break;
      ConfigInfo info = inspect(*cfg);
      // (An engine that could not be inspected counts as new.)
      const std::string key = info.engine < 0 ? "?" + std::to_string(configs.size() + offered)
                                              : std::to_string(info.engine) + "/" + info.knobs;
      if (!seen.insert(key).second) continue;
      ++offered;
      // Accumulation in less than f32, or transforms that lose accuracy: never.
      if (info.reduced_precision || info.winograd_or_fft || info.down_convert) {
        ++skipped_inexact;
        continue;
      }
      if (info.runtime_compiled) {
        // Only worth its compile time where it fuses the epilogue.
        if (!search.runtime_compiled || !graph->fused || runtime_compiled >= 1) {
          ++skipped_rtc;
          continue;
        }
        ++runtime_compiled;
      }
      configs.push_back(cfg);
      infos.push_back(info);
    }
  }
  if (note && (skipped_rtc || skipped_inexact || offered == 0)) {
    std::ostringstream os;
    os << family << ": cuDNN offered " << offered << " engine config(s)";
    if (skipped_rtc) os << ", " << skipped_rtc << " runtime-compiled left out (HILUM_CUDNN_RTC=1 allows one)";
    if (skipped_inexact)
      os << ", " << skipped_inexact << " inexact (reduced-precision/Winograd/FFT) left out";
    if (!last_error.empty()) os << "; " << last_error;
    *note = os.str();
  }
  if (configs.empty() && offered == 0 && !last_error.empty()) {
    return internal_error(family + " heuristics: " + last_error);
  }

  for (size_t i = 0; i < configs.size(); ++i) {
    ConvCandidate c;
    c.family = family;
    c.label = config_label(infos[i]);
    c.runtime_compiled = infos[i].runtime_compiled;
    std::shared_ptr<Desc> cfg = configs[i];
    std::string label = family + " " + c.label;
    c.build = [graph, cfg, label, workspace_limit]() -> Result<std::unique_ptr<ConvRunner>> {
      HILUM_ASSIGN_OR_RETURN(Desc plan,
                             Desc::make(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR, "execution plan"));
      HILUM_RETURN_IF_ERROR(plan.set(kPlanHandle, CUDNN_TYPE_HANDLE, 1, &graph->handle, "plan handle"));
      HILUM_RETURN_IF_ERROR(
          plan.set_desc(CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, *cfg, "plan engine config"));
      HILUM_RETURN_IF_ERROR(plan.finalize("execution plan finalize"));
      int64_t ws = 0, n = 0;
      HILUM_RETURN_IF_ERROR(
          dnn_check(cudnnBackendGetAttribute(plan.get(), CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE,
                                             CUDNN_TYPE_INT64, 1, &n, &ws),
                    "plan workspace size"));
      if (ws < 0 || static_cast<size_t>(ws) > workspace_limit) {
        return unsupported("needs " + std::to_string(ws >> 20) + " MiB of workspace, over the limit");
      }
      return std::unique_ptr<ConvRunner>(
          std::make_unique<GraphRunner>(graph, std::move(plan), static_cast<size_t>(ws), label));
    };
    out.push_back(std::move(c));
  }
  return out;
}

}  // namespace hilum::cuda::detail
