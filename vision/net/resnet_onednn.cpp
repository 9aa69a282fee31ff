// The oneDNN CPU engine: fp32 convolutions with bias, residual (sum post-op)
// and ReLU (eltwise post-op) fused, in whatever blocked layout oneDNN prefers
// for this CPU (format_tag::any), with reorders inserted only where two
// neighbours disagree. One plan (primitives + buffer slots) per input shape.
#include "vision/net/resnet_engine.h"

#if HILUM_HAVE_ONEDNN

#include <algorithm>
#include <cstdlib>
#include <dnnl.hpp>
#include <map>
#include <tuple>
#include <unordered_map>

#include "model/conv2d.h"

namespace hilum {
namespace {

using dnnl::memory;
using Dims = memory::dims;

// Buffers are shared between values whose lifetimes do not overlap: a value
// takes a free slot when it is produced and gives it back after its last use.
class SlotPool {
 public:
  int acquire(size_t bytes) {
    for (size_t i = 0; i < busy_.size(); ++i) {
      if (!busy_[i]) {
        busy_[i] = true;
        size_[i] = std::max(size_[i], bytes);
        return static_cast<int>(i);
      }
    }
    busy_.push_back(true);
    size_.push_back(bytes);
    return static_cast<int>(busy_.size() - 1);
  }
  void grow(int slot, size_t bytes) { size_[slot] = std::max(size_[slot], bytes); }
  void release(int slot) { busy_[slot] = false; }
  const std::vector<size_t>& sizes() const { return size_; }

 private:
  std::vector<bool> busy_;
  std::vector<size_t> size_;
};

struct Value {
  memory mem;
  int slot = -1;  // -1: memory owned elsewhere (the caller's input)
};

struct Step {
  dnnl::primitive primitive;
  std::unordered_map<int, memory> args;
};

struct Plan {
  std::vector<Step> steps;
  memory input;   // user NCHW f32, bound to the caller's tensor at run time
  memory output;  // the last stage as NCHW f32, in its own buffer
  int64_t channels = 0, out_h = 0, out_w = 0;
  std::vector<std::pair<memory, int>> slot_bindings;
  std::vector<void*> buffers;
  ~Plan() {
    for (void* b : buffers) std::free(b);
  }
};

class OneDnnEngine final : public ResNetEngine {
 public:
  explicit OneDnnEngine(std::shared_ptr<const FoldedResNet> net)
      : net_(std::move(net)), engine_(dnnl::engine::kind::cpu, 0), stream_(engine_) {}
  std::string name() const override { return "cpu-onednn"; }

  Status run(const Tensor& images, ResNetOutput output, Tensor& out) override {
    if (images.device() != Device::kCPU || out.device() != Device::kCPU) {
      return bad_input("the CPU engine needs images and output in CPU memory");
    }
    try {
      const auto key = std::make_tuple(images.dim(0), images.dim(2), images.dim(3));
      auto it = plans_.find(key);
      if (it == plans_.end()) {
        if (plans_.size() >= kMaxPlans) plans_.clear();
        it = plans_.emplace(key, build(images.dim(0), images.dim(2), images.dim(3))).first;
      }
      Plan& plan = *it->second;
      plan.input.set_data_handle(images.raw());
      for (Step& s : plan.steps) s.primitive.execute(stream_, s.args);
      stream_.wait();
      finish(plan, images.dim(0), output, out);
      return Status::Ok();
    } catch (const dnnl::error& e) {
      return internal_error(std::string("oneDNN: ") + e.what());
    }
  }

 private:
  static constexpr size_t kMaxPlans = 8;

  void finish(const Plan& plan, int64_t n, ResNetOutput output, Tensor& out) {
    const float* spatial = static_cast<const float*>(plan.output.get_data_handle());
    const int64_t c = plan.channels;
    if (output == ResNetOutput::kSpatialFeatures) {
      std::copy(spatial, spatial + out.numel(), out.data<float>());
      return;
    }
    if (output == ResNetOutput::kFeatures) {
      global_avg_pool_nchw(n, c, plan.out_h, plan.out_w, spatial, out.data<float>());
      return;
    }
    std::vector<float> features(static_cast<size_t>(n * c));
    global_avg_pool_nchw(n, c, plan.out_h, plan.out_w, spatial, features.data());
    linear_f32(n, c, net_->config.num_classes, features.data(), net_->fc_weight.data(), net_->fc_bias.data(),
               out.data<float>());
  }

  // A memory in a pool slot; bound to its buffer once the plan is complete.
  Value new_value(Plan& plan, SlotPool& slots, const memory::desc& md) {
    Value v;
    v.slot = slots.acquire(md.get_size());
    v.mem = memory(md, engine_, DNNL_MEMORY_NONE);
    plan.slot_bindings.emplace_back(v.mem, v.slot);
    return v;
  }

