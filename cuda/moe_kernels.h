// CUDA kernels of the text engine (Mixture-of-Experts transformer), host side.
// Nothing here includes cuda_runtime.h: buffers are raw device pointers,
// bfloat16 values travel as uint16_t, and a stream is an opaque pointer
// (a cudaStream_t; null is the default stream). Every function only enqueues
// work; launch errors come back as a Status, kernel faults at the next sync.
//
// Activations are fp32, weights bf16 with fp32 accumulation. Each kernel's CPU
// reference is the fp32 code in model/moe/ (cpu_kernels.h, router.h); the
// conformance tests are tests/cuda/test_moe_*.cpp.
#pragma once

#include <cstdint>
#include <memory>

#include "model/result.h"

namespace hilum::cuda::moe {

using Stream = void*;
using bf16 = uint16_t;

// Where and how a kernel of the fused decode path is launched: `pdl` uses
// programmatic dependent launch (sm_90), so the kernel's blocks may start, and
// prefetch weights, while the previous kernel finishes; it waits for that
// kernel before reading activations.
struct Launch {
  Stream stream = nullptr;
  bool pdl = false;
};

enum class Act : int { kSilu = 0, kGelu = 1, kGeluTanh = 2, kRelu = 3 };

// ---- elementwise and normalisation ---------------------------------------------

// out[t, :] = bf16(table[ids[t], :]) as fp32. Ids must be valid.
Status embed(const bf16* table, int64_t dim, const int32_t* ids, int64_t T, float* out, Stream s,
             bool pdl = false);

// Optionally x[t] += delta[t] first (delta may be null; x is updated); then
// y = x / sqrt(mean(x^2) + eps) * w, written as fp32 (y; may be x itself with
// the same stride) and/or bf16 (yb). Null outputs are skipped.
Status rms_norm(float* x, int64_t ldx, const float* delta, int64_t ld_delta, const float* w, int64_t T,
                int64_t dim, float eps, float* y, int64_t ldy, bf16* yb, int64_t ldyb, Stream s);

// x[t, i] += bias[i] for i < n (row stride ld).
Status add_bias(float* x, int64_t ld, const float* bias, int64_t T, int64_t n, Stream s);
// x[i] = clamp(x[i], -limit, limit) for rows of n values.
Status clamp(float* x, int64_t ld, int64_t T, int64_t n, float limit, Stream s);
// out_bf16[t, i] = x[t, i].
Status to_bf16(const float* x, int64_t ldx, int64_t T, int64_t n, bf16* out, int64_t ldo, Stream s);

// h[r, i] = act(gu[r, i]) * gu[r, inter + i] (gu rows of 2*inter), as fp32 (h)
// and/or bf16 (hb); rows r < rows.
Status glu(Act act, const float* gu, int64_t rows, int64_t inter, float* h, bf16* hb, Stream s);

// RoPE in place on x[t, head, offset : offset + dim] for `heads` heads
// (head_stride apart, token stride ld), token t at position positions[t].
// inv_freq: dim/2 floats on the device; interleaved: DeepSeek's pairs (2i, 2i+1)
// instead of rotate_half (i, i + dim/2).
Status rope(float* x, int64_t T, int64_t heads, int64_t ld, int64_t head_stride, int64_t offset, int64_t dim,
            const float* inv_freq, float attention_scaling, bool interleaved, const int32_t* positions,
            Stream s);

// ---- matrix-vector products (decode: up to 16 rows of activations) --------------

constexpr int kMaxGemvRows = 16;

// y[t, o] (+)= sum_k x[t, k] * W[o, k] (+ bias[o]) for t < T <= 16, o < N.
// W: bf16 [N, K] row-major; x, y fp32 with row strides ldx, ldy.
Status gemv(const bf16* W, const float* bias, int64_t N, int64_t K, const float* x, int64_t ldx, int64_t T,
            float* y, int64_t ldy, bool accumulate, Stream s);

// ---- routing -----------------------------------------------------------------------

enum class RouterKind : int {
  kSoftmaxTopK = 0,
  kSoftmaxGreedy = 1,
  kSoftmaxGroupLimited = 2,
  kSigmoidNoAuxTc = 3
};

struct RouterParams {
  RouterKind kind = RouterKind::kSoftmaxTopK;
  int num_experts = 0;  // <= 1024
  int top_k = 0;        // <= 16
  bool norm_topk_prob = false;
  float routed_scaling_factor = 1.0f;
  int n_group = 1;  // <= 32
  int topk_group = 1;
};

// logits [T, E] -> ids [T, K], weights [T, K] (see model/moe/router.h).
Status route(const RouterParams& p, const float* logits, int64_t T, const float* score_bias, int32_t* ids,
             float* weights, Stream s);

// Groups the T*K (token, slot) pairs by expert: offsets[E + 1] (exclusive
// prefix of the counts), sorted_pairs[TK] (pair indices t*K + k, grouped by
// expert, any order inside an expert), pair_pos[TK] (inverse of sorted_pairs),
// max_count[1] (largest expert group), and active[E]: the experts with pairs,
// in increasing order, then -1. One block: T*K <= 1 << 20, E <= 1024.
// With tile_offsets (E + 1 values) also the exclusive prefix of
// ceil(count / tile_rows) per expert (the grouped GEMM's tile schedule).
Status group_by_expert(const int32_t* ids, int64_t TK, int E, int32_t* offsets, int32_t* sorted_pairs,
                       int32_t* pair_pos, int32_t* max_count, int32_t* active, Stream s,
                       int32_t* tile_offsets = nullptr, int tile_rows = 0);

// Decode-sized expert FFN over grouped pairs (every expert's group <= 16 pairs,
// which holds when T <= 16): for the pair at sorted position p of expert e,
//   h[p, i] = act(x[t] . gate_up[e, i]) * (x[t] . gate_up[e, I + i])   (i < I)
//   y[p, o] = h[p] . down[e, o]                                        (o < H)
// with t = sorted_pairs[p] / K. gate_up: bf16 [E, 2I, H]; down: bf16 [E, H, I].
// Blocks cover the active experts only (at most min(E, TK) of them).
Status expert_gate_up_gemv(Act act, const bf16* gate_up, int E, int64_t H, int64_t I, const float* x,
                           int64_t ldx, const int32_t* offsets, const int32_t* active,
                           const int32_t* sorted_pairs, int K, int64_t TK, float* h, Stream s);
Status expert_down_gemv(const bf16* down, int E, int64_t H, int64_t I, const float* h, const int32_t* offsets,
                        const int32_t* active, int K, int64_t TK, float* y, Stream s);

// Prefill-sized expert FFN via padded batches (TK = T*K pairs, max_rows >= the
// largest group): xp[e, j, :] = bf16(x[t]) for the j-th pair of expert e (rows
// j >= count are left as they are).
Status gather_padded(const float* x, int64_t ldx, int64_t H, const int32_t* offsets,
                     const int32_t* sorted_pairs, int K, int E, int64_t TK, int64_t max_rows, bf16* xp,
                     Stream s);
// hp[e, j, i] = bf16(act(gu[e, j, i]) * gu[e, j, I + i]) for j < count(e).
Status glu_padded(Act act, const float* gu, int E, int64_t TK, int64_t max_rows, int64_t I,
                  const int32_t* offsets, bf16* hp, Stream s);

// x[t, o] += sum_k weights[t, k] * y[row(t, k), o]  (+ gate(t) * shared[t, o])
// where row = pair_pos[t*K + k] for grouped rows (padded_rows == 0) or
// e*padded_rows + (pair_pos - offsets[e]) for padded rows. shared may be null;
// shared_gate_logit (may be null) gives gate(t) = sigmoid(logit[t]), else 1.
Status combine_experts(float* x, int64_t ldx, int64_t T, int64_t H, int K, const int32_t* ids,
                       const float* weights, const int32_t* pair_pos, const int32_t* offsets,
                       int64_t padded_rows, const float* y, const float* shared,
                       const float* shared_gate_logit, Stream s);

// ---- attention -----------------------------------------------------------------------

// KV caches are fp32 [slots, capacity, kv_heads, head dim].
struct KvLayout {
  int64_t capacity = 0;
  int kv_heads = 0;
  int dk = 0;  // key / query head size (<= 256)
  int dv = 0;  // value head size (<= 256)
};

// Writes k[t], v[t] (token stride ldk/ldv, heads contiguous) into the caches at
// (slot[t], positions[t]).
Status kv_append(const float* k, int64_t ldk, const float* v, int64_t ldv, int64_t T, const int32_t* slots,
                 const int32_t* positions, const KvLayout& kv, float* k_cache, float* v_cache, Stream s);

// Multi-head latent attention: builds per-head keys [nope | rope] and values
// from kv_b output kvb [T, nh, nope + dv] and the shared, rotated k_pe
// (token stride ld_pe), then appends them like kv_append.
Status mla_append(const float* kvb, const float* k_pe, int64_t ld_pe, int64_t T, int nope, int rope_dim,
                  const int32_t* slots, const int32_t* positions, const KvLayout& kv, float* k_cache,
                  float* v_cache, Stream s);

// Split-K decode attention ("flash decoding"): one query per row t, of slot
// slots[t] at position positions[t] (keys 0..position, or the last `window`).
// q: [T, nh, dk] (token stride ldq); out: [T, nh, dv] (token stride ldo).
// partial: scratch of decode_partial_floats() floats. The grid covers the whole
// capacity, so the launch shape does not depend on the positions (graph-safe).
int64_t decode_partial_floats(int64_t T, int nh, const KvLayout& kv);
Status attention_decode(const float* q, int64_t ldq, int64_t T, int nh, const int32_t* slots,
                        const int32_t* positions, int64_t window, float scale, const KvLayout& kv,
                        const float* k_cache, const float* v_cache, float* partial, float* out, int64_t ldo,
                        Stream s);

// Causal attention of T queries of one sequence in `slot` at positions
// pos0 .. pos0+T-1 over keys 0 .. pos0+T-1 (tiled, online softmax).
Status attention_prefill(const float* q, int64_t ldq, int64_t T, int nh, int slot, int64_t pos0,
                         int64_t window, float scale, const KvLayout& kv, const float* k_cache,
                         const float* v_cache, float* out, int64_t ldo, Stream s);

// ---- greedy decoding on the device ---------------------------------------------------------

// For each row b < B of logits [B, V]: ids[b] = argmax (lowest index on ties),
// positions[b] += 1, and history[b] = ids[b] when history is not null.
Status greedy_advance(const float* logits, int64_t B, int64_t V, int32_t* ids, int32_t* positions,
                      int32_t* history, Stream s, bool pdl = false);

// ---- fused decode path (up to 16 rows) ------------------------------------------------
//
// Bandwidth-bound kernels that read every weight row once per launch with
// 16-byte loads, activations staged in shared memory (fp32), fp32 accumulation.
// They take any inner size (multiples of 8 use the vector loads).

// y[t, o] (+)= W[o] . xin[t] (+ bias[o]) for t < rows <= 16, o < n, where
// xin[t] = x[t], or RMSNorm(x[t]) * norm_w (eps) when norm_w is set. With
// glu, W holds 2n rows (gate, then up) and
// y[t, o] = act(W[o] . xin[t] + bias[o]) * (W[n + o] . xin[t] + bias[n + o]).
struct StagedGemv {
  const bf16* w = nullptr;
  const float* bias = nullptr;
  int64_t n = 0, k = 0;
  const float* x = nullptr;
  int64_t ldx = 0, rows = 0;
  const float* norm_w = nullptr;
  float eps = 0.0f;
  float* y = nullptr;
  int64_t ldy = 0;
  bool accumulate = false;
  // With accumulate: the previous kernel does not write y, so (one row) the
  // values to add to are read before the wait for it.
  bool y_ready = false;
  bool glu = false;
  Act act = Act::kSilu;
};
Status staged_gemv(const StagedGemv& g, const Launch& l);

// The router of rows <= 16 tokens in one launch: hn[t] = RMSNorm(x[t]) *
// norm_w (row stride H), logits with the bf16 router weight [E, H] (eight rows
// per block, all blocks at once), top-k as route(); with shared_gate_w (bf16
// [1, H]) also shared_gate_logit[t]. When a token's blocks fit one cluster
// (at most 64 router rows) they gather the logits in the first block's shared
// memory, which routes; otherwise the last block of each token to finish
// routes from `logits`. logits: rows * E floats of scratch; counters:
// route_fused_counters(rows) ints, zero before the first launch (left zero).
// H <= kMaxFusedRouterHidden.
constexpr int64_t kMaxFusedRouterHidden = 8192;
int64_t route_fused_counters(int64_t max_rows);
Status route_fused(const RouterParams& p, const float* x, int64_t ldx, int64_t H, const float* norm_w,
                   float eps, const bf16* router_w, const float* score_bias, const bf16* shared_gate_w,
                   int64_t rows, float* hn, int32_t* ids, float* weights, float* shared_gate_logit,
                   float* logits, int32_t* counters, const Launch& l);

// Routed expert FFN of rows <= 16 tokens (ids [rows * K]), every active
// expert's weights read once. expert_glu: for each pair p = t*K + k with
// e = ids[p], h[p, i] = act(x[t] . gate_e[i]) * (x[t] . up_e[i]) (i < I;
// gate_up bf16 [E, 2I, H]); it also records the pairs of each expert in
// `groups` (expert_group_ints(rows * K) ints) for expert_down_combine, which
// adds to the residual x[t, o] += sum_k weights[t, k] * (down_e[o] . h[t*K+k])
// (down bf16 [E, H, I]) + g(t) * (shared_down[o] . hs[t] + shared_bias[o])
// when shared_down (bf16 [H, Is]; bias may be null) is set, with
// g(t) = sigmoid(shared_gate_logit[t]) or 1.
int64_t expert_group_ints(int64_t pairs);
Status expert_glu(Act act, const bf16* gate_up, int64_t H, int64_t I, const float* x, int64_t ldx,
                  const int32_t* ids, int K, int64_t rows, float* h, int32_t* groups, const Launch& l);
Status expert_down_combine(const bf16* down, int64_t H, int64_t I, const float* h, const int32_t* ids,
                           const float* weights, int K, int64_t rows, const int32_t* groups,
                           const bf16* shared_down, const float* shared_bias, int64_t Is, const float* hs,
                           const float* shared_gate_logit, float* x, int64_t ldx, const Launch& l);

// After the fused q | k | v projection (row stride ldp, nh query and nkv
// key/value heads of hd values): optional RMSNorm over the whole q and the
// whole k (q_norm_w [nh*hd], k_norm_w [nkv*hd]), clamp to +-clip (clip > 0),
// RoPE over the first rope_dim values of every q and k head (as rope()), q
// written back in place, k and v appended to the caches at (slots[t],
// positions[t]). One launch for rows tokens.
struct QkvFinish {
  float* proj = nullptr;
  int64_t ldp = 0, rows = 0;
  // Where the finished q goes (rows of ldq); null: back into proj, allowed
  // only without a q norm (the blocks of other heads still read the raw q
  // for the norm's sum of squares).
  float* q_out = nullptr;
  int64_t ldq = 0;
  int nh = 0, nkv = 0, hd = 0;
  const float* q_norm_w = nullptr;
  const float* k_norm_w = nullptr;
  float eps = 0.0f;
  float clip = 0.0f;
  int rope_dim = 0;
  const float* inv_freq = nullptr;
  float attention_scaling = 1.0f;
  bool interleaved = false;
  const int32_t* positions = nullptr;
  const int32_t* slots = nullptr;
};
Status qkv_finish(const QkvFinish& f, const KvLayout& kv, float* k_cache, float* v_cache, const Launch& l);

// Flash decoding with the keys of each query split into decode_splits() parts
// sized at run time from its position (graph-safe), the partial results
// combined by the last block of each head: no separate combine launch.
// partial: flash_decode_partial_floats() floats; counters: flash_decode_counters()
// ints, zero before the first launch (the kernel leaves them zero).
int decode_splits(int64_t rows, int nh, const KvLayout& kv);
int64_t flash_decode_partial_floats(int64_t max_rows, int nh, const KvLayout& kv);
int64_t flash_decode_counters(int64_t max_rows, int nh);
Status attention_decode_split(const float* q, int64_t ldq, int64_t rows, int nh, const int32_t* slots,
                              const int32_t* positions, int64_t window, float scale, const KvLayout& kv,
                              const float* k_cache, const float* v_cache, float* partial, int32_t* counters,
                              float* out, int64_t ldo, const Launch& l);

// ---- tensor-core prefill path (bf16 MMA, fp32 accumulation) ----------------------------

// Causal attention like attention_prefill() with Q, K, V rounded to bf16 for
// tensor-core products (fp32 softmax and accumulation). Needs dk and dv
// multiples of 16 (<= 256). Writes fp32 (out) and/or bf16 (out_b) rows.
bool attention_prefill_tc_supported(const KvLayout& kv);
Status attention_prefill_tc(const float* q, int64_t ldq, int64_t T, int nh, int slot, int64_t pos0,
                            int64_t window, float scale, const KvLayout& kv, const float* k_cache,
                            const float* v_cache, float* out, bf16* out_b, int64_t ldo, Stream s);

// Grouped expert GEMMs over the (token, expert) pairs grouped by
// group_by_expert(..., tile_offsets, kGroupedTileRows): no padding, no host
// synchronisation. Needs H and I multiples of 8.
constexpr int kGroupedTileRows = 64;
// hs[p, i] = bf16(act(x[t] . gate_e[i]) * (x[t] . up_e[i])) for the pair at
// sorted position p (token t = sorted_pairs[p] / K, expert e); x bf16 rows (ldx).
Status expert_gemm_glu(Act act, const bf16* x, int64_t ldx, const int32_t* sorted_pairs, int K,
                       const int32_t* offsets, const int32_t* tile_offsets, int E, int64_t TK,
                       const bf16* gate_up, int64_t H, int64_t I, bf16* hs, Stream s);
// ys[p, o] = hs[p] . down_e[o] (fp32 rows of H, sorted positions).
Status expert_gemm_down(const bf16* hs, const int32_t* offsets, const int32_t* tile_offsets, int E,
                        int64_t TK, const bf16* down, int64_t H, int64_t I, float* ys, Stream s);

// ---- random weights (benchmarks) ------------------------------------------------------

// w[i] = bf16(std * N(0,1)-ish hash noise of (seed, i)), deterministic.
Status fill_random_bf16(bf16* w, int64_t n, float std, float mean, uint64_t seed, Stream s);

}  // namespace hilum::cuda::moe
