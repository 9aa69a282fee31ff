// Internal: the weights of a loaded text model in the CPU engine's layout
// (f32, nn.Linear [out, in] order), shared by the families' loaders, the CPU
// forward pass, LoRA and the CUDA engine's uploader.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "model/tensor.h"

namespace hilum::moe {

// y = x W^T (+ b). `slot` indexes the model's LoRA slots (-1: not adaptable).
struct Linear {
  Tensor weight;  // f32 [out, in]
  Tensor bias;    // f32 [out], or undefined
  int slot = -1;
  int64_t in() const { return weight.dim(1); }
  int64_t out() const { return weight.dim(0); }
  bool defined() const { return weight.defined(); }
};

struct Norm {
  Tensor weight;  // f32 [dim]
  float eps = 1e-6f;
  bool defined() const { return weight.defined(); }
};

struct Attention {
  // Grouped-query attention.
  Linear q, k, v, o;
  Norm q_norm, k_norm;  // olmoe: over the whole projection
  // Multi-head latent attention (q is used when q_lora_rank == 0).
  Linear q_a, q_b, kv_a, kv_b;
  Norm q_a_norm, kv_a_norm;
};

struct Mlp {  // down(act(gate(x)) * up(x))
  Linear gate, up, down;
};

// Routed experts, stored fused whatever the checkpoint's layout.
struct Experts {
  int64_t num = 0, hidden = 0, inter = 0;
  Tensor gate_up;          // f32 [E, 2I, H]: rows [0, I) gate, [I, 2I) up
  Tensor down;             // f32 [E, H, I]
  int gate_up_slot0 = -1;  // LoRA slot of expert e's gate_up: gate_up_slot0 + e
  int down_slot0 = -1;
};

struct Moe {
  Linear router;      // [E, H]
  Tensor score_bias;  // [E]: deepseek_v3 e_score_correction_bias
  Experts experts;
  bool has_shared = false;
  Mlp shared;
  Linear shared_gate;  // [1, H]: qwen2_moe
};

struct Layer {
  Norm attn_norm, ffn_norm;
  Attention attn;
  bool is_moe = false;
  Mlp mlp;
  Moe moe;
  int64_t sliding_window = 0;
};

// A place where a LoRA adapter can attach: one nn.Linear, or one projection of
// one routed expert.
struct LoraSlot {
  std::string path;  // transformers module path, e.g. model.layers.0.self_attn.q_proj
  int64_t in = 0, out = 0;
};

struct Weights {
  Tensor embed;  // [V, H]
  std::vector<Layer> layers;
  Norm final_norm;
  Linear lm_head;  // may share embed's storage (tied)
  std::vector<LoraSlot> slots;
  std::map<std::string, int> slot_by_path;  // nn.Linear module path -> slot
};

}  // namespace hilum::moe
