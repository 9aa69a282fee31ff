// The CUDA engine: fp16/bf16 NHWC activations, cuDNN convolutions with the
// bias + residual + ReLU epilogue fused, and one CUDA graph per (batch shape,
// output kind). Everything a batch shape needs (activation buffers, workspace,
// algorithm choices, graphs) is made the first time the shape is seen; later
// calls with device-resident images and output allocate nothing. profile()
// times every step on its own (from CUDA graphs, so without host gaps) and
// reports the planner's choices.
#include "vision/net/resnet_engine.h"

#if HILUM_HAVE_CUDA

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <iomanip>
#include <map>
#include <set>
#include <sstream>
#include <tuple>

#include "cuda/conv.h"
#include "cuda/device.h"
#include "cuda/layout.h"
#include "cuda/linear.h"
#include "cuda/pool.h"
#include "cuda/stream.h"
#include "model/half.h"
#include "model/log.h"
#include "model/stopwatch.h"

namespace hilum {
namespace {

using cuda::ConvEpilogue;
using cuda::Precision;

// Workspace a convolution may use (the planner halves it while the GPU
// cannot spare that much).
constexpr size_t kWorkspaceLimit = size_t{512} << 20;
constexpr size_t kMinWorkspace = size_t{16} << 20;
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
  std::string name;  // "layer3.12.conv2", "maxpool"
  const cuda::ConvPlan* plan = nullptr;
  cuda::ConvShape shape;
  ConvEpilogue epilogue = ConvEpilogue::kNone;
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
  const float* source = nullptr;  // the images last loaded (f32 NCHW, device)
  std::vector<Step> steps;
  double planning_ms = 0;
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
    HILUM_ASSIGN_OR_RETURN(ShapePlan * plan, shape_plan(images));
    ShapePlan& p = *plan;
    HILUM_RETURN_IF_ERROR(load_images(p, images));
    HILUM_RETURN_IF_ERROR(execute(p, output));
    const void* result = output_buffer(p, output);
    if (out.device() == Device::kCPU) {
      HILUM_RETURN_IF_ERROR(stream_.copy_to_host(out.raw(), result, out.nbytes()));
    } else {
      HILUM_RETURN_IF_ERROR(stream_.copy_device_to_device(out.raw(), result, out.nbytes()));
    }
    return stream_.synchronize();
  }

  Result<std::string> profile(const Tensor& images, ResNetOutput output) override {
    HILUM_ASSIGN_OR_RETURN(ShapePlan * plan, shape_plan(images));
    ShapePlan& p = *plan;
    HILUM_RETURN_IF_ERROR(load_images(p, images));
    HILUM_RETURN_IF_ERROR(stream_.synchronize());
    return profile_report(p, images, output);
  }

 private:
  // The plan for this batch shape, made (planned, buffers allocated) on first sight.
  Result<ShapePlan*> shape_plan(const Tensor& images) {
    const int64_t n = images.dim(0), h = images.dim(2), w = images.dim(3);
    const auto key = std::make_tuple(n, h, w);
    auto it = plans_.find(key);
    if (it == plans_.end()) {
      if (plans_.size() >= kMaxShapePlans) plans_.clear();
      HILUM_ASSIGN_OR_RETURN(auto plan, build(n, h, w));
      it = plans_.emplace(key, std::move(plan)).first;
    }
    return it->second.get();
  }

  // Images to NHWC in the engine's precision (outside the graph, so that the
  // caller's device pointer can change from call to call).
  Status load_images(ShapePlan& p, const Tensor& images) {
    const float* src = images.data<float>();
    if (images.device() == Device::kCPU) {
      HILUM_RETURN_IF_ERROR(stream_.copy_to_device(p.staging.data(), images.raw(), images.nbytes()));
      src = p.staging.as<float>();
    }
    p.source = src;
    return convert_input(p);
  }

  Status convert_input(const ShapePlan& p) {
    return cuda::nchw_f32_to_nhwc(stream_, p.source, p.n, net_->config.in_channels, p.h, p.w, stem_channels(),
                                  precision_, p.act[p.input_buffer].data());
  }

