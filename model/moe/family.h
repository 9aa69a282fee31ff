// Internal: what a model family provides (one file per family under
// model/moe/families/), and the shared building blocks they are made of:
// common config fields, RoPE parameters, and loaders for GQA/MLA attention,
// dense MLPs and routed experts.
#pragma once

#include <string>
#include <string_view>

#include "model/moe/checkpoint.h"
#include "model/moe/config.h"
#include "model/moe/config_reader.h"
#include "model/moe/weights.h"

namespace hilum::moe {

class LoadContext;

struct FamilyDef {
  std::string_view model_type;
  Family family;
  // Reads every config field the family understands into `c`.
  void (*parse)(ConfigReader& r, TextConfig& c);
  // Loads layer `index` from the checkpoint.
  Status (*load_layer)(LoadContext& ctx, int index, Layer& layer);
};

const FamilyDef* find_family(std::string_view model_type);
std::string known_model_types();  // "deepseek_v2, deepseek_v3, ..."

// ---- shared config parsing --------------------------------------------------

struct CommonDefaults {
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  bool tie_word_embeddings = false;
};

// vocab_size, hidden_size, num_hidden_layers, num_attention_heads,
// num_key_value_heads, head_dim, rms_norm_eps, hidden_act, tie_word_embeddings,
// max_position_embeddings, token ids, and the informational fields every
// transformers config carries.
void parse_common(ConfigReader& r, TextConfig& c, const CommonDefaults& d);
// rope_parameters / legacy rope_scaling + rope_theta. `dim` is the rotated size.
void parse_rope(ConfigReader& r, TextConfig& c, int64_t dim, double default_theta);
// Activation names as transformers' ACT2FN spells them.
void parse_activation(ConfigReader& r, TextConfig& c);
// qwen2-style attention biases: q/k/v always (transformers' Qwen2Attention
// builds them; loaded when present, "qkv_bias" may turn them off), none on
// o_proj; "attention_bias" is ignored.
void parse_qwen_attention_bias(ConfigReader& r, TextConfig& c);
// Sliding-window layout of qwen2-style configs (use_sliding_window,
// sliding_window, max_window_layers, layer_types).
void parse_qwen_sliding_window(ConfigReader& r, TextConfig& c);
// layer_types (when present) with one sliding window for every sliding layer;
// without layer_types every layer gets `window` (0: none).
void parse_layer_types(ConfigReader& r, TextConfig& c, int64_t window);

// ---- shared weight loading ---------------------------------------------------

enum class Bias { kNone, kRequired, kOptional };

class LoadContext {
 public:
  LoadContext(Checkpoint& ck, const TextConfig& cfg, Weights& w) : ck(ck), cfg(cfg), w(w) {}

  // nn.Linear at `path` (tensors path.weight [out, in] and path.bias [out]).
  Result<Linear> linear(const std::string& path, int64_t out, int64_t in, Bias bias);
  // RMSNorm weight at path.weight.
  Result<Norm> norm(const std::string& path, int64_t dim, float eps);

  // Grouped-query attention under `prefix` (…self_attn).
  Status gqa_attention(const std::string& prefix, Attention& a);
  // Multi-head latent attention under `prefix`.
  Status mla_attention(const std::string& prefix, Attention& a);
  // The attention half of a pre-norm decoder layer under `layer_path`
  // (model.layers.N): input_layernorm, self_attn (grouped-query, or multi-head
  // latent with `latent`), and post_attention_layernorm, the FFN's norm.
  Status attention_block(const std::string& layer_path, Layer& layer, bool latent = false);
  // gate_proj / up_proj / down_proj under `prefix`.
  Status mlp(const std::string& prefix, int64_t inter, Mlp& m);
  // Routed experts: fused `prefix.experts.gate_up_proj` [E, 2I, H] and
  // `prefix.experts.down_proj` [E, H, I] (transformers 5), or per-expert
  // `prefix.experts.E.{gate,up,down}_proj.weight`, or Mixtral's
  // `legacy_prefix.experts.E.{w1,w3,w2}.weight`. LoRA paths use `prefix`.
  Status experts(const std::string& prefix, const std::string& legacy_prefix, Experts& e);

  Checkpoint& ck;
  const TextConfig& cfg;
  Weights& w;

 private:
  int add_slot(const std::string& path, int64_t in, int64_t out);
};

std::string layer_prefix(int index);  // "model.layers.<index>"

// Layer `index` of a dense decoder (llama, qwen2): attention_block, then the
// SwiGLU MLP under .mlp.
Status load_dense_layer(LoadContext& ctx, int index, Layer& layer);

}  // namespace hilum::moe
