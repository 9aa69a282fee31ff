// Internal to hilum_vision_net: the folded network every engine runs, and the
// engine interface.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "model/result.h"
#include "model/tensor.h"
#include "vision/net/resnet.h"
#include "vision/net/resnet_config.h"

namespace hilum {

// A convolution with its batch norm folded in: y = conv(x, weight) + bias.
struct FoldedConv {
  int64_t in_channels = 0, out_channels = 0, kernel = 1, stride = 1, pad = 0;
  std::vector<float> weight;  // [out, in, kernel, kernel]
  std::vector<float> bias;    // [out]
};

// One residual block: out = relu(main(x) + shortcut(x)), where main is
// conv1 -> relu -> conv2 (basic) or conv1 -> relu -> conv2 -> relu -> conv3
// (bottleneck), and shortcut is x or the downsample conv.
struct FoldedBlock {
  FoldedConv conv1, conv2, conv3;  // conv3 unused (out_channels 0) in a basic block
  bool has_conv3 = false;
  bool has_downsample = false;
  FoldedConv downsample;
  // The convolution whose output is added to the shortcut.
  const FoldedConv& last() const { return has_conv3 ? conv3 : conv2; }
};

struct FoldedResNet {
  ResNetConfig config;
  FoldedConv stem;  // 7x7 stride 2 pad 3, followed by ReLU and 3x3/2 max pool
  std::vector<FoldedBlock> blocks;
  std::vector<float> fc_weight;  // [num_classes, feature_channels]
  std::vector<float> fc_bias;    // [num_classes]
};

class ResNetEngine {
 public:
  virtual ~ResNetEngine() = default;
  virtual std::string name() const = 0;
  // `images` is float32 (N, C, H, W), validated; `out` is float32 with
  // ResNet::output_shape(). CPU engines take both in CPU memory; the CUDA
  // engine takes either device for each.
  virtual Status run(const Tensor& images, ResNetOutput output, Tensor& out) = 0;
  // ResNet::profile(); engines without one say so.
  virtual Result<std::string> profile(const Tensor& images, ResNetOutput output) {
    return unsupported("the " + name() + " engine has no layer-by-layer profile (the CUDA engine has)");
  }
};

// Output spatial size of the stem + max pool + stages for an input side.
int64_t resnet_output_side(int64_t side);

std::unique_ptr<ResNetEngine> make_reference_engine(std::shared_ptr<const FoldedResNet> net);
// kUnsupported when the build has no oneDNN.
Result<std::unique_ptr<ResNetEngine>> make_onednn_engine(std::shared_ptr<const FoldedResNet> net);
// kUnsupported without CUDA or without a GPU; dtype f16 or bf16.
Result<std::unique_ptr<ResNetEngine>> make_cuda_engine(std::shared_ptr<const FoldedResNet> net, DType dtype);

}  // namespace hilum
