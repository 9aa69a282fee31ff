#include "vision/io/lung_mask.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <future>
#include <limits>
#include <string>

#include "cuda/components.h"
#include "cuda/distance.h"
#include "model/log.h"
#include "model/parallel.h"
#include "model/stopwatch.h"
#include "vision/io/candidates_internal.h"
#include "vision/io/itk_bridge.h"
#include "vision/io/mask_box.h"

namespace hilum {
namespace {

using itk_bridge::Grid;

// fn(i) for every i in [0, n), in parallel chunks (element-wise work: each i
// written by one call, so the result does not depend on the split).
template <typename Fn>
void for_each_index(size_t n, Fn&& fn) {
  parallel_for(static_cast<int64_t>(n), int64_t{1} << 16, [&](int64_t first, int64_t last) {
    for (int64_t i = first; i < last; ++i) fn(static_cast<size_t>(i));
  });
}

// Fills, slice by slice (slices in parallel), background regions not connected
// to the slice border (4-connected). Each slice's flood runs on the box of its
// mask pixels grown by one pixel: everything outside that box is background
// that reaches the border in a straight line, so seeding the box's rim gives
// the same result as seeding the slice border.
void fill_holes_2d(std::vector<uint8_t>& mask, const Grid& g) {
  parallel_for(g.nz, 1, [&](int64_t first, int64_t last) {
    std::vector<uint8_t> outside(static_cast<size_t>(g.nx * g.ny));
    std::vector<int64_t> stack;
    for (int64_t z = first; z < last; ++z) {
      uint8_t* m = mask.data() + z * g.nx * g.ny;
      const MaskBox box = mask_box(m, g.nx, g.ny, 1);
      if (box.empty()) continue;  // no mask pixel: no hole
      // The box grown by one pixel, inclusive bounds.
      const int64_t x0 = std::max<int64_t>(0, box.x0 - 1), y0 = std::max<int64_t>(0, box.y0 - 1);
      const int64_t x1 = std::min(g.nx - 1, box.x1), y1 = std::min(g.ny - 1, box.y1);
      for (int64_t y = y0; y <= y1; ++y) std::fill_n(outside.begin() + y * g.nx + x0, x1 - x0 + 1, 0);
      stack.clear();
      auto push = [&](int64_t x, int64_t y) {
        const int64_t i = y * g.nx + x;
        if (!m[i] && !outside[i]) {
          outside[i] = 1;
          stack.push_back(i);
        }
      };
      for (int64_t x = x0; x <= x1; ++x) push(x, y0), push(x, y1);
      for (int64_t y = y0; y <= y1; ++y) push(x0, y), push(x1, y);
      while (!stack.empty()) {
        const int64_t i = stack.back();
        stack.pop_back();
        const int64_t x = i % g.nx, y = i / g.nx;
        if (x > x0) push(x - 1, y);
        if (x < x1) push(x + 1, y);
        if (y > y0) push(x, y - 1);
        if (y < y1) push(x, y + 1);
      }
      for (int64_t y = y0; y <= y1; ++y)
        for (int64_t x = x0; x <= x1; ++x)
          if (!outside[y * g.nx + x]) m[y * g.nx + x] = 1;
    }
  });
}

// Voxels face-connected to `seed` with value <= upper; stops early (returns
// what it has) once more than `limit` voxels are reached (a leak).
std::vector<uint8_t> grow_below(const std::vector<float>& image, const Grid& g,
                                const std::array<int64_t, 3>& seed, float upper, int64_t limit,
                                int64_t& reached) {
  std::vector<uint8_t> out(image.size(), 0);
  std::vector<int64_t> stack{g.index(seed[0], seed[1], seed[2])};
  out[stack[0]] = 1;
  reached = 1;
  while (!stack.empty() && reached <= limit) {
    const int64_t i = stack.back();
    stack.pop_back();
    const int64_t x = i % g.nx, y = (i / g.nx) % g.ny, z = i / (g.nx * g.ny);
    const int64_t nb[6][3] = {{x - 1, y, z}, {x + 1, y, z}, {x, y - 1, z},
                              {x, y + 1, z}, {x, y, z - 1}, {x, y, z + 1}};
    for (const auto& n : nb) {
      if (n[0] < 0 || n[1] < 0 || n[2] < 0 || n[0] >= g.nx || n[1] >= g.ny || n[2] >= g.nz) continue;
      const int64_t j = g.index(n[0], n[1], n[2]);
      if (out[j] || image[j] > upper) continue;
      out[j] = 1;
      ++reached;
      stack.push_back(j);
    }
  }
  return out;
}

// 6-neighbour dilation by one voxel.
std::vector<uint8_t> dilate6(const std::vector<uint8_t>& m, const Grid& g) {
  std::vector<uint8_t> out = m;
  for (int64_t z = 0; z < g.nz; ++z)
    for (int64_t y = 0; y < g.ny; ++y)
      for (int64_t x = 0; x < g.nx; ++x) {
        if (!m[g.index(x, y, z)]) continue;
        if (x > 0) out[g.index(x - 1, y, z)] = 1;
        if (x + 1 < g.nx) out[g.index(x + 1, y, z)] = 1;
        if (y > 0) out[g.index(x, y - 1, z)] = 1;
        if (y + 1 < g.ny) out[g.index(x, y + 1, z)] = 1;
        if (z > 0) out[g.index(x, y, z - 1)] = 1;
        if (z + 1 < g.nz) out[g.index(x, y, z + 1)] = 1;
      }
  return out;
}

MaskBox bounding_box(const std::vector<uint8_t>& m, const Grid& g) {
  return mask_box(m.data(), g.nx, g.ny, g.nz);
}

// Morphological closing with a ball of `radius` mm (distance maps on the
// object's bounding box grown by the radius). The result contains the input.
// With `larger` and a larger_radius above radius, *larger gets the closing by
// that ball too; the two share the distance map of the object (the crop grows
// by the larger radius: the maps are exact, so the first closing is the same).
Result<std::vector<uint8_t>> close_ball(const std::vector<uint8_t>& m, const Grid& g, Device device,
                                        double radius, double larger_radius = 0,
                                        std::vector<uint8_t>* larger = nullptr) {
  const MaskBox b = bounding_box(m, g);
  if (larger) *larger = m;
  if (b.empty()) return m;
  const bool two = larger && larger_radius > radius;
  const double reach = two ? larger_radius : radius;
  const int64_t mx = static_cast<int64_t>(std::ceil(reach / g.spacing[0])) + 2;
  const int64_t my = static_cast<int64_t>(std::ceil(reach / g.spacing[1])) + 2;
  const int64_t mz = static_cast<int64_t>(std::ceil(reach / g.spacing[2])) + 2;
  // The crop extends past the grid where needed, so the ball is never clipped at the volume's faces.
  Grid c{b.x1 - b.x0 + 2 * mx, b.y1 - b.y0 + 2 * my, b.z1 - b.z0 + 2 * mz, g.spacing};
  std::vector<uint8_t> crop(static_cast<size_t>(c.voxels()), 0);
  parallel_for(b.z1 - b.z0, 1, [&](int64_t first, int64_t last) {
    for (int64_t z = b.z0 + first; z < b.z0 + last; ++z)
      for (int64_t y = b.y0; y < b.y1; ++y)
        std::copy_n(m.begin() + g.index(b.x0, y, z), b.x1 - b.x0,
                    crop.begin() + c.index(mx, y - b.y0 + my, z - b.z0 + mz));
  });
  const double half_voxel = 0.5 * std::max({g.spacing[0], g.spacing[1], g.spacing[2]});
  // Sets the voxels of `out` in the object's box where closed(crop index) holds. The closing
  // can reach past the object's box only by less than a voxel; that rim is ignored.
  auto paste = [&](const auto& closed, std::vector<uint8_t>& out) {
    parallel_for(b.z1 - b.z0, 1, [&](int64_t first, int64_t last) {
      for (int64_t z = b.z0 + first; z < b.z0 + last; ++z)
        for (int64_t y = b.y0; y < b.y1; ++y)
          for (int64_t x = b.x0; x < b.x1; ++x)
            if (closed(c.index(x - b.x0 + mx, y - b.y0 + my, z - b.z0 + mz))) out[g.index(x, y, z)] = 1;
    });
  };
  // On CUDA both closings run there (cuda/distance.h: the same maps as ITK's to float
  // rounding); only the closed crops come back.
  if (device == Device::kCUDA) {
    std::vector<double> radii{radius};
    if (two) radii.push_back(larger_radius);
    auto closed = cuda::closings(crop, candidates_internal::dims_of(c), radii, half_voxel);
    if (closed.ok()) {
      std::vector<uint8_t> out = m;
      for (size_t k = 0; k < closed->size(); ++k)
        paste([&](int64_t i) { return (*closed)[k][i] != 0; }, k == 0 ? out : *larger);
      return out;
    }
    log_warning("lung mask: the closing on CUDA failed (" + closed.error().message() +
                "); it runs on the CPU");
  }
  HILUM_ASSIGN_OR_RETURN(std::vector<float> d1, itk_bridge::signed_distance(crop, c));
  // The closing by one ball, written over `out` (a copy of m).
  auto close = [&](double r, std::vector<uint8_t>& out) -> Status {
    std::vector<uint8_t> dilated(crop.size());
    for_each_index(crop.size(), [&](size_t i) { dilated[i] = d1[i] <= r; });
    HILUM_ASSIGN_OR_RETURN(std::vector<float> d2, itk_bridge::signed_distance(dilated, c));
    paste([&](int64_t i) { return d2[i] <= -(r - half_voxel); }, out);
    return Status::Ok();
  };
  // The larger ball's map on its own thread beside the first (ITK's distance
  // maps scale poorly past a few cores).
  std::future<Status> second;
  if (two) second = std::async(std::launch::async, [&] { return close(larger_radius, *larger); });
  std::vector<uint8_t> out = m;
  const Status first = close(radius, out);
  if (two) HILUM_RETURN_IF_ERROR(second.get());
  HILUM_RETURN_IF_ERROR(first);
  return out;
}

// Splits one component that holds both lungs: erode until it falls apart into
// two large cores, then give every voxel to the nearer core. Null when it never splits.
Result<std::vector<uint8_t>> split_joined(const std::vector<uint8_t>& comp, const Grid& g) {
  HILUM_ASSIGN_OR_RETURN(std::vector<float> sd, itk_bridge::signed_distance(comp, g));
  for (double r = 1.5; r <= 20.0; r += 1.5) {
    std::vector<uint8_t> core(comp.size());
    for (size_t i = 0; i < comp.size(); ++i) core[i] = sd[i] < -r;
    std::vector<int64_t> sizes;
    HILUM_ASSIGN_OR_RETURN(std::vector<uint32_t> labels, itk_bridge::label_components(core, g, false, sizes));
    if (sizes.size() < 3 || sizes[2] < sizes[1] / 10) continue;
    std::vector<uint8_t> a(comp.size()), b(comp.size());
    for (size_t i = 0; i < comp.size(); ++i) a[i] = labels[i] == 1, b[i] = labels[i] == 2;
    HILUM_ASSIGN_OR_RETURN(std::vector<float> da, itk_bridge::signed_distance(a, g));
    HILUM_ASSIGN_OR_RETURN(std::vector<float> db, itk_bridge::signed_distance(b, g));
    std::vector<uint8_t> part(comp.size(), 0);  // 1: nearer core a, 2: nearer core b
    for (size_t i = 0; i < comp.size(); ++i)
      if (comp[i]) part[i] = da[i] <= db[i] ? 1 : 2;
    return part;
  }
  return std::vector<uint8_t>{};
}

// The pieces `big` (a closing by the larger ball) adds to `m` that are juxtapleural masses by
// LungMaskOptions' rules go into `m` (true when one did). Worked on the box of what it adds.
template <typename OutsideAir>
Result<bool> add_wall_masses(std::vector<uint8_t>& m, std::vector<uint8_t>& big, const Grid& g,
                             const LungMaskOptions& o, const OutsideAir& outside_air) {
  for_each_index(m.size(), [&](size_t i) { big[i] = big[i] && !m[i]; });
  const MaskBox b = bounding_box(big, g);
  if (b.empty()) return false;
  const Grid c{b.x1 - b.x0, b.y1 - b.y0, b.z1 - b.z0, g.spacing};
  std::vector<uint8_t> added(static_cast<size_t>(c.voxels()));
  for (int64_t z = 0; z < c.nz; ++z)
    for (int64_t y = 0; y < c.ny; ++y)
      std::copy_n(big.begin() + g.index(b.x0, b.y0 + y, b.z0 + z), c.nx, added.begin() + c.index(0, y, z));
  std::vector<int64_t> sizes;
  HILUM_ASSIGN_OR_RETURN(std::vector<uint32_t> piece, itk_bridge::label_components(added, c, true, sizes));
  struct Box {
    int64_t lo[3] = {std::numeric_limits<int64_t>::max(), std::numeric_limits<int64_t>::max(),
                     std::numeric_limits<int64_t>::max()};
    int64_t hi[3] = {-1, -1, -1};
  };
  std::vector<Box> box(sizes.size());
  for (int64_t z = 0; z < c.nz; ++z)
    for (int64_t y = 0; y < c.ny; ++y)
      for (int64_t x = 0; x < c.nx; ++x)
        if (const uint32_t l = piece[c.index(x, y, z)]) {
          Box& pb = box[l];
          const int64_t p[3] = {x, y, z};
          for (int a = 0; a < 3; ++a)
            pb.lo[a] = std::min(pb.lo[a], p[a]), pb.hi[a] = std::max(pb.hi[a], p[a]);
        }
  const double voxel_ml = g.spacing[0] * g.spacing[1] * g.spacing[2] / 1000.0;
  std::vector<uint8_t> compact(sizes.size(), 0);
  for (size_t l = 1; l < sizes.size(); ++l) {
    bool ok = static_cast<double>(sizes[l]) * voxel_ml >= o.mass_min_volume_ml;
    for (int a = 0; a < 3; ++a)
      ok = ok && (box[l].hi[a] - box[l].lo[a] + 1) * g.spacing[a] <= o.mass_max_extent_mm;
    compact[l] = ok;
  }
  // Near the wall: from one of its voxels, a straight in-plane walk along an axis meets the air
  // outside the body within the depth.
  std::vector<uint8_t> keep(sizes.size(), 0);
  const int64_t steps_x = static_cast<int64_t>(o.mass_max_wall_depth_mm / g.spacing[0]);
  const int64_t steps_y = static_cast<int64_t>(o.mass_max_wall_depth_mm / g.spacing[1]);
  const int64_t dx[4] = {1, -1, 0, 0}, dy[4] = {0, 0, 1, -1};
  for (int64_t z = 0; z < c.nz; ++z)
    for (int64_t y = 0; y < c.ny; ++y)
      for (int64_t x = 0; x < c.nx; ++x) {
        const uint32_t l = piece[c.index(x, y, z)];
        if (!l || !compact[l] || keep[l]) continue;
        for (int d = 0; d < 4 && !keep[l]; ++d)
          for (int64_t k = 1; k <= (dx[d] ? steps_x : steps_y); ++k) {
            const int64_t gx = b.x0 + x + dx[d] * k, gy = b.y0 + y + dy[d] * k;
            if (gx < 0 || gy < 0 || gx >= g.nx || gy >= g.ny) break;
            if (outside_air(gx, gy, b.z0 + z)) {
              keep[l] = 1;
              break;
            }
          }
      }
  for (int64_t z = 0; z < c.nz; ++z)
    for (int64_t y = 0; y < c.ny; ++y)
      for (int64_t x = 0; x < c.nx; ++x)
        if (const uint32_t l = piece[c.index(x, y, z)]; l && keep[l])
          m[g.index(b.x0 + x, b.y0 + y, b.z0 + z)] = 1;
  return std::find(keep.begin(), keep.end(), 1) != keep.end();
}

// A cheap look on a grid twice as coarse: could the mass pass add anything to this lung (hole
// filled, before closing)? The coarse lung is the blocks that are at least half lung, the first
// ball a coarse voxel smaller and the rules a coarse voxel more lenient, so that the look finds at
// least what the full pass does. Most lungs have no such mass and skip the full pass.
template <typename OutsideAir>
Result<bool> wall_mass_possible(const std::vector<uint8_t>& lung, const Grid& g, const LungMaskOptions& o,
                                const OutsideAir& outside_air) {
  const Grid c{
      (g.nx + 1) / 2, (g.ny + 1) / 2, (g.nz + 1) / 2, {2 * g.spacing[0], 2 * g.spacing[1], 2 * g.spacing[2]}};
  std::vector<uint8_t> count(static_cast<size_t>(c.voxels()), 0);
  // One task per coarse plane (it alone writes there); this runs for every lung.
  parallel_for(c.nz, 1, [&](int64_t first, int64_t last) {
    for (int64_t zc = first; zc < last; ++zc) {
      for (int64_t z = 2 * zc; z < std::min(g.nz, 2 * zc + 2); ++z)
        for (int64_t y = 0; y < g.ny; ++y)
          for (int64_t x = 0; x < g.nx; ++x)
            if (lung[g.index(x, y, z)]) ++count[c.index(x / 2, y / 2, zc)];
      for (int64_t i = zc * c.nx * c.ny; i < (zc + 1) * c.nx * c.ny; ++i) count[i] = count[i] >= 4;
    }
  });
  const double step = std::max({c.spacing[0], c.spacing[1], c.spacing[2]});
  std::vector<uint8_t> big;
  HILUM_ASSIGN_OR_RETURN(
      std::vector<uint8_t> closed,
      close_ball(count, c, o.device, o.closing_radius_mm - step, o.mass_closing_radius_mm, &big));
  LungMaskOptions lenient = o;
  lenient.mass_min_volume_ml = o.mass_min_volume_ml / 2;
  lenient.mass_max_extent_mm = o.mass_max_extent_mm + 2 * step;
  lenient.mass_max_wall_depth_mm = o.mass_max_wall_depth_mm + step;
  auto coarse_outside = [&](int64_t x, int64_t y, int64_t z) {
    for (int64_t dz = 0; dz < 2; ++dz)
      for (int64_t dy = 0; dy < 2; ++dy)
        for (int64_t dx = 0; dx < 2; ++dx) {
          const int64_t fx = 2 * x + dx, fy = 2 * y + dy, fz = 2 * z + dz;
          if (fx < g.nx && fy < g.ny && fz < g.nz && outside_air(fx, fy, fz)) return true;
        }
    return false;
  };
  return add_wall_masses(closed, big, c, lenient, coarse_outside);
}

}  // namespace

std::string estimate_lobe(uint8_t side, double up, double back) {
  up = std::clamp(up, 0.0, 1.0);
  back = std::clamp(back, 0.0, 1.0);
  const bool lower = up < 0.2 + 0.6 * back;
  if (side == kRightLung) return lower ? "RLL" : (up < 0.6 ? "RML" : "RUL");
  if (side == kLeftLung) return lower ? "LLL" : "LUL";
  return "";
}

Result<LungMask> segment_lungs(const Volume& volume, const LungMaskOptions& o, Progress& progress) {
  if (!volume.hu.defined() || volume.nx() < 8 || volume.ny() < 8 || volume.nz() < 1) {
    return bad_input("lung mask: the volume is empty or too small");
  }
  progress.report(0.0, "lung mask");
  // Wall time of each step, logged with -v (where a study's lung mask time goes).
  Stopwatch step_clock;
  std::string steps;
  auto step = [&](const char* name) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%s%s %.0f ms", steps.empty() ? "" : ", ", name, step_clock.lap() * 1e3);
    steps += buf;
  };
  const int64_t nx = volume.nx(), ny = volume.ny(), nz = volume.nz();
  const int fx = std::max(1, static_cast<int>(std::lround(o.working_spacing_mm / volume.spacing[0])));
  const int fy = std::max(1, static_cast<int>(std::lround(o.working_spacing_mm / volume.spacing[1])));
  const int fz = std::max(1, static_cast<int>(std::lround(o.working_spacing_mm / volume.spacing[2])));
  Grid g{(nx + fx - 1) / fx,
         (ny + fy - 1) / fy,
         (nz + fz - 1) / fz,
         {volume.spacing[0] * fx, volume.spacing[1] * fy, volume.spacing[2] * fz}};

