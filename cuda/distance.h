// Morphological closings by balls through exact Euclidean distance maps, on
// the GPU and, as their reference, on the CPU (the same arithmetic:
// cuda/distance_math.h). The lung mask's rolling-ball closing
// (vision/io/lung_mask.cpp) runs here when the study runs on CUDA; on the CPU
// it keeps ITK's maps, which these match to float rounding
// (tests/vision/io/test_lung_mask_cuda.cpp).
#pragma once

#include <cstdint>
#include <vector>

#include "cuda/detector_math.h"
#include "model/result.h"

namespace hilum::distance {

// ITK's SignedMaurerDistanceMapImageFilter's map of mask != 0 (mm, negative
// inside, image spacing; see distance_math.h), computed on the CPU. An empty or
// full mask gives +1e9 or -1e9 everywhere, as vision/io/itk_bridge.h does.
std::vector<float> signed_distance_reference(const std::vector<uint8_t>& mask, const detector::Dims& g);

// The closing of `mask` by each ball of radii_mm, as the lung mask makes it:
// dilated = {signed distance to the mask <= r}; closed = {signed distance to
// dilated <= -(r - inner_margin_mm)}. One uint8 mask (0/1) per radius. The
// caller leaves a margin around the mask of more than the largest radius (the
// dilation must not reach the grid's faces). CPU reference.
std::vector<std::vector<uint8_t>> closings_reference(const std::vector<uint8_t>& mask,
                                                     const detector::Dims& g,
                                                     const std::vector<double>& radii_mm,
                                                     double inner_margin_mm);

}  // namespace hilum::distance

namespace hilum::cuda {

// closings_reference on the GPU: the same masks, bit for bit. Fails (kUnsupported)
// in a build without CUDA, and with the CUDA error where the device fails.
Result<std::vector<std::vector<uint8_t>>> closings(const std::vector<uint8_t>& mask, const detector::Dims& g,
                                                   const std::vector<double>& radii_mm,
                                                   double inner_margin_mm);

}  // namespace hilum::cuda
