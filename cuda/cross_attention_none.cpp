// Cross-attention API of a build without CUDA: every call is an error.
#include "cuda/cross_attention.h"

namespace hilum::cuda {

bool cross_attention_tensor_core_supports(int) { return false; }

Status cross_attention(const void*, const void*, const void*, void*, const CrossAttentionShape&,
                       AttentionDType, float, CrossAttentionKernel, void*) {
  return unsupported("this Hilum build has no CUDA support (HILUM_WITH_CUDA=OFF)");
}

Result<double> time_cross_attention(const CrossAttentionShape&, AttentionDType, CrossAttentionKernel, int,
                                    int) {
  return unsupported("this Hilum build has no CUDA support (HILUM_WITH_CUDA=OFF)");
}

}  // namespace hilum::cuda
