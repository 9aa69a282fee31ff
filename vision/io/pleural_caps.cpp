// The pleural-cap measurement of the candidate detector (candidates_internal.h,
// pleural_peaks): on the original CT near the lung mask's edge, what a box
// opening removes. See docs/findings.md, "Pleural caps".
#include <algorithm>
#include <cmath>
#include <memory>

#include "model/parallel.h"
#include "vision/io/candidates_internal.h"
#include "vision/io/gaussian.h"
#include "vision/io/itk_bridge.h"
#include "vision/io/mask_box.h"

namespace hilum::candidates_internal {
namespace {
constexpr float kAirHu = -900;
}  // namespace

std::array<int, 3> box_radius_voxels(double width_mm, const std::array<double, 3>& spacing) {
  std::array<int, 3> r{};
  // An odd width within a voxel of width_mm, at least three voxels.
  for (int a = 0; a < 3; ++a) r[a] = std::max(1, static_cast<int>(std::lround(width_mm / spacing[a])) / 2);
  return r;
}

Result<std::vector<PleuralPeak>> pleural_peaks(const Volume& volume, const LungMask& mask,
                                               const CandidateOptions& o, const MaskBox* lungs) {
  const int64_t nx = volume.nx(), ny = volume.ny(), nz = volume.nz();
  const uint8_t* labels = mask.labels.data<uint8_t>();
  const MaskBox mb = lungs ? *lungs : mask_box(labels, nx, ny, nz);
  if (mb.empty()) return std::vector<PleuralPeak>{};
  const std::array<double, 3> sp{volume.spacing[0], volume.spacing[1], volume.spacing[2]};
  const std::array<int, 3> open_r = box_radius_voxels(o.pleural_box_mm, sp);
  const std::array<int, 3> in_r = box_radius_voxels(2 * o.pleural_band_inside_mm, sp);
  const std::array<int, 3> out_r = box_radius_voxels(2 * o.pleural_band_outside_mm, sp);
  // The lungs' box with room for the opening and the outer band.
  int64_t b0[3] = {mb.x0, mb.y0, mb.z0}, b1[3] = {mb.x1, mb.y1, mb.z1};  // b1 exclusive
  const int64_t dims[3] = {nx, ny, nz};
  for (int a = 0; a < 3; ++a) {
    const int64_t m = 2 * open_r[a] + out_r[a] + 2;
    b0[a] = std::max<int64_t>(0, b0[a] - m);
    b1[a] = std::min<int64_t>(dims[a], b1[a] + m);
  }
  const Grid g{b1[0] - b0[0], b1[1] - b0[1], b1[2] - b0[2], sp};
  // Four float buffers and the mask, never zeroed: each step's parallel loops
  // write every voxel, so the pages are first touched by the pool's threads.
  const size_t n = static_cast<size_t>(g.voxels());
  std::unique_ptr<float[]> a(new float[n]), b(new float[n]), c(new float[n]), d(new float[n]);
  std::unique_ptr<uint8_t[]> lung_buffer(new uint8_t[n]);
  const uint8_t* lung = lung_buffer.get();
  const float* src = volume.data();
  parallel_for(g.nz, 1, [&](int64_t first, int64_t last) {
    for (int64_t z = first; z < last; ++z)
      for (int64_t y = 0; y < g.ny; ++y) {
        const int64_t off = ((z + b0[2]) * ny + y + b0[1]) * nx + b0[0];
        for (int64_t x = 0; x < g.nx; ++x) {
          const bool in = labels[off + x] != 0;
          const float hu = std::clamp(src[off + x], -1000.f, 200.f);
          // Air outside the lungs (around the body, in the airways) counts as tissue: a
          // thin chest wall or bronchial wall is then no narrower than the box.
          a[g.index(x, y, z)] = !in && hu < kAirHu ? 0.f : hu;
          lung_buffer[g.index(x, y, z)] = in;
        }
      }
  });
  HILUM_RETURN_IF_ERROR(gaussian_smooth_into(a.get(), g, o.pleural_smoothing_mm, b.get(), c.get()));  // b: smoothed
  HILUM_RETURN_IF_ERROR(box_extremum_into(b.get(), g, open_r, false, a.get(), c.get()));             // a: eroded
  HILUM_RETURN_IF_ERROR(box_extremum_into(a.get(), g, open_r, true, d.get(), c.get()));              // d: opened
  parallel_for(g.nz, 1, [&](int64_t first, int64_t last) {  // b: the white top-hat
    for (int64_t i = first * g.nx * g.ny; i < last * g.nx * g.ny; ++i) b[i] -= d[i];
  });
  HILUM_RETURN_IF_ERROR(gaussian_smooth_into(b.get(), g, o.pleural_tophat_smoothing_mm, a.get(), c.get()));
  const float* tophat = a.get();
  // Whether voxel (x, y, z) is in the band: a lung voxel with a voxel outside the lungs
  // in the box of in_r around it (the box clipped at the crop's faces), or a
  // voxel outside with a lung voxel in the box of out_r. Asked only at the
  // top-hat's maxima, which are few, instead of eroding and dilating the mask.
  auto in_band = [&](int64_t x, int64_t y, int64_t z) {
    const bool in = lung[g.index(x, y, z)] != 0;
    const std::array<int, 3>& r = in ? in_r : out_r;
    for (int64_t cz = std::max<int64_t>(0, z - r[2]); cz <= std::min(g.nz - 1, z + r[2]); ++cz)
      for (int64_t cy = std::max<int64_t>(0, y - r[1]); cy <= std::min(g.ny - 1, y + r[1]); ++cy) {
        const uint8_t* row = lung + g.index(0, cy, cz);
        for (int64_t cx = std::max<int64_t>(0, x - r[0]); cx <= std::min(g.nx - 1, x + r[0]); ++cx)
          if ((row[cx] != 0) != in) return true;
      }
    return false;
  };
  const float threshold = static_cast<float>(o.pleural_min_tophat_hu);
  std::vector<std::vector<PleuralPeak>> planes(static_cast<size_t>(g.nz));
  parallel_for(g.nz, 1, [&](int64_t first, int64_t last) {
    for (int64_t z = std::max<int64_t>(first, 1); z < std::min(last, g.nz - 1); ++z)
      for (int64_t y = 1; y < g.ny - 1; ++y)
        for (int64_t x = 1; x < g.nx - 1; ++x) {
          const int64_t i = g.index(x, y, z);
          const float v = tophat[i];
          if (v <= threshold) continue;
          bool peak = true;
          for (int dz = -1; dz <= 1 && peak; ++dz)
            for (int dy = -1; dy <= 1 && peak; ++dy)
              for (int dx = -1; dx <= 1; ++dx)
                if (tophat[g.index(x + dx, y + dy, z + dz)] > v) {
                  peak = false;
                  break;
                }
          // The band: inside the mask near its edge, or just outside it.
          if (peak && in_band(x, y, z))
            planes[z].push_back(
                {{static_cast<double>(x + b0[0]), static_cast<double>(y + b0[1]), static_cast<double>(z + b0[2])}, v});
        }
  });
  std::vector<PleuralPeak> out;
  for (auto& p : planes) out.insert(out.end(), p.begin(), p.end());
  std::stable_sort(out.begin(), out.end(), [](const PleuralPeak& a, const PleuralPeak& b) { return a.tophat > b.tophat; });
  return out;
}

}  // namespace hilum::candidates_internal
