// PEFT LoRA adapters, applied unmerged: y = W x + scale * B (A x), so one base
// model in memory serves the general model (no adapter) and any number of
// tuned ones, chosen per request. TextModel::merged() folds one in instead.
//
// An adapter directory holds adapter_config.json and adapter_model.safetensors
// (keys "base_model.model.<module>.lora_A.weight" / "lora_B.weight"). Supported:
// r, lora_alpha, use_rslora (scale alpha/sqrt(r)), target_modules (a list of
// names or one regex), target_parameters on fused experts
// (mlp.experts.gate_up_proj / down_proj, PEFT's ParamWrapper layout),
// per-expert modules (mlp.experts.E.gate_proj / Mixtral's w1, w3, w2),
// bias "none", fan_in_fan_out (no-op for nn.Linear, as PEFT itself does).
// Anything that would change the maths and is not implemented (use_dora,
// modules_to_save, lora_bias, rank/alpha patterns, embedding LoRA, ...) is an
// error naming the field or tensor; so is a tensor whose module the base model
// lacks or whose shape does not fit it (an adapter for another base).
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "model/result.h"
#include "model/tensor.h"

namespace hilum::moe {

class TextModel;

// One low-rank update of output rows [row_offset, row_offset + B.rows) of a slot.
struct LoraTerm {
  Tensor a;  // f32 [r, in]
  Tensor b;  // f32 [rows, r]
  int64_t row_offset = 0;
  float scale = 1.0f;
};

class LoraAdapter {
 public:
  static Result<std::shared_ptr<const LoraAdapter>> load(const std::filesystem::path& dir,
                                                         const TextModel& model);

  // The updates of LoRA slot `slot` (see Weights::slots); empty when none.
  const std::vector<LoraTerm>& terms(int slot) const;
  size_t adapted_slots() const;
  const std::string& source() const { return source_; }
  // The model this adapter was built for (forward() refuses others).
  const void* base() const { return base_; }

  // For tests and tools: an adapter from explicit terms.
  static std::shared_ptr<LoraAdapter> from_terms(const TextModel& model,
                                                 std::vector<std::pair<int, LoraTerm>> terms);

 private:
  std::vector<std::vector<LoraTerm>> by_slot_;
  std::string source_;
  const void* base_ = nullptr;
};

}  // namespace hilum::moe