  // Working-grid column of each native column (a table: no division per voxel).
  std::vector<int32_t> block_of_x(static_cast<size_t>(nx));
  for (int64_t x = 0; x < nx; ++x) block_of_x[x] = static_cast<int32_t>(x / fx);

  // Block-averaged HU on the working grid.
  std::vector<float> hu(static_cast<size_t>(g.voxels()), 0.f);
  {
    const float* src = volume.data();
    // Native voxels along an axis of length n in block k of f (the last one may be short).
    auto extent = [](int64_t k, int f, int64_t n) {
      return static_cast<float>(std::min<int64_t>(f, n - k * f));
    };
    // One task per working plane, its native slices summed in order (the same floats as one by one).
    parallel_for(g.nz, 1, [&](int64_t first, int64_t last) {
      for (int64_t zg = first; zg < last; ++zg) {
        for (int64_t z = zg * fz; z < std::min(nz, zg * fz + fz); ++z) {
          for (int64_t y = 0; y < ny; ++y) {
            float* row = hu.data() + g.index(0, y / fy, zg);
            const float* s = src + (z * ny + y) * nx;
            for (int64_t x = 0; x < nx; ++x) row[block_of_x[x]] += s[x];
          }
        }
        for (int64_t y = 0; y < g.ny; ++y)
          for (int64_t x = 0; x < g.nx; ++x)
            hu[g.index(x, y, zg)] /= extent(x, fx, nx) * extent(y, fy, ny) * extent(zg, fz, nz);
      }
    });
  }
  step("working grid");
  if (progress.cancelled()) return cancelled_error();

