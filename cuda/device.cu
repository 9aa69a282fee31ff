#include "cuda/device.h"

#include <cuda_runtime.h>

#include <string>

namespace hilum::cuda {
namespace {

Status check(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return Status::Ok();
  return internal_error(std::string(what) + ": " + cudaGetErrorString(err));
}

}  // namespace

bool built_with_cuda() { return true; }

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky error so later calls are not confused
    return 0;
  }
  return n;
}

std::string unavailable_reason() {
  int n = 0;
  cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) {
    cudaGetLastError();
    return std::string("no CUDA device: ") + cudaGetErrorString(err);
  }
  if (n == 0) return "no CUDA device found";
  return "";
}

Result<DeviceInfo> device_info(int device) {
  cudaDeviceProp prop{};
  if (auto s = check(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties"); !s.ok()) {
    return s.error();
  }
  DeviceInfo info;
  info.name = prop.name;
  info.compute_major = prop.major;
  info.compute_minor = prop.minor;
  info.multiprocessors = prop.multiProcessorCount;
  info.total_memory = prop.totalGlobalMem;
  return info;
}

Result<void*> malloc_device(size_t bytes) {
  void* p = nullptr;
  if (bytes == 0) bytes = 1;
  cudaError_t err = cudaMalloc(&p, bytes);
  if (err != cudaSuccess) {
    cudaGetLastError();
    return internal_error("cudaMalloc of " + std::to_string(bytes) + " bytes: " + cudaGetErrorString(err));
  }
  return p;
}

void free_device(void* ptr) {
  if (ptr) cudaFree(ptr);
}

Status copy_to_device(void* dst, const void* src, size_t bytes) {
  return check(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice), "cudaMemcpy H2D");
}
Status copy_to_host(void* dst, const void* src, size_t bytes) {
  return check(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost), "cudaMemcpy D2H");
}
Status copy_device_to_device(void* dst, const void* src, size_t bytes) {
  return check(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToDevice), "cudaMemcpy D2D");
}
Status memset_device(void* dst, int value, size_t bytes) {
  return check(cudaMemset(dst, value, bytes), "cudaMemset");
}
Status synchronize() { return check(cudaDeviceSynchronize(), "cudaDeviceSynchronize"); }

}  // namespace hilum::cuda
