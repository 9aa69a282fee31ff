#include "model/tensor.h"

#include <cstdlib>
#include <cstring>
#include <new>
#include <sstream>

#include "cuda/device.h"
#include "model/half.h"

namespace hilum {

std::string_view dtype_name(DType t) {
  switch (t) {
    case DType::kF32: return "f32";
    case DType::kF16: return "f16";
    case DType::kBF16: return "bf16";
    case DType::kF64: return "f64";
    case DType::kI64: return "i64";
    case DType::kI32: return "i32";
    case DType::kI16: return "i16";
    case DType::kI8: return "i8";
    case DType::kU8: return "u8";
    case DType::kBool: return "bool";
    case DType::kI4: return "i4";
  }
  return "?";
}

Result<DType> parse_dtype(std::string_view name) {
  for (DType t : {DType::kF32, DType::kF16, DType::kBF16, DType::kF64, DType::kI64, DType::kI32,
                  DType::kI16, DType::kI8, DType::kU8, DType::kBool, DType::kI4}) {
    if (dtype_name(t) == name) return t;
  }
  return bad_input("unknown dtype '" + std::string(name) + "' (expected f32, f16, bf16, ...)");
}

std::string_view device_name(Device d) { return d == Device::kCPU ? "cpu" : "cuda"; }

size_t dtype_bytes(DType t, size_t count) {
  switch (t) {
    case DType::kF64:
    case DType::kI64: return count * 8;
    case DType::kF32:
    case DType::kI32: return count * 4;
    case DType::kF16:
    case DType::kBF16:
    case DType::kI16: return count * 2;
    case DType::kI8:
    case DType::kU8:
    case DType::kBool: return count;
    case DType::kI4: return (count + 1) / 2;
  }
  return 0;
}

bool dtype_is_float(DType t) {
  return t == DType::kF32 || t == DType::kF16 || t == DType::kBF16 || t == DType::kF64;
}

std::string shape_string(const Shape& shape) {
  std::ostringstream os;
  os << '[';
  for (size_t i = 0; i < shape.size(); ++i) os << (i ? ", " : "") << shape[i];
  os << ']';
  return os.str();
}

int64_t shape_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// ---- Storage ---------------------------------------------------------------

Result<std::shared_ptr<Storage>> Storage::allocate(size_t nbytes, Device device) {
  std::shared_ptr<Storage> s(new Storage());
  s->nbytes_ = nbytes;
  s->device_ = device;
  s->owned_ = true;
  if (device == Device::kCPU) {
    // 64-byte alignment suits AVX-512 loads and oneDNN.
    size_t rounded = (nbytes + 63) / 64 * 64;
    s->data_ = std::aligned_alloc(64, rounded == 0 ? 64 : rounded);
    if (!s->data_) throw std::bad_alloc();
  } else {
    HILUM_ASSIGN_OR_RETURN(s->data_, cuda::malloc_device(nbytes));
  }
  return s;
}

std::shared_ptr<Storage> Storage::wrap(void* data, size_t nbytes, Device device,
                                       std::shared_ptr<void> keepalive) {
  std::shared_ptr<Storage> s(new Storage());
  s->data_ = data;
  s->nbytes_ = nbytes;
  s->device_ = device;
  s->owned_ = false;
  s->keepalive_ = std::move(keepalive);
  return s;
}

Storage::~Storage() {
  if (!owned_) return;
  if (device_ == Device::kCPU) {
    std::free(data_);
  } else {
    cuda::free_device(data_);
  }
}

// ---- Tensor ----------------------------------------------------------------

Tensor Tensor::empty(Shape shape, DType dtype) {
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  t.storage_ = Storage::allocate(t.nbytes(), Device::kCPU).value();
  return t;
}

Tensor Tensor::zeros(Shape shape, DType dtype) {
  Tensor t = empty(std::move(shape), dtype);
  std::memset(t.raw(), 0, t.nbytes());
  return t;
}

Result<Tensor> Tensor::empty_on(Shape shape, DType dtype, Device device) {
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  HILUM_ASSIGN_OR_RETURN(t.storage_, Storage::allocate(t.nbytes(), device));
  return t;
}

Tensor Tensor::from_f32(Shape shape, std::span<const float> values) {
  Tensor t = empty(std::move(shape), DType::kF32);
  assert(static_cast<size_t>(t.numel()) == values.size());
  std::memcpy(t.raw(), values.data(), values.size() * sizeof(float));
  return t;
}

Tensor Tensor::view_of(std::shared_ptr<Storage> storage, size_t byte_offset, Shape shape, DType dtype) {
  Tensor t;
  t.storage_ = std::move(storage);
  t.offset_ = byte_offset;
  t.shape_ = std::move(shape);
  t.dtype_ = dtype;
  assert(t.offset_ + t.nbytes() <= t.storage_->nbytes());
  return t;
}

Result<Tensor> Tensor::reshape(Shape shape) const {
  int64_t infer_at = -1;
  int64_t known = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      if (infer_at >= 0) return bad_input("reshape: more than one -1 in " + shape_string(shape));
      infer_at = static_cast<int64_t>(i);
    } else {
      known *= shape[i];
    }
  }
  if (infer_at >= 0 && known > 0) shape[infer_at] = numel() / known;
  if (shape_numel(shape) != numel()) {
    return bad_input("reshape: cannot view " + shape_string(shape_) + " as " + shape_string(shape));
  }
  Tensor t = *this;
  t.shape_ = std::move(shape);
  return t;
}

