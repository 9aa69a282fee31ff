// olmoe: llama attention with RMSNorm over the whole q and k projections
// (before RoPE, optional clip_qkv), and a MoE FFN of fine-grained experts
// (64, top-8) with a softmax router; renormalisation per norm_topk_prob
// (false in the published model); no shared expert.
#include "model/moe/family.h"

namespace hilum::moe {
namespace {

void parse(ConfigReader& r, TextConfig& c) {
  parse_common(r, c, CommonDefaults{1e-5, 10000.0, false});
  c.qkv_bias = c.o_bias = r.boolean("attention_bias", false);
  c.qk_norm = true;
  if (auto clip = r.optional_number("clip_qkv")) c.clip_qkv = static_cast<float>(*clip);
  c.moe_intermediate_size = r.integer("intermediate_size");
  c.router.kind = RouterKind::kSoftmaxTopK;
  c.router.num_experts = static_cast<int>(r.integer("num_experts", 64));
  c.router.top_k = static_cast<int>(r.integer("num_experts_per_tok", 8));
  c.router.norm_topk_prob = r.boolean("norm_topk_prob", false);
  // transformers' OlmoeModel builds a plain causal mask whatever sliding_window says.
  r.ignore({"sliding_window"});
  parse_layer_types(r, c, 0);
  c.layer_is_moe.assign(static_cast<size_t>(std::max<int64_t>(c.num_layers, 0)), true);
  parse_rope(r, c, c.head_dim, 10000.0);
}

Status load_layer(LoadContext& ctx, int index, Layer& layer) {
  const std::string p = layer_prefix(index);
  const TextConfig& c = ctx.cfg;
  HILUM_RETURN_IF_ERROR(ctx.attention_block(p, layer));
  layer.is_moe = true;
  HILUM_ASSIGN_OR_RETURN(layer.moe.router.weight,
                         ctx.ck.f32(p + ".mlp.gate.weight", {c.router.num_experts, c.hidden_size}));
  return ctx.experts(p + ".mlp", "", layer.moe.experts);
}

}  // namespace

extern const FamilyDef kOlmoeFamily{"olmoe", Family::kOlmoe, parse, load_layer};

}  // namespace hilum::moe
