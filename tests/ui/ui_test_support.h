// Helpers for the workstation tests: small synthetic chest volumes and findings.
#pragma once

#include <QCoreApplication>
#include <QElapsedTimer>
#include <cmath>
#include <functional>
#include <memory>

#include "ui/finding.h"
#include "ui/study_loader.h"
#include "vision/volume.h"

namespace hilum::ui::test {

// A chest-like volume: air outside, a soft-tissue body ellipse, two lungs
// (-850 HU), a bone "spine" (700 HU), and a 6 mm solid nodule (40 HU) in the
// right lung at voxel `noduleVoxel()`.
inline std::shared_ptr<Volume> makeChest(int nx = 96, int ny = 80, int nz = 40,
                                         Vec3 spacing = {0.8, 0.8, 2.0}) {
  auto v = std::make_shared<Volume>(
      Volume::allocate(nx, ny, nz, spacing, {-nx * spacing[0] / 2, -ny * spacing[1] / 2, -100}));
  for (int k = 0; k < nz; ++k) {
    for (int j = 0; j < ny; ++j) {
      for (int i = 0; i < nx; ++i) {
        const double x = (i - nx / 2.0) / (nx * 0.45), y = (j - ny / 2.0) / (ny * 0.4);
        float hu = -1000;
        if (x * x + y * y < 1) hu = 40;
        for (double side : {-0.45, 0.45}) {
          const double lx = (x - side) / 0.33, ly = y / 0.75;
          if (lx * lx + ly * ly < 1) hu = -850;
        }
        const double sx = x / 0.1, sy = (y - 0.7) / 0.12;
        if (sx * sx + sy * sy < 1) hu = 700;
        v->data()[(static_cast<int64_t>(k) * ny + j) * nx + i] = hu;
      }
    }
  }
  return v;
}

// Voxel (i, j, k) of the nodule painted by addNodule().
inline Vec3 noduleVoxel(const Volume& v) {
  return {std::round(v.nx() * 0.3), std::round(v.ny() * 0.5), std::round(v.nz() * 0.6)};
}

inline void addNodule(Volume& v, double diameterMm = 6) {
  const Vec3 c = noduleVoxel(v);
  for (int k = 0; k < v.nz(); ++k)
    for (int j = 0; j < v.ny(); ++j)
      for (int i = 0; i < v.nx(); ++i) {
        const double dx = (i - c[0]) * v.spacing[0], dy = (j - c[1]) * v.spacing[1],
                     dz = (k - c[2]) * v.spacing[2];
        if (dx * dx + dy * dy + dz * dz <= diameterMm * diameterMm / 4)
          v.data()[(int64_t(k) * v.ny() + j) * v.nx() + i] = 40;
      }
}

inline Finding makeFinding(int id, const Vec3& centerMm, double longAxis = 6.0, const char* lungRads = "3") {
  Finding f;
  f.id = id;
  f.centerMm = centerMm;
  f.location = QStringLiteral("right lower lobe");
  f.longAxisMm = longAxis;
  f.shortAxisMm = longAxis * 0.8;
  f.volumeMm3 = 3.14159 / 6 * longAxis * longAxis * longAxis;
  f.type = NoduleType::kSolid;
  f.probability = 0.93;
  f.malignancy = 0.12;
  f.lungRads = QString::fromLatin1(lungRads);
  return f;
}

inline LoadedStudyData makeStudyData(std::shared_ptr<const Volume> volume) {
  LoadedStudyData data;
  data.volume = std::move(volume);
  data.info.series_instance_uid = "1.2.826.0.1.3680043.9.7433.1";
  data.info.series_description = "Synthetic chest";
  data.info.modality = "CT";
  SeriesSummary s;
  s.series_uid = data.info.series_instance_uid;
  s.description = "Synthetic chest";
  s.modality = "CT";
  s.num_slices = static_cast<int>(data.volume->nz());
  s.rows = static_cast<int>(data.volume->ny());
  s.columns = static_cast<int>(data.volume->nx());
  s.spacing = data.volume->spacing;
  data.series.push_back(s);
  data.thumbnail = makeThumbnail(data.volume);
  return data;
}

// Processes events until `done` or the timeout.
inline bool waitUntil(const std::function<bool()>& done, int timeoutMs = 5000) {
  QElapsedTimer timer;
  timer.start();
  while (!done()) {
    if (timer.elapsed() > timeoutMs) return false;
    QCoreApplication::processEvents(QEventLoop::AllEvents, 10);
  }
  return true;
}

}  // namespace hilum::ui::test
