#include "model/tensor_util.h"

#include <cmath>

namespace hilum {
namespace {

Result<std::pair<Tensor, Tensor>> as_f32_pair(const Tensor& got, const Tensor& want) {
  if (!got.defined() || !want.defined()) return bad_input("comparing an empty tensor");
  if (got.shape() != want.shape()) {
    return bad_input("shape mismatch: " + shape_string(got.shape()) + " vs " + shape_string(want.shape()));
  }
  if (got.device() != Device::kCPU || want.device() != Device::kCPU)
    return bad_input("comparison needs CPU tensors");
  HILUM_ASSIGN_OR_RETURN(Tensor a, got.to_dtype(DType::kF32));
  HILUM_ASSIGN_OR_RETURN(Tensor b, want.to_dtype(DType::kF32));
  return std::make_pair(a, b);
}

}  // namespace

Result<double> relative_l2_error(const Tensor& got, const Tensor& want) {
  HILUM_ASSIGN_OR_RETURN(auto p, as_f32_pair(got, want));
  const float* a = p.first.data<float>();
  const float* b = p.second.data<float>();
  double diff = 0, norm = 0;
  for (int64_t i = 0; i < p.first.numel(); ++i) {
    const double d = static_cast<double>(a[i]) - b[i];
    diff += d * d;
    norm += static_cast<double>(b[i]) * b[i];
  }
  if (std::isnan(diff)) return std::nan("");
  return norm > 0 ? std::sqrt(diff / norm) : std::sqrt(diff);
}

Result<double> max_abs_error(const Tensor& got, const Tensor& want) {
  HILUM_ASSIGN_OR_RETURN(auto p, as_f32_pair(got, want));
  const float* a = p.first.data<float>();
  const float* b = p.second.data<float>();
  double m = 0;
  for (int64_t i = 0; i < p.first.numel(); ++i) {
    const double d = std::fabs(static_cast<double>(a[i]) - b[i]);
    if (std::isnan(d)) return std::nan("");
    m = std::max(m, d);
  }
  return m;
}

Result<Tensor> pack_int4(std::span<const int8_t> values, Shape shape) {
  if (static_cast<int64_t>(values.size()) != shape_numel(shape)) {
    return bad_input("pack_int4: " + std::to_string(values.size()) + " values for shape " +
                     shape_string(shape));
  }
  Tensor t = Tensor::zeros(std::move(shape), DType::kI4);
  auto* out = t.data<uint8_t>();
  for (size_t i = 0; i < values.size(); ++i) {
    const int v = values[i];
    if (v < -8 || v > 7)
      return bad_input("pack_int4: value " + std::to_string(v) + " at " + std::to_string(i) +
                       " outside [-8, 7]");
    const uint8_t nibble = static_cast<uint8_t>(v) & 0x0f;
    out[i / 2] |= (i % 2 == 0) ? nibble : static_cast<uint8_t>(nibble << 4);
  }
  return t;
}

Result<std::vector<int8_t>> unpack_int4(const Tensor& packed) {
  if (packed.dtype() != DType::kI4)
    return bad_input("unpack_int4: tensor is " + std::string(dtype_name(packed.dtype())));
  if (packed.device() != Device::kCPU) return bad_input("unpack_int4 needs a CPU tensor");
  const auto* in = packed.data<uint8_t>();
  std::vector<int8_t> out(static_cast<size_t>(packed.numel()));
  for (size_t i = 0; i < out.size(); ++i) {
    const uint8_t nibble = (i % 2 == 0) ? (in[i / 2] & 0x0f) : (in[i / 2] >> 4);
    out[i] = static_cast<int8_t>(nibble >= 8 ? static_cast<int>(nibble) - 16 : nibble);
  }
  return out;
}

}  // namespace hilum
