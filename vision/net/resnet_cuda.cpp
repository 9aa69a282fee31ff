// The CUDA engine: fp16/bf16 NHWC activations, cuDNN convolutions with the
// bias + residual + ReLU epilogue fused, and one CUDA graph per (batch shape,
// output kind). Everything a batch shape needs (activation buffers, workspace,
// algorithm choices, graphs) is made the first time the shape is seen; later
// calls with device-resident images and output allocate nothing.
#include "vision/net/resnet_engine.h"

#if HILUM_HAVE_CUDA

#include <algorithm>
#include <chrono>
#include <cstring>
#include <map>
#include <set>
#include <tuple>

#include "cuda/conv.h"
#include "cuda/device.h"
#include "cuda/layout.h"
#include "cuda/linear.h"
#include "cuda/pool.h"
#include "cuda/stream.h"
#include "model/half.h"
#include "model/log.h"

namespace hilum {
namespace {

using cuda::ConvEpilogue;
using cuda::Precision;

// Workspace a convolution may use while the planner times it.
constexpr size_t kWorkspaceLimit = size_t{256} << 20;
// Shapes whose plans are kept; more evict all (each can hold gigabytes).
constexpr size_t kMaxShapePlans = 6;
constexpr size_t kAlign = 256;

size_t align_up(size_t v) { return (v + kAlign - 1) / kAlign * kAlign; }
int64_t round_up8(int64_t v) { return (v + 7) / 8 * 8; }

// A convolution's weights in device memory: [k, r, s, c] in the precision,
// bias in the precision and in f32.
struct DeviceConv {
  int64_t in_channels = 0, out_channels = 0;  // as stored: padded to multiples of 8
  int64_t kernel = 1, stride = 1, pad = 0;
  size_t weight = 0, bias = 0, bias_f32 = 0;  // byte offsets into the weight buffer
};

struct DeviceBlock {
  DeviceConv conv1, conv2, conv3, downsample;
  bool has_conv3 = false, has_downsample = false;
};

struct Step {
  enum Kind { kConv, kMaxPool } kind = kConv;
  const cuda::ConvPlan* plan = nullptr;
  cuda::ConvArgs args;
  // kMaxPool: input [n, h, w, c] -> output
  const void* x = nullptr;
  void* y = nullptr;
  int64_t n = 0, h = 0, w = 0, c = 0;
};

struct ShapePlan {
  int64_t n = 0, h = 0, w = 0;
  int64_t out_h = 0, out_w = 0;
  cuda::DeviceBuffer staging;  // f32 NCHW images copied from the host
  cuda::DeviceBuffer act[4];
  cuda::DeviceBuffer workspace;
  cuda::DeviceBuffer features, logits, spatial;
  int input_buffer = 0, final_buffer = 0;
  std::vector<Step> steps;
  std::map<ResNetOutput, cuda::Graph> graphs;
  bool use_graphs = true;
};

class CudaEngine final : public ResNetEngine {
 public:
  CudaEngine(std::shared_ptr<const FoldedResNet> net, Precision precision)
      : net_(std::move(net)), precision_(precision) {}

  Status init() {
    HILUM_ASSIGN_OR_RETURN(stream_, cuda::Stream::create());
    HILUM_ASSIGN_OR_RETURN(convs_, cuda::Convolutions::create(stream_, precision_));
    HILUM_ASSIGN_OR_RETURN(blas_, cuda::Blas::create(stream_));
    return upload_weights();
  }

  std::string name() const override { return std::string("cuda-") + cuda::precision_name(precision_); }

