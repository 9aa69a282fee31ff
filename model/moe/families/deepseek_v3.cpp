// deepseek_v3: deepseek_v2's attention and layer layout with the 'noaux_tc'
// router: sigmoid scores; choice by score + e_score_correction_bias, first the
// best topk_group of n_group groups (scored by the sum of their two best
// experts), then the top-k experts inside them; weights are the unbiased
// sigmoid scores, renormalised when norm_topk_prob, x routed_scaling_factor.
// RoPE rotates interleaved pairs unless rope_interleave is false.
#include "model/moe/families/deepseek_common.h"

namespace hilum::moe {
namespace {

void parse(ConfigReader& r, TextConfig& c) {
  deepseek::parse_shared(r, c, deepseek::Defaults{2048, 256, 1, 8, 3, 2.5});
  if (r.boolean("mlp_bias", false)) {
    r.fail(
        r.field_error("mlp_bias", "is true, but deepseek_v3's MLPs have no bias", ErrorKind::kUnsupported));
  }
  const std::string method = r.string("topk_method", "noaux_tc");
  if (method != "noaux_tc") {
    r.fail(r.field_error("topk_method", "value '" + method + "' is not supported for deepseek_v3 (noaux_tc)",
                         ErrorKind::kUnsupported));
  }
  const std::string scoring = r.string("scoring_func", "sigmoid");
  if (scoring != "sigmoid") {
    r.fail(r.field_error("scoring_func", "value '" + scoring + "' is not supported for deepseek_v3 (sigmoid)",
                         ErrorKind::kUnsupported));
  }
  c.router.kind = RouterKind::kSigmoidNoAuxTc;
  c.router.n_group = static_cast<int>(r.integer("n_group", 8));
  c.router.topk_group = static_cast<int>(r.integer("topk_group", 4));
  c.router.norm_topk_prob = r.boolean("norm_topk_prob", true);
  const bool interleave = r.boolean("rope_interleave", true);
  parse_rope(r, c, c.qk_rope_head_dim, 10000.0);
  c.rope.layout = interleave ? RopeLayout::kInterleaved : RopeLayout::kHalf;
}

Status load_router(LoadContext& ctx, const std::string& mlp, Moe& m) {
  const int64_t E = ctx.cfg.router.num_experts;
  HILUM_ASSIGN_OR_RETURN(m.router.weight, ctx.ck.f32(mlp + ".gate.weight", {E, ctx.cfg.hidden_size}));
  HILUM_ASSIGN_OR_RETURN(m.score_bias, ctx.ck.f32(mlp + ".gate.e_score_correction_bias", {E}));
  return Status::Ok();
}

Status load_layer(LoadContext& ctx, int index, Layer& layer) {
  return deepseek::load_layer(ctx, index, layer, load_router);
}

}  // namespace

extern const FamilyDef kDeepseekV3Family{"deepseek_v3", Family::kDeepseekV3, parse, load_layer};

}  // namespace hilum::moe