Result<Tensor> Tensor::slice0(int64_t begin, int64_t end) const {
  if (rank() == 0 || begin < 0 || end < begin || end > shape_[0]) {
    return bad_input("slice0: rows [" + std::to_string(begin) + ", " + std::to_string(end) +
                     ") outside " + shape_string(shape_));
  }
  if (dtype_ == DType::kI4) return unsupported("slice0 of packed int4 tensors");
  int64_t row = shape_[0] == 0 ? 0 : numel() / shape_[0];
  Tensor t = *this;
  t.offset_ = offset_ + dtype_bytes(dtype_, static_cast<size_t>(begin * row));
  t.shape_[0] = end - begin;
  return t;
}

Tensor Tensor::clone() const {
  Tensor t;
  t.dtype_ = dtype_;
  t.shape_ = shape_;
  t.storage_ = Storage::allocate(nbytes(), device()).value();
  if (device() == Device::kCPU) {
    std::memcpy(t.raw(), raw(), nbytes());
  } else {
    auto s = cuda::copy_device_to_device(t.raw(), raw(), nbytes());
    assert(s.ok());
    (void)s;
  }
  return t;
}

Result<Tensor> Tensor::to(Device target) const {
  if (target == device()) return *this;
  HILUM_ASSIGN_OR_RETURN(Tensor t, empty_on(shape_, dtype_, target));
  if (target == Device::kCUDA) {
    HILUM_RETURN_IF_ERROR(cuda::copy_to_device(t.raw(), raw(), nbytes()));
  } else {
    HILUM_RETURN_IF_ERROR(cuda::copy_to_host(t.raw(), raw(), nbytes()));
  }
  return t;
}

namespace {

double load_as_double(const void* p, DType t, size_t i) {
  switch (t) {
    case DType::kF32: return static_cast<const float*>(p)[i];
    case DType::kF16: return f16_to_f32(static_cast<const uint16_t*>(p)[i]);
    case DType::kBF16: return bf16_to_f32(static_cast<const uint16_t*>(p)[i]);
    case DType::kF64: return static_cast<const double*>(p)[i];
    case DType::kI64: return static_cast<double>(static_cast<const int64_t*>(p)[i]);
    case DType::kI32: return static_cast<const int32_t*>(p)[i];
    case DType::kI16: return static_cast<const int16_t*>(p)[i];
    case DType::kI8: return static_cast<const int8_t*>(p)[i];
    case DType::kU8:
    case DType::kBool: return static_cast<const uint8_t*>(p)[i];
    case DType::kI4: break;
  }
  return 0;
}

void store_from_double(void* p, DType t, size_t i, double v) {
  switch (t) {
    case DType::kF32: static_cast<float*>(p)[i] = static_cast<float>(v); break;
    case DType::kF16: static_cast<uint16_t*>(p)[i] = f32_to_f16(static_cast<float>(v)); break;
    case DType::kBF16: static_cast<uint16_t*>(p)[i] = f32_to_bf16(static_cast<float>(v)); break;
    case DType::kF64: static_cast<double*>(p)[i] = v; break;
    case DType::kI64: static_cast<int64_t*>(p)[i] = static_cast<int64_t>(v); break;
    case DType::kI32: static_cast<int32_t*>(p)[i] = static_cast<int32_t>(v); break;
    case DType::kI16: static_cast<int16_t*>(p)[i] = static_cast<int16_t>(v); break;
    case DType::kI8: static_cast<int8_t*>(p)[i] = static_cast<int8_t>(v); break;
    case DType::kU8: static_cast<uint8_t*>(p)[i] = static_cast<uint8_t>(v); break;
    case DType::kBool: static_cast<uint8_t*>(p)[i] = v != 0 ? 1 : 0; break;
    case DType::kI4: break;
  }
}

}  // namespace

Result<Tensor> Tensor::to_dtype(DType target) const {
  if (target == dtype_) return *this;
  if (device() != Device::kCPU) return unsupported("to_dtype on a CUDA tensor (convert on the CPU)");
  if (target == DType::kI4 || dtype_ == DType::kI4) return unsupported("to_dtype to or from packed int4");
  Tensor t = empty(shape_, target);
  const size_t n = static_cast<size_t>(numel());
  const void* src = raw();
  void* dst = t.raw();
  if (target == DType::kF32 && dtype_ == DType::kBF16) {
    const auto* s = static_cast<const uint16_t*>(src);
    auto* d = static_cast<float*>(dst);
    for (size_t i = 0; i < n; ++i) d[i] = bf16_to_f32(s[i]);
  } else if (target == DType::kF32 && dtype_ == DType::kF16) {
    const auto* s = static_cast<const uint16_t*>(src);
    auto* d = static_cast<float*>(dst);
    for (size_t i = 0; i < n; ++i) d[i] = f16_to_f32(s[i]);
  } else {
    for (size_t i = 0; i < n; ++i) store_from_double(dst, target, i, load_as_double(src, dtype_, i));
  }
  return t;
}

std::string Tensor::describe() const {
  return std::string(dtype_name(dtype_)) + shape_string(shape_) + " " + std::string(device_name(device()));
}

}  // namespace hilum
