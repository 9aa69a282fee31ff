// Device API of a build without CUDA: no devices, every request an error.
#include "cuda/device.h"

namespace hilum::cuda {
namespace {
Error not_built() { return unsupported("this Hilum build has no CUDA support (HILUM_WITH_CUDA=OFF)"); }
}  // namespace

bool built_with_cuda() { return false; }
int device_count() { return 0; }
std::string unavailable_reason() { return "built without CUDA"; }
Result<DeviceInfo> device_info(int) { return not_built(); }
Result<void*> malloc_device(size_t) { return not_built(); }
void free_device(void*) {}
Status copy_to_device(void*, const void*, size_t) { return not_built(); }
Status copy_to_host(void*, const void*, size_t) { return not_built(); }
Status copy_device_to_device(void*, const void*, size_t) { return not_built(); }
Status memset_device(void*, int, size_t) { return not_built(); }
Status synchronize() { return Status::Ok(); }

}  // namespace hilum::cuda
