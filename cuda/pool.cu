#include "cuda/pool.cuh"
#include "cuda/pool.h"

namespace hilum::cuda {
namespace {

template <typename T>
Status launch_max_pool(cudaStream_t s, const void* x, int64_t n, int64_t h, int64_t w, int64_t c, int kernel,
                       int stride, int pad, void* y) {
  const int ho = static_cast<int>((h + 2 * pad - kernel) / stride + 1);
  const int wo = static_cast<int>((w + 2 * pad - kernel) / stride + 1);
  if (ho <= 0 || wo <= 0 || n == 0 || c == 0) return Status::Ok();
  constexpr int kThreads = 256;
  const bool vec =
      c % 8 == 0 && reinterpret_cast<uintptr_t>(x) % 16 == 0 && reinterpret_cast<uintptr_t>(y) % 16 == 0;
  const long long items = static_cast<long long>(n) * ho * wo * (vec ? c / 8 : c);
  if (vec) {
    max_pool_nhwc_kernel<T, 8><<<grid_for(items, kThreads), kThreads, 0, s>>>(
        static_cast<const T*>(x), n, static_cast<int>(h), static_cast<int>(w), c, ho, wo, kernel, stride, pad,
        static_cast<T*>(y));
  } else {
    max_pool_nhwc_kernel<T, 1><<<grid_for(items, kThreads), kThreads, 0, s>>>(
        static_cast<const T*>(x), n, static_cast<int>(h), static_cast<int>(w), c, ho, wo, kernel, stride, pad,
        static_cast<T*>(y));
  }
  return launch_check("max_pool_nhwc");
}

}  // namespace

Status max_pool_nhwc(const Stream& stream, Precision precision, const void* x, int64_t n, int64_t h,
                     int64_t w, int64_t c, int kernel, int stride, int pad, void* y) {
  if (kernel < 1 || stride < 1 || pad < 0 || 2 * pad > kernel)
    return internal_error("max_pool_nhwc: bad window");
  cudaStream_t s = as_stream(stream.native());
  return precision == Precision::kF16
             ? launch_max_pool<__half>(s, x, n, h, w, c, kernel, stride, pad, y)
             : launch_max_pool<__nv_bfloat16>(s, x, n, h, w, c, kernel, stride, pad, y);
}

Status global_avg_pool_nhwc(const Stream& stream, Precision precision, const void* x, int64_t n, int64_t hw,
                            int64_t c, float* y) {
  const long long total = static_cast<long long>(n) * c;
  if (total == 0 || hw == 0) return Status::Ok();
  constexpr int kThreads = 256;
  cudaStream_t s = as_stream(stream.native());
  if (precision == Precision::kF16) {
    global_avg_pool_nhwc_kernel<__half>
        <<<grid_for(total, kThreads), kThreads, 0, s>>>(static_cast<const __half*>(x), n, hw, c, y);
  } else {
    global_avg_pool_nhwc_kernel<__nv_bfloat16>
        <<<grid_for(total, kThreads), kThreads, 0, s>>>(static_cast<const __nv_bfloat16*>(x), n, hw, c, y);
  }
  return launch_check("global_avg_pool_nhwc");
}

}  // namespace hilum::cuda