  const void* output_buffer(const ShapePlan& p, ResNetOutput output) const {
    return output == ResNetOutput::kLogits     ? p.logits.data()
           : output == ResNetOutput::kFeatures ? p.features.data()
                                               : p.spatial.data();
  }

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
    for (int stage = 0; stage < 4; ++stage) {
      for (int b = 0; b < net_->config.layers[stage]; ++b) {
        block_names_.push_back("layer" + std::to_string(stage + 1) + "." + std::to_string(b));
      }
    }
    if (block_names_.size() != net_->blocks.size())
      return internal_error("resnet cuda: block count mismatch");
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
    const Stopwatch clock;
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
      std::string name;
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
    convs.push_back({&stem_, x, 1, -1, h, w, ConvEpilogue::kBiasRelu, "stem"});
    int64_t ch = conv_out(stem_, h), cw = conv_out(stem_, w);
    max_elems = std::max(max_elems, n * ch * cw * stem_.out_channels);
    Step pool;
    pool.kind = Step::kMaxPool;
    pool.name = "maxpool";
    pool.n = n;
    pool.h = ch;
    pool.w = cw;
    pool.c = stem_.out_channels;
    pools.emplace_back(convs.size(), pool);  // runs after the stem: buffer 1 -> 0
    ch = (ch + 2 - 3) / 2 + 1;
    cw = (cw + 2 - 3) / 2 + 1;
    x = 0;

    for (size_t bi = 0; bi < blocks_.size(); ++bi) {
      const DeviceBlock& b = blocks_[bi];
      const std::string& block = block_names_[bi];
      int ds = -1;
      if (b.has_downsample) {
        ds = free_buffer({x});
        convs.push_back({&b.downsample, x, ds, -1, ch, cw, ConvEpilogue::kNone, block + ".downsample"});
      }
      const int t1 = free_buffer({x, ds});
      convs.push_back({&b.conv1, x, t1, -1, ch, cw, ConvEpilogue::kBiasRelu, block + ".conv1"});
      int64_t h1 = conv_out(b.conv1, ch), w1 = conv_out(b.conv1, cw);
      max_elems = std::max(max_elems, n * h1 * w1 * b.conv1.out_channels);
      const int z = b.has_downsample ? ds : x;
      int branch = t1;
      int64_t bh = h1, bw = w1;
      const DeviceConv* last = &b.conv2;
      if (b.has_conv3) {
        const int t2 = free_buffer({x, ds, t1});
        convs.push_back({&b.conv2, t1, t2, -1, h1, w1, ConvEpilogue::kBiasRelu, block + ".conv2"});
        bh = conv_out(b.conv2, h1);
        bw = conv_out(b.conv2, w1);
        max_elems = std::max(max_elems, n * bh * bw * b.conv2.out_channels);
        branch = t2;
        last = &b.conv3;
      }
      const int out = free_buffer({branch, z});
      convs.push_back({last, branch, out, z, bh, bw, ConvEpilogue::kBiasResidualRelu,
                       block + (b.has_conv3 ? ".conv3" : ".conv2")});
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

    // Choose every convolution's implementation on these buffers, with as
    // much trial workspace as the GPU can spare (up to kWorkspaceLimit).
    cuda::DeviceBuffer trial_ws;
    for (size_t bytes = kWorkspaceLimit;; bytes /= 2) {
      auto b = cuda::DeviceBuffer::allocate(bytes);
      if (b.ok()) {
        trial_ws = std::move(b).value();
        break;
      }
      if (bytes / 2 < kMinWorkspace) return b.error().with_context("workspace for the convolution planner");
    }
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
      s.name = pc.name;
      s.shape = shape;
      s.epilogue = pc.epilogue;
      s.args.x = p->act[pc.in].data();
      s.args.w = at(d.weight);
      s.args.bias = at(d.bias);
      s.args.bias_f32 = static_cast<const float*>(at(d.bias_f32));
      s.args.z = pc.z >= 0 ? p->act[pc.z].data() : nullptr;
      s.args.y = p->act[pc.out].data();
      cuda::ConvArgs trial = s.args;
      trial.workspace = trial_ws.data();
      trial.workspace_bytes = trial_ws.size();
      auto planned = convs_->plan(shape, pc.epilogue, trial, trial_ws.size());
      if (!planned.ok()) return planned.error().with_context("planning " + pc.name);
      s.plan = *planned;
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

    const double ms = clock.milliseconds();
    p->planning_ms = ms;
    size_t fused = 0, unfused_steps = 0;
    std::set<const cuda::ConvPlan*> unique;
    for (const Step& s : p->steps) {
      if (s.kind != Step::kConv) continue;
      unique.insert(s.plan);
      if (!cuda::Convolutions::fused(*s.plan)) ++unfused_steps;
    }
    for (const cuda::ConvPlan* cp : unique) {
      if (cuda::Convolutions::fused(*cp)) ++fused;
      if (!cuda::Convolutions::checked(*cp)) {
        log_warning("resnet cuda: no implementation passed the planner's check for " +
                    cuda::Convolutions::describe(*cp) + "\n" + cuda::Convolutions::search_report(*cp));
      }
      log_debug("resnet cuda: " + cuda::Convolutions::describe(*cp));
    }
    log_info("resnet cuda: planned batch " + std::to_string(n) + " at " + std::to_string(h) + "x" +
             std::to_string(w) + " (" + std::to_string(unique.size()) + " distinct convolutions, " +
             std::to_string(fused) + " with the epilogue fused; " + std::to_string(unfused_steps) +
             " epilogue passes per forward; activations " + std::to_string(4 * act_bytes >> 20) +
             " MiB, workspace " + std::to_string(workspace >> 20) + " MiB) in " +
             std::to_string(static_cast<int>(ms)) + " ms");
    return p;
  }

