#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <map>
#include <string>

#include "cuda/device.h"
#include "cuda/moe_runtime.h"

namespace hilum::cuda::moe {
namespace {

Status cuda_status(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return Status::Ok();
  cudaGetLastError();
  return internal_error(std::string(what) + ": " + cudaGetErrorString(e));
}

Status blas_status(cublasStatus_t s, const char* what) {
  if (s == CUBLAS_STATUS_SUCCESS) return Status::Ok();
  return internal_error(std::string(what) + ": cuBLAS status " + std::to_string(static_cast<int>(s)));
}

}  // namespace

struct GpuContext::Impl {
  cudaStream_t stream = nullptr;
  cublasHandle_t blas = nullptr;
  std::map<int, cudaGraphExec_t> graphs;
  cudaGraph_t capturing = nullptr;
};

Result<std::unique_ptr<GpuContext>> GpuContext::create() {
  if (device_count() == 0) return unsupported("no CUDA device: " + unavailable_reason());
  std::unique_ptr<GpuContext> ctx(new GpuContext());
  ctx->impl_ = std::make_unique<Impl>();
  HILUM_RETURN_IF_ERROR(
      cuda_status(cudaStreamCreateWithFlags(&ctx->impl_->stream, cudaStreamNonBlocking), "cudaStreamCreate"));
  HILUM_RETURN_IF_ERROR(blas_status(cublasCreate(&ctx->impl_->blas), "cublasCreate"));
  HILUM_RETURN_IF_ERROR(
      blas_status(cublasSetStream(ctx->impl_->blas, ctx->impl_->stream), "cublasSetStream"));
  // Tensor-core bf16 GEMMs accumulate in fp32.
  HILUM_RETURN_IF_ERROR(
      blas_status(cublasSetMathMode(ctx->impl_->blas, CUBLAS_DEFAULT_MATH), "cublasSetMathMode"));
  return std::move(ctx);
}

GpuContext::~GpuContext() {
  if (!impl_) return;
  drop_graphs();
  if (impl_->blas) cublasDestroy(impl_->blas);
  if (impl_->stream) cudaStreamDestroy(impl_->stream);
}

Stream GpuContext::stream() const { return impl_->stream; }

Status GpuContext::synchronize() {
  return cuda_status(cudaStreamSynchronize(impl_->stream), "cudaStreamSynchronize");
}

Status GpuContext::gemm(int64_t M, int64_t N, int64_t K, const bf16* A, int64_t lda, const bf16* W,
                        int64_t ldw, float* C, int64_t ldc, float beta) {
  if (M <= 0 || N <= 0) return Status::Ok();
  const float alpha = 1.0f;
  // Row-major C = A W^T is column-major C^T = W A^T: W with OP_T, A with OP_N.
  return blas_status(cublasGemmEx(impl_->blas, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(N),
                                  static_cast<int>(M), static_cast<int>(K), &alpha, W, CUDA_R_16BF,
                                  static_cast<int>(ldw), A, CUDA_R_16BF, static_cast<int>(lda), &beta, C,
                                  CUDA_R_32F, static_cast<int>(ldc), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                     "cublasGemmEx");
}

Status GpuContext::gemm_f32(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* W, int64_t ldw,
                            float* C, int64_t ldc, float beta) {
  if (M <= 0 || N <= 0) return Status::Ok();
  const float alpha = 1.0f;
  return blas_status(cublasGemmEx(impl_->blas, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(N), static_cast<int>(M),
                                  static_cast<int>(K), &alpha, W, CUDA_R_32F, static_cast<int>(ldw), A, CUDA_R_32F,
                                  static_cast<int>(lda), &beta, C, CUDA_R_32F, static_cast<int>(ldc),
                                  CUBLAS_COMPUTE_32F_PEDANTIC, CUBLAS_GEMM_DEFAULT),
                     "cublasGemmEx (fp32)");
}

Status GpuContext::gemm_batched(int64_t M, int64_t N, int64_t K, const bf16* A, int64_t lda, int64_t stride_a,
                                const bf16* W, int64_t ldw, int64_t stride_w, float* C, int64_t ldc,
                                int64_t stride_c, int64_t batch, float beta) {
  if (M <= 0 || N <= 0 || batch <= 0) return Status::Ok();
  const float alpha = 1.0f;
  return blas_status(
      cublasGemmStridedBatchedEx(impl_->blas, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(N),
                                 static_cast<int>(M), static_cast<int>(K), &alpha, W, CUDA_R_16BF,
                                 static_cast<int>(ldw), stride_w, A, CUDA_R_16BF, static_cast<int>(lda),
                                 stride_a, &beta, C, CUDA_R_32F, static_cast<int>(ldc), stride_c,
                                 static_cast<int>(batch), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
      "cublasGemmStridedBatchedEx");
}

Status GpuContext::copy_to_device(void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return Status::Ok();
  return cuda_status(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, impl_->stream),
                     "cudaMemcpyAsync H2D");
}

Status GpuContext::copy_to_host(void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return Status::Ok();
  return cuda_status(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, impl_->stream),
                     "cudaMemcpyAsync D2H");
}

Status GpuContext::copy_device(void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return Status::Ok();
  return cuda_status(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, impl_->stream),
                     "cudaMemcpyAsync D2D");
}

