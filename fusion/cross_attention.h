// Multi-head cross-attention core of the fusion head: image-token queries of
// every candidate of a study attend to the keys/values of one clinical text.
//
//   out[m, h, :] = softmax_t(scale * q[m, h, :] . k[t, h, :]) @ v[t, h, :]
//
// Layouts are row-major: q and out are [queries, heads * head_dim] (queries =
// candidates x image tokens), k and v are [keys, heads * head_dim] (keys = text
// tokens), so head h occupies columns [h * head_dim, (h + 1) * head_dim).
// With keys == 0 the output is all zeros (an empty note contributes nothing).
//
// The fp32 CPU function here is the numerical reference for the CUDA kernel in
// cuda/cross_attention.h (fp16/bf16 inputs, fp32 accumulation).
#pragma once

#include <cstdint>

#include "model/result.h"
#include "model/tensor.h"

namespace hilum {

struct AttentionShape {
  int64_t queries = 0;
  int64_t keys = 0;
  int heads = 1;
  int head_dim = 64;
  int64_t width() const { return static_cast<int64_t>(heads) * head_dim; }
};

// fp32 reference (max-subtracted softmax, sums in fp32, threads over queries).
// Pointers must hold the sizes the shape implies; `out` may not alias inputs.
void cross_attention_reference(const float* q, const float* k, const float* v, float* out,
                               const AttentionShape& shape, float scale);

// Tensor front end: q [M, H*D], k/v [T, H*D] f32 on the CPU. Device::kCUDA runs
// the CUDA kernel on fp16 copies (error when CUDA is unavailable or the shape
// is unsupported there); the result is always an f32 CPU tensor [M, H*D].
Result<Tensor> cross_attention(const Tensor& q, const Tensor& k, const Tensor& v, int heads, float scale,
                               Device device = Device::kCPU);

}  // namespace hilum