  Status run_step(const Step& s) {
    if (s.kind == Step::kConv) return convs_->run(*s.plan, s.args);
    return cuda::max_pool_nhwc(stream_, precision_, s.x, s.n, s.h, s.w, s.c, 3, 2, 1, s.y);
  }

  // After the trunk: the output kind's tail (layout, or pool + fc).
  Status record_tail(ShapePlan& p, ResNetOutput output) {
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

  // Enqueues the trunk and the tail for `output`.
  Status record(ShapePlan& p, ResNetOutput output) {
    for (const Step& s : p.steps) HILUM_RETURN_IF_ERROR(run_step(s));
    return record_tail(p, output);
  }

  // ---- profile -------------------------------------------------------------

  Result<std::string> profile_report(ShapePlan& p, const Tensor& images, ResNetOutput output) {
    // The whole forward as run() replays it (input conversion included).
    auto forward = [&]() -> Status {
      HILUM_RETURN_IF_ERROR(convert_input(p));
      return execute(p, output);
    };
    HILUM_RETURN_IF_ERROR(forward());
    HILUM_RETURN_IF_ERROR(stream_.synchronize());
    HILUM_ASSIGN_OR_RETURN(float graph_ms, cuda::time_on_stream(stream_, forward, 3, 10));
    auto eager = [&]() -> Status {
      HILUM_RETURN_IF_ERROR(convert_input(p));
      return record(p, output);
    };
    HILUM_ASSIGN_OR_RETURN(float eager_ms, cuda::time_on_stream(stream_, eager, 1, 3));

    // Every part on its own, replayed from CUDA graphs (no host gaps).
    struct Part {
      std::string name, op, shape, epilogue, impl;
      double ms = 0, flops = 0, bytes = 0;
      const cuda::ConvPlan* plan = nullptr;
    };
    std::vector<Part> parts;
    auto timed = [&](const std::function<Status()>& f) {
      return cuda::time_graph_adaptive(stream_, f, 0.3f, 64, 3);
    };
    {
      Part in;
      in.name = "input";
      in.op = "layout";
      in.shape = "n" + std::to_string(p.n) + " " + std::to_string(net_->config.in_channels) + "x" +
                 std::to_string(p.h) + "x" + std::to_string(p.w) + " f32 NCHW -> NHWC " +
                 std::to_string(stem_channels()) + "ch";
      in.bytes = static_cast<double>(p.n * p.h * p.w) * (net_->config.in_channels * 4 + stem_channels() * 2);
      HILUM_ASSIGN_OR_RETURN(float ms, timed([&] { return convert_input(p); }));
      in.ms = ms;
      parts.push_back(in);
    }
    for (const Step& s : p.steps) {
      Part part;
      part.name = s.name;
      if (s.kind == Step::kConv) {
        const cuda::ConvPlan& plan = *s.plan;
        const cuda::ConvShape& cs = s.shape;
        part.op = cuda::Convolutions::fused(plan) ? "conv" : "conv+ep";
        part.shape = cs.describe();
        part.epilogue = cuda::epilogue_name(s.epilogue);
        part.impl = cuda::Convolutions::describe(plan);
        part.impl = part.impl.substr(part.impl.find(": ") + 2);
        part.flops = cs.flops();
        const double out = static_cast<double>(cs.n * cs.out_h() * cs.out_w() * cs.k);
        part.bytes = 2.0 * (static_cast<double>(cs.n * cs.h * cs.w * cs.c) + cs.k * cs.r * cs.s * cs.c + out +
                            (s.epilogue == ConvEpilogue::kBiasResidualRelu ? out : 0));
        part.plan = s.plan;
      } else {
        part.op = "maxpool";
        part.shape = "n" + std::to_string(s.n) + " c" + std::to_string(s.c) + " " + std::to_string(s.h) +
                     "x" + std::to_string(s.w) + " 3x3 s2";
        part.bytes = 2.0 * s.n * s.c * (s.h * s.w + ((s.h + 1) / 2) * ((s.w + 1) / 2));
      }
      HILUM_ASSIGN_OR_RETURN(float ms, timed([&] { return run_step(s); }));
      part.ms = ms;
      parts.push_back(part);
    }
    {
      Part tail;
      tail.name = "head";
      tail.op = output == ResNetOutput::kSpatialFeatures ? "layout"
                : output == ResNetOutput::kFeatures      ? "avgpool"
                                                         : "avgpool+fc";
      HILUM_ASSIGN_OR_RETURN(float ms, timed([&] { return record_tail(p, output); }));
      tail.ms = ms;
      if (output == ResNetOutput::kLogits) {
        tail.flops = 2.0 * p.n * net_->config.feature_channels() * net_->config.num_classes;
      }
      parts.push_back(tail);
    }

    double sum = 0, conv_fused = 0, conv_unfused = 0, other = 0, flops = 0;
    int n_fused = 0, n_unfused = 0;
    std::map<std::string, double> by_stage;
    std::vector<std::string> stage_order;
    for (const Part& part : parts) {
      sum += part.ms;
      flops += part.flops;
      if (part.op == "conv") {
        conv_fused += part.ms;
        ++n_fused;
      } else if (part.op == "conv+ep") {
        conv_unfused += part.ms;
        ++n_unfused;
      } else {
        other += part.ms;
      }
      const std::string stage = part.name.substr(0, part.name.find('.'));
      if (!by_stage.count(stage)) stage_order.push_back(stage);
      by_stage[stage] += part.ms;
    }

    std::ostringstream os;
    os << std::fixed;
    auto device = cuda::device_info();
    os << "# Hilum ResNet profile: " << net_->config.describe() << ", " << name() << ", batch " << p.n
       << " at " << p.h << "x" << p.w << ", output "
       << (output == ResNetOutput::kLogits     ? "logits"
           : output == ResNetOutput::kFeatures ? "features"
                                               : "spatial features")
       << "\n# " << (device.ok() ? device->name : std::string("unknown GPU")) << "; "
       << cuda::Convolutions::library_versions() << "\n";
    os << std::setprecision(3);
    os << "# whole forward (input conversion + CUDA graph replay): " << graph_ms
       << " ms = " << std::setprecision(0) << 1e3 * p.n / graph_ms << " img/s, " << std::setprecision(1)
       << flops / graph_ms / 1e9 << " TFLOP/s" << std::setprecision(3)
       << (p.use_graphs ? "" : " (NO GRAPH: capture failed)")
       << "\n# the same forward launched eagerly (host launch cost shows): " << eager_ms << " ms\n"
       << "# sum of the parts below, each timed alone: " << sum << " ms; planning took "
       << static_cast<int>(p.planning_ms) << " ms\n"
       << "# convolutions with the epilogue inside: " << n_fused << " steps, " << conv_fused
       << " ms; convolutions + epilogue pass: " << n_unfused << " steps, " << conv_unfused
       << " ms; everything else: " << other << " ms\n# by stage:";
    for (const std::string& st : stage_order) os << " " << st << " " << by_stage[st] << " ms";
    os << "\n#\n";
    char line[512];
    std::snprintf(line, sizeof(line), "# %4s %-20s %-8s %9s %6s %8s %7s  %-34s %-18s %s\n", "step", "layer",
                  "op", "ms", "%", "TFLOP/s", "GB/s", "shape", "epilogue", "implementation (planned time)");
    os << line;
    for (size_t i = 0; i < parts.size(); ++i) {
      const Part& part = parts[i];
      const double tflops = part.ms > 0 ? part.flops / part.ms / 1e9 : 0;
      const double gbs = part.ms > 0 ? part.bytes / part.ms / 1e6 : 0;
      std::snprintf(line, sizeof(line), "  %4zu %-20s %-8s %9.4f %5.1f%% %8.1f %7.0f  %-34s %-18s %s\n", i,
                    part.name.c_str(), part.op.c_str(), part.ms, 100.0 * part.ms / sum, tflops, gbs,
                    part.shape.c_str(), part.epilogue.c_str(), part.impl.c_str());
      os << line;
    }

    // The planner's search for each distinct convolution, most time first.
    struct Use {
      int count = 0;
      double ms = 0;
    };
    std::map<const cuda::ConvPlan*, Use> uses;
    for (const Part& part : parts) {
      if (!part.plan) continue;
      uses[part.plan].count++;
      uses[part.plan].ms += part.ms;
    }
    std::vector<std::pair<const cuda::ConvPlan*, Use>> ranked(uses.begin(), uses.end());
    std::sort(ranked.begin(), ranked.end(),
              [](const auto& a, const auto& b) { return a.second.ms > b.second.ms; });
    os << "#\n# distinct convolutions, most total time first: the candidates the planner tried "
          "(time from a CUDA graph; * = chosen)\n";
    for (const auto& [plan, use] : ranked) {
      os << "# " << use.count << " step(s), " << use.ms
         << " ms in total: " << cuda::Convolutions::search_report(*plan);
    }
    return os.str();
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
  std::vector<std::string> block_names_;  // "layer3.12", one per block
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
