// mixtral: llama attention (optionally sliding-window on every layer) with a
// sparse MoE FFN: softmax router, top-k, renormalised weights, SwiGLU experts.
// Checkpoints name the block `block_sparse_moe` (w1 gate, w3 up, w2 down per
// expert); transformers 5 names it `mlp` with fused expert tensors.
#include "model/moe/family.h"

namespace hilum::moe {
namespace {

void parse(ConfigReader& r, TextConfig& c) {
  parse_common(r, c, CommonDefaults{1e-5, 1e6, false});
  c.qkv_bias = c.o_bias = r.boolean("attention_bias", false);
  c.moe_intermediate_size = r.integer("intermediate_size");
  c.router.kind = RouterKind::kSoftmaxTopK;
  c.router.num_experts = static_cast<int>(r.integer("num_local_experts", 8));
  c.router.top_k = static_cast<int>(r.integer("num_experts_per_tok", 2));
  c.router.norm_topk_prob = r.boolean("norm_topk_prob", true);
  c.layer_is_moe.assign(static_cast<size_t>(std::max<int64_t>(c.num_layers, 0)), true);
  const int64_t window = r.optional_integer("sliding_window").value_or(0);
  parse_layer_types(r, c, window);
  parse_rope(r, c, c.head_dim, 1e6);
}

Status load_layer(LoadContext& ctx, int index, Layer& layer) {
  const std::string p = layer_prefix(index);
  const TextConfig& c = ctx.cfg;
  HILUM_RETURN_IF_ERROR(ctx.attention_block(p, layer));
  layer.is_moe = true;
  // The router is a plain parameter in transformers 5 (not LoRA-adaptable).
  const std::string mlp = p + ".mlp", legacy = p + ".block_sparse_moe";
  const std::string gate =
      ctx.ck.contains(mlp + ".gate.weight") ? mlp + ".gate.weight" : legacy + ".gate.weight";
  HILUM_ASSIGN_OR_RETURN(layer.moe.router.weight, ctx.ck.f32(gate, {c.router.num_experts, c.hidden_size}));
  return ctx.experts(mlp, legacy, layer.moe.experts);
}

}  // namespace

extern const FamilyDef kMixtralFamily{"mixtral", Family::kMixtral, parse, load_layer};

}  // namespace hilum::moe