  Status run(const Tensor& images, ResNetOutput output, Tensor& out) override {
    const int64_t n = images.dim(0), c = images.dim(1), h = images.dim(2), w = images.dim(3);
    const auto key = std::make_tuple(n, h, w);
    auto it = plans_.find(key);
    if (it == plans_.end()) {
      if (plans_.size() >= kMaxShapePlans) plans_.clear();
      HILUM_ASSIGN_OR_RETURN(auto plan, build(n, h, w));
      it = plans_.emplace(key, std::move(plan)).first;
    }
    ShapePlan& p = *it->second;

    // Images to NHWC in the engine's precision (outside the graph, so that the
    // caller's device pointer can change from call to call).
    const float* src = images.data<float>();
    if (images.device() == Device::kCPU) {
      HILUM_RETURN_IF_ERROR(stream_.copy_to_device(p.staging.data(), images.raw(), images.nbytes()));
      src = p.staging.as<float>();
    }
    HILUM_RETURN_IF_ERROR(cuda::nchw_f32_to_nhwc(stream_, src, n, c, h, w, stem_channels(), precision_,
                                                 p.act[p.input_buffer].data()));

    HILUM_RETURN_IF_ERROR(execute(p, output));

    const void* result = output == ResNetOutput::kLogits     ? p.logits.data()
                         : output == ResNetOutput::kFeatures ? p.features.data()
                                                             : p.spatial.data();
    if (out.device() == Device::kCPU) {
      HILUM_RETURN_IF_ERROR(stream_.copy_to_host(out.raw(), result, out.nbytes()));
    } else {
      HILUM_RETURN_IF_ERROR(stream_.copy_device_to_device(out.raw(), result, out.nbytes()));
    }
    return stream_.synchronize();
  }

 private:
  int64_t stem_channels() const { return round_up8(net_->config.in_channels); }

  // ---- weights -------------------------------------------------------------

  // Appends a conv's weights to the host image, with input and output
  // channels zero-padded to multiples of 8 (cuDNN's tensor-core kernels want
  // 16-byte channel vectors; padded channels stay zero through the network).
  // `extra_bias` (the downsample's folded bias, or null) is added to the conv's own.
  DeviceConv add_conv(std::vector<unsigned char>& image, const FoldedConv& f, bool with_bias,
                      const FoldedConv* extra_bias) {
    DeviceConv d;
    d.in_channels = round_up8(f.in_channels);
    d.out_channels = round_up8(f.out_channels);
    d.kernel = f.kernel;
    d.stride = f.stride;
    d.pad = f.pad;
    const int64_t k = f.out_channels, r = f.kernel, c = f.in_channels, cs = d.in_channels,
                  ks = d.out_channels;
    auto put16 = [&](size_t offset, size_t index, float v) {
      const uint16_t bits = precision_ == Precision::kF16 ? f32_to_f16(v) : f32_to_bf16(v);
      std::memcpy(image.data() + offset + index * 2, &bits, 2);
    };
    d.weight = align_up(image.size());
    image.resize(d.weight + static_cast<size_t>(ks * r * r * cs) * 2, 0);
    for (int64_t o = 0; o < k; ++o) {
      for (int64_t i = 0; i < c; ++i) {
        for (int64_t y = 0; y < r; ++y) {
          for (int64_t x = 0; x < r; ++x) {
            const float v = f.weight[((o * c + i) * r + y) * r + x];
            put16(d.weight, static_cast<size_t>(((o * r + y) * r + x) * cs + i), v);
          }
        }
      }
    }
    d.bias = align_up(image.size());
    image.resize(d.bias + static_cast<size_t>(ks) * 2, 0);
    d.bias_f32 = align_up(image.size());
    image.resize(d.bias_f32 + static_cast<size_t>(ks) * 4, 0);
    for (int64_t o = 0; o < k; ++o) {
      float b = with_bias ? f.bias[o] : 0.0f;
      if (extra_bias) b += extra_bias->bias[o];
      put16(d.bias, static_cast<size_t>(o), b);
      std::memcpy(image.data() + d.bias_f32 + static_cast<size_t>(o) * 4, &b, 4);
    }
    return d;
  }

  Status upload_weights() {
    std::vector<unsigned char> image;
    stem_ = add_conv(image, net_->stem, true, nullptr);
    for (const FoldedBlock& b : net_->blocks) {
      DeviceBlock d;
      d.has_conv3 = b.has_conv3;
      d.has_downsample = b.has_downsample;
      const FoldedConv* ds = b.has_downsample ? &b.downsample : nullptr;
      // The downsample runs without bias; its bias joins the last conv's.
      if (b.has_downsample) d.downsample = add_conv(image, b.downsample, false, nullptr);
      d.conv1 = add_conv(image, b.conv1, true, nullptr);
      d.conv2 = add_conv(image, b.conv2, true, b.has_conv3 ? nullptr : ds);
      if (b.has_conv3) d.conv3 = add_conv(image, b.conv3, true, ds);
      blocks_.push_back(d);
    }
    if (net_->config.num_classes > 0) {
      fc_weight_ = align_up(image.size());
      const size_t wbytes = net_->fc_weight.size() * 4;
      image.resize(fc_weight_ + wbytes, 0);
      std::memcpy(image.data() + fc_weight_, net_->fc_weight.data(), wbytes);
      fc_bias_ = align_up(image.size());
      const size_t bbytes = net_->fc_bias.size() * 4;
      image.resize(fc_bias_ + bbytes, 0);
      std::memcpy(image.data() + fc_bias_, net_->fc_bias.data(), bbytes);
    }
    HILUM_ASSIGN_OR_RETURN(weights_, cuda::DeviceBuffer::allocate(image.size()));
    HILUM_RETURN_IF_ERROR(stream_.copy_to_device(weights_.data(), image.data(), image.size()));
    return stream_.synchronize();  // `image` dies here
  }

