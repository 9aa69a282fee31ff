// Multiplanar reformatting of a CT Volume into 8-bit images, without widgets.
//
// The viewer shows the three patient planes in the radiological convention:
//   axial     columns run patient right -> left, rows anterior -> posterior
//   coronal   columns run right -> left, rows superior -> inferior
//   sagittal  columns run anterior -> posterior, rows superior -> inferior
// Each patient axis is mapped to the voxel axis whose direction cosine is closest
// to it (volumes are resampled onto an orthogonal grid by the loader), so a stack
// stored feet-first or with flipped rows still displays the right way up. The
// slice index of a plane is the voxel index along its normal, in stack order.
//
// Image pixels are voxels: an image is (columns x rows) voxels and the widget
// stretches it by pixelSpacing() so that coronal and sagittal planes of
// anisotropic volumes keep their true aspect ratio.
//
// Thread safety: a SliceRenderer only reads the Volume; concurrent render() calls
// are safe. The Volume must not change while a renderer refers to it.
#pragma once

#include <QImage>
#include <QPointF>
#include <QRectF>
#include <QSizeF>
#include <QString>
#include <array>
#include <cstdint>
#include <memory>

#include "vision/volume.h"

namespace hilum::ui {

enum class Plane { Axial = 0, Coronal = 1, Sagittal = 2 };
inline constexpr std::array<Plane, 3> kPlanes{Plane::Axial, Plane::Coronal, Plane::Sagittal};
QString planeName(Plane plane);  // "Axial", "Coronal", "Sagittal"

// A display window in HU: level - width/2 shows black, level + width/2 white.
struct WindowLevel {
  double width = 1500;
  double level = -600;
  bool operator==(const WindowLevel&) const = default;
};

inline constexpr WindowLevel kLungWindow{1500, -600};
inline constexpr WindowLevel kMediastinumWindow{350, 50};
inline constexpr WindowLevel kBoneWindow{2000, 500};

// HU -> grey lookup for one window, over HU [kMinHu, kMaxHu]; values outside
// clamp to the ends. Grey is linear in HU across the window, rounded.
class WindowLut {
 public:
  static constexpr int kMinHu = -4096;
  static constexpr int kMaxHu = 12287;
  static constexpr int kSize = kMaxHu - kMinHu + 1;

  explicit WindowLut(WindowLevel window);
  uint8_t operator()(float hu) const { return m_table[index(hu)]; }
  static int index(float hu) {
    float t = hu + (0.5f - kMinHu);  // round to nearest HU
    t = t < 0 ? 0 : (t > kSize - 1 ? static_cast<float>(kSize - 1) : t);
    return static_cast<int>(t);
  }
  const uint8_t* table() const { return m_table.data(); }

 private:
  std::array<uint8_t, kSize> m_table;
};

// How the patient axes (0: LPS x, right->left; 1: LPS y, anterior->posterior;
// 2: LPS z, inferior->superior) map onto the voxel axes (0: column i, 1: row j,
// 2: slice k).
struct AxisMapping {
  std::array<int, 3> voxelAxis{0, 1, 2};              // indexed by patient axis
  std::array<bool, 3> reversed{false, false, false};  // voxel index runs against the patient axis
};
AxisMapping axisMappingFor(const Volume& volume);

// A point of a plane: x, y in image pixels (pixel centres at n + 0.5, as in
// QImage), slice as a continuous voxel index along the plane's normal.
struct PlanePoint {
  double x = 0;
  double y = 0;
  double slice = 0;
};

// The text at the four edges of a plane: the patient direction each edge faces,
// computed from the direction cosines ("L", "A", or "LA" for an oblique axis).
struct OrientationLabels {
  QString left, right, top, bottom;
};

class SliceRenderer {
 public:
  explicit SliceRenderer(std::shared_ptr<const Volume> volume);

  const Volume& volume() const { return *m_volume; }
  const AxisMapping& mapping() const { return m_mapping; }

  QSize imageSize(Plane plane) const;      // columns x rows of the plane's image
  QSizeF pixelSpacing(Plane plane) const;  // mm per image pixel (x, y)
  int sliceCount(Plane plane) const;
  double sliceSpacing(Plane plane) const;  // mm between slices along the normal
  int normalAxis(Plane plane) const;       // voxel axis along the plane's normal

  // Number of slices a slab of `slabMm` covers (at least 1).
  int slabSlices(Plane plane, double slabMm) const;

  // Renders slice `slice` (clamped to the volume) through `window`. With
  // slabMm > 0, the maximum intensity over a slab of that thickness centred on
  // the slice, along the plane's normal.
  QImage render(Plane plane, int slice, WindowLevel window, double slabMm = 0) const;

  PlanePoint toPlane(Plane plane, const Vec3& voxel) const;
  Vec3 toVoxel(Plane plane, const PlanePoint& point) const;

  // HU at the nearest voxel, or NaN outside the volume.
  float huAt(const Vec3& voxel) const;
  bool contains(const Vec3& voxel) const;  // nearest voxel is inside

  OrientationLabels orientationLabels(Plane plane) const;

 private:
  struct Layout {
    int colAxis, rowAxis, normalAxis;
    bool colReversed, rowReversed;
  };
  Layout layout(Plane plane) const { return m_layouts[static_cast<int>(plane)]; }
  int64_t extent(int axis) const;

  std::shared_ptr<const Volume> m_volume;
  AxisMapping m_mapping;
  std::array<Layout, 3> m_layouts{};
  std::array<int64_t, 3> m_strides{};
};

// Patient-direction letters for an LPS direction, strongest component first,
// components below 0.2 left out ("L", "LP", ...).
QString directionLetters(const Vec3& lps);

// Where an image lies in a viewport: fitted (zoom 1) with its true aspect ratio
// from the pixel spacing, then zoomed about the viewport centre and panned.
struct ViewTransform {
  QSizeF imageSize;           // pixels
  QSizeF pixelSpacing{1, 1};  // mm per pixel
  QSizeF viewport;            // logical widget pixels
  double zoom = 1;
  QPointF pan;  // offset of the image centre from the viewport centre, viewport pixels

  double viewportPixelsPerMm() const;
  QRectF imageRect() const;  // the whole image in viewport coordinates
  QPointF toViewport(const QPointF& imagePoint) const;
  QPointF toImage(const QPointF& viewportPoint) const;
};

// The longest "round" length (1, 2, 5 x 10^n mm) not longer than maxPixels at
// the given scale; 0 when even 1 mm does not fit.
double scaleBarMm(double viewportPixelsPerMm, double maxPixels);

}  // namespace hilum::ui
