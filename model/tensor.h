// Tensor: a typed, shaped, contiguous (C order) block of memory on the CPU or a
// CUDA device.
//
// Ownership: a Tensor shares its Storage through a shared_ptr, so copies are
// cheap views of the same memory; clone() makes a deep copy. A Tensor may view
// memory it does not own (a memory-mapped safetensors file, a caller's buffer):
// the Storage then keeps the owner alive through `keepalive`.
//
// Thread safety: concurrent const use is safe; writing the same storage from
// several threads is the caller's business.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "model/result.h"

namespace hilum {

enum class DType : uint8_t {
  kF32,
  kF16,
  kBF16,
  kF64,
  kI64,
  kI32,
  kI16,
  kI8,
  kU8,
  kBool,
  kI4,  // packed signed 4-bit, two per byte, low nibble first
};

enum class Device : uint8_t { kCPU, kCUDA };

std::string_view dtype_name(DType t);  // "f32", "bf16", ...
Result<DType> parse_dtype(std::string_view name);  // accepts dtype_name() spellings
std::string_view device_name(Device d);            // "cpu" / "cuda"

// Bytes for `count` elements (packed int4 rounds up to whole bytes).
size_t dtype_bytes(DType t, size_t count);
bool dtype_is_float(DType t);

using Shape = std::vector<int64_t>;
std::string shape_string(const Shape& shape);  // "[2, 3, 4]"
int64_t shape_numel(const Shape& shape);

class Storage {
 public:
  // Allocates `nbytes` on `device` (CUDA allocation fails with an error when
  // the build has no CUDA or no GPU is present).
  static Result<std::shared_ptr<Storage>> allocate(size_t nbytes, Device device);
  // Wraps memory owned elsewhere; `keepalive` holds the owner.
  static std::shared_ptr<Storage> wrap(void* data, size_t nbytes, Device device,
                                       std::shared_ptr<void> keepalive);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }

 private:
  Storage() = default;
  void* data_ = nullptr;
  size_t nbytes_ = 0;
  Device device_ = Device::kCPU;
  bool owned_ = false;
  std::shared_ptr<void> keepalive_;
};

class Tensor {
 public:
  Tensor() = default;  // an empty tensor: defined() is false

  // New uninitialised / zero-filled CPU tensors. These abort only on out-of-memory.
  static Tensor empty(Shape shape, DType dtype);
  static Tensor zeros(Shape shape, DType dtype);
  // New tensor on `device`; an error when CUDA is unavailable.
  static Result<Tensor> empty_on(Shape shape, DType dtype, Device device);
  // A CPU f32 tensor holding `values` (numel must match the shape).
  static Tensor from_f32(Shape shape, std::span<const float> values);
  // A view of existing memory (no copy).
  static Tensor view_of(std::shared_ptr<Storage> storage, size_t byte_offset, Shape shape,
                        DType dtype);

  bool defined() const { return storage_ != nullptr; }
  DType dtype() const { return dtype_; }
  Device device() const { return storage_ ? storage_->device() : Device::kCPU; }
  const Shape& shape() const { return shape_; }
  int64_t dim(int i) const { return shape_[i < 0 ? i + static_cast<int>(shape_.size()) : i]; }
  int rank() const { return static_cast<int>(shape_.size()); }
  int64_t numel() const { return shape_numel(shape_); }
  size_t nbytes() const { return dtype_bytes(dtype_, static_cast<size_t>(numel())); }

  void* raw() const { return static_cast<char*>(storage_->data()) + offset_; }
  template <typename T>
  T* data() const { return static_cast<T*>(raw()); }
  template <typename T>
  std::span<T> span() const { return {data<T>(), static_cast<size_t>(numel())}; }

  const std::shared_ptr<Storage>& storage() const { return storage_; }
  size_t byte_offset() const { return offset_; }

  // Same memory, new shape (numel must match).
  Result<Tensor> reshape(Shape shape) const;
  // Rows [begin, end) along dimension 0, sharing memory.
  Result<Tensor> slice0(int64_t begin, int64_t end) const;

  // Deep copy on the same device.
  Tensor clone() const;
  // Copy to another device (same dtype); a no-op view when already there.
  Result<Tensor> to(Device device) const;
  // CPU dtype conversion among the float types and integers (a copy; a view
  // when the dtype already matches). Packed int4 is not converted here.
  Result<Tensor> to_dtype(DType dtype) const;

  std::string describe() const;  // "bf16[2, 3] cpu"

 private:
  std::shared_ptr<Storage> storage_;
  size_t offset_ = 0;
  Shape shape_;
  DType dtype_ = DType::kF32;
};

}  // namespace hilum
