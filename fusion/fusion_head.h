// The fusion head: image tokens of each candidate attend to the clinical
// text's hidden states, then a small MLP gives two logits per candidate
// (nodule, malignancy). The exact maths is the PyTorch module
// scripts/train/fusion_model.py (FusionHead); weights load from its
// state_dict saved as safetensors with the configuration in the metadata key
// "hilum.fusion" (JSON). See docs/findings.md, "Fusion head".
//
//   x    = LayerNorm_img(image_proj(tokens) + image_pos)            [N, k, d]
//   t    = LayerNorm_txt(text)                                       [T, d_text]
//   a    = o_proj(MHA(q_proj(x), k_proj(t), v_proj(t)))              [N, k, d]  (0 when T == 0)
//   y    = LayerNorm_fused(x + a)
//   f    = (features - feature_mean) * feature_scale                 [N, F]  (F = 0: none)
//   z    = concat(mean_k x, mean_k y, f)                             [N, 2d + F]
//   out  = head.2(GELU(head.0(z)))                                   [N, 2]
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "model/result.h"
#include "model/tensor.h"

namespace hilum {

struct FusionConfig {
  int64_t image_channels = 0;  // c: channels of the image branch's feature map
  int64_t image_tokens = 0;    // k: spatial positions per candidate (h*w)
  int64_t text_dim = 0;        // hidden size of the text branch
  int64_t dim = 0;             // d: attention width
  int64_t heads = 0;           // d % heads == 0
  int64_t hidden = 0;          // MLP hidden width
  // Names of the candidate detector's measurements the MLP also takes, in
  // order (optional; see candidate_feature in vision/io/candidates.h).
  std::vector<std::string> candidate_features;
};

struct FusionOutput {
  Tensor logits;       // f32 [N, 2]: nodule, malignancy
  Tensor probability;  // f32 [N]: sigmoid(logits[:, 0])
  Tensor malignancy;   // f32 [N]: sigmoid(logits[:, 1])
};

class FusionHead {
 public:
  // Reads the weights and the configuration; errors name the file and, for a
  // missing, mis-shaped or non-float tensor, the tensor.
  static Result<FusionHead> load(const std::filesystem::path& safetensors_path);
  // From named f32 tensors (state_dict names); `source` names them in errors.
  static Result<FusionHead> from_tensors(const FusionConfig& config,
                                         const std::map<std::string, Tensor>& tensors,
                                         const std::string& source);

  const FusionConfig& config() const { return config_; }

  // image_tokens: f32 [N, k, c]; text_states: f32 [T, text_dim] (T may be 0:
  // the text term vanishes); features: f32 [N, F], the raw values of the
  // configuration's candidate_features (undefined when F = 0). Device::kCUDA
  // runs the attention core on the GPU.
  Result<FusionOutput> forward(const Tensor& image_tokens, const Tensor& text_states,
                               Device attention_device = Device::kCPU, const Tensor& features = Tensor()) const;

  // Names and shapes of every tensor the head needs (state_dict order).
  static std::map<std::string, Shape> expected_shapes(const FusionConfig& config);

 private:
  FusionConfig config_;
  std::map<std::string, Tensor> weights_;  // f32, contiguous
};

// Feature maps [N, C, h, w] -> image tokens [N, h*w, C] (token = y*w + x).
Result<Tensor> image_tokens_from_feature_maps(const Tensor& maps);

}  // namespace hilum
