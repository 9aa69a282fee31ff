// Connected components of a uint8 mask on the GPU (face connectivity), labelled
// 1..N in scan order (by each component's first voxel in C order), as ITK's
// ConnectedComponentImageFilter labels them without its sort by size
// (vision/io/itk_bridge.h label_components(..., by_size = false), the
// reference: tests/vision/io/test_lung_mask_cuda.cpp compares the two label for
// label). The lung mask labels its air here when the study runs on CUDA.
#pragma once

#include <cstdint>
#include <vector>

#include "cuda/detector_math.h"
#include "model/result.h"

namespace hilum::cuda {

// labels: one per voxel (0 outside the mask); sizes[l] = voxels of label l, sizes[0] = 0.
// With by_size the labels go by decreasing size instead, ties in scan order (as ITK's
// RelabelComponentImageFilter orders them: label_components(..., by_size = true)).
// Fails (kUnsupported) in a build without CUDA, and with the CUDA error where the device fails.
Status label_components(const std::vector<uint8_t>& mask, const detector::Dims& g,
                        std::vector<uint32_t>& labels, std::vector<int64_t>& sizes, bool by_size = false);

// touching[i] = 1 where voxel i of the mask belongs to a component with a voxel on a side face
// of the grid (x = 0 or nx - 1, y = 0 or ny - 1; face connectivity): the lung mask's air outside
// the body. Only this mask comes back, not the labels. Errors as label_components.
Status components_touching_side_faces(const std::vector<uint8_t>& mask, const detector::Dims& g,
                                      std::vector<uint8_t>& touching);

}  // namespace hilum::cuda
