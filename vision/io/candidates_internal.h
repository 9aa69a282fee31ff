// The candidate detector's image steps on the CPU (internal to vision/io; the
// references the CUDA kernels of cuda/detector.h are tested against). Buffers
// are C order [z][y][x]; the per-voxel arithmetic is cuda/detector_math.h's.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "cuda/detector.h"
#include "cuda/detector_math.h"
#include "model/result.h"
#include "vision/io/candidates.h"
#include "vision/io/itk_bridge.h"

namespace hilum::candidates_internal {

using itk_bridge::Grid;

detector::Dims dims_of(const Grid& g);

// One vessel scale's constants for detector::vesselness_update.
struct VesselScale {
  double a2 = 0, b2 = 0, c2 = 0;  // 2 alpha^2, 2 beta^2, 2 gamma^2
  double scale = 0;               // sigma^2: the scale-normalised Hessian
  float bright = 0;               // voxels at most this (parenchyma + 50 HU) are no vessel
};
VesselScale vessel_scale(const CandidateOptions& o, float fill, double sigma);

// Frangi's vesselness of bright tubes (object dimension 1), the largest over
// the vessel scales, at the voxels at least 50 HU above the parenchyma (0
// elsewhere). `axis` gets, where the vesselness is positive, the direction of
// least curvature (the tube's axis) at the scale of the largest vesselness;
// {0, 0, 0} elsewhere.
Result<std::vector<float>> tubularity(const std::vector<float>& image, const Grid& g, float fill,
                                      const CandidateOptions& o, std::vector<std::array<float, 3>>& axis);

// The bulge pass's constants: level_f and vessel_f are the block factors of
// the pass's grid and of the vessel grid.
cuda::BulgeParams bulge_params(const CandidateOptions& o, float fill, const int* level_f, const int* vessel_f);

// What a vessel does not explain: at each voxel of s brighter than p.bright
// inside the mask, s minus its opening by segments along the nearby vessels'
// axes (detector::opening_along); elsewhere p.fill. The axes are those of the
// clearly tubular voxels of the vessel grid vg (tube >= p.clear_tube) in the
// 3 x 3 x 3 block around the one over this voxel, or 5 x 5 x 5 when there are
// none (the most tubular first, at most p.max_axes, each direction once): a
// junction or crossing is explained by one of its branches, and a nodule's own
// voxels, whose Hessian points across the vessel, do not count. Where no voxel
// around is tubular at all the voxel is a blob's and keeps everything.
std::vector<float> bulge_residue(const std::vector<float>& s, const std::vector<uint8_t>& mask, const Grid& g,
                                 const Grid& vg, const std::vector<float>& tube,
                                 const std::vector<std::array<float, 3>>& axis, const cuda::BulgeParams& p);

// detector::peak_at at every interior voxel of g, by increasing index.
std::vector<detector::Peak> scan_peaks(const std::vector<float>& s, const std::vector<uint8_t>& mask, const Grid& g,
                                       float threshold, float fill,
                                       const std::vector<std::array<double, 3>>& shell);

}  // namespace hilum::candidates_internal