  void release(SlotPool& slots, const Value& v) {
    if (v.slot >= 0) slots.release(v.slot);
  }

  // `v` in layout `md`: itself, or a reordered copy (the original is released
  // when `consume` is set).
  Value as_layout(Plan& plan, SlotPool& slots, const Value& v, const memory::desc& md, bool consume) {
    if (v.mem.get_desc() == md) return v;
    Value out = new_value(plan, slots, md);
    plan.steps.push_back({dnnl::reorder(v.mem, out.mem), {{DNNL_ARG_FROM, v.mem}, {DNNL_ARG_TO, out.mem}}});
    if (consume) release(slots, v);
    return out;
  }

  memory weights_for(const FoldedConv& c, const memory::desc& md) {
    auto& cached = weights_[&c];
    for (auto& [desc, mem] : cached) {
      if (desc == md) return mem;
    }
    memory::desc user_md({c.out_channels, c.in_channels, c.kernel, c.kernel}, memory::data_type::f32,
                         memory::format_tag::oihw);
    memory user(user_md, engine_, const_cast<float*>(c.weight.data()));
    memory packed(md, engine_);
    dnnl::reorder(user, packed).execute(stream_, user, packed);
    stream_.wait();
    cached.emplace_back(md, packed);
    return packed;
  }

