// CPU fp32 kernels of the text engine: the numerical reference the CUDA
// kernels are checked against, and the CPU inference path. Multi-threaded on
// the hilum::parallel_for pool; all buffers are row-major and caller-owned.
#pragma once

#include <cstdint>

#include "model/moe/config.h"

namespace hilum::moe::cpu {

// y[t, 0:out] (row stride ldy) = x[t, 0:in] . w[o, 0:in] (+ bias[o]) for t < T.
// accumulate adds into y instead. Small T (decode) runs a GEMV over the rows of
// w; larger T the packed sgemm.
void linear(const float* x, int64_t T, int64_t in, const float* w, int64_t out, const float* bias, float* y,
            int64_t ldy, bool accumulate = false);

// y = x / sqrt(mean(x^2) + eps) * w, row by row (y may alias x).
void rms_norm(const float* x, int64_t T, int64_t dim, int64_t ldx, const float* w, float eps, float* y,
              int64_t ldy);

float activate(Activation act, float x);
// h[t, i] = act(gu[t, i]) * gu[t, inter + i] for a fused [T, 2*inter] gate|up.
void glu(Activation act, const float* gu, int64_t T, int64_t inter, float* h);

// Rotates x[t, head, offset : offset + rope.dim] in place for every head, token
// t at position pos0 + t. Row stride of a token is ld; heads are head_stride apart.
void rope(const RopeConfig& rope, float* x, int64_t T, int64_t heads, int64_t ld, int64_t head_stride,
          int64_t offset, int64_t pos0);
// cos/sin (times rope.attention_scaling) for one position: dim/2 values each.
void rope_angles(const RopeConfig& rope, int64_t position, float* cos_out, float* sin_out);

// Causal attention of T queries (positions pos0 .. pos0+T-1) over the cached
// keys/values 0 .. pos0+T-1. q: [T, nh, dk] with token stride ldq; k: [P, nkv,
// dk]; v: [P, nkv, dv]; out: [T, nh, dv] with token stride ldo. Query head h
// reads kv head h / (nh / nkv). window > 0 limits keys to the last `window`
// positions (the query's own included).
void attention(const float* q, int64_t T, int64_t nh, int64_t dk, int64_t ldq, const float* k, const float* v,
               int64_t nkv, int64_t dv, int64_t pos0, int64_t window, float scale, float* out, int64_t ldo);

}  // namespace hilum::moe::cpu
