// Small tensor utilities: comparing results (the tolerances the parity tests
// state) and packing signed 4-bit integers (DType::kI4: two per byte, low
// nibble first).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "model/result.h"
#include "model/tensor.h"

namespace hilum {

// ||got - want||_2 / ||want||_2 over all elements (CPU float tensors of the
// same shape, any float dtype). kBadInput when shapes differ; a zero `want`
// compares the absolute norm instead.
Result<double> relative_l2_error(const Tensor& got, const Tensor& want);
// max |got - want| (same preconditions).
Result<double> max_abs_error(const Tensor& got, const Tensor& want);

// Packs values in [-8, 7] into a kI4 tensor of `shape`; kBadInput for a value
// out of range or a count that does not match the shape.
Result<Tensor> pack_int4(std::span<const int8_t> values, Shape shape);
// Unpacks a CPU kI4 tensor into one int8 per element.
Result<std::vector<int8_t>> unpack_int4(const Tensor& packed);

}  // namespace hilum
