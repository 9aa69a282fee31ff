// Expert routing: which top_k experts each token visits and with what weight,
// for every router family (see RouterKind). This is the CPU reference of the
// CUDA router kernel.
#pragma once

#include <cstdint>

#include "model/moe/config.h"

namespace hilum::moe {

// logits: [T, E] router logits (x . W_router^T, fp32). score_bias: [E]
// (deepseek_v3's e_score_correction_bias) or null. Writes expert ids [T, K]
// and weights [T, K], K = rc.top_k, each token's experts in descending order of
// the score that chose them.
void route_tokens(const RouterConfig& rc, const float* logits, int64_t T, const float* score_bias,
                  int32_t* expert_ids, float* expert_weights);

}  // namespace hilum::moe
