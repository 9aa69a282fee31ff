#include "model/moe/config.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "model/file_io.h"
#include "model/moe/config_reader.h"
#include "model/moe/family.h"

namespace hilum::moe {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string_view family_name(Family f) {
  switch (f) {
    case Family::kLlama:
      return "llama";
    case Family::kQwen2:
      return "qwen2";
    case Family::kMixtral:
      return "mixtral";
    case Family::kOlmoe:
      return "olmoe";
    case Family::kQwen2Moe:
      return "qwen2_moe";
    case Family::kDeepseekV2:
      return "deepseek_v2";
    case Family::kDeepseekV3:
      return "deepseek_v3";
  }
  return "?";
}

bool TextConfig::any_moe() const {
  return std::any_of(layer_is_moe.begin(), layer_is_moe.end(), [](bool b) { return b; });
}

namespace {

double yarn_get_mscale(double scale, double mscale) {
  if (scale <= 1.0) return 1.0;
  return 0.1 * mscale * std::log(scale) + 1.0;
}

// Checks that the parsed sizes are positive and consistent.
Status validate(const TextConfig& c, const std::string& file) {
  auto bad = [&](const std::string& field, const std::string& what) {
    return bad_input(file + ": field '" + field + "' " + what);
  };
  auto positive = [&](const char* field, int64_t v) -> Status {
    if (v <= 0) return bad(field, "must be positive (got " + std::to_string(v) + ")");
    return Status::Ok();
  };
  HILUM_RETURN_IF_ERROR(positive("vocab_size", c.vocab_size));
  HILUM_RETURN_IF_ERROR(positive("hidden_size", c.hidden_size));
  HILUM_RETURN_IF_ERROR(positive("num_hidden_layers", c.num_layers));
  HILUM_RETURN_IF_ERROR(positive("num_attention_heads", c.num_heads));
  if (c.vocab_size > (int64_t{1} << 31) - 1) return bad("vocab_size", "is too large");
  if (!c.mla) {
    HILUM_RETURN_IF_ERROR(positive("num_key_value_heads", c.num_kv_heads));
    HILUM_RETURN_IF_ERROR(positive("head_dim", c.head_dim));
    if (c.num_heads % c.num_kv_heads != 0) {
      return bad("num_key_value_heads", "(" + std::to_string(c.num_kv_heads) +
                                            ") must divide num_attention_heads (" +
                                            std::to_string(c.num_heads) + ")");
    }
    if (c.head_dim % 2 != 0) return bad("head_dim", "must be even for RoPE");
  } else {
    HILUM_RETURN_IF_ERROR(positive("kv_lora_rank", c.kv_lora_rank));
    HILUM_RETURN_IF_ERROR(positive("qk_rope_head_dim", c.qk_rope_head_dim));
    HILUM_RETURN_IF_ERROR(positive("v_head_dim", c.v_head_dim));
    if (c.qk_nope_head_dim < 0) return bad("qk_nope_head_dim", "must not be negative");
    if (c.q_lora_rank < 0) return bad("q_lora_rank", "must not be negative");
    if (c.qk_rope_head_dim % 2 != 0) return bad("qk_rope_head_dim", "must be even for RoPE");
  }
  if (c.rms_norm_eps <= 0 || !std::isfinite(c.rms_norm_eps)) return bad("rms_norm_eps", "must be positive");
  if (c.rope.theta <= 0) return bad("rope_theta", "must be positive");
  if (c.rope.type != RopeConfig::Type::kDefault && !(c.rope.factor > 0)) {
    return bad("rope_parameters.factor", "must be positive");
  }
  if (c.any_moe()) {
    const RouterConfig& r = c.router;
    HILUM_RETURN_IF_ERROR(positive("num_experts", r.num_experts));
    HILUM_RETURN_IF_ERROR(positive("num_experts_per_tok", r.top_k));
    HILUM_RETURN_IF_ERROR(positive("moe_intermediate_size", c.moe_intermediate_size));
    if (r.top_k > r.num_experts) {
      return bad("num_experts_per_tok", "(" + std::to_string(r.top_k) + ") exceeds the number of experts (" +
                                            std::to_string(r.num_experts) + ")");
    }
    if (r.kind == RouterKind::kSoftmaxGroupLimited || r.kind == RouterKind::kSigmoidNoAuxTc) {
      if (r.n_group <= 0 || r.num_experts % r.n_group != 0) {
        return bad("n_group", "(" + std::to_string(r.n_group) +
                                  ") must divide the number of routed experts (" +
                                  std::to_string(r.num_experts) + ")");
      }
      if (r.topk_group <= 0 || r.topk_group > r.n_group) {
        return bad("topk_group", "must be between 1 and n_group (" + std::to_string(r.n_group) + ")");
      }
      const int per_group = r.num_experts / r.n_group;
      if (r.kind == RouterKind::kSigmoidNoAuxTc && per_group < 2) {
        return bad("n_group",
                   "leaves fewer than 2 experts per group (noaux_tc scores groups by their top 2)");
      }
      if (r.top_k > r.topk_group * per_group) {
        return bad("num_experts_per_tok", "exceeds the experts in topk_group groups");
      }
    }
  }
  bool needs_dense = false;
  for (bool m : c.layer_is_moe) needs_dense |= !m;
  if (needs_dense) HILUM_RETURN_IF_ERROR(positive("intermediate_size", c.intermediate_size));
  for (size_t i = 0; i < c.sliding_window.size(); ++i) {
    if (c.sliding_window[i] < 0) return bad("sliding_window", "must not be negative");
  }
  return Status::Ok();
}

}  // namespace

Status compute_rope_tables(RopeConfig& rope, int64_t max_position_embeddings) {
  const int64_t dim = rope.dim;
  if (dim <= 0 || dim % 2 != 0) return bad_input("RoPE dimension must be positive and even");
  const int64_t half = dim / 2;
  rope.inv_freq.assign(static_cast<size_t>(half), 0.0f);
  // transformers computes base ** (arange(0, dim, 2) / dim) in float32.
  auto pos_freq = [&](int64_t i) {
    const float expo = static_cast<float>(2 * i) / static_cast<float>(dim);
    return static_cast<float>(std::pow(rope.theta, static_cast<double>(expo)));
  };
  rope.attention_scaling = 1.0f;
  switch (rope.type) {
    case RopeConfig::Type::kDefault:
      for (int64_t i = 0; i < half; ++i) rope.inv_freq[i] = 1.0f / pos_freq(i);
      break;
    case RopeConfig::Type::kLinear:
      for (int64_t i = 0; i < half; ++i) {
        rope.inv_freq[i] = (1.0f / pos_freq(i)) / static_cast<float>(rope.factor);
      }
      break;
    case RopeConfig::Type::kLlama3: {
      const double factor = rope.factor;
      const double old_len = static_cast<double>(rope.original_max_position);
      const double low_wavelen = old_len / rope.low_freq_factor;
      const double high_wavelen = old_len / rope.high_freq_factor;
      for (int64_t i = 0; i < half; ++i) {
        const float inv = 1.0f / pos_freq(i);
        const double wavelen = 2.0 * M_PI / static_cast<double>(inv);
        float out = inv;
        if (wavelen > low_wavelen) out = static_cast<float>(inv / factor);
        const bool medium = !(wavelen < high_wavelen) && !(wavelen > low_wavelen);
        if (medium) {
          const double smooth =
              (old_len / wavelen - rope.low_freq_factor) / (rope.high_freq_factor - rope.low_freq_factor);
          out = static_cast<float>((1.0 - smooth) * out / factor + smooth * out);
        }
        rope.inv_freq[i] = out;
      }
      break;
    }
    case RopeConfig::Type::kYarn: {
      const double factor = rope.factor;
      const double base = rope.theta;
      const double orig = static_cast<double>(rope.original_max_position > 0 ? rope.original_max_position
                                                                             : max_position_embeddings);
      if (rope.attention_factor) {
        rope.attention_scaling = static_cast<float>(*rope.attention_factor);
      } else if (rope.mscale != 0.0 && rope.mscale_all_dim != 0.0) {
        rope.attention_scaling = static_cast<float>(yarn_get_mscale(factor, rope.mscale) /
                                                    yarn_get_mscale(factor, rope.mscale_all_dim));
      } else {
        rope.attention_scaling = static_cast<float>(yarn_get_mscale(factor, 1.0));
      }
      auto correction_dim = [&](double rotations) {
        return (static_cast<double>(dim) * std::log(orig / (rotations * 2.0 * M_PI))) /
               (2.0 * std::log(base));
      };
      double low = correction_dim(rope.beta_fast);
      double high = correction_dim(rope.beta_slow);
      if (rope.truncate) {
        low = std::floor(low);
        high = std::ceil(high);
      }
      low = std::max(low, 0.0);
      high = std::min(high, static_cast<double>(dim - 1));
      if (low == high) high += 0.001;
      for (int64_t i = 0; i < half; ++i) {
        const float pf = pos_freq(i);
        const float extrapolation = 1.0f / pf;
        const float interpolation = 1.0f / (static_cast<float>(factor) * pf);
        float ramp = static_cast<float>((static_cast<double>(i) - low) / (high - low));
        ramp = std::clamp(ramp, 0.0f, 1.0f);
        const float extrapolation_factor = 1.0f - ramp;
        rope.inv_freq[i] =
            interpolation * (1.0f - extrapolation_factor) + extrapolation * extrapolation_factor;
      }
      break;
    }
  }
  return Status::Ok();
}

Result<TextConfig> parse_text_config(const std::string& json_text, const std::string& name) {
  json j;
  try {
    j = json::parse(json_text);
  } catch (const std::exception& e) {
    return bad_input(name + ": not valid JSON (" + e.what() + ")");
  }
  if (!j.is_object()) return bad_input(name + ": expected a JSON object");
  ConfigReader r(j, name);
  if (!r.has("model_type")) return bad_input(name + ": field 'model_type' is missing");
  const std::string model_type = r.string("model_type");
  if (!r.ok()) return r.finish("").error();
  const FamilyDef* family = find_family(model_type);
  if (!family) {
    return unsupported(name + ": field 'model_type' value '" + model_type +
                       "' is not supported (supported: " + known_model_types() + ")");
  }
  TextConfig c;
  c.family = family->family;
  c.model_type = model_type;
  family->parse(r, c);
  // Switches a family does not read are fine while they are off.
  for (const char* key :
       {"sliding_window", "use_sliding_window", "layer_types", "rope_scaling", "rope_parameters", "clip_qkv",
        "attention_bias", "mlp_bias", "qkv_bias", "use_mrope"}) {
    r.ignore_if_off(key);
  }
  HILUM_RETURN_IF_ERROR(r.finish("model_type '" + model_type + "'"));
  if (c.sliding_window.empty())
    c.sliding_window.assign(static_cast<size_t>(std::max<int64_t>(c.num_layers, 0)), 0);
  if (c.layer_is_moe.empty())
    c.layer_is_moe.assign(static_cast<size_t>(std::max<int64_t>(c.num_layers, 0)), false);
  HILUM_RETURN_IF_ERROR(validate(c, name));
  if (c.rope.dim == 0) c.rope.dim = c.mla ? c.qk_rope_head_dim : c.head_dim;
  Status rs = compute_rope_tables(c.rope, c.max_position_embeddings);
  if (!rs.ok()) return rs.error().with_context(name);
  // Softmax scale: head_dim^-0.5; MLA adds YaRN's mscale(factor, mscale_all_dim)^2.
  c.attn_scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(c.q_head_dim())));
  if (c.mla && c.rope.type != RopeConfig::Type::kDefault && c.rope.mscale_all_dim != 0.0) {
    const double m = yarn_get_mscale(c.rope.factor, c.rope.mscale_all_dim);
    c.attn_scale = static_cast<float>(c.attn_scale * m * m);
  }
  return c;
}