  // Air inside the body: components of air touching no side face of the slab.
  std::vector<uint8_t> air(hu.size());
  const int64_t plane = g.nx * g.ny;
  parallel_for(g.nz, 1, [&](int64_t first, int64_t last) {
    for (int64_t i = first * plane; i < last * plane; ++i) air[i] = hu[i] < o.air_threshold_hu;
  });
  // outside[i]: voxel i is air of a component touching a side face (the air around the patient).
  // On CUDA the GPU labels the air and sends back just that (cuda/components.h); on the CPU,
  // ITK's labels and the labels found on the side faces give it, in the pass below.
  std::vector<uint8_t> outside;
  if (o.device == Device::kCUDA) {
    const Status s = cuda::components_touching_side_faces(air, candidates_internal::dims_of(g), outside);
    if (!s.ok()) {
      outside.clear();
      log_warning("lung mask: labelling the air on CUDA failed (" + s.error().message() +
                  "); the CPU does it");
    }
  }
  std::vector<uint32_t> air_labels;
  std::vector<uint8_t> outside_label;
  if (outside.empty()) {
    std::vector<int64_t> air_sizes;
    HILUM_ASSIGN_OR_RETURN(air_labels,
                           itk_bridge::label_components(air, g, false, air_sizes, /*by_size=*/false));
    outside_label.assign(air_sizes.size(), 0);
    for (int64_t z = 0; z < g.nz; ++z) {
      for (int64_t x = 0; x < g.nx; ++x)
        outside_label[air_labels[g.index(x, 0, z)]] = outside_label[air_labels[g.index(x, g.ny - 1, z)]] = 1;
      for (int64_t y = 0; y < g.ny; ++y)
        outside_label[air_labels[g.index(0, y, z)]] = outside_label[air_labels[g.index(g.nx - 1, y, z)]] = 1;
    }
    outside_label[0] = 0;  // not air
    outside.resize(hu.size());
  }
  // Inner air, and the body's extent in x (everything that is not outside air)
  // for the midline; planes in parallel, each with its own extent.
  std::vector<uint8_t> inner(hu.size());
  std::vector<std::array<int64_t, 2>> plane_x(static_cast<size_t>(g.nz), {g.nx, -1});
  parallel_for(g.nz, 1, [&](int64_t first, int64_t last) {
    for (int64_t z = first; z < last; ++z)
      for (int64_t y = 0; y < g.ny; ++y)
        for (int64_t x = 0; x < g.nx; ++x) {
          const int64_t i = g.index(x, y, z);
          if (!air_labels.empty()) outside[i] = outside_label[air_labels[i]];
          inner[i] = air[i] && !outside[i];
          if (!outside[i])
            plane_x[z][0] = std::min(plane_x[z][0], x), plane_x[z][1] = std::max(plane_x[z][1], x);
        }
  });
  int64_t body_x0 = g.nx, body_x1 = -1;
  for (const auto& e : plane_x) body_x0 = std::min(body_x0, e[0]), body_x1 = std::max(body_x1, e[1]);
  const double body_cx = body_x1 >= body_x0 ? 0.5 * (body_x0 + body_x1) : 0.5 * (g.nx - 1);
  step("air components");
  progress.report(0.2, "lung mask");
  if (progress.cancelled()) return cancelled_error();