  const void* at(size_t offset) const { return weights_.as<unsigned char>() + offset; }

  // ---- planning ------------------------------------------------------------

  Result<std::unique_ptr<ShapePlan>> build(int64_t n, int64_t h, int64_t w) {
    const auto t0 = std::chrono::steady_clock::now();
    auto p = std::make_unique<ShapePlan>();
    p->n = n;
    p->h = h;
    p->w = w;

    // Walk the network once to assign buffers and size them.
    struct PendingConv {
      const DeviceConv* conv;
      int in, out, z;  // buffer indices (z: -1 none)
      int64_t h, w;    // input spatial size
      ConvEpilogue epilogue;
    };
    std::vector<PendingConv> convs;
    std::vector<std::pair<size_t, Step>> pools;  // (index in the step order, step)
    int64_t max_elems = n * h * w * stem_channels();
    auto conv_out = [](const DeviceConv& c, int64_t s) { return (s + 2 * c.pad - c.kernel) / c.stride + 1; };
    auto free_buffer = [](std::initializer_list<int> used) {
      for (int b = 0; b < 4; ++b) {
        if (std::find(used.begin(), used.end(), b) == used.end()) return b;
      }
      return -1;
    };

    int x = 0;
    p->input_buffer = 0;
    convs.push_back({&stem_, x, 1, -1, h, w, ConvEpilogue::kBiasRelu});
    int64_t ch = conv_out(stem_, h), cw = conv_out(stem_, w);
    max_elems = std::max(max_elems, n * ch * cw * stem_.out_channels);
    Step pool;
    pool.kind = Step::kMaxPool;
    pool.n = n;
    pool.h = ch;
    pool.w = cw;
    pool.c = stem_.out_channels;
    pools.emplace_back(convs.size(), pool);  // runs after the stem: buffer 1 -> 0
    ch = (ch + 2 - 3) / 2 + 1;
    cw = (cw + 2 - 3) / 2 + 1;
    x = 0;

    for (const DeviceBlock& b : blocks_) {
      int ds = -1;
      if (b.has_downsample) {
        ds = free_buffer({x});
        convs.push_back({&b.downsample, x, ds, -1, ch, cw, ConvEpilogue::kNone});
      }
      const int t1 = free_buffer({x, ds});
      convs.push_back({&b.conv1, x, t1, -1, ch, cw, ConvEpilogue::kBiasRelu});
      int64_t h1 = conv_out(b.conv1, ch), w1 = conv_out(b.conv1, cw);
      max_elems = std::max(max_elems, n * h1 * w1 * b.conv1.out_channels);
      const int z = b.has_downsample ? ds : x;
      int branch = t1;
      int64_t bh = h1, bw = w1;
      const DeviceConv* last = &b.conv2;
      if (b.has_conv3) {
        const int t2 = free_buffer({x, ds, t1});
        convs.push_back({&b.conv2, t1, t2, -1, h1, w1, ConvEpilogue::kBiasRelu});
        bh = conv_out(b.conv2, h1);
        bw = conv_out(b.conv2, w1);
        max_elems = std::max(max_elems, n * bh * bw * b.conv2.out_channels);
        branch = t2;
        last = &b.conv3;
      }
      const int out = free_buffer({branch, z});
      convs.push_back({last, branch, out, z, bh, bw, ConvEpilogue::kBiasResidualRelu});
      ch = conv_out(*last, bh);
      cw = conv_out(*last, bw);
      max_elems = std::max(max_elems, n * ch * cw * last->out_channels);
      if (b.has_downsample) {
        max_elems = std::max(max_elems, n * ch * cw * b.downsample.out_channels);
      }
      x = out;
    }
    p->final_buffer = x;
    p->out_h = ch;
    p->out_w = cw;
    const int64_t channels = net_->config.feature_channels();

    // Buffers (zeroed, so that the planner never times on garbage).
    const size_t act_bytes = static_cast<size_t>(max_elems) * 2;
    for (auto& b : p->act) {
      HILUM_ASSIGN_OR_RETURN(b, cuda::DeviceBuffer::allocate(act_bytes));
      HILUM_RETURN_IF_ERROR(stream_.memset(b.data(), 0, act_bytes));
    }
    HILUM_ASSIGN_OR_RETURN(p->staging, cuda::DeviceBuffer::allocate(
                                           static_cast<size_t>(n * net_->config.in_channels * h * w) * 4));
    HILUM_ASSIGN_OR_RETURN(p->features, cuda::DeviceBuffer::allocate(static_cast<size_t>(n * channels) * 4));
    HILUM_ASSIGN_OR_RETURN(p->logits,
                           cuda::DeviceBuffer::allocate(
                               static_cast<size_t>(n * std::max<int64_t>(1, net_->config.num_classes)) * 4));
    HILUM_ASSIGN_OR_RETURN(p->spatial,
                           cuda::DeviceBuffer::allocate(static_cast<size_t>(n * channels * ch * cw) * 4));

    // Choose every convolution's algorithm on these buffers.
    HILUM_ASSIGN_OR_RETURN(cuda::DeviceBuffer trial_ws, cuda::DeviceBuffer::allocate(kWorkspaceLimit));
    size_t workspace = 0;
    std::vector<Step> conv_steps;
    for (const PendingConv& pc : convs) {
      const DeviceConv& d = *pc.conv;
      cuda::ConvShape shape;
      shape.n = n;
      shape.c = d.in_channels;
      shape.h = pc.h;
      shape.w = pc.w;
      shape.k = d.out_channels;
      shape.r = shape.s = d.kernel;
      shape.stride = d.stride;
      shape.pad = d.pad;
      Step s;
      s.kind = Step::kConv;
      s.args.x = p->act[pc.in].data();
      s.args.w = at(d.weight);
      s.args.bias = at(d.bias);
      s.args.bias_f32 = static_cast<const float*>(at(d.bias_f32));
      s.args.z = pc.z >= 0 ? p->act[pc.z].data() : nullptr;
      s.args.y = p->act[pc.out].data();
      cuda::ConvArgs trial = s.args;
      trial.workspace = trial_ws.data();
      trial.workspace_bytes = trial_ws.size();
      HILUM_ASSIGN_OR_RETURN(s.plan, convs_->plan(shape, pc.epilogue, trial, kWorkspaceLimit));
      workspace = std::max(workspace, cuda::Convolutions::workspace_bytes(*s.plan));
      conv_steps.push_back(s);
    }
    trial_ws = cuda::DeviceBuffer();
    HILUM_ASSIGN_OR_RETURN(p->workspace, cuda::DeviceBuffer::allocate(std::max<size_t>(workspace, kAlign)));
    for (Step& s : conv_steps) {
      s.args.workspace = p->workspace.data();
      s.args.workspace_bytes = p->workspace.size();
    }
    // Interleave the max pool after the stem.
    for (size_t i = 0; i < conv_steps.size(); ++i) {
      for (auto& [at_index, step] : pools) {
        if (at_index == i) {
          step.x = p->act[1].data();
          step.y = p->act[0].data();
          p->steps.push_back(step);
        }
      }
      p->steps.push_back(conv_steps[i]);
    }

    // One eager run checks everything before any graph is captured.
    HILUM_RETURN_IF_ERROR(record(*p, ResNetOutput::kFeatures));
    HILUM_RETURN_IF_ERROR(stream_.synchronize());

    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    size_t fused = 0;
    std::set<const cuda::ConvPlan*> unique;
    for (const Step& s : p->steps) {
      if (s.kind == Step::kConv) unique.insert(s.plan);
    }
    for (const cuda::ConvPlan* cp : unique) {
      const std::string d = cuda::Convolutions::describe(*cp);
      if (d.find(" fused") != std::string::npos) ++fused;
      log_debug("resnet cuda: " + d);
    }
    log_info("resnet cuda: planned batch " + std::to_string(n) + " at " + std::to_string(h) + "x" +
             std::to_string(w) + " (" + std::to_string(unique.size()) + " distinct convolutions, " +
             std::to_string(fused) + " fused; activations " + std::to_string(4 * act_bytes >> 20) +
             " MiB, workspace " + std::to_string(workspace >> 20) + " MiB) in " +
             std::to_string(static_cast<int>(ms)) + " ms");
    return p;
  }

