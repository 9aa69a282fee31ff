// Gaussian smoothing of 3-D grids for the candidate detector: separable
// sampled-Gaussian kernels truncated at 4 sigma (normalised to sum 1), borders
// replicated. In each slice OpenCV's vectorised row and column filters
// (cv::sepFilter2D), then the z pass here; slices run in parallel on Hilum's
// pool. Several times faster than ITK's recursive Gaussian
// (itk_bridge::smooth_gaussian, Deriche's fourth-order approximation), and
// exact for the sampled kernel. Buffers are C order [z][y][x] (itk_bridge::Grid).
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "model/result.h"
#include "vision/io/itk_bridge.h"

namespace hilum {

// The kernel for standard deviation `sigma_voxels`: 2r + 1 taps, r =
// max(1, ceil(4 sigma)), summing to 1; {1} below 0.05 voxels.
std::vector<float> gaussian_kernel(double sigma_voxels);

// image smoothed with standard deviation sigma_mm along every axis.
Result<std::vector<float>> gaussian_smooth(const std::vector<float>& image, const itk_bridge::Grid& grid,
                                           double sigma_mm);

// Grey-level erosion (the minimum; dilate false) or dilation (the maximum) of
// a grid over a box of half-widths r = {x, y, z} voxels, clipped at the grid's
// faces: OpenCV's rectangular erosion or dilation in each slice (vectorised
// running extrema), then over the 2 r_z + 1 slices around. For float and uint8_t.
template <typename T>
Result<std::vector<T>> box_extremum(const std::vector<T>& image, const itk_bridge::Grid& grid,
                                    const std::array<int, 3>& r, bool dilate);

// The same two on caller-owned buffers of grid.voxels() values each (out and
// scratch distinct from image and from each other). They need no
// initialisation: the pool's threads write every voxel of both, so a fresh
// buffer's pages are first touched in parallel rather than zeroed by one
// thread (for pipelines that keep a few large buffers across their steps).
Status gaussian_smooth_into(const float* image, const itk_bridge::Grid& grid, double sigma_mm, float* out,
                            float* scratch);
template <typename T>
Status box_extremum_into(const T* image, const itk_bridge::Grid& grid, const std::array<int, 3>& r, bool dilate,
                         T* out, T* scratch);

}  // namespace hilum
