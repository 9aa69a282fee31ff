// The box of a uint8 mask's nonzero voxels, for the lung mask and the
// candidate detector (internal to vision/io). Buffers are C order [z][y][x].
#pragma once

#include <cstdint>

namespace hilum {

// Voxels x0 <= x < x1, y0 <= y < y1, z0 <= z < z1; empty() when the mask has none.
struct MaskBox {
  int64_t x0, y0, z0, x1, y1, z1;
  bool empty() const { return x1 <= x0; }
};

// Planes in parallel (serially when called inside a parallel region), each row
// by its first and last nonzero voxel.
MaskBox mask_box(const uint8_t* m, int64_t nx, int64_t ny, int64_t nz);

}  // namespace hilum
