#include "vision/net/resnet_random.h"

#include <cmath>
#include <random>

namespace hilum {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

std::vector<std::pair<std::string, Tensor>> random_resnet_weights(const ResNetConfig& config, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
  std::vector<std::pair<std::string, Tensor>> out;
  for (const auto& [name, shape] : resnet_tensor_shapes(config)) {
    Tensor t = Tensor::empty(shape, DType::kF32);
    float* p = t.data<float>();
    const int64_t n = t.numel();
    // The norm that closes a residual branch: bn2 of a basic block, bn3 of a bottleneck.
    const bool closes_branch =
        (config.block == ResNetBlock::kBasic && name.find(".bn2.") != std::string::npos) ||
        name.find(".bn3.") != std::string::npos;
    if (shape.size() == 4) {
      const double fan_out = static_cast<double>(shape[0] * shape[2] * shape[3]);
      const float std = static_cast<float>(std::sqrt(2.0 / fan_out));
      for (int64_t i = 0; i < n; ++i) p[i] = std * normal(rng);
    } else if (name == "fc.weight") {
      const float bound = 1.0f / std::sqrt(static_cast<float>(shape[1]));
      for (int64_t i = 0; i < n; ++i) p[i] = bound * (2 * uniform(rng) - 1);
    } else if (name == "fc.bias") {
      for (int64_t i = 0; i < n; ++i) p[i] = 0.1f * normal(rng);
    } else if (ends_with(name, ".running_var")) {
      for (int64_t i = 0; i < n; ++i) p[i] = 0.5f + uniform(rng);
    } else if (ends_with(name, ".running_mean")) {
      for (int64_t i = 0; i < n; ++i) p[i] = 0.2f * normal(rng);
    } else if (ends_with(name, ".weight")) {  // batch-norm gamma
      const float scale = closes_branch ? 0.3f : 1.0f;
      for (int64_t i = 0; i < n; ++i) p[i] = scale * (0.6f + 0.8f * uniform(rng));
    } else {  // batch-norm beta
      for (int64_t i = 0; i < n; ++i) p[i] = 0.1f * normal(rng);
    }
    out.emplace_back(name, t);
    if (ends_with(name, ".running_var")) {
      Tensor tracked = Tensor::zeros({}, DType::kI64);
      out.emplace_back(name.substr(0, name.size() - 12) + ".num_batches_tracked", tracked);
    }
  }
  return out;
}

}  // namespace hilum