  LungMask result;
  const double voxel_ml = g.spacing[0] * g.spacing[1] * g.spacing[2] / 1000.0;

  // Airways: grow the trachea from the superior-most slice with inner air.
  {
    const bool z_up = volume.world_from_voxel({0, 0, static_cast<double>(nz - 1)})[2] >
                      volume.world_from_voxel({0, 0, 0})[2];
    std::array<int64_t, 3> seed{-1, -1, -1};
    for (int64_t s = 0; s < g.nz && seed[0] < 0; ++s) {
      const int64_t z = z_up ? g.nz - 1 - s : s;
      // 2-D components of inner air in this slice; the trachea is the small one nearest the midline.
      Grid slice{g.nx, g.ny, 1, g.spacing};
      std::vector<uint8_t> m(inner.begin() + z * g.nx * g.ny, inner.begin() + (z + 1) * g.nx * g.ny);
      if (std::none_of(m.begin(), m.end(), [](uint8_t v) { return v; })) continue;
      std::vector<int64_t> ss;
      HILUM_ASSIGN_OR_RETURN(std::vector<uint32_t> lab, itk_bridge::label_components(m, slice, false, ss));
      std::vector<double> sx(ss.size(), 0), sy(ss.size(), 0);
      for (int64_t y = 0; y < g.ny; ++y)
        for (int64_t x = 0; x < g.nx; ++x)
          if (uint32_t l = lab[y * g.nx + x]) sx[l] += x, sy[l] += y;
      double best = std::numeric_limits<double>::max();
      const double body_w = std::max<double>(body_x1 - body_x0, 1);
      for (size_t l = 1; l < ss.size(); ++l) {
        const double area_cm2 = ss[l] * g.spacing[0] * g.spacing[1] / 100.0;
        const double cx = sx[l] / ss[l];
        const double off = std::abs(cx - body_cx);
        if (area_cm2 < 0.3 || area_cm2 > 10 || off > 0.2 * body_w || off >= best) continue;
        // Seed: the component's darkest voxel.
        float darkest = 1e9f;
        for (int64_t i = 0; i < g.nx * g.ny; ++i)
          if (lab[i] == l && hu[z * g.nx * g.ny + i] < darkest) {
            darkest = hu[z * g.nx * g.ny + i];
            seed = {i % g.nx, i / g.nx, z};
          }
        best = off;
      }
      break;  // only the superior-most slice with inner air is searched
    }
    if (seed[0] >= 0) {
      bool grown = false;
      for (float threshold : {static_cast<float>(o.airway_threshold_hu), -975.f, -990.f}) {
        if (hu[g.index(seed[0], seed[1], seed[2])] > threshold) continue;
        const int64_t limit = static_cast<int64_t>(250.0 / voxel_ml);
        int64_t n = 0;
        std::vector<uint8_t> airway = grow_below(hu, g, seed, threshold, limit, n);
        if (n > limit) continue;  // leaked into the lungs (> 250 ml): tighten
        airway = dilate6(airway, g);
        for (size_t i = 0; i < inner.size(); ++i)
          if (airway[i]) inner[i] = 0;
        grown = true;
        break;
      }
      result.airways_removed = grown;
      if (!grown) result.warnings.push_back("airway region growing leaked; airways were not removed");
    } else {
      result.warnings.push_back("no trachea found in the superior slices; airways were not removed");
    }
  }
  step("airways");
  progress.report(0.35, "lung mask");
  if (progress.cancelled()) return cancelled_error();

