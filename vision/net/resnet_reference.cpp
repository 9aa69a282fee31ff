// The plain C++ CPU engine (always built): float32, im2col + sgemm
// convolutions with fused bias/residual/ReLU (model/conv2d.h) on the
// hilum::parallel_for pool. The images arrive as NCHW; inside, activations are
// kept channel-major ([C, N, H, W]) so that each convolution is one GEMM over
// the whole batch and 1x1 convolutions need no im2col. Buffers persist across
// calls and grow to the largest shape seen.
#include <algorithm>
#include <vector>

#include "model/conv2d.h"
#include "model/parallel.h"
#include "vision/net/resnet_engine.h"

namespace hilum {
namespace {

struct Activation {
  std::vector<float>* data = nullptr;
  int64_t channels = 0, h = 0, w = 0;
  float* ptr() const { return data->data(); }
};

// [a, b, plane] -> [b, a, plane]
void swap_leading(const float* src, int64_t a, int64_t b, int64_t plane, float* dst) {
  parallel_for(a * b, std::max<int64_t>(1, 4096 / std::max<int64_t>(plane, 1)), [&](int64_t q0, int64_t q1) {
    for (int64_t q = q0; q < q1; ++q) {
      const int64_t i = q / b, j = q % b;
      std::copy(src + q * plane, src + (q + 1) * plane, dst + (j * a + i) * plane);
    }
  });
}

class ReferenceEngine final : public ResNetEngine {
 public:
  explicit ReferenceEngine(std::shared_ptr<const FoldedResNet> net) : net_(std::move(net)) {}
  std::string name() const override { return "cpu-reference"; }

  Status run(const Tensor& images, ResNetOutput output, Tensor& out) override {
    if (images.device() != Device::kCPU || out.device() != Device::kCPU) {
      return bad_input("the CPU engine needs images and output in CPU memory");
    }
    n_ = images.dim(0);
    Activation x{&buf_[0], images.dim(1), images.dim(2), images.dim(3)};
    resize(x);
    swap_leading(images.data<float>(), n_, x.channels, x.h * x.w, x.ptr());

    Activation stem = conv(net_->stem, x, nullptr, true, 1);
    Activation pooled{&buf_[0], stem.channels, (stem.h + 2 - 3) / 2 + 1, (stem.w + 2 - 3) / 2 + 1};
    resize(pooled);
    // Max pooling is per plane, so [C, N] planes pool like [N, C] ones.
    max_pool2d_nchw(1, stem.channels * n_, stem.h, stem.w, 3, 2, 1, stem.ptr(), pooled.ptr());
    x = pooled;
    int x_buf = 0;

    for (const FoldedBlock& b : net_->blocks) {
      // Buffers: x, t1, t2, shortcut and the output rotate through five slots.
      int used[4] = {x_buf, -1, -1, -1};
      auto take = [&](int k) {
        for (int s = 0; s < 5; ++s) {
          if (std::find(used, used + 4, s) == used + 4) {
            used[k] = s;
            return s;
          }
        }
        return -1;
      };
      const float* residual = x.ptr();
      int res_buf = x_buf;
      if (b.has_downsample) {
        res_buf = take(1);
        residual = conv(b.downsample, x, nullptr, false, res_buf).ptr();
      }
      Activation t1 = conv(b.conv1, x, nullptr, true, take(2));
      Activation branch = t1;
      if (b.has_conv3) {
        int t2_buf = take(3);
        branch = conv(b.conv2, t1, nullptr, true, t2_buf);
      }
      // The output may reuse the block input's slot once nothing reads it.
      int out_buf = -1;
      for (int s = 0; s < 5 && out_buf < 0; ++s) {
        const bool busy = s == res_buf || s == used[2] || s == used[3] || (s == x_buf && !b.has_downsample);
        if (!busy && s != x_buf) out_buf = s;
      }
      x = conv(b.last(), branch, residual, true, out_buf);
      x_buf = out_buf;
    }

    const int64_t c = x.channels, plane = x.h * x.w;
    if (output == ResNetOutput::kSpatialFeatures) {
      swap_leading(x.ptr(), c, n_, plane, out.data<float>());
      return Status::Ok();
    }
    std::vector<float> pooled_cn(static_cast<size_t>(c * n_));
    global_avg_pool_nchw(1, c * n_, x.h, x.w, x.ptr(), pooled_cn.data());
    std::vector<float> features(static_cast<size_t>(n_ * c));
    swap_leading(pooled_cn.data(), c, n_, 1, features.data());
    if (output == ResNetOutput::kFeatures) {
      std::copy(features.begin(), features.end(), out.data<float>());
      return Status::Ok();
    }
    linear_f32(n_, c, net_->config.num_classes, features.data(), net_->fc_weight.data(), net_->fc_bias.data(),
               out.data<float>());
    return Status::Ok();
  }

 private:
  void resize(const Activation& a) {
    const size_t need = static_cast<size_t>(a.channels * n_ * a.h * a.w);
    if (a.data->size() < need) a.data->resize(need);
  }

  Activation conv(const FoldedConv& c, const Activation& x, const float* residual, bool relu, int slot) {
    Conv2dGeometry g;
    g.batch = n_;
    g.in_channels = c.in_channels;
    g.in_h = x.h;
    g.in_w = x.w;
    g.out_channels = c.out_channels;
    g.kernel_h = g.kernel_w = c.kernel;
    g.stride = c.stride;
    g.pad = c.pad;
    Activation y{&buf_[slot], c.out_channels, g.out_h(), g.out_w()};
    resize(y);
    Conv2dEpilogue e;
    e.bias = c.bias.data();
    e.residual = residual;
    e.relu = relu;
    conv2d_cnhw(g, x.ptr(), c.weight.data(), e, y.ptr());
    return y;
  }

  std::shared_ptr<const FoldedResNet> net_;
  int64_t n_ = 0;
  std::vector<float> buf_[5];
};

}  // namespace

std::unique_ptr<ResNetEngine> make_reference_engine(std::shared_ptr<const FoldedResNet> net) {
  return std::make_unique<ReferenceEngine>(std::move(net));
}

}  // namespace hilum
