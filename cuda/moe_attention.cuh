// Attention kernels of the text engine over fp32 KV caches [slot, position,
// kv_head, dim]: cache appends (plain and multi-head latent), split-K decode
// attention with a combine pass ("flash decoding"), and tiled causal prefill
// attention with an online softmax. CPU reference: cpu::attention.
#pragma once

#include "cuda/moe_common.cuh"

namespace hilum::cuda::moe::detail {

constexpr int kDecodeChunk = 256;  // keys per split-K block
constexpr int kPrefillQ = 16;      // queries per prefill block
constexpr int kPrefillK = 32;      // keys per prefill tile

__global__ void kv_append_kernel(const float* k, int64_t ldk, const float* v, int64_t ldv,
                                 const int32_t* slots, const int32_t* positions, KvLayout kv, float* k_cache,
                                 float* v_cache);
__global__ void mla_append_kernel(const float* kvb, const float* k_pe, int64_t ld_pe, int nope, int rope_dim,
                                  const int32_t* slots, const int32_t* positions, KvLayout kv, float* k_cache,
                                  float* v_cache);
__global__ void decode_partial_kernel(const float* q, int64_t ldq, int nh, const int32_t* slots,
                                      const int32_t* positions, int64_t window, float scale, KvLayout kv,
                                      const float* k_cache, const float* v_cache, float* partial);
__global__ void decode_combine_kernel(const float* partial, int n_chunks, int nh, int dv, float* out,
                                      int64_t ldo);
__global__ void prefill_kernel(const float* q, int64_t ldq, int64_t T, int nh, int slot, int64_t pos0,
                               int64_t window, float scale, KvLayout kv, const float* k_cache,
                               const float* v_cache, float* out, int64_t ldo);

}  // namespace hilum::cuda::moe::detail
