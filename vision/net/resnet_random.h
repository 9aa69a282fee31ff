// Random ResNet weights with torchvision names, for tests and benchmarks that
// need a network of some shape but no trained weights (no PyTorch needed).
// Convolutions are Kaiming-normal (fan_out, as torchvision initialises them);
// batch norms get non-trivial statistics, with the last norm of each residual
// branch scaled down so that very deep networks keep finite activations.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "model/tensor.h"
#include "vision/net/resnet_config.h"

namespace hilum {

// Every tensor of resnet_tensor_shapes(config), f32, plus each batch norm's
// num_batches_tracked (i64), as torch.save(model.state_dict()) would hold.
std::vector<std::pair<std::string, Tensor>> random_resnet_weights(const ResNetConfig& config, uint32_t seed);

}  // namespace hilum
