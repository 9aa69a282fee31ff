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
#include "vision/io/mask_box.h"

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

// Pleural caps (CandidateOptions::pleural_*): the local maxima of the white
// top-hat of the CT near the lung mask's edge, by decreasing top-hat. The CT
// (clamped to [-1000, 200] HU; air below -900 HU outside the mask set to 0 HU,
// so that a thin chest wall or an airway's wall is not narrower than the box;
// smoothed at pleural_smoothing_mm) minus its
// opening by a box about pleural_box_mm wide, smoothed at
// pleural_tophat_smoothing_mm: what protrudes from the chest wall into the
// lung and is narrower than the box (a juxtapleural nodule's cap) stands out;
// the wall itself, its partial-volume rim and broad bulges are removed. Maxima
// (at least every 26 neighbour) above pleural_min_tophat_hu, inside the mask
// within pleural_band_inside_mm of its edge or outside it within
// pleural_band_outside_mm (box distances). Voxel indices on the volume's grid.
struct PleuralPeak {
  Vec3 voxel{};
  float tophat = 0;
};
// `lungs`: the mask's box when the caller has it already (the detector does); null: found here.
Result<std::vector<PleuralPeak>> pleural_peaks(const Volume& volume, const LungMask& mask,
                                               const CandidateOptions& o, const MaskBox* lungs = nullptr);

// Half-widths in voxels, per axis, of a box of odd width within a voxel of width_mm (at least 3 voxels).
std::array<int, 3> box_radius_voxels(double width_mm, const std::array<double, 3>& spacing);

}  // namespace hilum::candidates_internal