Status GpuContext::memset(void* dst, int value, size_t bytes) {
  if (bytes == 0) return Status::Ok();
  return cuda_status(cudaMemsetAsync(dst, value, bytes, impl_->stream), "cudaMemsetAsync");
}

Status GpuContext::begin_capture() {
  return cuda_status(cudaStreamBeginCapture(impl_->stream, cudaStreamCaptureModeThreadLocal),
                     "cudaStreamBeginCapture");
}

Status GpuContext::end_capture(int key) {
  cudaGraph_t graph = nullptr;
  HILUM_RETURN_IF_ERROR(cuda_status(cudaStreamEndCapture(impl_->stream, &graph), "cudaStreamEndCapture"));
  cudaGraphExec_t exec = nullptr;
  const cudaError_t e = cudaGraphInstantiate(&exec, graph, 0);
  cudaGraphDestroy(graph);
  HILUM_RETURN_IF_ERROR(cuda_status(e, "cudaGraphInstantiate"));
  auto it = impl_->graphs.find(key);
  if (it != impl_->graphs.end()) cudaGraphExecDestroy(it->second);
  impl_->graphs[key] = exec;
  return Status::Ok();
}

bool GpuContext::has_graph(int key) const { return impl_->graphs.count(key) > 0; }

Status GpuContext::launch_graph(int key) {
  auto it = impl_->graphs.find(key);
  if (it == impl_->graphs.end()) return internal_error("no CUDA graph captured for this batch size");
  return cuda_status(cudaGraphLaunch(it->second, impl_->stream), "cudaGraphLaunch");
}

void GpuContext::drop_graphs() {
  for (auto& [k, g] : impl_->graphs) cudaGraphExecDestroy(g);
  impl_->graphs.clear();
}

Result<float> GpuContext::time_ms(const std::function<Status()>& body) {
  struct Events {
    cudaEvent_t a = nullptr, b = nullptr;
    ~Events() {
      if (a) cudaEventDestroy(a);
      if (b) cudaEventDestroy(b);
    }
  } ev;
  HILUM_RETURN_IF_ERROR(cuda_status(cudaEventCreate(&ev.a), "cudaEventCreate"));
  HILUM_RETURN_IF_ERROR(cuda_status(cudaEventCreate(&ev.b), "cudaEventCreate"));
  HILUM_RETURN_IF_ERROR(cuda_status(cudaEventRecord(ev.a, impl_->stream), "cudaEventRecord"));
  HILUM_RETURN_IF_ERROR(body());
  HILUM_RETURN_IF_ERROR(cuda_status(cudaEventRecord(ev.b, impl_->stream), "cudaEventRecord"));
  HILUM_RETURN_IF_ERROR(cuda_status(cudaEventSynchronize(ev.b), "cudaEventSynchronize"));
  float ms = 0;
  HILUM_RETURN_IF_ERROR(cuda_status(cudaEventElapsedTime(&ms, ev.a, ev.b), "cudaEventElapsedTime"));
  return ms;
}

Result<DeviceBuffer> DeviceBuffer::allocate(size_t bytes) {
  DeviceBuffer b;
  HILUM_ASSIGN_OR_RETURN(b.ptr_, malloc_device(bytes));
  b.bytes_ = bytes;
  return std::move(b);
}

DeviceBuffer::~DeviceBuffer() { free_device(ptr_); }

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& o) noexcept {
  if (this != &o) {
    free_device(ptr_);
    ptr_ = o.ptr_;
    bytes_ = o.bytes_;
    o.ptr_ = nullptr;
    o.bytes_ = 0;
  }
  return *this;
}

}  // namespace hilum::cuda::moe