  // conv(x) + bias [+ residual] [relu]. With a residual, the result is
  // accumulated into the residual's buffer (sum post-op), which it takes over.
  Value conv(Plan& plan, SlotPool& slots, const FoldedConv& c, const Value& x, int64_t n, int64_t h,
             int64_t w, const Value* residual, bool relu, bool consume_x, int64_t& out_h, int64_t& out_w) {
    out_h = (h + 2 * c.pad - c.kernel) / c.stride + 1;
    out_w = (w + 2 * c.pad - c.kernel) / c.stride + 1;
    const auto f32 = memory::data_type::f32;
    memory::desc src_md({n, c.in_channels, h, w}, f32, memory::format_tag::any);
    memory::desc w_md({c.out_channels, c.in_channels, c.kernel, c.kernel}, f32, memory::format_tag::any);
    memory::desc b_md({c.out_channels}, f32, memory::format_tag::a);
    memory::desc dst_md({n, c.out_channels, out_h, out_w}, f32, memory::format_tag::any);
    // A residual pins the output layout to its own, so that no reorder is needed.
    if (residual) dst_md = residual->mem.get_desc();
    dnnl::post_ops ops;
    if (residual) ops.append_sum(1.0f);
#if DNNL_VERSION_MAJOR >= 3
    if (relu) ops.append_eltwise(dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
#else
    if (relu) ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
#endif
    dnnl::primitive_attr attr;
    attr.set_post_ops(ops);
    const Dims strides = {c.stride, c.stride}, pad = {c.pad, c.pad};
#if DNNL_VERSION_MAJOR >= 3
    dnnl::convolution_forward::primitive_desc pd(engine_, dnnl::prop_kind::forward_inference,
                                                 dnnl::algorithm::convolution_direct, src_md, w_md, b_md,
                                                 dst_md, strides, pad, pad, attr);
#else
    dnnl::convolution_forward::desc d(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
                                      src_md, w_md, b_md, dst_md, strides, pad, pad);
    dnnl::convolution_forward::primitive_desc pd(d, attr, engine_);
#endif
    Value src = as_layout(plan, slots, x, pd.src_desc(), false);
    memory weights = weights_for(c, pd.weights_desc());
    memory bias(b_md, engine_, const_cast<float*>(c.bias.data()));
    Value dst;
    if (residual) {
      dst = *residual;  // accumulate in place: dst_md was pinned to its layout
    } else {
      dst = new_value(plan, slots, pd.dst_desc());
    }
    plan.steps.push_back({dnnl::convolution_forward(pd),
                          {{DNNL_ARG_SRC, src.mem},
                           {DNNL_ARG_WEIGHTS, weights},
                           {DNNL_ARG_BIAS, bias},
                           {DNNL_ARG_DST, dst.mem}}});
    if (src.slot != x.slot) release(slots, src);
    if (consume_x) release(slots, x);
    return dst;
  }

  std::unique_ptr<Plan> build(int64_t n, int64_t h, int64_t w) {
    auto plan = std::make_unique<Plan>();
    SlotPool slots;
    const auto f32 = memory::data_type::f32;
    const ResNetConfig& cfg = net_->config;
    plan->input =
        memory({{n, cfg.in_channels, h, w}, f32, memory::format_tag::nchw}, engine_, DNNL_MEMORY_NONE);
    Value x{plan->input, -1};

    int64_t oh, ow;
    Value stem = conv(*plan, slots, net_->stem, x, n, h, w, nullptr, true, false, oh, ow);
    h = oh;
    w = ow;
    const int64_t ph = (h + 2 - 3) / 2 + 1, pw = (w + 2 - 3) / 2 + 1;
    memory::desc pool_dst({n, net_->stem.out_channels, ph, pw}, f32, memory::format_tag::any);
#if DNNL_VERSION_MAJOR >= 3
    dnnl::pooling_forward::primitive_desc pool_pd(engine_, dnnl::prop_kind::forward_inference,
                                                  dnnl::algorithm::pooling_max, stem.mem.get_desc(), pool_dst,
                                                  {2, 2}, {3, 3}, {0, 0}, {1, 1}, {1, 1});
#else
    dnnl::pooling_forward::desc pool_d(dnnl::prop_kind::forward_inference, dnnl::algorithm::pooling_max,
                                       stem.mem.get_desc(), pool_dst, {2, 2}, {3, 3}, {1, 1}, {1, 1});
    dnnl::pooling_forward::primitive_desc pool_pd(pool_d, engine_);
#endif
    Value pooled = new_value(*plan, slots, pool_pd.dst_desc());
    plan->steps.push_back(
        {dnnl::pooling_forward(pool_pd), {{DNNL_ARG_SRC, stem.mem}, {DNNL_ARG_DST, pooled.mem}}});
    release(slots, stem);
    x = pooled;
    h = ph;
    w = pw;

    for (const FoldedBlock& b : net_->blocks) {
      int64_t bh, bw;
      Value shortcut = x;
      if (b.has_downsample) {
        shortcut = conv(*plan, slots, b.downsample, x, n, h, w, nullptr, false, false, bh, bw);
      }
      Value t1 = conv(*plan, slots, b.conv1, x, n, h, w, nullptr, true, false, oh, ow);
      // Without a downsample the block input is the residual and is overwritten
      // by the sum; with one, the input dies here.
      if (b.has_downsample) release(slots, x);
      const FoldedConv& last = b.last();
      Value branch = t1;
      int64_t bh2 = oh, bw2 = ow;
      if (b.has_conv3) {
        branch = conv(*plan, slots, b.conv2, t1, n, oh, ow, nullptr, true, true, bh2, bw2);
      }
      // The last conv accumulates into the shortcut's buffer, in its layout.
      Value out = conv(*plan, slots, last, branch, n, bh2, bw2, &shortcut, true, true, oh, ow);
      x = out;
      h = oh;
      w = ow;
    }

    plan->channels = net_->config.feature_channels();
    plan->out_h = h;
    plan->out_w = w;
    memory::desc out_md({n, plan->channels, h, w}, f32, memory::format_tag::nchw);
    Value out = new_value(*plan, slots, out_md);
    plan->steps.push_back({dnnl::reorder(x.mem, out.mem), {{DNNL_ARG_FROM, x.mem}, {DNNL_ARG_TO, out.mem}}});
    plan->output = out.mem;

    // Allocate the slots and bind every memory to its buffer.
    for (size_t bytes : slots.sizes()) {
      void* p = std::aligned_alloc(64, std::max<size_t>(64, (bytes + 63) / 64 * 64));
      if (!p) throw std::bad_alloc();
      plan->buffers.push_back(p);
    }
    for (auto& [mem, slot] : plan->slot_bindings) mem.set_data_handle(plan->buffers[slot]);
    return plan;
  }

  std::shared_ptr<const FoldedResNet> net_;
  dnnl::engine engine_;
  dnnl::stream stream_;
  std::map<std::tuple<int64_t, int64_t, int64_t>, std::unique_ptr<Plan>> plans_;
  std::unordered_map<const FoldedConv*, std::vector<std::pair<memory::desc, memory>>> weights_;
};

}  // namespace

Result<std::unique_ptr<ResNetEngine>> make_onednn_engine(std::shared_ptr<const FoldedResNet> net) {
  try {
    return std::unique_ptr<ResNetEngine>(new OneDnnEngine(std::move(net)));
  } catch (const dnnl::error& e) {
    return internal_error(std::string("oneDNN: ") + e.what());
  }
}

}  // namespace hilum

#else  // !HILUM_HAVE_ONEDNN

namespace hilum {
Result<std::unique_ptr<ResNetEngine>> make_onednn_engine(std::shared_ptr<const FoldedResNet>) {
  return unsupported("this build has no oneDNN (the plain C++ CPU engine is used instead)");
}
}  // namespace hilum

#endif
