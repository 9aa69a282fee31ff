#include "vision/io/sizing.h"

#include <algorithm>
#include <cmath>
#include <optional>

#include "model/env.h"
#include "vision/io/itk_bridge.h"
#include "vision/patches.h"

namespace hilum {
namespace {

using itk_bridge::Grid;

struct Crop {
  Grid grid;
  double h = 0;
  int64_t n = 0;  // per side
  Vec3 center{};
  std::vector<float> hu;
  std::vector<uint8_t> lung;
  // Crop index -> world: center + (i - (n-1)/2) h along the volume's axes.
  Vec3 world(double i, double j, double k, const Volume& v) const {
    const double c = (n - 1) / 2.0;
    Vec3 w = center;
    const double d[3] = {(i - c) * h, (j - c) * h, (k - c) * h};
    for (int a = 0; a < 3; ++a) {
      const Vec3 ax = v.axis(a);
      for (int r = 0; r < 3; ++r) w[r] += ax[r] * d[a];
    }
    return w;
  }
};

Crop make_crop(const Volume& v, const LungMask& mask, const Vec3& center, double half, double h) {
  Crop c;
  c.h = h;
  c.n = 2 * static_cast<int64_t>(std::ceil(half / h)) + 1;
  c.center = center;
  c.grid = Grid{c.n, c.n, c.n, {h, h, h}};
  c.hu.resize(static_cast<size_t>(c.grid.voxels()));
  c.lung.resize(c.hu.size());
  const Vec3 v0 = v.voxel_from_world(c.world(0, 0, 0, v));
  const Vec3 step[3] = {{h / v.spacing[0], 0, 0}, {0, h / v.spacing[1], 0}, {0, 0, h / v.spacing[2]}};
  for (int64_t k = 0; k < c.n; ++k)
    for (int64_t j = 0; j < c.n; ++j)
      for (int64_t i = 0; i < c.n; ++i) {
        const double x = v0[0] + i * step[0][0], y = v0[1] + j * step[1][1], z = v0[2] + k * step[2][2];
        const int64_t idx = c.grid.index(i, j, k);
        c.hu[idx] = sample_trilinear(v, x, y, z, -1000.f);
        const int64_t X = std::lround(x), Y = std::lround(y), Z = std::lround(z);
        c.lung[idx] =
            (X >= 0 && Y >= 0 && Z >= 0 && X < v.nx() && Y < v.ny() && Z < v.nz()) ? mask.at(X, Y, Z) : 0;
      }
  return c;
}

// The component of `m` that holds the crop centre, or the one nearest to it
// within `reach` voxels; empty when none.
Result<std::vector<uint8_t>> central_component(const std::vector<uint8_t>& m, const Grid& g, double reach) {
  std::vector<int64_t> sizes;
  HILUM_ASSIGN_OR_RETURN(std::vector<uint32_t> labels, itk_bridge::label_components(m, g, false, sizes));
  const int64_t c = g.nx / 2;
  uint32_t best = labels[g.index(c, c, c)];
  if (best == 0) {
    double best_d = reach * reach;
    const int64_t r = static_cast<int64_t>(std::ceil(reach));
    for (int64_t z = std::max<int64_t>(0, c - r); z <= std::min(g.nz - 1, c + r); ++z)
      for (int64_t y = std::max<int64_t>(0, c - r); y <= std::min(g.ny - 1, c + r); ++y)
        for (int64_t x = std::max<int64_t>(0, c - r); x <= std::min(g.nx - 1, c + r); ++x) {
          const uint32_t l = labels[g.index(x, y, z)];
          const double d = double(x - c) * (x - c) + double(y - c) * (y - c) + double(z - c) * (z - c);
          if (l && d < best_d) best_d = d, best = l;
        }
  }
  std::vector<uint8_t> out(m.size(), 0);
  if (best == 0) return out;
  for (size_t i = 0; i < m.size(); ++i) out[i] = labels[i] == best;
  return out;
}

// Cuts attached vessels: an opening with a ball 0.7 times the object's inscribed
// radius (0.5-3 mm) separates thin protrusions; those reaching farther than
// 2 radii from the opened body (vessels) go, short caps (the ends of an
// elongated nodule the ball could not reach into) stay. So do protrusions that
// lie along the lung's edge (at least a third of their voxels within a voxel of
// it, `lung` the crop's lung mask): the flanks of a juxtapleural nodule flattened
// on the pleura, not vessels, which run through the lung. Kept inside the input.
// ITK's Maurer distances are measured to the object's contour voxels (half a
// voxel inside its surface), hence the half-voxel corrections.
Result<std::vector<uint8_t>> cut_vessels(const std::vector<uint8_t>& m, const Grid& g,
                                         const std::vector<uint8_t>& lung) {
  const double half = 0.5 * g.spacing[0];
  HILUM_ASSIGN_OR_RETURN(std::vector<float> d1, itk_bridge::signed_distance(m, g));
  const double inscribed = -*std::min_element(d1.begin(), d1.end()) + half;
  const double r = std::clamp(0.7 * inscribed, 0.5, 3.0);
  std::vector<uint8_t> eroded(m.size());
  for (size_t i = 0; i < m.size(); ++i) eroded[i] = d1[i] < -(r - half);
  if (std::none_of(eroded.begin(), eroded.end(), [](uint8_t v) { return v; })) return m;
  HILUM_ASSIGN_OR_RETURN(std::vector<float> d2, itk_bridge::signed_distance(eroded, g));
  std::vector<uint8_t> opened(m.size()), rest(m.size());
  for (size_t i = 0; i < m.size(); ++i) {
    opened[i] = m[i] && (eroded[i] || d2[i] <= r + half);
    rest[i] = m[i] && !opened[i];
  }
  if (std::none_of(rest.begin(), rest.end(), [](uint8_t v) { return v; })) return opened;
  HILUM_ASSIGN_OR_RETURN(std::vector<float> d3, itk_bridge::signed_distance(opened, g));
  std::vector<int64_t> sizes;
  HILUM_ASSIGN_OR_RETURN(std::vector<uint32_t> parts, itk_bridge::label_components(rest, g, true, sizes));
  std::vector<float> reach(sizes.size(), 0.f);
  std::vector<int64_t> at_edge(sizes.size(), 0);
  for (int64_t z = 0; z < g.nz; ++z)
    for (int64_t y = 0; y < g.ny; ++y)
      for (int64_t x = 0; x < g.nx; ++x) {
        const size_t i = static_cast<size_t>(g.index(x, y, z));
        const uint32_t p = parts[i];
        if (!p) continue;
        reach[p] = std::max(reach[p], d3[i]);
        bool edge = false;
        for (int64_t dz = -1; dz <= 1 && !edge; ++dz)
          for (int64_t dy = -1; dy <= 1 && !edge; ++dy)
            for (int64_t dx = -1; dx <= 1 && !edge; ++dx) {
              const int64_t X = x + dx, Y = y + dy, Z = z + dz;
              edge =
                  X >= 0 && Y >= 0 && Z >= 0 && X < g.nx && Y < g.ny && Z < g.nz && !lung[g.index(X, Y, Z)];
            }
        at_edge[p] += edge;
      }
  for (size_t i = 0; i < m.size(); ++i)
    if (const uint32_t p = parts[i]; p && (reach[p] <= 2 * r + half || 3 * at_edge[p] >= sizes[p]))
      opened[i] = 1;
  return opened;
}

// Fills, slice by slice (constant z), background not connected to the slice border.
void fill_slice_holes(std::vector<uint8_t>& m, const Grid& g) {
  std::vector<uint8_t> outside(static_cast<size_t>(g.nx * g.ny));
  std::vector<int64_t> stack;
  for (int64_t z = 0; z < g.nz; ++z) {
    uint8_t* s = m.data() + z * g.nx * g.ny;
    std::fill(outside.begin(), outside.end(), 0);
    auto push = [&](int64_t i) {
      if (!s[i] && !outside[i]) outside[i] = 1, stack.push_back(i);
    };
    for (int64_t x = 0; x < g.nx; ++x) push(x), push((g.ny - 1) * g.nx + x);
    for (int64_t y = 0; y < g.ny; ++y) push(y * g.nx), push(y * g.nx + g.nx - 1);
    while (!stack.empty()) {
      const int64_t i = stack.back();
      stack.pop_back();
      const int64_t x = i % g.nx, y = i / g.nx;
      if (x > 0) push(i - 1);
      if (x + 1 < g.nx) push(i + 1);
      if (y > 0) push(i - g.nx);
      if (y + 1 < g.ny) push(i + g.nx);
    }
    for (int64_t i = 0; i < g.nx * g.ny; ++i)
      if (!outside[i]) s[i] = 1;
  }
}

double percentile(std::vector<float> v, double q) {
  if (v.empty()) return 0;
  const size_t k = std::min(v.size() - 1, static_cast<size_t>(q * (v.size() - 1)));
  std::nth_element(v.begin(), v.begin() + k, v.end());
  return v[k];
}

bool touches_border(const std::vector<uint8_t>& m, const Grid& g) {
  for (int64_t z = 0; z < g.nz; ++z)
    for (int64_t y = 0; y < g.ny; ++y)
      for (int64_t x = 0; x < g.nx; ++x)
        if (m[g.index(x, y, z)] &&
            (x == 0 || y == 0 || z == 0 || x == g.nx - 1 || y == g.ny - 1 || z == g.nz - 1))
          return true;
  return false;
}

struct Axes {
  double long_mm = 0, short_mm = 0;
  int64_t plane = -1;
};

// Long/short axis on the crop's axial plane (constant k) of maximal area.
Axes measure_axes(const std::vector<uint8_t>& m, const Grid& g, double h) {
  Axes a;
  int64_t best_area = 0;
  for (int64_t z = 0; z < g.nz; ++z) {
    int64_t area = 0;
    for (int64_t i = 0; i < g.nx * g.ny; ++i) area += m[z * g.nx * g.ny + i];
    if (area > best_area) best_area = area, a.plane = z;
  }
  if (a.plane < 0) return a;
  std::vector<std::array<int, 2>> px;
  for (int64_t y = 0; y < g.ny; ++y)
    for (int64_t x = 0; x < g.nx; ++x)
      if (m[g.index(x, y, a.plane)]) px.push_back({static_cast<int>(x), static_cast<int>(y)});
  const auto axes = long_and_short_axis(px, h);
  a.long_mm = axes[0];
  a.short_mm = axes[1];
  return a;
}

double round_tenth(double v) { return std::round(v * 10.0) / 10.0; }

int64_t count_set(const std::vector<uint8_t>& m) { return std::count(m.begin(), m.end(), 1); }

// Whether a face neighbour of voxel (x, y, z) inside the grid satisfies `pred(index)`.
template <class Pred>
bool any_face_neighbour(const Grid& g, int64_t x, int64_t y, int64_t z, Pred pred) {
  const int64_t nb[6][3] = {{x - 1, y, z}, {x + 1, y, z}, {x, y - 1, z}, {x, y + 1, z}, {x, y, z - 1}, {x, y, z + 1}};
  for (const auto& q : nb) {
    if (q[0] < 0 || q[1] < 0 || q[2] < 0 || q[0] >= g.nx || q[1] >= g.ny || q[2] >= g.nz) continue;
    if (pred(g.index(q[0], q[1], q[2]))) return true;
  }
  return false;
}

// The voxels of `m` with a face neighbour of soft-tissue density outside the
// lungs (the crop's lung mask) and outside `m`: the segmentation's contact with
// the chest wall or mediastinum.
std::vector<uint8_t> wall_contact(const std::vector<uint8_t>& m, const Crop& c) {
  const Grid& g = c.grid;
  std::vector<uint8_t> out(m.size(), 0);
  for (int64_t z = 0; z < g.nz; ++z)
    for (int64_t y = 0; y < g.ny; ++y)
      for (int64_t x = 0; x < g.nx; ++x) {
        const int64_t i = g.index(x, y, z);
        out[i] = m[i] && any_face_neighbour(g, x, y, z, [&](int64_t j) {
                   return !c.lung[j] && !m[j] && c.hu[j] > -300;
                 });
      }
  return out;
}

// Eigenvector of the smallest eigenvalue of a symmetric 3x3 matrix (Jacobi rotations).
std::array<double, 3> smallest_eigenvector(std::array<std::array<double, 3>, 3> a) {
  std::array<std::array<double, 3>, 3> v{{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}};
  for (int sweep = 0; sweep < 50; ++sweep) {
    const double off = a[0][1] * a[0][1] + a[0][2] * a[0][2] + a[1][2] * a[1][2];
    if (off < 1e-20) break;
    for (int p = 0; p < 2; ++p)
      for (int q = p + 1; q < 3; ++q) {
        if (std::abs(a[p][q]) < 1e-30) continue;
        const double theta = (a[q][q] - a[p][p]) / (2 * a[p][q]);
        const double t = (theta >= 0 ? 1 : -1) / (std::abs(theta) + std::sqrt(theta * theta + 1));
        const double cs = 1 / std::sqrt(t * t + 1), sn = t * cs;
        for (int k = 0; k < 3; ++k) {  // A <- A J (columns p, q)
          const double akp = a[k][p], akq = a[k][q];
          a[k][p] = cs * akp - sn * akq;
          a[k][q] = sn * akp + cs * akq;
        }
        for (int k = 0; k < 3; ++k) {  // A <- J^T A (rows p, q)
          const double apk = a[p][k], aqk = a[q][k];
          a[p][k] = cs * apk - sn * aqk;
          a[q][k] = sn * apk + cs * aqk;
        }
        for (int k = 0; k < 3; ++k) {
          const double vkp = v[k][p], vkq = v[k][q];
          v[k][p] = cs * vkp - sn * vkq;
          v[k][q] = sn * vkp + cs * vkq;
        }
      }
  }
  int m = 0;
  for (int k = 1; k < 3; ++k)
    if (a[k][k] < a[m][m]) m = k;
  return {v[0][m], v[1][m], v[2][m]};
}

// The part of a juxtapleural nodule that the lung mask leaves out. The mask
// follows the pleura, closed by a ball that cannot reach into the corners where
// a nodule sits on the wall, so a large part of such a nodule (7-44 % of
// its voxels, on phantoms) lies outside it and the segmentation `seg` ends at the
// mask's edge, short of the pleura. As a reader does, the pleural surface is
// continued under the nodule: a plane fitted to the lung's edge along the wall
// (lung voxels beside soft tissue) in a ring around where `seg` meets the wall
// (up to 2 + max(5, 0.3 long axis) mm from that contact, at least 2 mm from
// `seg`; `contact` is wall_contact(seg, c)). Returns the crop's lung mask with the voxels outside it added that lie
// on the lung's side of the plane, in the segmentation's shadow on it and near
// it; nullopt when the ring holds too few points or no plane fits them (RMS
// over 1.5 mm after the outliers go: a corner, a fissure, the mediastinum's
// folds).
Result<std::optional<std::vector<uint8_t>>> continue_pleura(const Crop& c, const std::vector<uint8_t>& seg,
                                                            const std::vector<uint8_t>& contact, double long_mm) {
  const Grid& g = c.grid;
  const double h = c.h;
  HILUM_ASSIGN_OR_RETURN(std::vector<float> sd, itk_bridge::signed_distance(seg, g));
  HILUM_ASSIGN_OR_RETURN(std::vector<float> dc, itk_bridge::signed_distance(contact, g));
  const double ring_from = 2.0, ring_to = ring_from + std::max(5.0, 0.3 * long_mm);
  std::vector<std::array<double, 3>> pts;
  double seg_c[3] = {0, 0, 0};
  int64_t seg_n = 0;
  for (int64_t z = 0; z < g.nz; ++z)
    for (int64_t y = 0; y < g.ny; ++y)
      for (int64_t x = 0; x < g.nx; ++x) {
        const int64_t i = g.index(x, y, z);
        if (seg[i]) seg_c[0] += x * h, seg_c[1] += y * h, seg_c[2] += z * h, ++seg_n;
        if (!c.lung[i] || sd[i] < ring_from || dc[i] > ring_to) continue;
        if (any_face_neighbour(g, x, y, z, [&](int64_t j) { return !c.lung[j] && c.hu[j] > -600; }))
          pts.push_back({x * h, y * h, z * h});
      }
  if (seg_n == 0 || pts.size() < 50) return std::optional<std::vector<uint8_t>>{};
  for (double& v : seg_c) v /= static_cast<double>(seg_n);
  // The plane of the ring (its points' principal axes) gives the frame: u, w
  // in the plane, n across it.
  std::array<double, 3> p0{}, n{};
  {
    for (const auto& q : pts)
      for (int k = 0; k < 3; ++k) p0[k] += q[k] / static_cast<double>(pts.size());
    std::array<std::array<double, 3>, 3> cov{};
    for (const auto& q : pts)
      for (int r = 0; r < 3; ++r)
        for (int k = 0; k < 3; ++k) cov[r][k] += (q[r] - p0[r]) * (q[k] - p0[k]);
    n = smallest_eigenvector(cov);
  }
  std::array<double, 3> u =
      std::abs(n[0]) < 0.9 ? std::array<double, 3>{1, 0, 0} : std::array<double, 3>{0, 1, 0};
  const double un = u[0] * n[0] + u[1] * n[1] + u[2] * n[2];
  for (int k = 0; k < 3; ++k) u[k] -= un * n[k];
  const double ul = std::sqrt(u[0] * u[0] + u[1] * u[1] + u[2] * u[2]);
  for (double& v : u) v /= ul;
  const std::array<double, 3> w{n[1] * u[2] - n[2] * u[1], n[2] * u[0] - n[0] * u[2],
                                n[0] * u[1] - n[1] * u[0]};
  auto local = [&](const std::array<double, 3>& q) {
    const double d[3] = {q[0] - p0[0], q[1] - p0[1], q[2] - p0[2]};
    return std::array<double, 3>{d[0] * u[0] + d[1] * u[1] + d[2] * u[2],
                                 d[0] * w[0] + d[1] * w[1] + d[2] * w[2],
                                 d[0] * n[0] + d[1] * n[1] + d[2] * n[2]};
  };
  // The pleura as a plane, height = c0 + c1 a + c2 b along n (least squares),
  // fitted again without the points more than 2.5 times the median residual
  // away. (A quadric followed the wall's curvature but bulged into the wall
  // under small nodules: bench/RESULTS.md.)
  constexpr int kTerms = 3;
  std::array<double, kTerms> coef{};
  auto basis = [](double a, double b) { return std::array<double, kTerms>{1, a, b}; };
  auto height = [&](double a, double b) {
    const auto f = basis(a, b);
    double v = 0;
    for (int k = 0; k < kTerms; ++k) v += coef[k] * f[k];
    return v;
  };
  auto fit = [&](const std::vector<std::array<double, 3>>& p) {
    double m[kTerms][kTerms + 1] = {};
    for (const auto& q : p) {
      const auto l = local(q);
      const auto f = basis(l[0], l[1]);
      for (int r = 0; r < kTerms; ++r) {
        for (int k = 0; k < kTerms; ++k) m[r][k] += f[r] * f[k];
        m[r][kTerms] += f[r] * l[2];
      }
    }
    for (int col = 0; col < kTerms; ++col) {  // Gaussian elimination, partial pivoting
      int piv = col;
      for (int r = col + 1; r < kTerms; ++r)
        if (std::abs(m[r][col]) > std::abs(m[piv][col])) piv = r;
      if (std::abs(m[piv][col]) < 1e-12) return false;
      std::swap(m[piv], m[col]);
      for (int r = 0; r < kTerms; ++r) {
        if (r == col) continue;
        const double f = m[r][col] / m[col][col];
        for (int k = col; k <= kTerms; ++k) m[r][k] -= f * m[col][k];
      }
    }
    for (int k = 0; k < kTerms; ++k) coef[k] = m[k][kTerms] / m[k][k];
    return true;
  };
  auto residual = [&](const std::array<double, 3>& q) {
    const auto l = local(q);
    return l[2] - height(l[0], l[1]);
  };
  if (!fit(pts)) return std::optional<std::vector<uint8_t>>{};
  std::vector<double> res;
  for (const auto& q : pts) res.push_back(std::abs(residual(q)));
  std::vector<double> sorted = res;
  std::nth_element(sorted.begin(), sorted.begin() + sorted.size() / 2, sorted.end());
  const double cut = std::max(2.5 * sorted[sorted.size() / 2], 2 * h);
  std::vector<std::array<double, 3>> kept;
  for (size_t k = 0; k < pts.size(); ++k)
    if (res[k] <= cut) kept.push_back(pts[k]);
  if (kept.size() < 50 || kept.size() * 5 < pts.size() * 3 || !fit(kept))
    return std::optional<std::vector<uint8_t>>{};
  double ss = 0;
  for (const auto& q : kept) ss += residual(q) * residual(q);
  if (std::sqrt(ss / static_cast<double>(kept.size())) > 1.5) return std::optional<std::vector<uint8_t>>{};
  // The lung's side is the segmentation's.
  const double side = residual({seg_c[0], seg_c[1], seg_c[2]});
  if (std::abs(side) < 1.0) return std::optional<std::vector<uint8_t>>{};
  const double sign = side > 0 ? 1 : -1;
  // What is added lies under the segmentation: its shadow on the plane (one
  // grid step wider), so that tissue along the wall beside the nodule, where the
  // wall rises over the plane, stays out.
  const int64_t half_side = static_cast<int64_t>(std::ceil(g.nx * std::sqrt(3.0))) + 2,
                cells = 2 * half_side + 1;
  auto cell = [&](double x, double y, double z) -> int64_t {
    const double q[3] = {x * h - p0[0], y * h - p0[1], z * h - p0[2]};
    const int64_t a = half_side + std::lround((q[0] * u[0] + q[1] * u[1] + q[2] * u[2]) / h);
    const int64_t b = half_side + std::lround((q[0] * w[0] + q[1] * w[1] + q[2] * w[2]) / h);
    return (a < 0 || b < 0 || a >= cells || b >= cells) ? -1 : b * cells + a;
  };
  std::vector<uint8_t> shadow(static_cast<size_t>(cells * cells), 0);
  for (int64_t z = 0; z < g.nz; ++z)
    for (int64_t y = 0; y < g.ny; ++y)
      for (int64_t x = 0; x < g.nx; ++x)
        if (seg[g.index(x, y, z)])
          if (const int64_t k = cell(x, y, z); k >= 0) shadow[k] = 1;
  std::vector<uint8_t> wide = shadow;
  for (int64_t b = 1; b + 1 < cells; ++b)
    for (int64_t a = 1; a + 1 < cells; ++a)
      if (shadow[b * cells + a] || shadow[b * cells + a - 1] || shadow[b * cells + a + 1] ||
          shadow[(b - 1) * cells + a] || shadow[(b + 1) * cells + a])
        wide[b * cells + a] = 1;
  // The ring's points are lung voxels beside the wall: the pleura lies about
  // half a grid step beyond them.
  const double reach = 0.5 * long_mm + 2;
  std::vector<uint8_t> lung = c.lung;
  for (int64_t z = 0; z < g.nz; ++z)
    for (int64_t y = 0; y < g.ny; ++y)
      for (int64_t x = 0; x < g.nx; ++x) {
        const int64_t i = g.index(x, y, z);
        if (lung[i] || sd[i] > reach || sign * residual({x * h, y * h, z * h}) < -0.5 * h) continue;
        if (const int64_t k = cell(x, y, z); k >= 0 && wide[k]) lung[i] = 1;
      }
  return std::optional<std::vector<uint8_t>>{std::move(lung)};
}

}  // namespace

std::array<double, 3> long_and_short_axis(const std::vector<std::array<int, 2>>& pixels, double h) {
  if (pixels.empty()) return {0, 0, 0};
  // Convex hull of the pixel centres (monotone chain); extents are centre
  // extents plus one pixel (the pixels' own width).
  std::vector<std::array<double, 2>> pts;
  pts.reserve(pixels.size());
  for (const auto& p : pixels) pts.push_back({p[0] * h, p[1] * h});
  std::sort(pts.begin(), pts.end());
  pts.erase(std::unique(pts.begin(), pts.end()), pts.end());
  auto cross = [](const std::array<double, 2>& o, const std::array<double, 2>& a,
                  const std::array<double, 2>& b) {
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);
  };
  std::vector<std::array<double, 2>> hull(2 * pts.size() + 1);
  size_t k = 0;
  for (size_t i = 0; i < pts.size(); ++i) {
    while (k >= 2 && cross(hull[k - 2], hull[k - 1], pts[i]) <= 0) --k;
    hull[k++] = pts[i];
  }
  for (size_t i = pts.size() - 1, t = k + 1; i > 0; --i) {
    while (k >= t && cross(hull[k - 2], hull[k - 1], pts[i - 1]) <= 0) --k;
    hull[k++] = pts[i - 1];
  }
  hull.resize(k > 1 ? k - 1 : k);
  double best = 0, angle = 0;
  for (size_t i = 0; i < hull.size(); ++i)
    for (size_t j = i + 1; j < hull.size(); ++j) {
      const double dx = hull[j][0] - hull[i][0], dy = hull[j][1] - hull[i][1];
      const double d = dx * dx + dy * dy;
      if (d > best) best = d, angle = std::atan2(dy, dx);
    }
  const double px = -std::sin(angle), py = std::cos(angle);
  double lo = 1e300, hi = -1e300;
  for (const auto& p : hull) {
    const double s = p[0] * px + p[1] * py;
    lo = std::min(lo, s), hi = std::max(hi, s);
  }
  return {std::sqrt(best) + h, hi - lo + h, angle};
}

