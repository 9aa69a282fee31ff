// Lung segmentation of a chest CT: right and left lung, airways removed,
// vessels and juxtapleural nodules kept inside (hole filling and a ~10 mm
// rolling-ball closing). See docs/findings.md, "Lung mask".
//
// Works on a reduced grid (about 1.4 mm; HU averaged in blocks) and returns the
// mask on the volume's own grid. Errors: kBadInput when the volume holds no
// lung-sized air inside the body (not a chest CT); kCancelled on cancellation.
#pragma once

#include <array>
#include <string>
#include <vector>

#include "model/progress.h"
#include "model/result.h"
#include "model/tensor.h"
#include "vision/volume.h"

namespace hilum {

enum LungLabel : uint8_t { kNoLung = 0, kRightLung = 1, kLeftLung = 2 };

struct LungMaskOptions {
  double air_threshold_hu = -400;  // lung parenchyma and airways lie below
  double closing_radius_mm = 10;   // rolling ball: keeps juxtapleural nodules up to ~20 mm inside
  // Juxtapleural masses of 20-30 mm leave a dent the rolling ball above cannot fill. A second ball
  // of mass_closing_radius_mm fills it where what it adds beyond the first is a compact piece (at
  // least mass_min_volume_ml, at most mass_max_extent_mm along each axis) near the chest wall (the
  // shortest of the four in-plane axis paths from one of its voxels to the air outside the body is
  // at most mass_max_wall_depth_mm): the same ball everywhere would take in the mediastinum's
  // recesses and the costophrenic angles. 0: no such pass.
  double mass_closing_radius_mm = 15;
  double mass_min_volume_ml = 0.5;
  double mass_max_extent_mm = 35;
  double mass_max_wall_depth_mm = 75;
  double working_spacing_mm = 1.4;
  double airway_threshold_hu = -950;  // airway lumen for region growing from the trachea
  // kCUDA: the air's connected components (cuda/components.h, ITK's labels) and the rolling-ball
  // closings' distance maps (cuda/distance.h, ITK's maps to float rounding) run on the GPU,
  // each falling back to the CPU with a warning.
  Device device = Device::kCPU;
};

struct LungExtent {             // world-LPS bounds of one lung (for lobe estimates)
  double min_y = 0, max_y = 0;  // anterior .. posterior
  double min_z = 0, max_z = 0;  // inferior .. superior
  double volume_ml = 0;
};

struct LungMask {
  Tensor labels;  // u8 [z, y, x] on the volume grid: kNoLung, kRightLung, kLeftLung
  LungExtent right, left;
  float parenchyma_hu = -850;  // median HU of lung voxels before closing
  bool airways_removed = false;
  bool lungs_were_joined = false;  // one air component split into two
  std::vector<std::string> warnings;

  uint8_t at(int64_t x, int64_t y, int64_t z) const {
    return labels.data<uint8_t>()[(z * labels.dim(1) + y) * labels.dim(2) + x];
  }
};

Result<LungMask> segment_lungs(const Volume& volume, const LungMaskOptions& options, Progress& progress);

// Where a world point lies: side (from the mask, or the nearest lung within
// 15 mm), lobe estimated from the position inside that lung's extent (no
// fissure detection: an estimate, said so in the finding's evidence).
struct LungPosition {
  uint8_t side = kNoLung;
  std::string lobe;  // "RUL", "RML", "RLL", "LUL", "LLL" or empty
};
LungPosition locate_in_lungs(const LungMask& mask, const Volume& volume, const Vec3& world_mm);

// Lobe from normalised position in a lung: up = 0 at the lung base .. 1 at the
// apex, back = 0 anterior .. 1 posterior. The oblique fissure is modelled as the
// plane up = 0.2 + 0.6 * back, the right horizontal fissure as up = 0.6 (anterior to it).
std::string estimate_lobe(uint8_t side, double up, double back);

}  // namespace hilum