Result<TextConfig> read_text_config(const fs::path& dir) {
  const fs::path path = dir / "config.json";
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return bad_input(dir.string() + ": not a model directory");
  if (!fs::exists(path, ec))
    return bad_input(path.string() + ": missing (not a Hugging Face model directory?)");
  HILUM_ASSIGN_OR_RETURN(std::string text, read_file(path));
  HILUM_ASSIGN_OR_RETURN(TextConfig c, parse_text_config(text, path.string()));
  const fs::path gen = dir / "generation_config.json";
  if (fs::exists(gen, ec)) {
    HILUM_ASSIGN_OR_RETURN(std::string gtext, read_file(gen));
    json g;
    try {
      g = json::parse(gtext);
    } catch (const std::exception& e) {
      return bad_input(gen.string() + ": not valid JSON (" + e.what() + ")");
    }
    ConfigReader gr(g, gen.string());
    for (int64_t e : gr.integer_or_list("eos_token_id")) {
      const auto id = static_cast<int32_t>(e);
      if (std::find(c.eos_token_ids.begin(), c.eos_token_ids.end(), id) == c.eos_token_ids.end()) {
        c.eos_token_ids.push_back(id);
      }
    }
    if (!gr.ok()) return gr.finish("").error();
  }
  for (int32_t e : c.eos_token_ids) {
    if (e < 0 || e >= c.vocab_size) {
      return bad_input(path.string() + ": eos_token_id " + std::to_string(e) +
                       " is outside the vocabulary (" + std::to_string(c.vocab_size) + ")");
    }
  }
  return c;
}

}  // namespace hilum::moe