Result<NoduleMeasurement> measure_nodule(const Volume& volume, const LungMask& mask, const Vec3& center_mm,
                                         double hint, const SizingOptions& o) {
  if (!mask.labels.defined() || mask.labels.shape() != volume.hu.shape()) {
    return bad_input("sizing: the lung mask does not match the volume");
  }
  const Vec3 cv = volume.voxel_from_world(center_mm);
  if (!(cv[0] >= 0 && cv[1] >= 0 && cv[2] >= 0 && cv[0] <= volume.nx() - 1 && cv[1] <= volume.ny() - 1 &&
        cv[2] <= volume.nz() - 1)) {
    return bad_input("sizing: the finding's centre lies outside the volume");
  }
  hint = std::clamp(std::isfinite(hint) ? hint : 6.0, 3.0, 2 * o.max_half_size_mm);
  const bool pleura = o.continue_pleura && env_switch("HILUM_SIZING_PLEURA", true);
  double half = std::min(o.max_half_size_mm, std::max(8.0, hint + 5.0));
  NoduleMeasurement out;
  for (int attempt = 0; attempt < 3; ++attempt) {
    const double h = std::clamp(2 * half / 100.0, 0.2, 0.6);
    Crop c = make_crop(volume, mask, center_mm, half, h);
    const Grid& g = c.grid;
    const int64_t mid = c.n / 2;

    // Levels: parenchyma (lung voxels away from the centre, no vessels), core (near the centre).
    std::vector<float> bg, core;
    // Dense voxels within the core sphere (used by the ground-glass path below).
    std::vector<uint8_t> own(c.hu.size(), 0);
    const double r_core = std::max(1.0, hint / 4), r_bg = hint / 2 + 3;
    for (int64_t z = 0; z < g.nz; ++z)
      for (int64_t y = 0; y < g.ny; ++y)
        for (int64_t x = 0; x < g.nx; ++x) {
          const double d = h * std::sqrt(double(x - mid) * (x - mid) + double(y - mid) * (y - mid) +
                                         double(z - mid) * (z - mid));
          const int64_t i = g.index(x, y, z);
          if (d <= r_core) {
            core.push_back(c.hu[i]);
            own[i] = c.hu[i] > o.solid_core_hu;
          }
          if (d >= r_bg && c.lung[i] && c.hu[i] < -500) bg.push_back(c.hu[i]);
        }
    const double b = bg.size() > 50 ? percentile(bg, 0.5) : mask.parenchyma_hu;
    // 75th percentile: robust to a vessel crossing the core sphere, still sees a solid core.
    const double core_hu = percentile(core, 0.75);
    out.core_hu = core_hu;
    out.parenchyma_hu = b;
    if (core_hu - b < 50) return bad_input("sizing: no nodule tissue at the finding's centre");

    // Nodule tissue may not extend beyond this distance from the centre (a leak
    // along vessels stops there).
    const double r_limit = std::max(6.0, 0.75 * hint + 4.0);
    std::vector<uint8_t> within(c.hu.size());
    for (int64_t z = 0; z < g.nz; ++z)
      for (int64_t y = 0; y < g.ny; ++y)
        for (int64_t x = 0; x < g.nx; ++x)
          within[g.index(x, y, z)] =
              h * h *
                  (double(x - mid) * (x - mid) + double(y - mid) * (y - mid) + double(z - mid) * (z - mid)) <=
              r_limit * r_limit;

    // Voxels above `threshold` in the lungs (`*in`, else `*lung`), within the limit. With `ground_glass`,
    // dense voxels (vessels) and everything within 1 mm of them are left out,
    // except a solid core in `keep`; holes are filled per slice at the end.
    // The lungs the segmentation may take in: the crop's lung mask, or that mask
    // with a juxtapleural nodule's part beyond it (continue_pleura, below).
    const std::vector<uint8_t>* lung = &c.lung;
    auto segment = [&](double threshold, bool ground_glass = false,
                       const std::vector<uint8_t>* keep = nullptr,
                       const std::vector<uint8_t>* in = nullptr) -> Result<std::vector<uint8_t>> {
      const std::vector<uint8_t>& lungs = in ? *in : *lung;
      std::vector<uint8_t> m(c.hu.size());
      for (size_t i = 0; i < m.size(); ++i) m[i] = c.hu[i] > threshold && lungs[i] && within[i];
      if (ground_glass) {
        // The solid core and its blurred rim (1.5 mm) are nodule, not vessel.
        std::vector<uint8_t> core(c.hu.size(), 0);
        if (keep) {
          HILUM_ASSIGN_OR_RETURN(std::vector<float> dk, itk_bridge::signed_distance(*keep, g));
          for (size_t i = 0; i < m.size(); ++i) core[i] = dk[i] <= 1.5;
        }
        std::vector<uint8_t> dense(c.hu.size());
        for (size_t i = 0; i < m.size(); ++i) dense[i] = c.hu[i] > o.solid_core_hu && !core[i];
        HILUM_ASSIGN_OR_RETURN(std::vector<float> dd, itk_bridge::signed_distance(dense, g));
        for (size_t i = 0; i < m.size(); ++i) {
          if (core[i])
            m[i] = lungs[i] && within[i] && (c.hu[i] > threshold || (*keep)[i]);
          else if (dd[i] <= 1.0)
            m[i] = 0;
        }
      }
      HILUM_ASSIGN_OR_RETURN(m, central_component(m, g, std::max(2.0, hint / 2) / h));
      int64_t n = std::count(m.begin(), m.end(), 1);
      if (n == 0) return m;
      // Cut attached vessels.
      HILUM_ASSIGN_OR_RETURN(std::vector<uint8_t> opened, cut_vessels(m, g, lungs));
      HILUM_ASSIGN_OR_RETURN(opened, central_component(opened, g, std::max(2.0, hint / 2) / h));
      if (std::count(opened.begin(), opened.end(), 1) > n / 4) m = std::move(opened);
      if (ground_glass) fill_slice_holes(m, g);
      return m;
    };

    struct Segmentation {
      std::vector<uint8_t> whole, solid;
      NoduleType type = NoduleType::kSolid;
      double threshold_hu = 0;
    };
    // The nodule's type, thresholds and segmentations within `*lung`.
    auto segment_nodule = [&]() -> Result<Segmentation> {
      Segmentation sg;
      std::vector<uint8_t>& solid = sg.solid;
      if (core_hu <= o.solid_core_hu) {
        sg.type = NoduleType::kGroundGlass;
        sg.threshold_hu = (core_hu + b) / 2;
        // Dense voxels within the core sphere are the nodule's own (a small solid
        // nodule that partial volume in thick slices holds under the solid level,
        // or a dot of solid tissue), not a vessel: the vessel cut keeps them and
        // their rim, as a part-solid nodule's core (it took such nodules away).
        const bool any_own = std::find(own.begin(), own.end(), 1) != own.end();
        HILUM_ASSIGN_OR_RETURN(sg.whole, segment(sg.threshold_hu, true, any_own ? &own : nullptr));
      } else {
        const double t_solid = (core_hu + b) / 2;
        HILUM_ASSIGN_OR_RETURN(solid, segment(t_solid));
        sg.type = NoduleType::kSolid;
        sg.threshold_hu = t_solid;
        sg.whole = solid;
        // Ground glass around the solid part? Look at a shell 1-3 mm outside it
        // (closer, the blurred edge of a solid nodule would pass for ground glass).
        auto rim_level = [&](const std::vector<uint8_t>& inner, double from_mm,
                             double to_mm) -> Result<double> {
          HILUM_ASSIGN_OR_RETURN(std::vector<float> sd, itk_bridge::signed_distance(inner, g));
          std::vector<float> shell;
          for (size_t i = 0; i < sd.size(); ++i)
            if (sd[i] >= from_mm && sd[i] <= to_mm && c.lung[i]) shell.push_back(c.hu[i]);
          return shell.size() > 20 ? percentile(shell, 0.5) : b;
        };
        HILUM_ASSIGN_OR_RETURN(double ggo, rim_level(solid, 1.0, 3.0));
        // Half-way between a soft-tissue core and lung parenchyma lies below the
        // solid level (-350 HU) for nearly every nodule, and for a part-solid one
        // whose small or thin-sliced core partial volume holds down it falls into
        // the ground glass: the segmentation swallows the rim and nothing is left
        // outside it. So when no rim was found there, it is looked for outside the
        // tissue above the solid level too (one more segmentation per such finding).
        bool rim_found = ggo - b >= o.ground_glass_margin_hu && ggo < t_solid;
        if (!rim_found && t_solid < o.solid_core_hu) {
          HILUM_ASSIGN_OR_RETURN(std::vector<uint8_t> dense, segment(o.solid_core_hu));
          if (std::count(dense.begin(), dense.end(), 1) > 0) {
            HILUM_ASSIGN_OR_RETURN(double rim, rim_level(dense, 1.0, 3.0));
            if (rim - b >= o.ground_glass_margin_hu && rim < o.solid_core_hu) ggo = rim, rim_found = true;
          }
        }
        if (rim_found) {
          const double t_whole = (ggo + b) / 2, t_core = (core_hu + ggo) / 2;
          // The solid part within the lung mask itself: past a continued pleura
          // the wall's tissue under the nodule would pass for solid component.
          HILUM_ASSIGN_OR_RETURN(std::vector<uint8_t> s, segment(t_core, false, nullptr, &c.lung));
          HILUM_ASSIGN_OR_RETURN(std::vector<uint8_t> w, segment(t_whole, true, &s));
          if (std::count(w.begin(), w.end(), 1) > std::count(s.begin(), s.end(), 1) * 3 / 2) {
            // The solid part lies within the nodule: what the whole's vessel cut
            // took off (a vessel, the wall's tissue past a continued pleura) is
            // not solid component either.
            for (size_t i = 0; i < s.size(); ++i) s[i] = s[i] && w[i];
            sg.type = NoduleType::kPartSolid;
            sg.whole = std::move(w);
            sg.solid = std::move(s);
            sg.threshold_hu = t_whole;
          }
        }
      }
      return sg;
    };
    HILUM_ASSIGN_OR_RETURN(Segmentation sg, segment_nodule());
    std::optional<std::vector<uint8_t>> extended;
    // A juxtapleural nodule: the pleura continued under it, and segmented again
    // (see continue_pleura). Kept unless it holds less tissue, runs away (more
    // than three times as much) or reaches the neighbourhood's edge where the
    // first did not.
    // Where the segmentation meets tissue outside the lungs (also what makes a
    // finding juxtapleural, below).
    std::vector<uint8_t> contact = wall_contact(sg.whole, c);
    if (const int64_t n0 = count_set(sg.whole);
        n0 > 0 && pleura && count_set(contact) >= std::max<int64_t>(5, n0 / 1000)) {
      const Axes a0 = measure_axes(sg.whole, g, h);
      HILUM_ASSIGN_OR_RETURN(extended, continue_pleura(c, sg.whole, contact, a0.long_mm));
      if (extended) {
        lung = &*extended;
        HILUM_ASSIGN_OR_RETURN(Segmentation sg2, segment_nodule());
        const int64_t n2 = count_set(sg2.whole);
        if (n2 >= n0 && n2 <= 3 * n0 && (!touches_border(sg2.whole, g) || touches_border(sg.whole, g))) {
          sg = std::move(sg2);
          contact = wall_contact(sg.whole, c);
        } else {
          lung = &c.lung;
        }
      }
    }
    std::vector<uint8_t> whole = std::move(sg.whole), solid = std::move(sg.solid);
    out.type = sg.type;
    out.threshold_hu = sg.threshold_hu;
    const int64_t n = std::count(whole.begin(), whole.end(), 1);
    if (n == 0) return bad_input("sizing: no nodule tissue at the finding's centre");
    if (touches_border(whole, g) && half < o.max_half_size_mm && attempt < 2) {
      half = std::min(o.max_half_size_mm, half * 1.6);
      continue;  // larger than its neighbourhood: look wider
    }
    if (touches_border(whole, g)) out.note = "the segmentation reaches the edge of its neighbourhood";

    out.volume_mm3 = n * h * h * h;
    if (out.type != NoduleType::kPartSolid) {
      // Partial-volume aware: sum the tissue fraction (HU between parenchyma
      // and core level) over the segmentation grown by 0.7 mm.
      HILUM_ASSIGN_OR_RETURN(std::vector<float> sd, itk_bridge::signed_distance(whole, g));
      const double level = out.type == NoduleType::kSolid ? core_hu : core_hu;
      double fraction = 0;
      for (size_t i = 0; i < sd.size(); ++i)
        if (sd[i] <= 0.7 && (*lung)[i]) fraction += std::clamp((c.hu[i] - b) / (level - b), 0.0, 1.0);
      out.volume_mm3 = fraction * h * h * h;
    }
    double sx = 0, sy = 0, sz = 0;
    for (int64_t z = 0; z < g.nz; ++z)
      for (int64_t y = 0; y < g.ny; ++y)
        for (int64_t x = 0; x < g.nx; ++x)
          if (whole[g.index(x, y, z)]) sx += x, sy += y, sz += z;
    const int64_t wall = count_set(contact);
    out.center_mm = c.world(sx / n, sy / n, sz / n, volume);
    out.juxtapleural = wall >= std::max<int64_t>(5, n / 100);
    const Axes axes = measure_axes(whole, g, h);
    out.long_axis_mm = round_tenth(axes.long_mm);
    out.short_axis_mm = round_tenth(axes.short_mm);
    out.mean_diameter_mm = round_tenth((axes.long_mm + axes.short_mm) / 2);
    out.axial_slice =
        static_cast<int>(std::lround(volume.voxel_from_world(c.world(mid, mid, axes.plane, volume))[2]));
    if (out.type == NoduleType::kSolid) {
      out.solid_component_mm = out.mean_diameter_mm;
    } else if (out.type == NoduleType::kPartSolid) {
      const Axes s = measure_axes(solid, g, h);
      out.solid_component_mm = round_tenth((s.long_mm + s.short_mm) / 2);
    }
    return out;
  }
  return out;
}

}  // namespace hilum
