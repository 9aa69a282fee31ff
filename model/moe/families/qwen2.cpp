// qwen2: llama with biases on the q/k/v projections (not on o_proj) and
// optional sliding-window attention on the upper layers.
#include "model/moe/family.h"

namespace hilum::moe {
namespace {

void parse(ConfigReader& r, TextConfig& c) {
  parse_common(r, c, CommonDefaults{1e-6, 10000.0, false});
  // transformers' Qwen2Attention always has q/k/v biases; load them when present.
  c.qkv_bias = r.boolean("qkv_bias", true);
  c.o_bias = false;
  r.ignore({"attention_bias"});
  c.intermediate_size = r.integer("intermediate_size");
  parse_qwen_sliding_window(r, c);
  parse_rope(r, c, c.head_dim, 10000.0);
}

Status load_layer(LoadContext& ctx, int index, Layer& layer) {
  const std::string p = layer_prefix(index);
  const TextConfig& c = ctx.cfg;
  HILUM_RETURN_IF_ERROR(ctx.attention_block(p, layer));
  return ctx.mlp(p + ".mlp", c.intermediate_size, layer.mlp);
}

}  // namespace

extern const FamilyDef kQwen2Family{"qwen2", Family::kQwen2, parse, load_layer};

}  // namespace hilum::moe
