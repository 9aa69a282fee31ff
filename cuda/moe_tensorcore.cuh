// Tensor-core kernels of the text engine's prefill (bf16 WMMA 16x16x16, fp32
// accumulation): causal flash attention over the fp32 KV cache (tiles
// rounded to bf16 in shared memory), and the grouped expert GEMMs that run
// every expert's tokens without padding, tiles scheduled on the device from
// group_by_expert's tile offsets.
#pragma once

#include "cuda/moe_common.cuh"

namespace hilum::cuda::moe::detail {

constexpr int kFaRows = 64;  // queries per block (4 warps of 16)
constexpr int kFaKeys = 64;  // keys per tile

constexpr int kGemmBM = kGroupedTileRows;  // pair rows per block
constexpr int kGemmBN = 128;               // output columns per block (GLU: 64 gate + 64 up)
constexpr int kGemmBK = 32;
constexpr int kGemmStages = 3;
constexpr int kGemmLd = kGemmBK + 8;  // bf16 per shared row (padding against bank conflicts)

struct GroupedGemmParams {
  const uint16_t* a;  // rows: gathered token rows (GATHER) or sorted pair rows
  int64_t lda;
  const int32_t* sorted_pairs;
  int top_k;
  const int32_t* offsets;
  const int32_t* tile_offsets;
  int experts;
  const uint16_t* w;  // expert e: w + e * rows_per_expert * kd
  int64_t n, kd;
  uint16_t* out_b;  // GLU output, bf16 [pairs, n]
  float* out_f;     // plain output, fp32 [pairs, n]
  int act;
};

template <bool GLU, bool GATHER>
__global__ void grouped_gemm_kernel(GroupedGemmParams p);

__global__ void flash_prefill_kernel(const float* q, int64_t ldq, int64_t T, int nh, int slot, int64_t pos0,
                                     int64_t window, float scale, KvLayout kv, const float* k_cache,
                                     const float* v_cache, float* out, uint16_t* out_b, int64_t ldo);

}  // namespace hilum::cuda::moe::detail
