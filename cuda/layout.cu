#include "cuda/layout.cuh"
#include "cuda/layout.h"

namespace hilum::cuda {

Status nchw_f32_to_nhwc(const Stream& stream, const float* src, int64_t n, int64_t c, int64_t h, int64_t w,
                        int64_t c_padded, Precision precision, void* dst) {
  if (c_padded < c) return internal_error("nchw_f32_to_nhwc: c_padded < c");
  const long long total = static_cast<long long>(n) * h * w * c_padded;
  if (total == 0) return Status::Ok();
  constexpr int kThreads = 256;
  const unsigned blocks = grid_for(total, kThreads);
  cudaStream_t s = as_stream(stream.native());
  if (precision == Precision::kF16) {
    nchw_f32_to_nhwc_kernel<__half>
        <<<blocks, kThreads, 0, s>>>(src, n, c, h * w, c_padded, static_cast<__half*>(dst));
  } else {
    nchw_f32_to_nhwc_kernel<__nv_bfloat16>
        <<<blocks, kThreads, 0, s>>>(src, n, c, h * w, c_padded, static_cast<__nv_bfloat16*>(dst));
  }
  return launch_check("nchw_f32_to_nhwc");
}

Status nhwc_to_nchw_f32(const Stream& stream, const void* src, int64_t n, int64_t c, int64_t h, int64_t w,
                        Precision precision, float* dst) {
  const long long total = static_cast<long long>(n) * c * h * w;
  if (total == 0) return Status::Ok();
  constexpr int kThreads = 256;
  const unsigned blocks = grid_for(total, kThreads);
  cudaStream_t s = as_stream(stream.native());
  if (precision == Precision::kF16) {
    nhwc_to_nchw_f32_kernel<__half>
        <<<blocks, kThreads, 0, s>>>(static_cast<const __half*>(src), n, c, h * w, dst);
  } else {
    nhwc_to_nchw_f32_kernel<__nv_bfloat16>
        <<<blocks, kThreads, 0, s>>>(static_cast<const __nv_bfloat16*>(src), n, c, h * w, dst);
  }
  return launch_check("nhwc_to_nchw_f32");
}

}  // namespace hilum::cuda
