// qwen2: llama with biases on the q/k/v projections (not on o_proj) and
// optional sliding-window attention on the upper layers.
#include "model/moe/family.h"

namespace hilum::moe {
namespace {

void parse(ConfigReader& r, TextConfig& c) {
  parse_common(r, c, CommonDefaults{1e-6, 10000.0, false});
  parse_qwen_attention_bias(r, c);
  c.intermediate_size = r.integer("intermediate_size");
  parse_qwen_sliding_window(r, c);
  parse_rope(r, c, c.head_dim, 10000.0);
}

}  // namespace

extern const FamilyDef kQwen2Family{"qwen2", Family::kQwen2, parse, load_dense_layer};

}  // namespace hilum::moe