  // Enqueues the trunk and the tail for `output`.
  Status record(ShapePlan& p, ResNetOutput output) {
    for (const Step& s : p.steps) {
      if (s.kind == Step::kConv) {
        HILUM_RETURN_IF_ERROR(convs_->run(*s.plan, s.args));
      } else {
        HILUM_RETURN_IF_ERROR(
            cuda::max_pool_nhwc(stream_, precision_, s.x, s.n, s.h, s.w, s.c, 3, 2, 1, s.y));
      }
    }
    const int64_t channels = net_->config.feature_channels();
    const void* last = p.act[p.final_buffer].data();
    if (output == ResNetOutput::kSpatialFeatures) {
      return cuda::nhwc_to_nchw_f32(stream_, last, p.n, channels, p.out_h, p.out_w, precision_,
                                    p.spatial.as<float>());
    }
    HILUM_RETURN_IF_ERROR(cuda::global_avg_pool_nhwc(stream_, precision_, last, p.n, p.out_h * p.out_w,
                                                     channels, p.features.as<float>()));
    if (output == ResNetOutput::kFeatures) return Status::Ok();
    return blas_->linear_f32(p.n, channels, net_->config.num_classes, p.features.as<float>(),
                             static_cast<const float*>(at(fc_weight_)),
                             static_cast<const float*>(at(fc_bias_)), p.logits.as<float>());
  }

