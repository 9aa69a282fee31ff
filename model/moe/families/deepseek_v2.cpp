// deepseek_v2: multi-head latent attention (q through q_lora_rank or a plain
// q_proj; k/v from a kv_lora_rank latent; RoPE on interleaved pairs of the
// qk_rope_head_dim slice), dense layers before first_k_dense_replace, then MoE
// with shared experts. Router: softmax scores, 'greedy' top-k or
// 'group_limited_greedy' (the best topk_group groups by their best expert
// first), weights x routed_scaling_factor, no renormalisation (transformers
// ignores norm_topk_prob for this family).
#include "model/log.h"
#include "model/moe/families/deepseek_common.h"

namespace hilum::moe {
namespace {

void parse(ConfigReader& r, TextConfig& c) {
  deepseek::parse_shared(r, c, deepseek::Defaults{1407, 64, 2, std::nullopt, 0, 1.0});
  c.mlp_bias = r.boolean("mlp_bias", false);
  const std::string method = r.string("topk_method", "greedy");
  if (method == "greedy") {
    c.router.kind = RouterKind::kSoftmaxGreedy;
  } else if (method == "group_limited_greedy") {
    c.router.kind = RouterKind::kSoftmaxGroupLimited;
  } else {
    r.fail(r.field_error("topk_method",
                         "value '" + method + "' is not supported (greedy, group_limited_greedy)",
                         ErrorKind::kUnsupported));
  }
  c.router.n_group = static_cast<int>(r.optional_integer("n_group").value_or(1));
  c.router.topk_group = static_cast<int>(r.optional_integer("topk_group").value_or(1));
  const std::string scoring = r.string("scoring_func", "softmax");
  if (scoring != "softmax") {
    r.fail(r.field_error("scoring_func", "value '" + scoring + "' is not supported for deepseek_v2 (softmax)",
                         ErrorKind::kUnsupported));
  }
  if (r.boolean("norm_topk_prob", false)) {
    log_warning(r.file() + ": norm_topk_prob is true; like transformers, deepseek_v2 does not renormalise");
  }
  // transformers' DeepseekV2 always rotates interleaved pairs (complex multiply).
  r.ignore({"rope_interleave"});
  parse_rope(r, c, c.qk_rope_head_dim, 10000.0);
  c.rope.layout = RopeLayout::kInterleaved;
}

Status load_router(LoadContext& ctx, const std::string& mlp, Moe& m) {
  // An nn.Linear in transformers, so LoRA may target it.
  HILUM_ASSIGN_OR_RETURN(
      m.router, ctx.linear(mlp + ".gate", ctx.cfg.router.num_experts, ctx.cfg.hidden_size, Bias::kNone));
  return Status::Ok();
}

Status load_layer(LoadContext& ctx, int index, Layer& layer) {
  return deepseek::load_layer(ctx, index, layer, load_router);
}

}  // namespace

extern const FamilyDef kDeepseekV2Family{"deepseek_v2", Family::kDeepseekV2, parse, load_layer};

}  // namespace hilum::moe
