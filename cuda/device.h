// The whole device-management surface the rest of Hilum sees. Nothing here
// includes cuda_runtime.h; kernels live in per-family .cu/.cuh pairs beside this.
//
// In a build without CUDA (HILUM_WITH_CUDA=OFF) every function still exists:
// device_count() is 0 and the others return an error saying CUDA is not built.
#pragma once

#include <cstddef>
#include <string>

#include "model/result.h"

namespace hilum::cuda {

// True when this binary was compiled with CUDA support.
bool built_with_cuda();

// Number of usable CUDA devices (0 without CUDA, without a driver, or without a GPU).
int device_count();

struct DeviceInfo {
  std::string name;
  int compute_major = 0;
  int compute_minor = 0;
  int multiprocessors = 0;
  size_t total_memory = 0;
};
Result<DeviceInfo> device_info(int device = 0);

// Why no GPU is usable, for messages and skipped tests ("built without CUDA",
// "no CUDA device: <driver message>").
std::string unavailable_reason();

// Raw device memory. The caller frees with free_device().
Result<void*> malloc_device(size_t bytes);
void free_device(void* ptr);

Status copy_to_device(void* dst, const void* src, size_t bytes);
Status copy_to_host(void* dst, const void* src, size_t bytes);
Status copy_device_to_device(void* dst, const void* src, size_t bytes);
Status memset_device(void* dst, int value, size_t bytes);
Status synchronize();

}  // namespace hilum::cuda
