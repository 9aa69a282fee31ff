#include "vision/io/sizing.h"

#include <algorithm>
#include <cmath>

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

    // Voxels above `threshold` in the lungs, within the limit. With `ground_glass`,
    // dense voxels (vessels) and everything within 1 mm of them are left out,
    // except a solid core in `keep`; holes are filled per slice at the end.
    auto segment = [&](double threshold, bool ground_glass = false,
                       const std::vector<uint8_t>* keep = nullptr) -> Result<std::vector<uint8_t>> {
      std::vector<uint8_t> m(c.hu.size());
      for (size_t i = 0; i < m.size(); ++i) m[i] = c.hu[i] > threshold && c.lung[i] && within[i];
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
            m[i] = c.lung[i] && within[i] && (c.hu[i] > threshold || (*keep)[i]);
          else if (dd[i] <= 1.0)
            m[i] = 0;
        }
      }
      HILUM_ASSIGN_OR_RETURN(m, central_component(m, g, std::max(2.0, hint / 2) / h));
      int64_t n = std::count(m.begin(), m.end(), 1);
      if (n == 0) return m;
      // Cut attached vessels.
      HILUM_ASSIGN_OR_RETURN(std::vector<uint8_t> opened, cut_vessels(m, g, c.lung));
      HILUM_ASSIGN_OR_RETURN(opened, central_component(opened, g, std::max(2.0, hint / 2) / h));
      if (std::count(opened.begin(), opened.end(), 1) > n / 4) m = std::move(opened);
      if (ground_glass) fill_slice_holes(m, g);
      return m;
    };

    std::vector<uint8_t> whole, solid;
    if (core_hu <= o.solid_core_hu) {
      out.type = NoduleType::kGroundGlass;
      out.threshold_hu = (core_hu + b) / 2;
      // Dense voxels within the core sphere are the nodule's own (a small solid
      // nodule that partial volume in thick slices holds under the solid level,
      // or a dot of solid tissue), not a vessel: the vessel cut keeps them and
      // their rim, as a part-solid nodule's core (it took such nodules away).
      const bool any_own = std::find(own.begin(), own.end(), 1) != own.end();
      HILUM_ASSIGN_OR_RETURN(whole, segment(out.threshold_hu, true, any_own ? &own : nullptr));
    } else {
      const double t_solid = (core_hu + b) / 2;
      HILUM_ASSIGN_OR_RETURN(solid, segment(t_solid));
      out.type = NoduleType::kSolid;
      out.threshold_hu = t_solid;
      whole = solid;
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
        HILUM_ASSIGN_OR_RETURN(std::vector<uint8_t> s, segment(t_core));
        HILUM_ASSIGN_OR_RETURN(std::vector<uint8_t> w, segment(t_whole, true, &s));
        if (std::count(w.begin(), w.end(), 1) > std::count(s.begin(), s.end(), 1) * 3 / 2) {
          out.type = NoduleType::kPartSolid;
          whole = std::move(w);
          solid = std::move(s);
          out.threshold_hu = t_whole;
        }
      }
    }
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
        if (sd[i] <= 0.7 && c.lung[i]) fraction += std::clamp((c.hu[i] - b) / (level - b), 0.0, 1.0);
      out.volume_mm3 = fraction * h * h * h;
    }
    double sx = 0, sy = 0, sz = 0;
    int64_t wall = 0;
    for (int64_t z = 0; z < g.nz; ++z)
      for (int64_t y = 0; y < g.ny; ++y)
        for (int64_t x = 0; x < g.nx; ++x) {
          if (!whole[g.index(x, y, z)]) continue;
          sx += x, sy += y, sz += z;
          // Wall contact: a face neighbour outside the lungs with soft-tissue density.
          const int64_t nb[6][3] = {{x - 1, y, z}, {x + 1, y, z}, {x, y - 1, z},
                                    {x, y + 1, z}, {x, y, z - 1}, {x, y, z + 1}};
          for (const auto& q : nb) {
            if (q[0] < 0 || q[1] < 0 || q[2] < 0 || q[0] >= g.nx || q[1] >= g.ny || q[2] >= g.nz) continue;
            const int64_t j = g.index(q[0], q[1], q[2]);
            if (!c.lung[j] && c.hu[j] > -300) {
              ++wall;
              break;
            }
          }
        }
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
