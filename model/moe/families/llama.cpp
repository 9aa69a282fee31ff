// llama: the dense decoder every other family starts from. Pre-norm residual
// blocks of grouped-query attention (RoPE, rotate_half) and a SwiGLU MLP.
#include "model/moe/family.h"

namespace hilum::moe {
namespace {

void parse(ConfigReader& r, TextConfig& c) {
  parse_common(r, c, CommonDefaults{1e-6, 10000.0, false});
  c.qkv_bias = c.o_bias = r.boolean("attention_bias", false);
  c.mlp_bias = r.boolean("mlp_bias", false);
  c.intermediate_size = r.integer("intermediate_size");
  parse_layer_types(r, c, 0);
  parse_rope(r, c, c.head_dim, 10000.0);
}

Status load_layer(LoadContext& ctx, int index, Layer& layer) {
  const std::string p = layer_prefix(index);
  const TextConfig& c = ctx.cfg;
  HILUM_RETURN_IF_ERROR(ctx.attention_block(p, layer));
  return ctx.mlp(p + ".mlp", c.intermediate_size, layer.mlp);
}

}  // namespace

extern const FamilyDef kLlamaFamily{"llama", Family::kLlama, parse, load_layer};

}  // namespace hilum::moe
