// The fused decode path of the text engine (up to 16 activation rows): one
// launch per step of a layer, weights read once with 16-byte loads,
// activations staged in shared memory in a bank-conflict-free order.
//
// Staging layout: a row chunk of KC fp32 values (KC a multiple of 256) is
// stored so that lane l of a warp finds the 8 values it multiplies with its
// 8 weights (k = 256 s + 8 l .. +7) as two float4 at 256 s + 4 l and
// 256 s + 128 + 4 l: a warp's float4 loads are then contiguous.
#pragma once

#include "cuda/moe_common.cuh"

namespace hilum::cuda::moe::detail {

constexpr int kFusedThreads = 256;        // 8 warps
constexpr int kQkvThreads = 128;          // qkv_finish: one block per (token, head)
constexpr int kStageFloats = 8192;        // staged activations per block (32 KB)
constexpr int kWholeStageFloats = 10240;  // expert_down_combine staging every routed row (40 KB)
constexpr int kMaxFusedRows = 16;         // activation rows
constexpr int kFlashDecodeKeys = 64;      // keys per tile of the split decode kernel
constexpr int kMaxDecodeSplits = 32;

__host__ __device__ constexpr int stage_pos(int kk) {
  return (kk & ~255) | ((kk & 4) << 5) | ((kk & 248) >> 1) | (kk & 3);
}

constexpr int kDownRowsPerWarp = 1;  // expert_down_combine

// Rows per warp and loads in flight per row, by the number of activation rows.
template <int MAXT>
struct FusedShape {
  static constexpr int R = MAXT == 1 || MAXT >= 4 ? 2 : 1;
  static constexpr int U = MAXT <= 1 ? 8 : (MAXT <= 4 ? 4 : 2);
  static constexpr int KC = kStageFloats / MAXT;
};

struct StagedGemvParams {
  const uint16_t* w;
  const float* bias;
  int64_t n, k;
  const float* x;
  int64_t ldx;
  int rows;
  const float* norm_w;
  float eps;
  float* y;
  int64_t ldy;
  int accumulate;
  int y_ready;
  int act;
  int prefetch;
  int kc;  // staging stride: min(kStageFloats / MAXT, k rounded up to 256)
};

struct ExpertParams {
  const uint16_t* w;  // gate_up [E, 2I, H] or down [E, H, I]
  int64_t H, I;
  const float* x;  // expert_glu: token rows (ldx); expert_down: h rows by pair (stride I)
  int64_t ldx;
  const int32_t* ids;
  const float* weights;
  int K;
  int rows;    // tokens
  float* out;  // expert_glu: h [pairs, I]; expert_down: residual x (ldo)
  int64_t ldo;
  int32_t* groups;
  const uint16_t* shared_w;  // [H, Is]
  const float* shared_bias;  // [H] or null
  int64_t Is;
  const float* hs;
  const float* shared_gate_logit;
  int act;
  int prefetch;
  int kc;     // staging stride
  int whole;  // expert_down_combine: every routed row staged at once (rows * K * ipad <= kWholeStageFloats)
  int ipad;   // their row stride: I rounded up to 256
};

template <int MAXT, bool GLU>
__global__ void staged_gemv_kernel(StagedGemvParams a);
template <int MAXT>
__global__ void expert_glu_kernel(ExpertParams a);
template <int MAXT>
__global__ void expert_down_combine_kernel(ExpertParams a);
template <int R, int U>
__global__ void expert_down_b1_kernel(ExpertParams a);
__global__ void expert_glu_b1_kernel(ExpertParams a);

struct RouteFusedParams {
  RouterParams p;
  const float* x;
  int64_t ldx, H;
  const float* norm_w;
  float eps;
  const uint16_t* router_w;
  const float* score_bias;
  const uint16_t* shared_gate_w;
  float* hn;
  int32_t* ids;
  float* weights;
  float* shared_gate_logit;
  float* logits;      // [rows, E] scratch between the blocks of a token
  int32_t* counters;  // [rows], zero between launches
  int prefetch;
  int one_pass;  // x read once (H <= 2048, 16-byte loads) and the top-k by the whole block
  int cluster;   // the blocks of a token form one cluster: logits gathered in block 0's shared memory
};

__global__ void route_fused_kernel(RouteFusedParams a);
__global__ void qkv_finish_kernel(QkvFinish f, KvLayout kv, float* k_cache, float* v_cache);
__global__ void flash_decode_kernel(const float* q, int64_t ldq, int nh, const int32_t* slots,
                                    const int32_t* positions, int64_t window, float scale, KvLayout kv,
                                    const float* k_cache, const float* v_cache, int splits, float* partial,
                                    int32_t* counters, float* out, int64_t ldo);

}  // namespace hilum::cuda::moe::detail
