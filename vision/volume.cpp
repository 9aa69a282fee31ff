#include "vision/volume.h"

#include <cmath>

namespace hilum {

Vec3 Volume::world_from_voxel(const Vec3& ijk) const {
  Vec3 out = origin;
  for (int a = 0; a < 3; ++a) {
    const double step = ijk[a] * spacing[a];
    for (int r = 0; r < 3; ++r) out[r] += direction[r * 3 + a] * step;
  }
  return out;
}

Vec3 Volume::voxel_from_world(const Vec3& lps) const {
  // direction is orthonormal for the volumes Hilum builds, so its inverse is its
  // transpose; tilted acquisitions are resampled onto an orthogonal grid first.
  const Vec3 d{lps[0] - origin[0], lps[1] - origin[1], lps[2] - origin[2]};
  Vec3 out{};
  for (int a = 0; a < 3; ++a) {
    double dot = 0;
    for (int r = 0; r < 3; ++r) dot += direction[r * 3 + a] * d[r];
    out[a] = dot / spacing[a];
  }
  return out;
}

Volume Volume::allocate(int64_t nx, int64_t ny, int64_t nz, Vec3 spacing, Vec3 origin,
                        std::array<double, 9> direction) {
  Volume v;
  v.hu = Tensor::zeros({nz, ny, nx}, DType::kF32);
  v.spacing = spacing;
  v.origin = origin;
  v.direction = direction;
  return v;
}

}  // namespace hilum
