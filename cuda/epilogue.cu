#include "cuda/epilogue.cuh"
#include "cuda/epilogue.h"

namespace hilum::cuda {
namespace {

template <typename T>
Status launch_epilogue(cudaStream_t s, void* y, const float* bias, const void* z, int64_t rows, int64_t c,
                       bool relu) {
  const long long total = static_cast<long long>(rows) * c;
  if (total == 0) return Status::Ok();
  constexpr int kThreads = 256;
  const bool vec =
      c % 8 == 0 && reinterpret_cast<uintptr_t>(y) % 16 == 0 && reinterpret_cast<uintptr_t>(z) % 16 == 0;
  if (vec) {
    bias_residual_relu_kernel<T, 8><<<grid_for(total / 8, kThreads), kThreads, 0, s>>>(
        static_cast<T*>(y), bias, static_cast<const T*>(z), rows, c, relu);
  } else {
    bias_residual_relu_kernel<T, 1><<<grid_for(total, kThreads), kThreads, 0, s>>>(
        static_cast<T*>(y), bias, static_cast<const T*>(z), rows, c, relu);
  }
  return launch_check("bias_residual_relu_nhwc");
}

}  // namespace

Status bias_residual_relu_nhwc(const Stream& stream, Precision precision, void* y, const float* bias,
                               const void* z, int64_t rows, int64_t c, bool relu) {
  cudaStream_t s = as_stream(stream.native());
  return precision == Precision::kF16 ? launch_epilogue<__half>(s, y, bias, z, rows, c, relu)
                                      : launch_epilogue<__nv_bfloat16>(s, y, bias, z, rows, c, relu);
}

Status broadcast_rows_f32(const Stream& stream, const float* bias, int64_t rows, int64_t c, float* y) {
  const long long total = static_cast<long long>(rows) * c;
  if (total == 0) return Status::Ok();
  constexpr int kThreads = 256;
  broadcast_rows_kernel<<<grid_for(total, kThreads), kThreads, 0, as_stream(stream.native())>>>(bias, rows, c,
                                                                                                y);
  return launch_check("broadcast_rows_f32");
}

}  // namespace hilum::cuda
