// A caliper (distance) measurement drawn on one slice of one plane.
#pragma once

#include "ui/slice_renderer.h"
#include "vision/volume.h"

namespace hilum::ui {

struct Measurement {
  int id = 0;
  Plane plane = Plane::Axial;
  Vec3 start{};  // continuous voxel index (i, j, k)
  Vec3 end{};
  bool operator==(const Measurement&) const = default;
};

// Physical length in mm, from the voxel spacing.
double measurementLengthMm(const Volume& volume, const Measurement& measurement);

}  // namespace hilum::ui
