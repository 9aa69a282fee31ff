// Per-voxel arithmetic of the candidate detector, shared by its CPU loops
// (vision/io/candidates.cpp) and its CUDA kernels (cuda/detector.cu), so that
// both do the same operations in the same order. cuda/detector.cu is compiled
// without fused multiply-adds (--fmad=false) and the host code has none either
// (no FMA in the baseline x86-64 target): given the same inputs, the kernels'
// additions, multiplications, divisions, square roots and comparisons round
// exactly as the CPU's; only exp, acos and cos may differ in the last bit.
// No CUDA header is needed to include this.
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define HILUM_HD __host__ __device__ inline
#else
#define HILUM_HD inline
#endif

namespace hilum::detector {

// A C-order [z][y][x] grid with its spacing in mm.
struct Dims {
  int64_t nx = 0, ny = 0, nz = 0;
  double spacing[3] = {1, 1, 1};
  HILUM_HD int64_t voxels() const { return nx * ny * nz; }
  HILUM_HD int64_t index(int64_t x, int64_t y, int64_t z) const { return (z * ny + y) * nx + x; }
};

// std::clamp's semantics (a NaN stays NaN).
HILUM_HD double clamp_d(double v, double lo, double hi) { return v < lo ? lo : hi < v ? hi : v; }

// scale x the Hessian of s at voxel i (whose 26 neighbours exist) by central
// differences, rows sy and planes sz apart: {xx, yy, zz, xy, xz, yz} per mm^2.
HILUM_HD void hessian_at(const float* s, int64_t i, int64_t sy, int64_t sz, const double* spacing,
                         double scale, double* h) {
  const int64_t sx = 1;
  const double hx = spacing[0], hy = spacing[1], hz = spacing[2];
  const float c = s[i];
  h[0] = scale * (s[i + sx] - 2 * c + s[i - sx]) / (hx * hx);
  h[1] = scale * (s[i + sy] - 2 * c + s[i - sy]) / (hy * hy);
  h[2] = scale * (s[i + sz] - 2 * c + s[i - sz]) / (hz * hz);
  h[3] = scale * (s[i + sx + sy] - s[i + sx - sy] - s[i - sx + sy] + s[i - sx - sy]) / (4 * hx * hy);
  h[4] = scale * (s[i + sx + sz] - s[i + sx - sz] - s[i - sx + sz] + s[i - sx - sz]) / (4 * hx * hz);
  h[5] = scale * (s[i + sy + sz] - s[i + sy - sz] - s[i - sy + sz] + s[i - sy - sz]) / (4 * hy * hz);
}

// Eigenvalues of the symmetric [[a, d, e], [d, b, f], [e, f, c]] by the
// trigonometric solution of the characteristic cubic, sorted by decreasing
// magnitude (ties keep their order).
HILUM_HD void symmetric_eigenvalues(double a, double b, double c, double d, double e, double f, double* l) {
  const double p1 = d * d + e * e + f * f;
  if (p1 <= 1e-30 * (a * a + b * b + c * c + 1e-300)) {
    l[0] = a, l[1] = b, l[2] = c;
  } else {
    const double q = (a + b + c) / 3;
    const double p2 = (a - q) * (a - q) + (b - q) * (b - q) + (c - q) * (c - q) + 2 * p1;
    const double p = sqrt(p2 / 6);
    const double ba = (a - q) / p, bb = (b - q) / p, bc = (c - q) / p, bd = d / p, be = e / p, bf = f / p;
    const double det = ba * (bb * bc - bf * bf) - bd * (bd * bc - bf * be) + be * (bd * bf - bb * be);
    const double r = clamp_d(det / 2, -1.0, 1.0);
    const double phi = acos(r) / 3;
    l[0] = q + 2 * p * cos(phi);
    l[2] = q + 2 * p * cos(phi + 2.0943951023931957);
    l[1] = 3 * q - l[0] - l[2];
  }
  // Stable insertion sort by |l|, largest first.
  for (int i = 1; i < 3; ++i) {
    const double v = l[i];
    int j = i;
    for (; j > 0 && fabs(v) > fabs(l[j - 1]); --j) l[j] = l[j - 1];
    l[j] = v;
  }
}

// A unit eigenvector of the same matrix for its eigenvalue `lambda`: the rows of
// A - lambda I span the plane orthogonal to it, so the largest cross product of
// two of them lies along it. Where lambda is repeated, one orthogonal to the largest row.
HILUM_HD void symmetric_eigenvector(double a, double b, double c, double d, double e, double f, double lambda,
                                    double* out) {
  const double r[3][3] = {{a - lambda, d, e}, {d, b - lambda, f}, {e, f, c - lambda}};
  auto cross = [](const double* u, const double* v, double* w) {
    w[0] = u[1] * v[2] - u[2] * v[1];
    w[1] = u[2] * v[0] - u[0] * v[2];
    w[2] = u[0] * v[1] - u[1] * v[0];
  };
  auto norm2 = [](const double* u) { return u[0] * u[0] + u[1] * u[1] + u[2] * u[2]; };
  double best[3] = {0, 0, 0};
  for (int i = 0; i < 3; ++i) {
    double v[3];
    cross(r[i], r[(i + 1) % 3], v);
    if (norm2(v) > norm2(best)) best[0] = v[0], best[1] = v[1], best[2] = v[2];
  }
  double scale2 = norm2(r[0]);
  if (norm2(r[1]) > scale2) scale2 = norm2(r[1]);
  if (norm2(r[2]) > scale2) scale2 = norm2(r[2]);
  if (norm2(best) <= 1e-12 * scale2 * scale2) {
    int big = 0;
    for (int i = 1; i < 3; ++i)
      if (norm2(r[i]) > norm2(r[big])) big = i;
    if (norm2(r[big]) <= 1e-300) {
      out[0] = 1, out[1] = 0, out[2] = 0;
      return;
    }
    const double helper[3] = {fabs(r[big][0]) < 0.6 * sqrt(norm2(r[big])) ? 1.0 : 0.0,
                              fabs(r[big][0]) < 0.6 * sqrt(norm2(r[big])) ? 0.0 : 1.0, 0.0};
    cross(r[big], helper, best);
  }
  const double n = sqrt(norm2(best));
  out[0] = best[0] / n, out[1] = best[1] / n, out[2] = best[2] / n;
}

// Frangi's vesselness of a bright tube from eigenvalues sorted by decreasing
// magnitude; a2 = 2 alpha^2, b2 = 2 beta^2, c2 = 2 gamma^2. 0 unless l0, l1 < 0.
HILUM_HD double vesselness(const double* l, double a2, double b2, double c2) {
  if (l[0] >= 0 || l[1] >= 0) return 0;  // not a bright tube's cross-section
  const double ra = l[1] / l[0], rb2 = l[2] * l[2] / (l[0] * l[1]);
  const double s2 = l[0] * l[0] + l[1] * l[1] + l[2] * l[2];
  return (1 - exp(-ra * ra / a2)) * exp(-rb2 / b2) * (1 - exp(-s2 / c2));
}

// Where the vessel level's voxel i is brighter than `bright`: the vesselness of
// scale x the Hessian of the smoothed s; when it beats t[i], t[i] and the tube's
// axis (least curvature) there are replaced. One scale of the multi-scale loop.
HILUM_HD void vesselness_update(const float* image, const float* s, const Dims& g, int64_t x, int64_t y,
                                int64_t z, float bright, double scale, double a2, double b2, double c2, float* t,
                                float* axis) {
  const int64_t i = g.index(x, y, z);
  if (image[i] <= bright) return;
  double h[6], l[3];
  hessian_at(s, i, g.nx, g.nx * g.ny, g.spacing, scale, h);
  symmetric_eigenvalues(h[0], h[1], h[2], h[3], h[4], h[5], l);
  if (l[0] >= 0 || l[1] >= 0) return;
  const double v = vesselness(l, a2, b2, c2);
  if (v <= t[i]) return;
  t[i] = static_cast<float>(v);
  double d[3];
  symmetric_eigenvector(h[0], h[1], h[2], h[3], h[4], h[5], l[2], d);
  axis[3 * i] = static_cast<float>(d[0]);
  axis[3 * i + 1] = static_cast<float>(d[1]);
  axis[3 * i + 2] = static_cast<float>(d[2]);
}

// Vessels faded to the parenchyma level `fill` by their vesselness t: none below
// `low`, all above low + span.
HILUM_HD float suppress_vessel(float v, float t, float fill, double low, double span) {
  const float keep = 1.f - static_cast<float>(clamp_d((t - low) / span, 0.0, 1.0));
  return v > fill ? fill + (v - fill) * keep : v;
}

// The ground-glass pass's image at voxel (x, y, z) of s: `above` where a voxel
// within `reach` voxels of it (the (2 reach + 1)^3 block, cut at the grid's
// edge) is above `hi`, else its own value. With reach 0 and above == hi, the
// clip min(v, hi); with the parenchyma level as `above` and reach 1, solid
// tissue (vessels, the chest wall) leaves the image with its partial-volume rim.
HILUM_HD float ground_glass_value(const float* s, const Dims& g, int64_t x, int64_t y, int64_t z, float hi,
                                  float above, int reach) {
  const float v = s[g.index(x, y, z)];
  if (reach <= 0) return v > hi ? above : v;  // the voxel alone (the clip)
  const int64_t z0 = z - reach < 0 ? 0 : z - reach, z1 = z + reach > g.nz - 1 ? g.nz - 1 : z + reach;
  const int64_t y0 = y - reach < 0 ? 0 : y - reach, y1 = y + reach > g.ny - 1 ? g.ny - 1 : y + reach;
  const int64_t x0 = x - reach < 0 ? 0 : x - reach, x1 = x + reach > g.nx - 1 ? g.nx - 1 : x + reach;
  for (int64_t cz = z0; cz <= z1; ++cz)
    for (int64_t cy = y0; cy <= y1; ++cy)
      for (int64_t cx = x0; cx <= x1; ++cx)
        if (s[g.index(cx, cy, cz)] > hi) return above;
  return v;
}

// s at the continuous index (x, y, z), trilinear, clamped at the last voxel.
HILUM_HD float trilinear(const float* s, const Dims& g, double x, double y, double z) {
  auto lo = [](double p, int64_t n) {
    const int64_t last = n - 2 > 0 ? n - 2 : 0;
    const int64_t v = static_cast<int64_t>(p);
    return v < last ? v : last;
  };
  const int64_t x0 = lo(x, g.nx), y0 = lo(y, g.ny), z0 = lo(z, g.nz);
  const int64_t x1 = x0 + 1 < g.nx - 1 ? x0 + 1 : g.nx - 1, y1 = y0 + 1 < g.ny - 1 ? y0 + 1 : g.ny - 1,
                z1 = z0 + 1 < g.nz - 1 ? z0 + 1 : g.nz - 1;
  const float fx = static_cast<float>(clamp_d(x - x0, 0.0, 1.0)), fy = static_cast<float>(clamp_d(y - y0, 0.0, 1.0)),
              fz = static_cast<float>(clamp_d(z - z0, 0.0, 1.0));
  auto row = [&](int64_t b, int64_t c) { return s[g.index(x0, b, c)] * (1 - fx) + s[g.index(x1, b, c)] * fx; };
  return (row(y0, z0) * (1 - fy) + row(y1, z0) * fy) * (1 - fz) + (row(y0, z1) * (1 - fy) + row(y1, z1) * fy) * fz;
}

constexpr int kMaxBulgeAxes = 8;

// The opening of s at voxel (x, y, z) by segments along `axes` (n_axes unit
// vectors, 3 floats each): the largest over the axes and both ways of the lowest
// value met in `steps` steps of `step` mm (trilinear samples; a walk stops at
// the grid's or the mask's edge). Stops early once it reaches s there.
HILUM_HD float opening_along(const float* s, const uint8_t* mask, const Dims& g, int64_t x, int64_t y, int64_t z,
                             const float (*axes)[3], int n_axes, int steps, double step, float fill) {
  const float here = s[g.index(x, y, z)];
  float opened = fill;
  for (int k = 0; k < n_axes && opened < here; ++k) {
    const double dx = step * axes[k][0] / g.spacing[0], dy = step * axes[k][1] / g.spacing[1],
                 dz = step * axes[k][2] / g.spacing[2];
    for (int sign = -1; sign <= 1; sign += 2) {
      float lowest = here;
      for (int j = 1; j <= steps && lowest > opened; ++j) {
        const double px = x + sign * j * dx, py = y + sign * j * dy, pz = z + sign * j * dz;
        const int64_t ix = lround(px), iy = lround(py), iz = lround(pz);
        if (ix < 0 || iy < 0 || iz < 0 || ix >= g.nx || iy >= g.ny || iz >= g.nz) break;
        // Past the lung's edge the vessel may go on (the hilum): the walk stops there.
        if (!mask[g.index(ix, iy, iz)]) break;
        // Trilinear: the nearest voxel of a thin oblique vessel may lie off its core.
        const float v = trilinear(s, g, px, py, pz);
        lowest = v < lowest ? v : lowest;
      }
      opened = lowest > opened ? lowest : opened;
    }
  }
  return opened;
}

// What is left of s at a bright voxel once the opening along the vessels' axes is taken away.
HILUM_HD float bulge_left(float here, float opened, float fill) {
  const float d = here - opened;
  return fill + (d > 0.f ? d : 0.f);
}

// A strict maximum of a smoothed image and what the detector needs of it: the
// 3 x 3 x 3 block around it (x fastest) and how many of the isolation shell's
// samples are brighter than halfway between the parenchyma and the peak.
struct Peak {
  int64_t index = 0;
  float block[27] = {};
  int32_t bright = 0;
};

// Whether interior voxel (x, y, z) of s is a peak: at least `threshold`, inside
// the mask and a strict maximum over its 26 neighbours (ties broken by
// position). If so, fills `p`; `shell` holds n_shell offsets (voxels, 3 each)
// sampled at the nearest voxel, clamped to the grid.
HILUM_HD bool peak_at(const float* s, const uint8_t* mask, const Dims& g, int64_t x, int64_t y, int64_t z,
                      float threshold, float fill, const double (*shell)[3], int n_shell, Peak* p) {
  const int64_t sy = g.nx, sz = g.nx * g.ny;
  const int64_t i = g.index(x, y, z);
  const float c = s[i];
  if (c < threshold || !mask[i]) return false;
  for (int dz = -1; dz <= 1; ++dz)
    for (int dy = -1; dy <= 1; ++dy)
      for (int dx = -1; dx <= 1; ++dx) {
        const int64_t off = dz * sz + dy * sy + dx;
        if (off == 0) continue;
        const float n = s[i + off];
        if (n > c || (n == c && off < 0)) return false;
      }
  p->index = i;
  for (int dz = -1, k = 0; dz <= 1; ++dz)
    for (int dy = -1; dy <= 1; ++dy)
      for (int dx = -1; dx <= 1; ++dx, ++k) p->block[k] = s[i + dz * sz + dy * sy + dx];
  const float half_level = fill + 0.5f * (c - fill);
  int bright = 0;
  for (int k = 0; k < n_shell; ++k) {
    const double px = x + shell[k][0], py = y + shell[k][1], pz = z + shell[k][2];
    int64_t ix = lround(px), iy = lround(py), iz = lround(pz);
    ix = ix < 0 ? 0 : ix > g.nx - 1 ? g.nx - 1 : ix;
    iy = iy < 0 ? 0 : iy > g.ny - 1 ? g.ny - 1 : iy;
    iz = iz < 0 ? 0 : iz > g.nz - 1 ? g.nz - 1 : iz;
    bright += s[g.index(ix, iy, iz)] > half_level;
  }
  p->bright = bright;
  return true;
}

}  // namespace hilum::detector
