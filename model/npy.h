// NumPy .npy files (format versions 1-3), the array format exchanged with other
// tools. Reading accepts little- and big-endian f2/f4/f8, i1/i2/i4/i8, u1 and
// bool in C order; Fortran order is refused with a clear error. Writing emits
// version 1.0 (2.0 when the header needs it), little-endian, C order.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "model/result.h"
#include "model/tensor.h"

namespace hilum {

// `name` is used in error messages (usually the file path).
Result<Tensor> decode_npy(std::string_view bytes, const std::string& name);
std::string encode_npy(const Tensor& cpu_tensor);

Result<Tensor> read_npy(const std::filesystem::path& path);
// Writes atomically. CPU tensors of any dtype but packed int4.
Status write_npy(const std::filesystem::path& path, const Tensor& tensor);

}  // namespace hilum
