// The few ITK filters the lung mask, candidate detector and sizing use, behind
// plain buffers (internal to vision/io; only itk_bridge.cpp includes ITK, which
// keeps compile times down). Buffers are C order [z][y][x] on a grid with
// `spacing` in mm. ITK exceptions become internal errors here.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "model/result.h"

namespace hilum::itk_bridge {

struct Grid {
  int64_t nx = 0, ny = 0, nz = 0;
  std::array<double, 3> spacing{1, 1, 1};
  int64_t voxels() const { return nx * ny * nz; }
  int64_t index(int64_t x, int64_t y, int64_t z) const { return (z * ny + y) * nx + x; }
};

// Connected components of mask != 0 (face connectivity unless `full`), relabelled
// by decreasing size: label 1 is the largest. sizes[l] = voxels of label l (sizes[0] = 0).
// With `by_size` false the labels are 1..N in ITK's scan order instead (no sorting
// pass; sizes still counted).
Result<std::vector<uint32_t>> label_components(const std::vector<uint8_t>& mask, const Grid& grid, bool full,
                                               std::vector<int64_t>& sizes, bool by_size = true);

// Signed Euclidean distance (mm) to the boundary of mask != 0: negative inside,
// positive outside (Maurer). An all-empty or all-full mask gives +/- a large value.
Result<std::vector<float>> signed_distance(const std::vector<uint8_t>& mask, const Grid& grid);

// Gaussian smoothing with standard deviation `sigma_mm` along every axis (ITK's recursive
// filter): the reference that tests compare gaussian_smooth (vision/io/gaussian.h) with.
Result<std::vector<float>> smooth_gaussian(const std::vector<float>& image, const Grid& grid,
                                           double sigma_mm);

// Grey-level opening (the dilation of the erosion) by a flat box of half-widths
// radius = {x, y, z} voxels, borders padded as ITK does: the reference that
// tests compare box_extremum (vision/io/gaussian.h) with.
Result<std::vector<float>> grey_opening_box(const std::vector<float>& image, const Grid& grid,
                                            const std::array<int, 3>& radius);

}  // namespace hilum::itk_bridge
