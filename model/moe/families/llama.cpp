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

}  // namespace

extern const FamilyDef kLlamaFamily{"llama", Family::kLlama, parse, load_dense_layer};

}  // namespace hilum::moe
