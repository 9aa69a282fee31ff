// Nodule sizing: a local segmentation around a finding, then the measurements
// Lung-RADS and Fleischner ask for. See docs/findings.md, "Sizing".
//
// The neighbourhood is resampled on a fine isotropic grid (0.2-0.5 mm, axes
// along the volume's), thresholded half-way between the nodule's level and the
// surrounding parenchyma (solid: core vs parenchyma; ground-glass: GGO level
// vs parenchyma; part-solid: both, for the whole and the solid part), opened
// with a ball to cut attached vessels, restricted to the lung mask (which cuts
// the chest wall off juxtapleural nodules) and reduced to the component at
// the centre.
//
// Long axis: the largest diameter on the axial slice of maximal area; short
// axis: the largest extent perpendicular to it on the same slice; mean
// diameter (long + short) / 2 rounded to 0.1 mm; volume from the voxel count.
#pragma once

#include <string>

#include "model/result.h"
#include "vision/io/lung_mask.h"
#include "vision/nodule.h"
#include "vision/volume.h"

namespace hilum {

struct SizingOptions {
  double max_half_size_mm = 40;         // largest neighbourhood (half side)
  double solid_core_hu = -350;          // a core brighter than this is solid tissue
  double ground_glass_margin_hu = 100;  // shell this much above parenchyma = ground glass
  // Continue the pleura under a juxtapleural nodule, whose part beyond the lung
  // mask is then measured too (docs/findings.md, "Sizing"). HILUM_SIZING_PLEURA=0
  // turns it off for side-by-side runs.
  bool continue_pleura = true;
};

struct NoduleMeasurement {
  Vec3 center_mm{};  // centroid of the segmentation (world LPS)
  double long_axis_mm = 0;
  double short_axis_mm = 0;
  double mean_diameter_mm = 0;  // rounded to 0.1 mm
  double volume_mm3 = 0;
  NoduleType type = NoduleType::kSolid;
  double solid_component_mm = 0;  // mean diameter of the solid part (part-solid), = mean (solid), 0 (GGN)
  int axial_slice = -1;           // volume slice index of the measured axial plane
  bool juxtapleural = false;      // the segmentation touches the chest wall
  double core_hu = 0, parenchyma_hu = 0, threshold_hu = 0;
  std::string note;  // empty, or why the measurement may be unreliable
};

// `center_mm` is the candidate's centre, `diameter_hint_mm` its rough size.
// kBadInput when the centre lies outside the volume or no nodule tissue is
// found there.
Result<NoduleMeasurement> measure_nodule(const Volume& volume, const LungMask& mask, const Vec3& center_mm,
                                         double diameter_hint_mm, const SizingOptions& options = {});

// Longest diameter of a 2-D pixel region and its largest perpendicular extent
// (both in mm), from the pixel squares' corners; `pixels` holds (col, row)
// indices on a grid of spacing `h`. Returns {long, short, angle of the long axis}.
std::array<double, 3> long_and_short_axis(const std::vector<std::array<int, 2>>& pixels, double h);

}  // namespace hilum