  // Replays the graph for `output` (capturing it the first time); falls back
  // to plain launches if this system cannot capture.
  Status execute(ShapePlan& p, ResNetOutput output) {
    if (p.use_graphs) {
      auto it = p.graphs.find(output);
      if (it == p.graphs.end()) {
        auto g = cuda::Graph::capture(stream_, [&] { return record(p, output); });
        if (g.ok()) {
          it = p.graphs.emplace(output, std::move(g).value()).first;
        } else {
          log_warning("resnet cuda: CUDA graph capture failed, running without graphs: " +
                      g.error().message());
          p.use_graphs = false;
          HILUM_RETURN_IF_ERROR(stream_.synchronize());
        }
      }
      if (p.use_graphs) return it->second.launch(stream_);
    }
    return record(p, output);
  }

  std::shared_ptr<const FoldedResNet> net_;
  Precision precision_;
  cuda::Stream stream_;
  std::unique_ptr<cuda::Convolutions> convs_;
  std::unique_ptr<cuda::Blas> blas_;
  cuda::DeviceBuffer weights_;
  DeviceConv stem_;
  std::vector<DeviceBlock> blocks_;
  size_t fc_weight_ = 0, fc_bias_ = 0;
  std::map<std::tuple<int64_t, int64_t, int64_t>, std::unique_ptr<ShapePlan>> plans_;
};

}  // namespace

Result<std::unique_ptr<ResNetEngine>> make_cuda_engine(std::shared_ptr<const FoldedResNet> net, DType dtype) {
  if (dtype != DType::kF16 && dtype != DType::kBF16) {
    return unsupported("the CUDA engine runs f16 or bf16, not " + std::string(dtype_name(dtype)));
  }
  if (cuda::device_count() == 0) return unsupported("no CUDA device: " + cuda::unavailable_reason());
  auto engine =
      std::make_unique<CudaEngine>(std::move(net), dtype == DType::kF16 ? Precision::kF16 : Precision::kBF16);
  HILUM_RETURN_IF_ERROR(engine->init());
  return std::unique_ptr<ResNetEngine>(std::move(engine));
}

}  // namespace hilum

#else  // !HILUM_HAVE_CUDA

namespace hilum {
Result<std::unique_ptr<ResNetEngine>> make_cuda_engine(std::shared_ptr<const FoldedResNet>, DType) {
  return unsupported("this Hilum build has no CUDA support (HILUM_WITH_CUDA=OFF)");
}
}  // namespace hilum

#endif
