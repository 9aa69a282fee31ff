// CPU reference of the distance maps and closings of cuda/distance.h.
#include <algorithm>
#include <vector>

#include "cuda/distance.h"
#include "cuda/distance_math.h"

namespace hilum::distance {
namespace {

// Squared distance of every voxel to the contour of `mask`: three envelope passes (x, y, z).
std::vector<double> squared_to_contour(const std::vector<uint8_t>& mask, const detector::Dims& g) {
  std::vector<double> a(static_cast<size_t>(g.voxels())), b(a.size());
  for (int64_t z = 0; z < g.nz; ++z)
    for (int64_t y = 0; y < g.ny; ++y)
      for (int64_t x = 0; x < g.nx; ++x)
        a[g.index(x, y, z)] = is_contour(mask.data(), g, x, y, z) ? 0.0 : kFar;
  const int64_t longest = std::max({g.nx, g.ny, g.nz});
  std::vector<int> site(static_cast<size_t>(longest));
  std::vector<double> edge(static_cast<size_t>(longest) + 1);
  for (int64_t z = 0; z < g.nz; ++z)
    for (int64_t y = 0; y < g.ny; ++y) {
      const size_t i = g.index(0, y, z);
      envelope_line(&a[i], &b[i], g.nx, 1, g.spacing[0], site.data(), edge.data(), 1);
    }
  for (int64_t z = 0; z < g.nz; ++z)
    for (int64_t x = 0; x < g.nx; ++x) {
      const size_t i = g.index(x, 0, z);
      envelope_line(&b[i], &a[i], g.ny, g.nx, g.spacing[1], site.data(), edge.data(), 1);
    }
  for (int64_t y = 0; y < g.ny; ++y)
    for (int64_t x = 0; x < g.nx; ++x) {
      const size_t i = g.index(x, y, 0);
      envelope_line(&a[i], &b[i], g.nz, g.nx * g.ny, g.spacing[2], site.data(), edge.data(), 1);
    }
  return b;
}

}  // namespace

std::vector<float> signed_distance_reference(const std::vector<uint8_t>& mask, const detector::Dims& g) {
  const bool any = std::any_of(mask.begin(), mask.end(), [](uint8_t v) { return v != 0; });
  const bool all = std::all_of(mask.begin(), mask.end(), [](uint8_t v) { return v != 0; });
  if (!any || all) return std::vector<float>(mask.size(), any ? -1e9f : 1e9f);
  const std::vector<double> sq = squared_to_contour(mask, g);
  std::vector<float> out(mask.size());
  for (size_t i = 0; i < out.size(); ++i) out[i] = signed_from_squared(sq[i], mask[i] != 0);
  return out;
}

std::vector<std::vector<uint8_t>> closings_reference(const std::vector<uint8_t>& mask,
                                                     const detector::Dims& g,
                                                     const std::vector<double>& radii_mm,
                                                     double inner_margin_mm) {
  const std::vector<float> d1 = signed_distance_reference(mask, g);
  std::vector<std::vector<uint8_t>> out;
  for (double r : radii_mm) {
    std::vector<uint8_t> dilated(mask.size());
    for (size_t i = 0; i < mask.size(); ++i) dilated[i] = d1[i] <= r;
    const std::vector<float> d2 = signed_distance_reference(dilated, g);
    std::vector<uint8_t> closed(mask.size());
    for (size_t i = 0; i < mask.size(); ++i) closed[i] = d2[i] <= -(r - inner_margin_mm);
    out.push_back(std::move(closed));
  }
  return out;
}

}  // namespace hilum::distance
