// Exact Euclidean distance maps, the arithmetic shared by the CPU reference
// (cuda/distance_reference.cpp) and the CUDA kernels (cuda/distance.cu):
// both call these functions, in the same order, and distance.cu is compiled
// without fused multiply-adds, so they give the same doubles.
//
// The map is the one of ITK's SignedMaurerDistanceMapImageFilter (the lung
// mask's CPU path, vision/io/itk_bridge.h), reached by another algorithm: the
// distance of every voxel to the nearest voxel of the mask's contour (mask
// voxels with a background voxel among their 26 neighbours inside the grid),
// in mm, negative on the mask. Squared distances come from three passes of the
// lower envelope of parabolas (Felzenszwalb and Huttenlocher), one per axis;
// ITK works in float, this in double, so the two agree to float rounding.
// No CUDA header is needed to include this.
#pragma once

#include <cstdint>

#include "cuda/detector_math.h"

namespace hilum::distance {

// Squared distance of a voxel that no contour voxel reaches (an empty line so far).
constexpr double kFar = 1e300;

// Whether voxel (x, y, z) of `mask` is a contour voxel.
HILUM_HD bool is_contour(const uint8_t* mask, const detector::Dims& g, int64_t x, int64_t y, int64_t z) {
  if (!mask[g.index(x, y, z)]) return false;
  for (int dz = -1; dz <= 1; ++dz)
    for (int dy = -1; dy <= 1; ++dy)
      for (int dx = -1; dx <= 1; ++dx) {
        const int64_t u = x + dx, v = y + dy, w = z + dz;
        if (u < 0 || v < 0 || w < 0 || u >= g.nx || v >= g.ny || w >= g.nz) continue;
        if (!mask[g.index(u, v, w)]) return true;
      }
  return false;
}

// One line of n values f[i * stride] (squared distances so far, kFar where
// none) becomes out[i * stride] = min_j f[j] + ((i - j) * step)^2. Scratch:
// site[k * sstride] (n ints) and edge[k * sstride] (n + 1 doubles), strided so
// that the GPU's threads (one per line) read them side by side.
HILUM_HD void envelope_line(const double* f, double* out, int64_t n, int64_t stride, double step, int* site,
                            double* edge, int64_t sstride) {
  int64_t k = -1;  // index of the last parabola of the envelope
  for (int64_t q = 0; q < n; ++q) {
    const double fq = f[q * stride];
    if (fq >= kFar) continue;
    const double pq = static_cast<double>(q) * step;
    double s = 0;
    while (k >= 0) {
      const int64_t v = site[k * sstride];
      const double pv = static_cast<double>(v) * step;
      s = ((fq + pq * pq) - (f[v * stride] + pv * pv)) / (2.0 * (pq - pv));
      if (s > edge[k * sstride]) break;
      --k;
    }
    ++k;
    site[k * sstride] = static_cast<int>(q);
    edge[k * sstride] = k == 0 ? -kFar : s;
  }
  if (k < 0) {
    for (int64_t i = 0; i < n; ++i) out[i * stride] = kFar;
    return;
  }
  int64_t j = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double pi = static_cast<double>(i) * step;
    while (j < k && edge[(j + 1) * sstride] < pi) ++j;
    const int64_t v = site[j * sstride];
    const double d = pi - static_cast<double>(v) * step;
    out[i * stride] = f[v * stride] + d * d;
  }
}

// The signed distance (mm, as ITK's float) from the squared distance to the contour.
HILUM_HD float signed_from_squared(double squared, bool inside) {
  const float d = static_cast<float>(sqrt(squared));
  return inside ? -d : d;
}

}  // namespace hilum::distance
