#include "vision/io/mask_box.h"

#include <algorithm>
#include <vector>

#include "model/parallel.h"

namespace hilum {

MaskBox mask_box(const uint8_t* m, int64_t nx, int64_t ny, int64_t nz) {
  const MaskBox none{nx, ny, nz, 0, 0, 0};
  std::vector<MaskBox> planes(static_cast<size_t>(nz), none);
  parallel_for(nz, 1, [&](int64_t first, int64_t last) {
    for (int64_t z = first; z < last; ++z) {
      MaskBox& b = planes[static_cast<size_t>(z)];
      for (int64_t y = 0; y < ny; ++y) {
        const uint8_t* row = m + (z * ny + y) * nx;
        int64_t a = 0, e = nx - 1;
        while (a < nx && !row[a]) ++a;
        if (a == nx) continue;
        while (!row[e]) --e;
        b.x0 = std::min(b.x0, a), b.x1 = std::max(b.x1, e + 1);
        b.y0 = std::min(b.y0, y), b.y1 = y + 1;
        b.z0 = z, b.z1 = z + 1;
      }
    }
  });
  MaskBox b = none;
  for (const MaskBox& p : planes) {
    if (p.empty()) continue;
    b.x0 = std::min(b.x0, p.x0), b.y0 = std::min(b.y0, p.y0), b.z0 = std::min(b.z0, p.z0);
    b.x1 = std::max(b.x1, p.x1), b.y1 = std::max(b.y1, p.y1), b.z1 = std::max(b.z1, p.z1);
  }
  return b;
}

}  // namespace hilum