  // Lungs: the largest inner-air components, labelled on the box of the inner
  // air (the same labels as on the whole grid: raster order is kept, and ties
  // in size are broken by it), then placed back on the grid.
  std::vector<uint32_t> labels(hu.size(), 0);
  std::vector<int64_t> sizes{0};  // no inner air: no component (refused below)
  if (const MaskBox ib = bounding_box(inner, g); !ib.empty()) {
    const Grid c{ib.x1 - ib.x0, ib.y1 - ib.y0, ib.z1 - ib.z0, g.spacing};
    std::vector<uint8_t> crop(static_cast<size_t>(c.voxels()));
    parallel_for(c.nz, 1, [&](int64_t first, int64_t last) {
      for (int64_t z = first; z < last; ++z)
        for (int64_t y = 0; y < c.ny; ++y)
          std::copy_n(inner.begin() + g.index(ib.x0, ib.y0 + y, ib.z0 + z), c.nx,
                      crop.begin() + c.index(0, y, z));
    });
    std::vector<uint32_t> cl;
    bool labelled = false;  // on CUDA by the GPU, as for the air above
    if (o.device == Device::kCUDA) {
      const Status s =
          cuda::label_components(crop, candidates_internal::dims_of(c), cl, sizes, /*by_size=*/true);
      labelled = s.ok();
      if (!labelled)
        log_warning("lung mask: labelling the inner air on CUDA failed (" + s.error().message() +
                    "); the CPU does it");
    }
    if (!labelled) {
      HILUM_ASSIGN_OR_RETURN(cl, itk_bridge::label_components(crop, c, false, sizes));
    }
    parallel_for(c.nz, 1, [&](int64_t first, int64_t last) {
      for (int64_t z = first; z < last; ++z)
        for (int64_t y = 0; y < c.ny; ++y)
          std::copy_n(cl.begin() + c.index(0, y, z), c.nx,
                      labels.begin() + g.index(ib.x0, ib.y0 + y, ib.z0 + z));
    });
  }
  if (sizes.size() < 2 || sizes[1] * voxel_ml < 5.0) {
    return bad_input("lung mask: no lung-sized air region inside the body (is this a chest CT?)");
  }
  std::vector<uint8_t> side(hu.size(), 0);  // 1, 2: provisional lung ids
  const bool two = sizes.size() >= 3 && sizes[2] >= sizes[1] * 15 / 100;
  if (two) {
    for_each_index(hu.size(), [&](size_t i) { side[i] = labels[i] == 1 ? 1 : labels[i] == 2 ? 2 : 0; });
  } else {
    std::vector<uint8_t> comp(hu.size());
    int64_t left_of_mid = 0, total = 0;
    for (int64_t z = 0; z < g.nz; ++z)
      for (int64_t y = 0; y < g.ny; ++y)
        for (int64_t x = 0; x < g.nx; ++x) {
          const bool in = labels[g.index(x, y, z)] == 1;
          comp[g.index(x, y, z)] = in;
          total += in;
          left_of_mid += in && x < body_cx;
        }
    const bool spans_midline = left_of_mid > total / 4 && total - left_of_mid > total / 4;
    if (spans_midline) {
      result.lungs_were_joined = true;
      HILUM_ASSIGN_OR_RETURN(std::vector<uint8_t> part, split_joined(comp, g));
      if (part.empty()) {
        result.warnings.push_back("lungs joined; split along the body midline");
        for (int64_t z = 0; z < g.nz; ++z)
          for (int64_t y = 0; y < g.ny; ++y)
            for (int64_t x = 0; x < g.nx; ++x)
              if (comp[g.index(x, y, z)]) side[g.index(x, y, z)] = x < body_cx ? 1 : 2;
      } else {
        side = std::move(part);
      }
    } else {
      result.warnings.push_back("only one lung found");
      side = std::move(comp);
    }
  }
  step("lungs");
  progress.report(0.5, "lung mask");
  if (progress.cancelled()) return cancelled_error();

