// The shape of a ResNet (He et al. 2015, torchvision's "v1.5": the stride of a
// bottleneck sits on its 3x3 convolution), and the tensors such a network's
// torchvision state_dict holds.
//
// A config comes from a depth (18, 34, 50, 101, 152), from a small JSON file,
// or is inferred from the names and shapes in a weights file. Every tensor is
// named as torchvision names it (conv1.weight, bn1.running_var,
// layer3.5.conv2.weight, layer2.0.downsample.0.weight, fc.bias, ...).
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "model/result.h"
#include "model/safetensors.h"
#include "model/tensor.h"

namespace hilum {

enum class ResNetBlock { kBasic, kBottleneck };

struct ResNetConfig {
  int depth = 0;  // 18, 34, 50, 101, 152; 0 for a custom `layers`
  ResNetBlock block = ResNetBlock::kBottleneck;
  std::array<int, 4> layers{};   // residual blocks per stage
  int64_t width = 64;            // stem channels and planes of stage 1 (stage i has width * 2^i)
  int64_t width_per_group = 64;  // bottleneck inner width = planes * width_per_group / 64
  int64_t num_classes = 1000;    // 0: no fc layer (features only)
  int64_t in_channels = 3;

  int expansion() const { return block == ResNetBlock::kBottleneck ? 4 : 1; }
  // Channels of the last stage (the pooled feature size): width * 8 * expansion.
  int64_t feature_channels() const { return width * 8 * expansion(); }
  // Inner width of a bottleneck in a stage with `planes` planes.
  int64_t inner_width(int64_t planes) const {
    return block == ResNetBlock::kBottleneck ? planes * width_per_group / 64 : planes;
  }
  // "ResNet-152 (bottleneck 3-8-36-3, width 64, 1000 classes, 3 input channels)".
  std::string describe() const;
};

// The torchvision architecture of a standard depth; other fields default.
Result<ResNetConfig> resnet_config_for_depth(int depth);

// Parses a config JSON object. Fields: depth, block ("basic"|"bottleneck"),
// layers ([4 ints]), width, width_multiplier (width = 64 x multiplier),
// width_per_group, num_classes, in_channels. Either depth or block+layers is
// required (both must agree when given). An unknown field, a wrong type or an
// impossible value is a kBadInput error naming the field; `source` (a file
// name) prefixes every message.
Result<ResNetConfig> parse_resnet_config(std::string_view json, const std::string& source);
Result<ResNetConfig> read_resnet_config(const std::filesystem::path& path);
std::string resnet_config_json(const ResNetConfig& config);

// Infers the architecture from tensor names and shapes: blocks per stage from
// layerN.B.conv1.weight, the block type from conv3, widths from conv1 and the
// first bottleneck, classes from fc.weight (none: num_classes 0). The result
// is not yet checked against every tensor: use check_resnet_tensors().
Result<ResNetConfig> infer_resnet_config(const SafetensorsFile& weights);

// Every tensor the architecture needs, in network order, with its shape
// (num_batches_tracked is not listed: it is ignored when present).
std::vector<std::pair<std::string, Shape>> resnet_tensor_shapes(const ResNetConfig& config);

// Checks that `weights` holds exactly the tensors of `config` with the right
// shapes and floating-point dtypes. The error names the file, the tensor and
// the expected and actual shape; a tensor that belongs to no part of the
// network is an error too.
Status check_resnet_tensors(const ResNetConfig& config, const SafetensorsFile& weights);

}  // namespace hilum
