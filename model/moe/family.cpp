#include "model/moe/family.h"

#include <cstring>

namespace hilum::moe {

using json = nlohmann::json;

extern const FamilyDef kLlamaFamily;
extern const FamilyDef kQwen2Family;
extern const FamilyDef kMixtralFamily;
extern const FamilyDef kOlmoeFamily;
extern const FamilyDef kQwen2MoeFamily;
extern const FamilyDef kDeepseekV2Family;
extern const FamilyDef kDeepseekV3Family;

namespace {
const FamilyDef* const kFamilies[] = {&kDeepseekV2Family, &kDeepseekV3Family, &kLlamaFamily,
                                      &kMixtralFamily,    &kOlmoeFamily,      &kQwen2Family,
                                      &kQwen2MoeFamily};
}  // namespace

const FamilyDef* find_family(std::string_view model_type) {
  for (const FamilyDef* f : kFamilies) {
    if (f->model_type == model_type) return f;
  }
  return nullptr;
}

std::string known_model_types() {
  std::string s;
  for (const FamilyDef* f : kFamilies) {
    if (!s.empty()) s += ", ";
    s += f->model_type;
  }
  return s;
}

std::string layer_prefix(int index) { return "model.layers." + std::to_string(index); }

// ---- config ------------------------------------------------------------------

void parse_activation(ConfigReader& r, TextConfig& c) {
  const std::string act = r.string("hidden_act", "silu");
  if (act == "silu" || act == "swish") {
    c.hidden_act = Activation::kSilu;
  } else if (act == "gelu") {
    c.hidden_act = Activation::kGelu;
  } else if (act == "gelu_pytorch_tanh" || act == "gelu_new" || act == "gelu_fast") {
    c.hidden_act = Activation::kGeluTanh;
  } else if (act == "relu") {
    c.hidden_act = Activation::kRelu;
  } else {
    r.fail(r.field_error("hidden_act",
                         "value '" + act + "' is not supported (silu, gelu, gelu_pytorch_tanh, relu)",
                         ErrorKind::kUnsupported));
  }
}

void parse_common(ConfigReader& r, TextConfig& c, const CommonDefaults& d) {
  c.vocab_size = r.integer("vocab_size");
  c.hidden_size = r.integer("hidden_size");
  c.num_layers = r.integer("num_hidden_layers");
  c.num_heads = r.integer("num_attention_heads");
  c.num_kv_heads = r.optional_integer("num_key_value_heads").value_or(c.num_heads);
  if (auto hd = r.optional_integer("head_dim")) {
    c.head_dim = *hd;
  } else {
    c.head_dim = c.num_heads > 0 ? c.hidden_size / c.num_heads : 0;
  }
  c.rms_norm_eps = static_cast<float>(r.number("rms_norm_eps", d.rms_norm_eps));
  parse_activation(r, c);
  c.tie_word_embeddings = r.boolean("tie_word_embeddings", d.tie_word_embeddings);
  c.max_position_embeddings = r.integer("max_position_embeddings", 2048);
  if (auto bos = r.optional_integer("bos_token_id")) c.bos_token_id = static_cast<int32_t>(*bos);
  for (int64_t e : r.integer_or_list("eos_token_id")) c.eos_token_ids.push_back(static_cast<int32_t>(e));

  if (r.has("pretraining_tp") && r.integer("pretraining_tp") != 1) {
    r.fail(r.field_error("pretraining_tp", "must be 1 (tensor-parallel slicing is not supported)",
                         ErrorKind::kUnsupported));
  }
  r.ignore({"pretraining_tp"});
  r.require_absent("quantization_config", "is present: quantized checkpoints are not supported");
  r.require_absent("partial_rotary_factor", "is not supported (RoPE over the whole head only)");
  if (r.has("use_mrope") && r.boolean("use_mrope")) {
    r.fail(r.field_error("use_mrope", "is true: multimodal RoPE is not supported", ErrorKind::kUnsupported));
  }
  r.ignore({"use_mrope"});
  // Informational: bookkeeping, training-only knobs, generation defaults.
  r.ignore({"architectures",
            "transformers_version",
            "torch_dtype",
            "dtype",
            "_name_or_path",
            "_commit_hash",
            "_attn_implementation",
            "_attn_implementation_autoset",
            "_experts_implementation",
            "experts_implementation",
            "use_return_dict",
            "attn_implementation",
            "auto_map",
            "use_cache",
            "initializer_range",
            "attention_dropout",
            "hidden_dropout",
            "embedding_dropout",
            "residual_dropout",
            "mlp_dropout",
            "output_router_logits",
            "router_aux_loss_coef",
            "router_z_loss_coef",
            "router_jitter_noise",
            "aux_loss_alpha",
            "seq_aux",
            "ep_size",
            "pad_token_id",
            "sep_token_id",
            "decoder_start_token_id",
            "return_dict",
            "output_hidden_states",
            "output_attentions",
            "torchscript",
            "use_bfloat16",
            "tf_legacy_loss",
            "pruned_heads",
            "chunk_size_feed_forward",
            "is_encoder_decoder",
            "is_decoder",
            "cross_attention_hidden_size",
            "add_cross_attention",
            "tie_encoder_decoder",
            "max_length",
            "min_length",
            "do_sample",
            "early_stopping",
            "num_beams",
            "num_beam_groups",
            "diversity_penalty",
            "temperature",
            "top_k",
            "top_p",
            "typical_p",
            "repetition_penalty",
            "length_penalty",
            "no_repeat_ngram_size",
            "encoder_no_repeat_ngram_size",
            "bad_words_ids",
            "num_return_sequences",
            "output_scores",
            "return_dict_in_generate",
            "forced_bos_token_id",
            "forced_eos_token_id",
            "remove_invalid_values",
            "exponential_decay_length_penalty",
            "suppress_tokens",
            "begin_suppress_tokens",
            "finetuning_task",
            "id2label",
            "label2id",
            "num_labels",
            "tokenizer_class",
            "prefix",
            "task_specific_params",
            "problem_type",
            "gradient_checkpointing",
            "base_model_tp_plan",
            "base_model_pp_plan",
            "base_model_ep_plan",
            "keys_to_ignore_at_inference"});
}

namespace {

RopeConfig::Type parse_rope_type(ConfigReader& r, const std::string& key, const std::string& name) {
  if (name == "default") return RopeConfig::Type::kDefault;
  if (name == "linear") return RopeConfig::Type::kLinear;
  if (name == "yarn") return RopeConfig::Type::kYarn;
  if (name == "llama3") return RopeConfig::Type::kLlama3;
  r.fail(r.field_error(key, "value '" + name + "' is not supported (default, linear, yarn, llama3)",
                       ErrorKind::kUnsupported));
  return RopeConfig::Type::kDefault;
}

}  // namespace

void parse_rope(ConfigReader& r, TextConfig& c, int64_t dim, double default_theta) {
  RopeConfig& rope = c.rope;
  rope.dim = dim;
  const double top_theta = r.number("rope_theta", default_theta);
  const json* params = r.raw("rope_parameters");
  const json* legacy = r.raw("rope_scaling");
  // transformers: a (truthy) legacy rope_scaling wins over rope_parameters.
  const json* chosen = nullptr;
  std::string key = "rope_parameters";
  if (legacy && legacy->is_object() && !legacy->empty()) {
    chosen = legacy;
    key = "rope_scaling";
  } else if (params) {
    chosen = params;
  }
  const std::optional<int64_t> top_original = r.optional_integer("original_max_position_embeddings");
  if (!chosen) {
    rope.type = RopeConfig::Type::kDefault;
    rope.theta = top_theta;
    return;
  }
  if (!chosen->is_object()) {
    r.fail(r.field_error(key, "must be an object"));
    return;
  }
  ConfigReader p(*chosen, r.file(), key + ".");
  std::string type_name = "default";
  if (p.has("rope_type")) {
    type_name = p.string("rope_type");
    p.ignore({"type"});
  } else if (p.has("type")) {
    type_name = p.string("type");
  }
  p.ignore({"rope_type", "type"});
  rope.type = parse_rope_type(r, key + ".rope_type", type_name);
  rope.theta = p.number("rope_theta", top_theta);
  if (p.has("partial_rotary_factor") && p.number("partial_rotary_factor") != 1.0) {
    p.fail(p.field_error("partial_rotary_factor", "must be 1.0 (partial RoPE is not supported)",
                         ErrorKind::kUnsupported));
  }
  p.ignore({"partial_rotary_factor"});
  switch (rope.type) {
    case RopeConfig::Type::kDefault:
      break;
    case RopeConfig::Type::kLinear:
      rope.factor = p.number("factor");
      break;
    case RopeConfig::Type::kYarn: {
      const int64_t original = top_original
                                   ? *top_original
                                   : p.integer("original_max_position_embeddings", c.max_position_embeddings);
      p.ignore({"original_max_position_embeddings"});
      rope.original_max_position = original;
      if (auto f = p.optional_number("factor")) {
        rope.factor = *f;
      } else {
        rope.factor = original > 0
                          ? static_cast<double>(c.max_position_embeddings) / static_cast<double>(original)
                          : 1.0;
      }
      rope.attention_factor = p.optional_number("attention_factor");
      // transformers: `get("beta_fast") or 32` — zero and null both mean the default.
      const double bf = p.optional_number("beta_fast").value_or(0.0);
      const double bs = p.optional_number("beta_slow").value_or(0.0);
      rope.beta_fast = bf != 0.0 ? bf : 32.0;
      rope.beta_slow = bs != 0.0 ? bs : 1.0;
      rope.mscale = p.optional_number("mscale").value_or(0.0);
      rope.mscale_all_dim = p.optional_number("mscale_all_dim").value_or(0.0);
      rope.truncate = p.boolean("truncate", true);
      break;
    }
    case RopeConfig::Type::kLlama3:
      rope.factor = p.number("factor");
      rope.low_freq_factor = p.number("low_freq_factor");
      rope.high_freq_factor = p.number("high_freq_factor");
      rope.original_max_position = p.integer("original_max_position_embeddings");
      break;
  }
  Status s = p.finish("rope type '" + type_name + "'");
  if (!s.ok()) r.fail(s.error());
}

void parse_qwen_attention_bias(ConfigReader& r, TextConfig& c) {
  c.qkv_bias = r.boolean("qkv_bias", true);
  c.o_bias = false;
  r.ignore({"attention_bias"});
}

void parse_qwen_sliding_window(ConfigReader& r, TextConfig& c) {
  const bool use = r.boolean("use_sliding_window", false);
  const std::optional<int64_t> sw = r.optional_integer("sliding_window");
  const int64_t max_window_layers = r.integer("max_window_layers", c.num_layers);
  std::vector<std::string> types = r.string_list("layer_types");
  const int64_t window = use ? sw.value_or(0) : 0;
  if (types.empty()) {
    for (int64_t i = 0; i < c.num_layers; ++i) {
      types.push_back(window > 0 && i >= max_window_layers ? "sliding_attention" : "full_attention");
    }
  }
  if (static_cast<int64_t>(types.size()) != c.num_layers) {
    r.fail(r.field_error("layer_types", "has " + std::to_string(types.size()) + " entries for " +
                                            std::to_string(c.num_layers) + " layers"));
    return;
  }
  c.sliding_window.assign(static_cast<size_t>(c.num_layers), 0);
  for (int64_t i = 0; i < c.num_layers; ++i) {
    if (types[i] == "full_attention") continue;
    if (types[i] != "sliding_attention") {
      r.fail(
          r.field_error("layer_types", "entry '" + types[i] + "' is not supported", ErrorKind::kUnsupported));
      return;
    }
    if (window <= 0) {
      r.fail(r.field_error("layer_types",
                           "marks layer " + std::to_string(i) +
                               " sliding_attention but use_sliding_window/sliding_window is off"));
      return;
    }
    c.sliding_window[i] = window;
  }
}

void parse_layer_types(ConfigReader& r, TextConfig& c, int64_t window) {
  const std::vector<std::string> types = r.string_list("layer_types");
  c.sliding_window.assign(static_cast<size_t>(std::max<int64_t>(c.num_layers, 0)), window);
  if (types.empty()) return;
  if (static_cast<int64_t>(types.size()) != c.num_layers) {
    r.fail(r.field_error("layer_types", "has " + std::to_string(types.size()) + " entries for " +
                                            std::to_string(c.num_layers) + " layers"));
    return;
  }
  for (int64_t i = 0; i < c.num_layers; ++i) {
    if (types[i] == "full_attention") {
      c.sliding_window[i] = 0;
    } else if (types[i] == "sliding_attention" && window > 0) {
      c.sliding_window[i] = window;
    } else {
      r.fail(r.field_error("layer_types", "entry '" + types[i] + "' is not supported here",
                           ErrorKind::kUnsupported));
      return;
    }
  }
}

// ---- weights -----------------------------------------------------------------

int LoadContext::add_slot(const std::string& path, int64_t in, int64_t out) {
  w.slots.push_back(LoraSlot{path, in, out});
  return static_cast<int>(w.slots.size()) - 1;
}

Result<Linear> LoadContext::linear(const std::string& path, int64_t out, int64_t in, Bias bias) {
  Linear l;
  HILUM_ASSIGN_OR_RETURN(l.weight, ck.f32(path + ".weight", {out, in}));
  const std::string bname = path + ".bias";
  if (bias == Bias::kRequired || (bias == Bias::kOptional && ck.contains(bname))) {
    HILUM_ASSIGN_OR_RETURN(l.bias, ck.f32(bname, {out}));
  }
  l.slot = add_slot(path, in, out);
  w.slot_by_path[path] = l.slot;
  return l;
}

Result<Norm> LoadContext::norm(const std::string& path, int64_t dim, float eps) {
  Norm n;
  n.eps = eps;
  HILUM_ASSIGN_OR_RETURN(n.weight, ck.f32(path + ".weight", {dim}));
  return n;
}

Status LoadContext::gqa_attention(const std::string& prefix, Attention& a) {
  const int64_t H = cfg.hidden_size, nh = cfg.num_heads, nkv = cfg.num_kv_heads, hd = cfg.head_dim;
  const bool optional_qkv_bias = cfg.family == Family::kQwen2 || cfg.family == Family::kQwen2Moe;
  const Bias qkv = cfg.qkv_bias ? (optional_qkv_bias ? Bias::kOptional : Bias::kRequired) : Bias::kNone;
  const Bias o = cfg.o_bias ? Bias::kRequired : Bias::kNone;
  HILUM_ASSIGN_OR_RETURN(a.q, linear(prefix + ".q_proj", nh * hd, H, qkv));
  HILUM_ASSIGN_OR_RETURN(a.k, linear(prefix + ".k_proj", nkv * hd, H, qkv));
  HILUM_ASSIGN_OR_RETURN(a.v, linear(prefix + ".v_proj", nkv * hd, H, qkv));
  HILUM_ASSIGN_OR_RETURN(a.o, linear(prefix + ".o_proj", H, nh * hd, o));
  if (cfg.qk_norm) {
    HILUM_ASSIGN_OR_RETURN(a.q_norm, norm(prefix + ".q_norm", nh * hd, cfg.rms_norm_eps));
    HILUM_ASSIGN_OR_RETURN(a.k_norm, norm(prefix + ".k_norm", nkv * hd, cfg.rms_norm_eps));
  }
  return Status::Ok();
}

Status LoadContext::mla_attention(const std::string& prefix, Attention& a) {
  const int64_t H = cfg.hidden_size, nh = cfg.num_heads;
  const int64_t qk = cfg.qk_nope_head_dim + cfg.qk_rope_head_dim;
  const Bias in_bias = cfg.qkv_bias ? Bias::kRequired : Bias::kNone;
  const Bias o_bias = cfg.o_bias ? Bias::kRequired : Bias::kNone;
  if (cfg.q_lora_rank == 0) {
    HILUM_ASSIGN_OR_RETURN(a.q, linear(prefix + ".q_proj", nh * qk, H, Bias::kNone));
  } else {
    HILUM_ASSIGN_OR_RETURN(a.q_a, linear(prefix + ".q_a_proj", cfg.q_lora_rank, H, in_bias));
    HILUM_ASSIGN_OR_RETURN(a.q_a_norm, norm(prefix + ".q_a_layernorm", cfg.q_lora_rank, cfg.mla_norm_eps));
    HILUM_ASSIGN_OR_RETURN(a.q_b, linear(prefix + ".q_b_proj", nh * qk, cfg.q_lora_rank, Bias::kNone));
  }
  HILUM_ASSIGN_OR_RETURN(
      a.kv_a, linear(prefix + ".kv_a_proj_with_mqa", cfg.kv_lora_rank + cfg.qk_rope_head_dim, H, in_bias));
  HILUM_ASSIGN_OR_RETURN(a.kv_a_norm, norm(prefix + ".kv_a_layernorm", cfg.kv_lora_rank, cfg.mla_norm_eps));
  HILUM_ASSIGN_OR_RETURN(a.kv_b, linear(prefix + ".kv_b_proj", nh * (cfg.qk_nope_head_dim + cfg.v_head_dim),
                                        cfg.kv_lora_rank, Bias::kNone));
  HILUM_ASSIGN_OR_RETURN(a.o, linear(prefix + ".o_proj", H, nh * cfg.v_head_dim, o_bias));
  return Status::Ok();
}

Status LoadContext::attention_block(const std::string& layer_path, Layer& layer, bool latent) {
  HILUM_ASSIGN_OR_RETURN(layer.attn_norm,
                         norm(layer_path + ".input_layernorm", cfg.hidden_size, cfg.rms_norm_eps));
  HILUM_RETURN_IF_ERROR(latent ? mla_attention(layer_path + ".self_attn", layer.attn)
                               : gqa_attention(layer_path + ".self_attn", layer.attn));
  HILUM_ASSIGN_OR_RETURN(layer.ffn_norm,
                         norm(layer_path + ".post_attention_layernorm", cfg.hidden_size, cfg.rms_norm_eps));
  return Status::Ok();
}

Status load_dense_layer(LoadContext& ctx, int index, Layer& layer) {
  const std::string p = layer_prefix(index);
  HILUM_RETURN_IF_ERROR(ctx.attention_block(p, layer));
  return ctx.mlp(p + ".mlp", ctx.cfg.intermediate_size, layer.mlp);
}

Status LoadContext::mlp(const std::string& prefix, int64_t inter, Mlp& m) {
  const int64_t H = cfg.hidden_size;
  const Bias b = cfg.mlp_bias ? Bias::kRequired : Bias::kNone;
  HILUM_ASSIGN_OR_RETURN(m.gate, linear(prefix + ".gate_proj", inter, H, b));
  HILUM_ASSIGN_OR_RETURN(m.up, linear(prefix + ".up_proj", inter, H, b));
  HILUM_ASSIGN_OR_RETURN(m.down, linear(prefix + ".down_proj", H, inter, b));
  return Status::Ok();
}

Status LoadContext::experts(const std::string& prefix, const std::string& legacy_prefix, Experts& e) {
  const int64_t E = cfg.router.num_experts, H = cfg.hidden_size, I = cfg.moe_intermediate_size;
  e.num = E;
  e.hidden = H;
  e.inter = I;
  const std::string fused = prefix + ".experts.gate_up_proj";
  if (ck.contains(fused)) {
    HILUM_ASSIGN_OR_RETURN(e.gate_up, ck.f32(fused, {E, 2 * I, H}));
    HILUM_ASSIGN_OR_RETURN(e.down, ck.f32(prefix + ".experts.down_proj", {E, H, I}));
  } else {
    std::string base, gate_name, up_name, down_name;
    if (ck.contains(prefix + ".experts.0.gate_proj.weight")) {
      base = prefix + ".experts.";
      gate_name = ".gate_proj.weight";
      up_name = ".up_proj.weight";
      down_name = ".down_proj.weight";
    } else if (!legacy_prefix.empty() && ck.contains(legacy_prefix + ".experts.0.w1.weight")) {
      base = legacy_prefix + ".experts.";
      gate_name = ".w1.weight";
      up_name = ".w3.weight";
      down_name = ".w2.weight";
    } else {
      return bad_input(ck.dir().string() + ": checkpoint has no routed-expert tensors for '" + prefix +
                       "' (expected " + fused + " or " + prefix + ".experts.0.gate_proj.weight)");
    }
    e.gate_up = Tensor::empty({E, 2 * I, H}, DType::kF32);
    e.down = Tensor::empty({E, H, I}, DType::kF32);
    float* gu = e.gate_up.data<float>();
    float* dn = e.down.data<float>();
    for (int64_t x = 0; x < E; ++x) {
      const std::string p = base + std::to_string(x);
      HILUM_ASSIGN_OR_RETURN(Tensor g, ck.f32(p + gate_name, {I, H}));
      HILUM_ASSIGN_OR_RETURN(Tensor u, ck.f32(p + up_name, {I, H}));
      HILUM_ASSIGN_OR_RETURN(Tensor d, ck.f32(p + down_name, {H, I}));
      std::memcpy(gu + x * 2 * I * H, g.data<float>(), sizeof(float) * I * H);
      std::memcpy(gu + x * 2 * I * H + I * H, u.data<float>(), sizeof(float) * I * H);
      std::memcpy(dn + x * H * I, d.data<float>(), sizeof(float) * H * I);
    }
  }
  e.gate_up_slot0 = static_cast<int>(w.slots.size());
  for (int64_t x = 0; x < E; ++x)
    add_slot(prefix + ".experts." + std::to_string(x) + ".gate_up_proj", H, 2 * I);
  e.down_slot0 = static_cast<int>(w.slots.size());
  for (int64_t x = 0; x < E; ++x) add_slot(prefix + ".experts." + std::to_string(x) + ".down_proj", I, H);
  return Status::Ok();
}

}  // namespace hilum::moe