  // Which provisional lung is the patient's right: smaller world x (LPS: +x = left).
  // The mapping to world is affine, so the mean world x is that of the mean
  // working-grid index (sums of integers, exact, plane by plane in parallel).
  double cx[3] = {0, 0, 0};
  int64_t cnt[3] = {0, 0, 0};
  {
    struct Sums {
      int64_t n[3] = {0, 0, 0}, x[3] = {0, 0, 0}, y[3] = {0, 0, 0}, z[3] = {0, 0, 0};
    };
    std::vector<Sums> sums(static_cast<size_t>(g.nz));
    parallel_for(g.nz, 1, [&](int64_t first, int64_t last) {
      for (int64_t z = first; z < last; ++z) {
        Sums& t = sums[z];
        for (int64_t y = 0; y < g.ny; ++y)
          for (int64_t x = 0; x < g.nx; ++x)
            if (const uint8_t s = side[g.index(x, y, z)]) ++t.n[s], t.x[s] += x, t.y[s] += y, t.z[s] += z;
      }
    });
    for (int s = 1; s <= 2; ++s) {
      int64_t sx = 0, sy = 0, sz = 0;
      for (const Sums& t : sums) cnt[s] += t.n[s], sx += t.x[s], sy += t.y[s], sz += t.z[s];
      if (!cnt[s]) continue;
      const double n = static_cast<double>(cnt[s]);
      // Mean of world_from_voxel((i + 0.5) f - 0.5) over the lung's voxels, times the count.
      cx[s] = n * volume.world_from_voxel(
                      {(sx / n + 0.5) * fx - 0.5, (sy / n + 0.5) * fy - 0.5, (sz / n + 0.5) * fz - 0.5})[0];
    }
  }
  uint8_t to_label[3] = {kNoLung, kRightLung, kLeftLung};
  if (cnt[1] && cnt[2] && cx[1] / cnt[1] > cx[2] / cnt[2]) to_label[1] = kLeftLung, to_label[2] = kRightLung;
  if (cnt[1] && !cnt[2]) {
    // A single lung: its side from where it lies relative to the body's centre.
    const double body_world_x = volume.world_from_voxel({(body_cx + 0.5) * fx - 0.5, 0, 0})[0];
    to_label[1] = cx[1] / cnt[1] < body_world_x ? kRightLung : kLeftLung;
  }

