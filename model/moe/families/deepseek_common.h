// Internal: what deepseek_v2 and deepseek_v3 share — multi-head latent
// attention, dense layers before first_k_dense_replace, routed experts plus
// shared experts after it. The routers differ and live in each family's file.
#pragma once

#include <algorithm>

#include "model/moe/family.h"

namespace hilum::moe::deepseek {

struct Defaults {
  int64_t moe_intermediate_size;
  int64_t n_routed_experts;
  int64_t n_shared_experts;
  std::optional<int64_t> num_experts_per_tok;
  int64_t first_k_dense_replace;
  double routed_scaling_factor;
};

// Reads the fields both versions share. Router fields are left to the caller.
inline void parse_shared(ConfigReader& r, TextConfig& c, const Defaults& d) {
  parse_common(r, c, CommonDefaults{1e-6, 10000.0, false});
  c.mla = true;
  c.qkv_bias = c.o_bias = r.boolean("attention_bias", false);
  // q_lora_rank: absent means transformers' default (1536); null means a plain q_proj.
  c.q_lora_rank = r.present("q_lora_rank") ? r.optional_integer("q_lora_rank").value_or(0) : 1536;
  c.kv_lora_rank = r.integer("kv_lora_rank", 512);
  c.qk_nope_head_dim = r.integer("qk_nope_head_dim", 128);
  c.qk_rope_head_dim = r.integer("qk_rope_head_dim", 64);
  c.v_head_dim = r.integer("v_head_dim", 128);
  if (auto qk = r.optional_integer("qk_head_dim"); qk && *qk != c.qk_nope_head_dim + c.qk_rope_head_dim) {
    r.fail(r.field_error("qk_head_dim", "must equal qk_nope_head_dim + qk_rope_head_dim"));
  }
  c.intermediate_size = r.integer("intermediate_size", 0);
  c.moe_intermediate_size = r.integer("moe_intermediate_size", d.moe_intermediate_size);
  // n_routed_experts / n_shared_experts: null means none.
  c.router.num_experts =
      static_cast<int>(r.present("n_routed_experts") ? r.optional_integer("n_routed_experts").value_or(0)
                                                     : d.n_routed_experts);
  const int64_t shared =
      r.present("n_shared_experts") ? r.optional_integer("n_shared_experts").value_or(0) : d.n_shared_experts;
  c.shared_intermediate_size = shared > 0 ? c.moe_intermediate_size * shared : 0;
  auto k = r.optional_integer("num_experts_per_tok");
  if (!k) k = d.num_experts_per_tok;
  c.router.top_k = static_cast<int>(k.value_or(0));
  c.router.routed_scaling_factor =
      static_cast<float>(r.number("routed_scaling_factor", d.routed_scaling_factor));
  const int64_t first_dense = r.integer("first_k_dense_replace", d.first_k_dense_replace);
  const int64_t freq = r.integer("moe_layer_freq", 1);
  if (freq != 1) {
    r.fail(r.field_error("moe_layer_freq",
                         "must be 1 (transformers builds every layer from first_k_dense_replace "
                         "on as MoE)",
                         ErrorKind::kUnsupported));
  }
  if (c.num_kv_heads != c.num_heads) {
    r.fail(r.field_error("num_key_value_heads",
                         "must equal num_attention_heads for multi-head latent attention",
                         ErrorKind::kUnsupported));
  }
  c.layer_is_moe.assign(static_cast<size_t>(std::max<int64_t>(c.num_layers, 0)), false);
  for (int64_t i = 0; i < c.num_layers; ++i) {
    c.layer_is_moe[i] = c.router.num_experts > 0 && i >= first_dense;
  }
  r.ignore({"num_nextn_predict_layers"});
  parse_layer_types(r, c, 0);
}

// Layer loading; `load_router` reads mlp.gate (and the v3 score bias).
inline Status load_layer(LoadContext& ctx, int index, Layer& layer,
                         Status (*load_router)(LoadContext&, const std::string&, Moe&)) {
  const std::string p = layer_prefix(index);
  const TextConfig& c = ctx.cfg;
  HILUM_RETURN_IF_ERROR(ctx.attention_block(p, layer, /*latent=*/true));
  if (!c.layer_is_moe[index]) return ctx.mlp(p + ".mlp", c.intermediate_size, layer.mlp);
  layer.is_moe = true;
  Moe& m = layer.moe;
  HILUM_RETURN_IF_ERROR(load_router(ctx, p + ".mlp", m));
  HILUM_RETURN_IF_ERROR(ctx.experts(p + ".mlp", "", m.experts));
  if (c.shared_intermediate_size > 0) {
    m.has_shared = true;
    HILUM_RETURN_IF_ERROR(ctx.mlp(p + ".mlp.shared_experts", c.shared_intermediate_size, m.shared));
  }
  return Status::Ok();
}

}  // namespace hilum::moe::deepseek
