// The architecture of a Hugging Face causal language model, read from its
// config.json (and generation_config.json for stop tokens).
//
// Families: llama, qwen2 (dense); mixtral, olmoe, qwen2_moe (softmax-routed
// MoE); deepseek_v2, deepseek_v3 (multi-head latent attention, shared experts,
// group-limited routing). The semantics follow transformers 5.x.
//
// Parsing is strict: an unknown model_type, a field value this engine does not
// implement (a rope type, an activation, a quantization_config, ...) or an
// unknown field that could change the maths is an error (kBadInput or
// kUnsupported) whose message names config.json and the field. Fields known to
// be informational (training-only knobs, generation defaults, bookkeeping) are
// accepted and ignored.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "model/result.h"

namespace hilum::moe {

enum class Family { kLlama, kQwen2, kMixtral, kOlmoe, kQwen2Moe, kDeepseekV2, kDeepseekV3 };
std::string_view family_name(Family f);

enum class Activation { kSilu, kGelu, kGeluTanh, kRelu };

// How RoPE pairs the rotated dimensions: Llama's rotate_half (dimension i with
// i + d/2) or DeepSeek's interleaved pairs (2i with 2i+1).
enum class RopeLayout { kHalf, kInterleaved };

struct RopeConfig {
  enum class Type { kDefault, kLinear, kYarn, kLlama3 };
  Type type = Type::kDefault;
  double theta = 10000.0;
  int64_t dim = 0;  // rotated dimensions per head
  RopeLayout layout = RopeLayout::kHalf;
  double factor = 1.0;
  int64_t original_max_position = 0;
  // YaRN
  double beta_fast = 32.0, beta_slow = 1.0;
  std::optional<double> attention_factor;
  double mscale = 0.0, mscale_all_dim = 0.0;
  bool truncate = true;
  // llama3
  double low_freq_factor = 1.0, high_freq_factor = 4.0;

  // Derived: inverse frequencies (dim / 2 values, float32 like transformers)
  // and the factor that multiplies cos and sin.
  std::vector<float> inv_freq;
  float attention_scaling = 1.0f;
};

enum class RouterKind {
  kSoftmaxTopK,          // mixtral, olmoe, qwen2_moe: softmax, top-k, optional renormalisation
  kSoftmaxGreedy,        // deepseek_v2 'greedy': softmax, top-k, x routed_scaling_factor
  kSoftmaxGroupLimited,  // deepseek_v2 'group_limited_greedy': best groups by max score first
  kSigmoidNoAuxTc,       // deepseek_v3 'noaux_tc': sigmoid + e_score_correction_bias, groups by top-2 sum
};

struct RouterConfig {
  RouterKind kind = RouterKind::kSoftmaxTopK;
  int num_experts = 0;
  int top_k = 0;
  bool norm_topk_prob = false;
  float routed_scaling_factor = 1.0f;
  int n_group = 1;
  int topk_group = 1;
};

struct TextConfig {
  Family family = Family::kLlama;
  std::string model_type;

  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;  // q/k/v head size (GQA); MLA uses the fields below
  float rms_norm_eps = 1e-6f;
  Activation hidden_act = Activation::kSilu;
  bool tie_word_embeddings = false;
  int64_t max_position_embeddings = 0;
  RopeConfig rope;

  // Grouped-query attention.
  bool qkv_bias = false;  // biases on q/k/v projections
  bool o_bias = false;    // bias on o_proj
  bool qk_norm = false;   // olmoe: RMSNorm over the whole q and k projections
  std::optional<float> clip_qkv;
  std::vector<int64_t> sliding_window;  // per layer; 0 = full causal attention

  // Multi-head latent attention (deepseek).
  bool mla = false;
  int64_t q_lora_rank = 0;  // 0: a plain q_proj
  int64_t kv_lora_rank = 0;
  int64_t qk_nope_head_dim = 0;
  int64_t qk_rope_head_dim = 0;
  int64_t v_head_dim = 0;
  float mla_norm_eps = 1e-6f;  // q_a_layernorm / kv_a_layernorm use the default eps

  // Softmax scale of attention logits (head_dim^-0.5, adjusted for YaRN in MLA).
  float attn_scale = 1.0f;

  // Feed-forward.
  int64_t intermediate_size = 0;         // dense MLP layers
  int64_t moe_intermediate_size = 0;     // each routed expert
  int64_t shared_intermediate_size = 0;  // 0: no shared expert
  bool shared_expert_gate = false;       // qwen2_moe: sigmoid(x . g) scales the shared expert
  bool mlp_bias = false;
  std::vector<bool> layer_is_moe;  // per layer
  RouterConfig router;

  // Tokens.
  std::vector<int32_t> eos_token_ids;  // union of config.json and generation_config.json
  std::optional<int32_t> bos_token_id;

  int64_t q_head_dim() const { return mla ? qk_nope_head_dim + qk_rope_head_dim : head_dim; }
  int64_t v_dim() const { return mla ? v_head_dim : head_dim; }
  int64_t kv_heads() const { return mla ? num_heads : num_kv_heads; }
  bool any_moe() const;
};

// Reads <dir>/config.json and, when present, <dir>/generation_config.json.
Result<TextConfig> read_text_config(const std::filesystem::path& dir);

// Parses config.json text (`name` is used in messages). Exposed for tests.
Result<TextConfig> parse_text_config(const std::string& json_text, const std::string& name);

// Fills rope.inv_freq and rope.attention_scaling from the other rope fields.
Status compute_rope_tables(RopeConfig& rope, int64_t max_position_embeddings);

}  // namespace hilum::moe
