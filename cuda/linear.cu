#include <cublas_v2.h>

#include <climits>

#include "cuda/common.cuh"
#include "cuda/epilogue.h"
#include "cuda/linear.h"

namespace hilum::cuda {
namespace {

Status blas_check(cublasStatus_t s, const char* what) {
  if (s == CUBLAS_STATUS_SUCCESS) return Status::Ok();
  return internal_error(std::string(what) + ": cuBLAS status " + std::to_string(static_cast<int>(s)));
}

constexpr size_t kWorkspaceBytes = size_t{4} << 20;

}  // namespace

struct Blas::Impl {
  const Stream* stream = nullptr;
  cublasHandle_t handle = nullptr;
  DeviceBuffer workspace;
  ~Impl() {
    if (handle) cublasDestroy(handle);
  }
};

Blas::Blas(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Blas::~Blas() = default;

Result<std::unique_ptr<Blas>> Blas::create(const Stream& stream) {
  auto impl = std::make_unique<Impl>();
  impl->stream = &stream;
  HILUM_RETURN_IF_ERROR(blas_check(cublasCreate(&impl->handle), "cublasCreate"));
  HILUM_RETURN_IF_ERROR(
      blas_check(cublasSetStream(impl->handle, as_stream(stream.native())), "cublasSetStream"));
  HILUM_ASSIGN_OR_RETURN(impl->workspace, DeviceBuffer::allocate(kWorkspaceBytes));
  HILUM_RETURN_IF_ERROR(blas_check(cublasSetWorkspace(impl->handle, impl->workspace.data(), kWorkspaceBytes),
                                   "cublasSetWorkspace"));
  HILUM_RETURN_IF_ERROR(
      blas_check(cublasSetMathMode(impl->handle, CUBLAS_DEFAULT_MATH), "cublasSetMathMode"));
  HILUM_RETURN_IF_ERROR(
      blas_check(cublasSetPointerMode(impl->handle, CUBLAS_POINTER_MODE_HOST), "cublasSetPointerMode"));
  return std::unique_ptr<Blas>(new Blas(std::move(impl)));
}

Status Blas::linear_f32(int64_t rows, int64_t in_features, int64_t out_features, const float* x,
                        const float* w, const float* bias, float* y) {
  if (rows == 0 || out_features == 0) return Status::Ok();
  if (rows > INT_MAX || in_features > INT_MAX || out_features > INT_MAX) {
    return internal_error("linear_f32: dimensions beyond cuBLAS's int range");
  }
  float beta = 0.0f;
  if (bias) {
    HILUM_RETURN_IF_ERROR(broadcast_rows_f32(*impl_->stream, bias, rows, out_features, y));
    beta = 1.0f;
  }
  const float alpha = 1.0f;
  // Row-major y[rows, out] is column-major y^T[out, rows] = w[out, in] (column-major
  // w^T, transposed back) * x^T (column-major [in, rows]).
  const int m = static_cast<int>(out_features), n = static_cast<int>(rows), k = static_cast<int>(in_features);
  return blas_check(
      cublasSgemm(impl_->handle, CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, &alpha, w, k, x, k, &beta, y, m),
      "cublasSgemm");
}

}  // namespace hilum::cuda