  // Per lung: fill vessel holes slice by slice, then the rolling-ball closing.
  // The second lung on its own thread beside the first (each closing is mostly
  // ITK's distance maps, which scale poorly past a few cores); merged after in
  // lung order, so the same mask as one after the other.
  std::vector<uint8_t> work(hu.size(), 0), raw(hu.size(), 0);
  for_each_index(hu.size(), [&](size_t i) {
    if (side[i]) raw[i] = to_label[side[i]];
  });
  auto outside_air = [&](int64_t x, int64_t y, int64_t z) { return outside[g.index(x, y, z)] != 0; };
  auto close_lung = [&](uint8_t s) -> Result<std::vector<uint8_t>> {
    std::vector<uint8_t> m(hu.size());
    for_each_index(m.size(), [&](size_t i) { m[i] = side[i] == s; });
    fill_holes_2d(m, g);
    bool masses = o.mass_closing_radius_mm > o.closing_radius_mm;
    if (masses) {
      HILUM_ASSIGN_OR_RETURN(masses, wall_mass_possible(m, g, o, outside_air));
    }
    if (masses) log_info("lung mask: a juxtapleural mass is possible; the mass pass runs");
    std::vector<uint8_t> big;
    HILUM_ASSIGN_OR_RETURN(m, close_ball(m, g, o.device, o.closing_radius_mm, o.mass_closing_radius_mm,
                                         masses ? &big : nullptr));
    fill_holes_2d(m, g);
    if (masses) {
      HILUM_ASSIGN_OR_RETURN(const bool added, add_wall_masses(m, big, g, o, outside_air));
      if (added) fill_holes_2d(m, g);
    }
    return m;
  };
  std::future<Result<std::vector<uint8_t>>> second;
  if (cnt[2]) second = std::async(std::launch::async, close_lung, uint8_t{2});
  std::vector<std::vector<uint8_t>> closed(3);
  if (cnt[1]) {
    Result<std::vector<uint8_t>> m = close_lung(1);
    if (!m.ok()) return m.error();  // the future's destructor waits for the second lung
    closed[1] = std::move(m).value();
  }
  if (second.valid()) {
    Result<std::vector<uint8_t>> m = second.get();
    if (!m.ok()) return m.error();
    closed[2] = std::move(m).value();
  }
  step("closings");
  // Lung 1's closing first, then lung 2's (per voxel, the same order as lung by lung).
  for_each_index(work.size(), [&](size_t i) {
    for (uint8_t s = 1; s <= 2; ++s)
      if (cnt[s] && closed[s][i] && (work[i] == 0 || side[i] == s)) work[i] = to_label[s];
  });
  progress.report(0.9, "lung mask");
  if (progress.cancelled()) return cancelled_error();

