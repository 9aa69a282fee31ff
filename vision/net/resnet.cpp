#include "vision/net/resnet.h"

#include <cmath>

#include "cuda/device.h"
#include "vision/net/resnet_engine.h"

namespace hilum {
namespace {

constexpr double kBatchNormEps = 1e-5;  // torchvision's BatchNorm2d default

Result<Tensor> get_f32(const SafetensorsFile& f, const std::string& name) {
  HILUM_ASSIGN_OR_RETURN(Tensor t, f.get(name));
  return t.to_dtype(DType::kF32);
}

// conv `name` followed by batch norm `bn`, folded: w' = w * s, b' = beta - mean * s
// with s = gamma / sqrt(var + eps) (computed in double).
Result<FoldedConv> fold(const SafetensorsFile& f, const std::string& conv, const std::string& bn,
                        int64_t stride, int64_t pad) {
  HILUM_ASSIGN_OR_RETURN(Tensor w, get_f32(f, conv + ".weight"));
  HILUM_ASSIGN_OR_RETURN(Tensor gamma, get_f32(f, bn + ".weight"));
  HILUM_ASSIGN_OR_RETURN(Tensor beta, get_f32(f, bn + ".bias"));
  HILUM_ASSIGN_OR_RETURN(Tensor mean, get_f32(f, bn + ".running_mean"));
  HILUM_ASSIGN_OR_RETURN(Tensor var, get_f32(f, bn + ".running_var"));
  FoldedConv c;
  c.out_channels = w.dim(0);
  c.in_channels = w.dim(1);
  c.kernel = w.dim(2);
  c.stride = stride;
  c.pad = pad;
  const int64_t per_out = c.in_channels * c.kernel * c.kernel;
  c.weight.resize(static_cast<size_t>(c.out_channels * per_out));
  c.bias.resize(static_cast<size_t>(c.out_channels));
  const float* wp = w.data<float>();
  for (int64_t o = 0; o < c.out_channels; ++o) {
    const double v = var.data<float>()[o];
    if (!(v + kBatchNormEps > 0)) {
      return bad_input(f.path().string() + ": tensor '" + bn +
                       ".running_var' has a negative or NaN entry at " + std::to_string(o));
    }
    const double s = gamma.data<float>()[o] / std::sqrt(v + kBatchNormEps);
    for (int64_t i = 0; i < per_out; ++i) {
      c.weight[o * per_out + i] = static_cast<float>(wp[o * per_out + i] * s);
    }
    c.bias[o] = static_cast<float>(beta.data<float>()[o] - mean.data<float>()[o] * s);
  }
  return c;
}

Result<std::shared_ptr<const FoldedResNet>> fold_network(const SafetensorsFile& f,
                                                         const ResNetConfig& config) {
  auto net = std::make_shared<FoldedResNet>();
  net->config = config;
  HILUM_ASSIGN_OR_RETURN(net->stem, fold(f, "conv1", "bn1", 2, 3));
  int64_t inplanes = config.width;
  for (int stage = 0; stage < 4; ++stage) {
    const int64_t planes = config.width << stage;
    const int64_t out_channels = planes * config.expansion();
    for (int b = 0; b < config.layers[stage]; ++b) {
      const std::string p = "layer" + std::to_string(stage + 1) + "." + std::to_string(b) + ".";
      const int64_t stride = (stage > 0 && b == 0) ? 2 : 1;
      FoldedBlock block;
      if (config.block == ResNetBlock::kBasic) {
        HILUM_ASSIGN_OR_RETURN(block.conv1, fold(f, p + "conv1", p + "bn1", stride, 1));
        HILUM_ASSIGN_OR_RETURN(block.conv2, fold(f, p + "conv2", p + "bn2", 1, 1));
      } else {
        HILUM_ASSIGN_OR_RETURN(block.conv1, fold(f, p + "conv1", p + "bn1", 1, 0));
        HILUM_ASSIGN_OR_RETURN(block.conv2, fold(f, p + "conv2", p + "bn2", stride, 1));
        HILUM_ASSIGN_OR_RETURN(block.conv3, fold(f, p + "conv3", p + "bn3", 1, 0));
        block.has_conv3 = true;
      }
      if (b == 0 && (stride != 1 || inplanes != out_channels)) {
        HILUM_ASSIGN_OR_RETURN(block.downsample, fold(f, p + "downsample.0", p + "downsample.1", stride, 0));
        block.has_downsample = true;
      }
      net->blocks.push_back(std::move(block));
      inplanes = out_channels;
    }
  }
  if (config.num_classes > 0) {
    HILUM_ASSIGN_OR_RETURN(Tensor w, get_f32(f, "fc.weight"));
    HILUM_ASSIGN_OR_RETURN(Tensor b, get_f32(f, "fc.bias"));
    net->fc_weight.assign(w.data<float>(), w.data<float>() + w.numel());
    net->fc_bias.assign(b.data<float>(), b.data<float>() + b.numel());
  }
  return std::shared_ptr<const FoldedResNet>(std::move(net));
}

}  // namespace

int64_t resnet_output_side(int64_t side) {
  side = (side + 2 * 3 - 7) / 2 + 1;                                          // stem conv
  side = (side + 2 * 1 - 3) / 2 + 1;                                          // max pool
  for (int stage = 1; stage < 4; ++stage) side = (side + 2 * 1 - 3) / 2 + 1;  // stride-2 3x3 (= 1x1 stride 2)
  return side;
}

bool resnet_cuda_available() { return cuda::built_with_cuda() && cuda::device_count() > 0; }

Result<std::unique_ptr<ResNet>> ResNet::load(const std::filesystem::path& weights,
                                             const std::optional<ResNetConfig>& config,
                                             const ResNetOptions& options) {
  HILUM_ASSIGN_OR_RETURN(SafetensorsFile f, SafetensorsFile::open(weights));
  return load(f, config, options);
}

Result<std::unique_ptr<ResNet>> ResNet::load(const SafetensorsFile& f,
                                             const std::optional<ResNetConfig>& config,
                                             const ResNetOptions& options) {
  // Check the device/dtype pairing before the (possibly long) weight folding.
  if (options.device == Device::kCPU && options.dtype != DType::kF32) {
    return unsupported("the CPU engines run f32 only (got --dtype " + std::string(dtype_name(options.dtype)) +
                       "); use f16 or bf16 with the CUDA device");
  }
  if (options.device == Device::kCUDA) {
    if (options.dtype != DType::kF16 && options.dtype != DType::kBF16) {
      return unsupported("the CUDA engine runs f16 or bf16 (got " + std::string(dtype_name(options.dtype)) +
                         ")");
    }
    if (!resnet_cuda_available())
      return unsupported("CUDA device requested but none is usable: " + cuda::unavailable_reason());
  }

  ResNetConfig cfg;
  if (config) {
    cfg = *config;
  } else {
    HILUM_ASSIGN_OR_RETURN(cfg, infer_resnet_config(f));
  }
  HILUM_RETURN_IF_ERROR(check_resnet_tensors(cfg, f));
  HILUM_ASSIGN_OR_RETURN(auto net, fold_network(f, cfg));

  std::unique_ptr<ResNet> r(new ResNet());
  r->net_ = net;
  if (options.device == Device::kCUDA) {
    HILUM_ASSIGN_OR_RETURN(r->engine_, make_cuda_engine(net, options.dtype));
  } else if (options.cpu_engine == CpuEngine::kReference) {
    r->engine_ = make_reference_engine(net);
  } else {
    auto e = make_onednn_engine(net);
    if (e.ok()) {
      r->engine_ = std::move(e).value();
    } else if (options.cpu_engine == CpuEngine::kOneDnn) {
      return e.error();
    } else {
      r->engine_ = make_reference_engine(net);
    }
  }
  return r;
}

ResNet::~ResNet() = default;

const ResNetConfig& ResNet::config() const { return net_->config; }

std::string ResNet::engine_name() const { return engine_->name(); }

Result<Shape> ResNet::output_shape(const Shape& images, ResNetOutput output) const {
  const ResNetConfig& c = net_->config;
  if (images.size() != 4) {
    return bad_input("images must have shape (N, " + std::to_string(c.in_channels) + ", H, W), got " +
                     shape_string(images));
  }
  switch (output) {
    case ResNetOutput::kLogits:
      return Shape{images[0], c.num_classes};
    case ResNetOutput::kFeatures:
      return Shape{images[0], c.feature_channels()};
    case ResNetOutput::kSpatialFeatures:
      return Shape{images[0], c.feature_channels(), resnet_output_side(images[2]),
                   resnet_output_side(images[3])};
  }
  return internal_error("unknown ResNetOutput");
}

// Validates the images and returns them as float32.
Result<Tensor> ResNet::checked_images(const Tensor& images, ResNetOutput output) const {
  const ResNetConfig& c = net_->config;
  if (!images.defined() || images.rank() != 4) {
    return bad_input("images must have shape (N, " + std::to_string(c.in_channels) + ", H, W), got " +
                     (images.defined() ? shape_string(images.shape()) : std::string("nothing")));
  }
  if (images.dim(1) != c.in_channels) {
    return bad_input("images have " + std::to_string(images.dim(1)) + " channels " +
                     shape_string(images.shape()) + ", the network expects " + std::to_string(c.in_channels));
  }
  if (images.dim(0) < 1 || images.dim(2) < 1 || images.dim(3) < 1) {
    return bad_input("images have an empty dimension " + shape_string(images.shape()));
  }
  if (!dtype_is_float(images.dtype())) {
    return bad_input("images must be floating point, got " + std::string(dtype_name(images.dtype())));
  }
  if (output == ResNetOutput::kLogits && c.num_classes == 0) {
    return bad_input("this network has no fc layer (num_classes 0): ask for features instead of logits");
  }
  if (images.dtype() == DType::kF32) return images;
  if (images.device() != Device::kCPU) {
    return bad_input("CUDA images must be f32, got " + std::string(dtype_name(images.dtype())));
  }
  return images.to_dtype(DType::kF32);
}

Result<Tensor> ResNet::forward(const Tensor& images, ResNetOutput output) {
  HILUM_ASSIGN_OR_RETURN(Tensor x, checked_images(images, output));
  HILUM_ASSIGN_OR_RETURN(Shape shape, output_shape(x.shape(), output));
  HILUM_ASSIGN_OR_RETURN(Tensor out, Tensor::empty_on(shape, DType::kF32, x.device()));
  std::lock_guard<std::mutex> lock(mu_);
  HILUM_RETURN_IF_ERROR(engine_->run(x, output, out));
  return out;
}

Result<std::string> ResNet::profile(const Tensor& images, ResNetOutput output) {
  HILUM_ASSIGN_OR_RETURN(Tensor x, checked_images(images, output));
  std::lock_guard<std::mutex> lock(mu_);
  return engine_->profile(x, output);
}

Status ResNet::forward_into(const Tensor& images, ResNetOutput output, Tensor& out) {
  HILUM_ASSIGN_OR_RETURN(Tensor x, checked_images(images, output));
  HILUM_ASSIGN_OR_RETURN(Shape shape, output_shape(x.shape(), output));
  if (!out.defined() || out.dtype() != DType::kF32 || out.shape() != shape) {
    return bad_input("output tensor must be f32 " + shape_string(shape) + ", got " +
                     (out.defined() ? out.describe() : std::string("nothing")));
  }
  std::lock_guard<std::mutex> lock(mu_);
  return engine_->run(x, output, out);
}

}  // namespace hilum
