// CUDA cross-attention of the fusion head: all image-token queries of a study
// (candidates x tokens) attend to the keys/values of one clinical text, in one
// launch. Maths and layouts as in fusion/cross_attention.h (the fp32 CPU
// reference): q/out [queries, heads*head_dim], k/v [keys, heads*head_dim],
// row-major, 16-bit floats in, fp32 accumulation and softmax, 16-bit out.
//
// Kernels: kTensorCore (flash-attention style: online softmax, mma.sync
// m16n8k16 for QK^T and PV; head_dim 32, 64 or 128, 16-byte aligned k/v and
// 4-byte aligned q/out) and kSimple (one warp per query row and head, any
// head_dim <= 256). kAuto picks the tensor-core kernel where it applies.
// No cuda_runtime.h here: pointers are device pointers, `stream` a cudaStream_t.
#pragma once

#include <cstdint>

#include "model/result.h"

namespace hilum::cuda {

enum class AttentionDType { kF16, kBF16 };
enum class CrossAttentionKernel { kAuto, kTensorCore, kSimple };

struct CrossAttentionShape {
  int64_t queries = 0;  // candidates x image tokens
  int64_t keys = 0;     // text tokens (0: the output is zeros)
  int heads = 1;
  int head_dim = 64;
};

// Whether the tensor-core kernel handles this head size.
bool cross_attention_tensor_core_supports(int head_dim);

// Launches asynchronously on `stream` (null: the default stream). Errors:
// kUnsupported without CUDA or for head_dim > 256 (or a forced kTensorCore the
// shape/alignment does not allow), kBadInput for negative sizes, kInternal for
// a failed launch.
Status cross_attention(const void* q, const void* k, const void* v, void* out,
                       const CrossAttentionShape& shape, AttentionDType dtype, float scale,
                       CrossAttentionKernel kernel = CrossAttentionKernel::kAuto, void* stream = nullptr);

// For benchmarks: fills device buffers with pseudo-random inputs, runs `warmup`
// launches, then times `iters` launches with CUDA events. Mean milliseconds per launch.
Result<double> time_cross_attention(const CrossAttentionShape& shape, AttentionDType dtype,
                                    CrossAttentionKernel kernel, int warmup, int iters);

}  // namespace hilum::cuda