  // Back to the volume grid (nearest block), extents, volumes, parenchyma HU.
  result.labels = Tensor::empty({nz, ny, nx}, DType::kU8);  // every voxel written below
  uint8_t* out = result.labels.data<uint8_t>();
  std::vector<int64_t> hist(1400, 0);  // HU -1200 .. 199
  struct Acc {
    int64_t n = 0;
    int64_t y0 = std::numeric_limits<int64_t>::max(), y1 = -1, z0 = std::numeric_limits<int64_t>::max(),
            z1 = -1;
  } acc[3];
  const float* src = volume.data();
  // Slabs of slices in parallel, each with its own counts, merged after (integers: exact).
  struct Slab {
    Acc acc[3];
    std::vector<int64_t> hist;
  };
  std::vector<Slab> slabs(static_cast<size_t>(nz));
  parallel_for(nz, 1, [&](int64_t first, int64_t last) {
    Slab& sl = slabs[static_cast<size_t>(first)];
    sl.hist.assign(hist.size(), 0);
    for (int64_t z = first; z < last; ++z)
      for (int64_t y = 0; y < ny; ++y) {
        const int64_t row = g.index(0, y / fy, z / fz);
        for (int64_t x = 0; x < nx; ++x) {
          const uint8_t l = work[row + block_of_x[x]];
          const int64_t i = (z * ny + y) * nx + x;
          out[i] = l;
          if (!l) continue;
          Acc& a = sl.acc[l];
          ++a.n;
          a.y0 = std::min(a.y0, y), a.y1 = std::max(a.y1, y), a.z0 = std::min(a.z0, z),
          a.z1 = std::max(a.z1, z);
          if (raw[row + block_of_x[x]]) sl.hist[std::clamp(static_cast<int>(src[i]) + 1200, 0, 1399)]++;
        }
      }
  });
  for (const Slab& sl : slabs) {
    if (sl.hist.empty()) continue;
    for (size_t h = 0; h < hist.size(); ++h) hist[h] += sl.hist[h];
    for (int l = 1; l < 3; ++l) {
      const Acc& b = sl.acc[l];
      Acc& a = acc[l];
      a.n += b.n;
      a.y0 = std::min(a.y0, b.y0), a.y1 = std::max(a.y1, b.y1), a.z0 = std::min(a.z0, b.z0),
      a.z1 = std::max(a.z1, b.z1);
    }
  }
  const double full_voxel_ml = volume.spacing[0] * volume.spacing[1] * volume.spacing[2] / 1000.0;
  for (uint8_t l : {kRightLung, kLeftLung}) {
    LungExtent& e = l == kRightLung ? result.right : result.left;
    const Acc& a = acc[l];
    if (!a.n) continue;
    e.volume_ml = a.n * full_voxel_ml;
    const Vec3 p0 = volume.world_from_voxel({0, static_cast<double>(a.y0), static_cast<double>(a.z0)});
    const Vec3 p1 = volume.world_from_voxel({0, static_cast<double>(a.y1), static_cast<double>(a.z1)});
    e.min_y = std::min(p0[1], p1[1]), e.max_y = std::max(p0[1], p1[1]);
    e.min_z = std::min(p0[2], p1[2]), e.max_z = std::max(p0[2], p1[2]);
  }
  int64_t total = 0;
  for (int64_t h : hist) total += h;
  for (int64_t i = 0, run = 0; i < 1400 && total > 0; ++i) {
    run += hist[i];
    if (2 * run >= total) {
      result.parenchyma_hu = static_cast<float>(i - 1200);
      break;
    }
  }
  step("volume grid");
  log_info("lung mask: working grid " + std::to_string(g.nx) + "x" + std::to_string(g.ny) + "x" +
           std::to_string(g.nz) + "; " + steps);
  progress.report(1.0, "lung mask");
  return result;
}

LungPosition locate_in_lungs(const LungMask& mask, const Volume& volume, const Vec3& world) {
  LungPosition pos;
  if (!mask.labels.defined()) return pos;
  const Vec3 v = volume.voxel_from_world(world);
  const int64_t x = std::lround(v[0]), y = std::lround(v[1]), z = std::lround(v[2]);
  auto inside = [&](int64_t a, int64_t b, int64_t c) {
    return a >= 0 && b >= 0 && c >= 0 && a < volume.nx() && b < volume.ny() && c < volume.nz();
  };
  if (inside(x, y, z)) pos.side = mask.at(x, y, z);
  if (pos.side == kNoLung && inside(x, y, z)) {
    // Nearest lung voxel in the axial slice within 15 mm.
    double best = 15.0 * 15.0;
    const int64_t rx = static_cast<int64_t>(15.0 / volume.spacing[0]),
                  ry = static_cast<int64_t>(15.0 / volume.spacing[1]);
    for (int64_t yy = std::max<int64_t>(0, y - ry); yy <= std::min(volume.ny() - 1, y + ry); ++yy)
      for (int64_t xx = std::max<int64_t>(0, x - rx); xx <= std::min(volume.nx() - 1, x + rx); ++xx) {
        const uint8_t l = mask.at(xx, yy, z);
        if (!l) continue;
        const double dx = (xx - x) * volume.spacing[0], dy = (yy - y) * volume.spacing[1];
        if (dx * dx + dy * dy < best) best = dx * dx + dy * dy, pos.side = l;
      }
  }
  if (pos.side == kNoLung) {
    // Outside every lung: the side from the lungs' centres is still informative.
    return pos;
  }
  const LungExtent& e = pos.side == kRightLung ? mask.right : mask.left;
  const double up = e.max_z > e.min_z ? (world[2] - e.min_z) / (e.max_z - e.min_z) : 0.5;
  const double back = e.max_y > e.min_y ? (world[1] - e.min_y) / (e.max_y - e.min_y) : 0.5;
  pos.lobe = estimate_lobe(pos.side, up, back);
  return pos;
}

}  // namespace hilum
