// qwen2_moe: qwen2 attention (q/k/v biases, optional sliding window) and a MoE
// FFN with a softmax router (optional renormalisation) plus one shared expert
// whose output is scaled by sigmoid(x . shared_expert_gate). Layers listed in
// mlp_only_layers, or off the decoder_sparse_step grid, use a dense MLP.
#include <algorithm>

#include "model/moe/family.h"

namespace hilum::moe {
namespace {

void parse(ConfigReader& r, TextConfig& c) {
  parse_common(r, c, CommonDefaults{1e-6, 10000.0, false});
  parse_qwen_attention_bias(r, c);
  c.intermediate_size = r.integer("intermediate_size", 0);
  c.moe_intermediate_size = r.integer("moe_intermediate_size");
  c.shared_intermediate_size = r.integer("shared_expert_intermediate_size");
  c.shared_expert_gate = true;
  c.router.kind = RouterKind::kSoftmaxTopK;
  c.router.num_experts = static_cast<int>(r.integer("num_experts"));
  c.router.top_k = static_cast<int>(r.integer("num_experts_per_tok"));
  c.router.norm_topk_prob = r.boolean("norm_topk_prob", false);
  const int64_t step = r.integer("decoder_sparse_step", 1);
  const std::vector<int64_t> mlp_only = r.integer_list("mlp_only_layers");
  if (step <= 0) r.fail(r.field_error("decoder_sparse_step", "must be positive"));
  c.layer_is_moe.assign(static_cast<size_t>(std::max<int64_t>(c.num_layers, 0)), false);
  for (int64_t i = 0; i < c.num_layers && step > 0; ++i) {
    const bool dense = std::find(mlp_only.begin(), mlp_only.end(), i) != mlp_only.end();
    c.layer_is_moe[i] = !dense && c.router.num_experts > 0 && (i + 1) % step == 0;
  }
  parse_qwen_sliding_window(r, c);
  parse_rope(r, c, c.head_dim, 10000.0);
}

Status load_layer(LoadContext& ctx, int index, Layer& layer) {
  const std::string p = layer_prefix(index);
  const TextConfig& c = ctx.cfg;
  HILUM_RETURN_IF_ERROR(ctx.attention_block(p, layer));
  if (!c.layer_is_moe[index]) return ctx.mlp(p + ".mlp", c.intermediate_size, layer.mlp);
  layer.is_moe = true;
  Moe& m = layer.moe;
  HILUM_ASSIGN_OR_RETURN(m.router.weight,
                         ctx.ck.f32(p + ".mlp.gate.weight", {c.router.num_experts, c.hidden_size}));
  HILUM_RETURN_IF_ERROR(ctx.experts(p + ".mlp", "", m.experts));
  m.has_shared = true;
  HILUM_RETURN_IF_ERROR(ctx.mlp(p + ".mlp.shared_expert", c.shared_intermediate_size, m.shared));
  HILUM_ASSIGN_OR_RETURN(m.shared_gate,
                         ctx.linear(p + ".mlp.shared_expert_gate", 1, c.hidden_size, Bias::kNone));
  return Status::Ok();
}

}  // namespace

extern const FamilyDef kQwen2MoeFamily{"qwen2_moe", Family::kQwen2Moe, parse, load_layer};

}  // namespace hilum::moe
