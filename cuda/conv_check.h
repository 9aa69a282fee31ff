// Checking a convolution implementation on the GPU without trusting any of
// them: pseudo-random test data, and a direct (one thread per output, f32
// accumulation) computation of selected outputs to compare with. The planner
// (conv.h) runs every candidate through this before timing it. CPU references:
// random_fill_value() below and conv2d_nchw_reference in model/conv2d.h
// (tests/cuda/test_conv_check.cpp).
#pragma once

#include <cstdint>
#include <vector>

#include "cuda/conv.h"
#include "cuda/stream.h"
#include "model/result.h"

#if defined(__CUDACC__)
#define HILUM_HOST_DEVICE __host__ __device__
#else
#define HILUM_HOST_DEVICE
#endif

namespace hilum::cuda {

// The value fill_random() writes at `index` before rounding to the precision:
// uniform in [-amplitude, amplitude), a hash of (seed, index).
HILUM_HOST_DEVICE inline float random_fill_value(uint32_t seed, uint64_t index, float amplitude) {
  uint64_t v = index * 0x9E3779B97F4A7C15ull + (static_cast<uint64_t>(seed) << 32 | seed);
  v ^= v >> 30;
  v *= 0xBF58476D1CE4E5B9ull;
  v ^= v >> 27;
  v *= 0x94D049BB133111EBull;
  v ^= v >> 31;
  const float unit = static_cast<float>(v >> 40) * (1.0f / 16777216.0f);  // [0, 1), 24 bits
  return (2.0f * unit - 1.0f) * amplitude;
}

// dst[i] = random_fill_value(seed, i, amplitude) rounded to `precision`
// (nearest even), for i < count. Enqueued on `stream`.
Status fill_random(const Stream& stream, Precision precision, void* dst, int64_t count, uint32_t seed,
                   float amplitude);

// For each NHWC output index in `indices` (device, int64, `count` of them):
//   ref   = act(sum over r, s, c of x * w + bias + z) in f32 (bias f32 and z as
//           the epilogue asks; act = ReLU unless kNone),
//   scale = the same sum of absolute values (the size of the rounding errors),
//   got   = y at that index, as f32.
// Device outputs of `count` floats each; args.workspace is not used.
Status conv_reference_samples(const Stream& stream, Precision precision, const ConvShape& shape,
                              ConvEpilogue epilogue, const ConvArgs& args, const int64_t* indices, int count,
                              float* ref, float* scale, float* got);

// Spread-out output indices for a check: the first and last outputs, the
// first and last channel of the first and last pixel, and the rest evenly
// spaced with a deterministic jitter. At most `count`, all < total, distinct.
std::vector<int64_t> sample_indices(int64_t total, int64_t channels, int count);

}  // namespace hilum::cuda
