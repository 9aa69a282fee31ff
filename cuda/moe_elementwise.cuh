// Element-wise and normalisation kernels of the text engine: embedding lookup,
// RMSNorm (with fused residual add), bias, clamp, bf16 conversion, gated
// activations, RoPE, and deterministic random weights. Host wrappers are in
// cuda/moe_kernels.h; CPU references in model/moe/cpu_kernels.h.
#pragma once

#include "cuda/moe_common.cuh"

namespace hilum::cuda::moe::detail {

__global__ void embed_kernel(const uint16_t* table, int64_t dim, const int32_t* ids, float* out);
__global__ void rms_norm_kernel(float* x, int64_t ldx, const float* delta, int64_t ld_delta, const float* w,
                                int64_t dim, float eps, float* y, int64_t ldy, uint16_t* yb, int64_t ldyb);
__global__ void add_bias_kernel(float* x, int64_t ld, const float* bias, int64_t T, int64_t n);
__global__ void clamp_kernel(float* x, int64_t ld, int64_t T, int64_t n, float limit);
__global__ void to_bf16_kernel(const float* x, int64_t ldx, int64_t T, int64_t n, uint16_t* out, int64_t ldo);
__global__ void glu_kernel(int act, const float* gu, int64_t rows, int64_t inter, float* h, uint16_t* hb);
__global__ void rope_kernel(float* x, int64_t ld, int64_t head_stride, int64_t offset, int64_t half,
                            const float* inv_freq, float scaling, int interleaved, const int32_t* positions);
__global__ void greedy_advance_kernel(const float* logits, int64_t V, int32_t* ids, int32_t* positions,
                                      int32_t* history);
__global__ void fill_random_kernel(uint16_t* w, int64_t n, float std, float mean, uint64_t seed);

}  // namespace hilum::cuda::moe::detail
