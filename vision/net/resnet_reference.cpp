// The plain C++ CPU engine (always built): NCHW float32, im2col + sgemm
// convolutions with fused bias/residual/ReLU (model/conv2d.h), on the
// hilum::parallel_for pool.
#include <vector>

#include "model/conv2d.h"
#include "vision/net/resnet_engine.h"

namespace hilum {
namespace {

struct Activation {
  std::vector<float> data;
  int64_t channels = 0, h = 0, w = 0;
};

void run_conv(const FoldedConv& c, int64_t batch, const Activation& x, const float* residual, bool relu,
              Activation& y) {
  Conv2dGeometry g;
  g.batch = batch;
  g.in_channels = c.in_channels;
  g.in_h = x.h;
  g.in_w = x.w;
  g.out_channels = c.out_channels;
  g.kernel_h = g.kernel_w = c.kernel;
  g.stride = c.stride;
  g.pad = c.pad;
  y.channels = c.out_channels;
  y.h = g.out_h();
  y.w = g.out_w();
  y.data.resize(static_cast<size_t>(batch * y.channels * y.h * y.w));
  Conv2dEpilogue e;
  e.bias = c.bias.data();
  e.residual = residual;
  e.relu = relu;
  conv2d_nchw(g, x.data.data(), c.weight.data(), e, y.data.data());
}

class ReferenceEngine final : public ResNetEngine {
 public:
  explicit ReferenceEngine(std::shared_ptr<const FoldedResNet> net) : net_(std::move(net)) {}
  std::string name() const override { return "cpu-reference"; }

  Status run(const Tensor& images, ResNetOutput output, Tensor& out) override {
    if (images.device() != Device::kCPU || out.device() != Device::kCPU) {
      return bad_input("the CPU engine needs images and output in CPU memory");
    }
    const int64_t n = images.dim(0);
    Activation x;
    x.channels = images.dim(1);
    x.h = images.dim(2);
    x.w = images.dim(3);
    x.data.assign(images.data<float>(), images.data<float>() + images.numel());

    Activation stem, t1, t2, shortcut, result;
    run_conv(net_->stem, n, x, nullptr, true, stem);
    x.channels = stem.channels;
    x.h = (stem.h + 2 - 3) / 2 + 1;
    x.w = (stem.w + 2 - 3) / 2 + 1;
    x.data.resize(static_cast<size_t>(n * x.channels * x.h * x.w));
    max_pool2d_nchw(n, stem.channels, stem.h, stem.w, 3, 2, 1, stem.data.data(), x.data.data());

    for (const FoldedBlock& b : net_->blocks) {
      const float* residual = x.data.data();
      if (b.has_downsample) {
        run_conv(b.downsample, n, x, nullptr, false, shortcut);
        residual = shortcut.data.data();
      }
      run_conv(b.conv1, n, x, nullptr, true, t1);
      if (b.has_conv3) {
        run_conv(b.conv2, n, t1, nullptr, true, t2);
        run_conv(b.conv3, n, t2, residual, true, result);
      } else {
        run_conv(b.conv2, n, t1, residual, true, result);
      }
      std::swap(x, result);
    }

    const int64_t c = x.channels;
    if (output == ResNetOutput::kSpatialFeatures) {
      std::copy(x.data.begin(), x.data.end(), out.data<float>());
      return Status::Ok();
    }
    if (output == ResNetOutput::kFeatures) {
      global_avg_pool_nchw(n, c, x.h, x.w, x.data.data(), out.data<float>());
      return Status::Ok();
    }
    std::vector<float> features(static_cast<size_t>(n * c));
    global_avg_pool_nchw(n, c, x.h, x.w, x.data.data(), features.data());
    linear_f32(n, c, net_->config.num_classes, features.data(), net_->fc_weight.data(), net_->fc_bias.data(),
               out.data<float>());
    return Status::Ok();
  }

 private:
  std::shared_ptr<const FoldedResNet> net_;
};

}  // namespace

std::unique_ptr<ResNetEngine> make_reference_engine(std::shared_ptr<const FoldedResNet> net) {
  return std::make_unique<ReferenceEngine>(std::move(net));
}

}  // namespace hilum
