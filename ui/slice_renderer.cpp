#include "ui/slice_renderer.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

namespace hilum::ui {

QString planeName(Plane plane) {
  switch (plane) {
    case Plane::Axial:
      return QStringLiteral("Axial");
    case Plane::Coronal:
      return QStringLiteral("Coronal");
    case Plane::Sagittal:
      return QStringLiteral("Sagittal");
  }
  return {};
}

WindowLut::WindowLut(WindowLevel window) {
  const double width = std::max(window.width, 1.0);
  const double low = window.level - width / 2;
  for (int i = 0; i < kSize; ++i) {
    const double grey = (i + kMinHu - low) / width * 255.0;
    m_table[i] = static_cast<uint8_t>(std::clamp(std::lround(grey), 0L, 255L));
  }
}

AxisMapping axisMappingFor(const Volume& volume) {
  // Greedy assignment: the strongest direction cosine claims its patient axis
  // first, so a slightly oblique stack still maps one voxel axis per patient axis.
  AxisMapping mapping;
  std::array<bool, 3> patientTaken{}, voxelTaken{};
  for (int round = 0; round < 3; ++round) {
    int bestPatient = -1, bestVoxel = -1;
    double best = -1;
    for (int p = 0; p < 3; ++p) {
      if (patientTaken[p]) continue;
      for (int a = 0; a < 3; ++a) {
        if (voxelTaken[a]) continue;
        const double c = std::abs(volume.direction[p * 3 + a]);
        if (c > best) best = c, bestPatient = p, bestVoxel = a;
      }
    }
    patientTaken[bestPatient] = voxelTaken[bestVoxel] = true;
    mapping.voxelAxis[bestPatient] = bestVoxel;
    mapping.reversed[bestPatient] = volume.direction[bestPatient * 3 + bestVoxel] < 0;
  }
  return mapping;
}

QString directionLetters(const Vec3& lps) {
  static constexpr char kPositive[3] = {'L', 'P', 'S'};
  static constexpr char kNegative[3] = {'R', 'A', 'I'};
  std::array<int, 3> order{0, 1, 2};
  std::sort(order.begin(), order.end(), [&](int a, int b) { return std::abs(lps[a]) > std::abs(lps[b]); });
  QString letters;
  for (int axis : order) {
    if (std::abs(lps[axis]) < 0.2) continue;
    letters += QLatin1Char(lps[axis] > 0 ? kPositive[axis] : kNegative[axis]);
  }
  return letters;
}

SliceRenderer::SliceRenderer(std::shared_ptr<const Volume> volume)
    : m_volume(std::move(volume)), m_mapping(axisMappingFor(*m_volume)) {
  const auto& map = m_mapping;
  constexpr int X = 0, Y = 1, Z = 2;
  // Rows of coronal and sagittal images run superior -> inferior, against +Z.
  m_layouts[static_cast<int>(Plane::Axial)] = {map.voxelAxis[X], map.voxelAxis[Y], map.voxelAxis[Z],
                                               map.reversed[X], map.reversed[Y]};
  m_layouts[static_cast<int>(Plane::Coronal)] = {map.voxelAxis[X], map.voxelAxis[Z], map.voxelAxis[Y],
                                                 map.reversed[X], !map.reversed[Z]};
  m_layouts[static_cast<int>(Plane::Sagittal)] = {map.voxelAxis[Y], map.voxelAxis[Z], map.voxelAxis[X],
                                                  map.reversed[Y], !map.reversed[Z]};
  m_strides = {1, m_volume->nx(), m_volume->nx() * m_volume->ny()};
}

int64_t SliceRenderer::extent(int axis) const {
  switch (axis) {
    case 0:
      return m_volume->nx();
    case 1:
      return m_volume->ny();
    default:
      return m_volume->nz();
  }
}

QSize SliceRenderer::imageSize(Plane plane) const {
  const Layout l = layout(plane);
  return QSize(static_cast<int>(extent(l.colAxis)), static_cast<int>(extent(l.rowAxis)));
}

QSizeF SliceRenderer::pixelSpacing(Plane plane) const {
  const Layout l = layout(plane);
  return QSizeF(m_volume->spacing[l.colAxis], m_volume->spacing[l.rowAxis]);
}

int SliceRenderer::sliceCount(Plane plane) const {
  return static_cast<int>(extent(layout(plane).normalAxis));
}

double SliceRenderer::sliceSpacing(Plane plane) const { return m_volume->spacing[layout(plane).normalAxis]; }

int SliceRenderer::normalAxis(Plane plane) const { return layout(plane).normalAxis; }

int SliceRenderer::slabSlices(Plane plane, double slabMm) const {
  const double spacing = sliceSpacing(plane);
  if (slabMm <= 0 || spacing <= 0) return 1;
  const long n = std::lround(slabMm / spacing);
  return static_cast<int>(std::clamp<long>(n, 1, sliceCount(plane)));
}

QImage SliceRenderer::render(Plane plane, int slice, WindowLevel window, double slabMm) const {
  const Layout l = layout(plane);
  const QSize size = imageSize(plane);
  const int width = size.width(), height = size.height();
  QImage image(width, height, QImage::Format_Grayscale8);
  if (image.isNull() || width == 0 || height == 0) return image;

  const int slices = sliceCount(plane);
  slice = std::clamp(slice, 0, slices - 1);
  const int slab = slabMm > 0 ? slabSlices(plane, slabMm) : 1;
  const int first = std::clamp(slice - (slab - 1) / 2, 0, std::max(0, slices - slab));
  const int count = std::min(slab, slices - first);

  const int64_t colStep = l.colReversed ? -m_strides[l.colAxis] : m_strides[l.colAxis];
  const int64_t rowStep = l.rowReversed ? -m_strides[l.rowAxis] : m_strides[l.rowAxis];
  const int64_t sliceStep = m_strides[l.normalAxis];
  const int64_t origin = (l.colReversed ? (width - 1) * m_strides[l.colAxis] : 0) +
                         (l.rowReversed ? (height - 1) * m_strides[l.rowAxis] : 0) + first * sliceStep;

  const WindowLut lut(window);
  const uint8_t* table = lut.table();
  const float* data = m_volume->data();
  std::vector<float> maxima(count > 1 ? width : 0);

  for (int y = 0; y < height; ++y) {
    const float* row = data + origin + y * rowStep;
    uchar* out = image.scanLine(y);
    if (count == 1) {
      if (colStep == 1) {
        for (int x = 0; x < width; ++x) out[x] = table[WindowLut::index(row[x])];
      } else {
        for (int x = 0; x < width; ++x) out[x] = table[WindowLut::index(row[x * colStep])];
      }
      continue;
    }
    if (sliceStep == 1) {
      // Sagittal slab: the normal is the contiguous axis, so each pixel's slab
      // is a short run of adjacent voxels.
      for (int x = 0; x < width; ++x) {
        const float* p = row + x * colStep;
        // Four independent chains: the maximum's latency, not the loads, is
        // what limits this loop.
        float m0 = p[0], m1 = p[count - 1], m2 = p[count / 2], m3 = p[(count - 1) / 2];
        int s = 0;
        for (; s + 4 <= count; s += 4) {
          m0 = std::max(m0, p[s]);
          m1 = std::max(m1, p[s + 1]);
          m2 = std::max(m2, p[s + 2]);
          m3 = std::max(m3, p[s + 3]);
        }
        for (; s < count; ++s) m0 = std::max(m0, p[s]);
        out[x] = table[WindowLut::index(std::max(std::max(m0, m1), std::max(m2, m3)))];
      }
      continue;
    }
    // Slab MIP: accumulate the row's maxima slice by slice, so the inner loop
    // walks memory in order for the axial plane and stays in cache for coronal.
    float* m = maxima.data();
    for (int x = 0; x < width; ++x) m[x] = row[x * colStep];
    for (int s = 1; s < count; ++s) {
      const float* p = row + s * sliceStep;
      if (colStep == 1) {
        for (int x = 0; x < width; ++x) m[x] = std::max(m[x], p[x]);
      } else {
        for (int x = 0; x < width; ++x) m[x] = std::max(m[x], p[x * colStep]);
      }
    }
    for (int x = 0; x < width; ++x) out[x] = table[WindowLut::index(m[x])];
  }
  return image;
}

PlanePoint SliceRenderer::toPlane(Plane plane, const Vec3& voxel) const {
  const Layout l = layout(plane);
  const double col = voxel[l.colAxis], row = voxel[l.rowAxis];
  PlanePoint p;
  p.x = (l.colReversed ? extent(l.colAxis) - 1 - col : col) + 0.5;
  p.y = (l.rowReversed ? extent(l.rowAxis) - 1 - row : row) + 0.5;
  p.slice = voxel[l.normalAxis];
  return p;
}

Vec3 SliceRenderer::toVoxel(Plane plane, const PlanePoint& point) const {
  const Layout l = layout(plane);
  Vec3 v{};
  const double col = point.x - 0.5, row = point.y - 0.5;
  v[l.colAxis] = l.colReversed ? extent(l.colAxis) - 1 - col : col;
  v[l.rowAxis] = l.rowReversed ? extent(l.rowAxis) - 1 - row : row;
  v[l.normalAxis] = point.slice;
  return v;
}

bool SliceRenderer::contains(const Vec3& voxel) const {
  for (int a = 0; a < 3; ++a) {
    const long i = std::lround(voxel[a]);
    if (i < 0 || i >= extent(a)) return false;
  }
  return true;
}

float SliceRenderer::huAt(const Vec3& voxel) const {
  if (!contains(voxel)) return std::numeric_limits<float>::quiet_NaN();
  return m_volume->at(std::lround(voxel[0]), std::lround(voxel[1]), std::lround(voxel[2]));
}

OrientationLabels SliceRenderer::orientationLabels(Plane plane) const {
  const Layout l = layout(plane);
  Vec3 right = m_volume->axis(l.colAxis), down = m_volume->axis(l.rowAxis);
  for (int r = 0; r < 3; ++r) {
    if (l.colReversed) right[r] = -right[r];
    if (l.rowReversed) down[r] = -down[r];
  }
  const Vec3 left{-right[0], -right[1], -right[2]}, up{-down[0], -down[1], -down[2]};
  return {directionLetters(left), directionLetters(right), directionLetters(up), directionLetters(down)};
}

double ViewTransform::viewportPixelsPerMm() const {
  const double w = imageSize.width() * pixelSpacing.width();
  const double h = imageSize.height() * pixelSpacing.height();
  if (w <= 0 || h <= 0 || viewport.isEmpty()) return 1;
  return std::min(viewport.width() / w, viewport.height() / h) * zoom;
}

QRectF ViewTransform::imageRect() const {
  const double scale = viewportPixelsPerMm();
  const double w = imageSize.width() * pixelSpacing.width() * scale;
  const double h = imageSize.height() * pixelSpacing.height() * scale;
  const QPointF centre = QPointF(viewport.width() / 2, viewport.height() / 2) + pan;
  return QRectF(centre.x() - w / 2, centre.y() - h / 2, w, h);
}

QPointF ViewTransform::toViewport(const QPointF& imagePoint) const {
  const double scale = viewportPixelsPerMm();
  const QRectF r = imageRect();
  return {r.left() + imagePoint.x() * pixelSpacing.width() * scale,
          r.top() + imagePoint.y() * pixelSpacing.height() * scale};
}

QPointF ViewTransform::toImage(const QPointF& viewportPoint) const {
  const double scale = viewportPixelsPerMm();
  const QRectF r = imageRect();
  return {(viewportPoint.x() - r.left()) / (pixelSpacing.width() * scale),
          (viewportPoint.y() - r.top()) / (pixelSpacing.height() * scale)};
}

double scaleBarMm(double viewportPixelsPerMm, double maxPixels) {
  double best = 0;
  for (double decade = 1; decade <= 1000; decade *= 10) {
    for (double step : {1.0, 2.0, 5.0}) {
      const double mm = step * decade;
      if (mm * viewportPixelsPerMm <= maxPixels) best = mm;
    }
  }
  return best;
}

}  // namespace hilum::ui
