// The plain C++ renderer: window lookup, reformat orientation, aspect ratio,
// slab MIP, coordinate mapping and the view transform.
#include <gtest/gtest.h>

#include <cmath>

#include "tests/ui/ui_test_support.h"
#include "ui/slice_renderer.h"

namespace hilum::ui {
namespace {

// Window in which grey == HU for HU in [0, 255].
constexpr WindowLevel kIdentity{255, 127.5};

// A volume whose HU tells where a voxel is: i + 5 j + 20 k.
std::shared_ptr<Volume> makeCoded(std::array<double, 9> direction = {1, 0, 0, 0, 1, 0, 0, 0, 1}) {
  auto v = std::make_shared<Volume>(Volume::allocate(5, 4, 3, {0.5, 0.5, 2.0}, {10, 20, 30}, direction));
  for (int k = 0; k < 3; ++k)
    for (int j = 0; j < 4; ++j)
      for (int i = 0; i < 5; ++i) v->data()[(k * 4 + j) * 5 + i] = float(i + 5 * j + 20 * k);
  return v;
}

int grey(const QImage& image, int x, int y) { return qGray(image.pixel(x, y)); }

TEST(WindowLut, MapsTheWindowLinearlyAndClampsOutside) {
  const WindowLut lung(kLungWindow);  // HU -1350 .. 150
  EXPECT_EQ(lung(-1350), 0);
  EXPECT_EQ(lung(150), 255);
  EXPECT_EQ(lung(-600), 128);  // 127.5 rounds up
  EXPECT_EQ(lung(-3000), 0);
  EXPECT_EQ(lung(3000), 255);
  EXPECT_EQ(lung(-1e9f), 0);
  EXPECT_EQ(lung(1e9f), 255);
  EXPECT_EQ(lung(std::nanf("")), 0);
  int previous = 0;
  for (int hu = -1400; hu <= 200; ++hu) {
    EXPECT_GE(lung(float(hu)), previous) << hu;
    previous = lung(float(hu));
  }
  const WindowLut mediastinum(kMediastinumWindow);  // -125 .. 225
  EXPECT_EQ(mediastinum(-125), 0);
  EXPECT_EQ(mediastinum(225), 255);
  EXPECT_EQ(mediastinum(50), 128);
  const WindowLut identity(kIdentity);
  for (int hu = 0; hu <= 255; ++hu) EXPECT_EQ(identity(float(hu)), hu);
  // Non-integer HU rounds to the nearest.
  EXPECT_EQ(identity(10.4f), 10);
  EXPECT_EQ(identity(10.6f), 11);
}

TEST(SliceRenderer, AxialCoronalSagittalOfAnLpsStack) {
  auto v = makeCoded();
  SliceRenderer r(v);
  // Axial slice k: columns i (R -> L), rows j (A -> P).
  const QImage axial = r.render(Plane::Axial, 2, kIdentity);
  ASSERT_EQ(axial.size(), QSize(5, 4));
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 5; ++x) EXPECT_EQ(grey(axial, x, y), x + 5 * y + 40);
  // Coronal slice j: columns i, rows from superior (k = 2) down.
  const QImage coronal = r.render(Plane::Coronal, 1, kIdentity);
  ASSERT_EQ(coronal.size(), QSize(5, 3));
  for (int y = 0; y < 3; ++y)
    for (int x = 0; x < 5; ++x) EXPECT_EQ(grey(coronal, x, y), x + 5 + 20 * (2 - y));
  // Sagittal slice i: columns j (A -> P), rows from superior down.
  const QImage sagittal = r.render(Plane::Sagittal, 3, kIdentity);
  ASSERT_EQ(sagittal.size(), QSize(4, 3));
  for (int y = 0; y < 3; ++y)
    for (int x = 0; x < 4; ++x) EXPECT_EQ(grey(sagittal, x, y), 3 + 5 * x + 20 * (2 - y));

  EXPECT_EQ(r.sliceCount(Plane::Axial), 3);
  EXPECT_EQ(r.sliceCount(Plane::Coronal), 4);
  EXPECT_EQ(r.sliceCount(Plane::Sagittal), 5);
  // Out-of-range slices clamp.
  EXPECT_EQ(r.render(Plane::Axial, 99, kIdentity), r.render(Plane::Axial, 2, kIdentity));
  EXPECT_EQ(r.render(Plane::Axial, -5, kIdentity), r.render(Plane::Axial, 0, kIdentity));
}

TEST(SliceRenderer, FlippedStackDisplaysTheRightWayUp) {
  // Columns run to the patient's right (-x), slices run inferior (-z): a
  // head-first stack stored in the other order. The display must not change.
  auto flipped = makeCoded({-1, 0, 0, 0, 1, 0, 0, 0, -1});
  SliceRenderer r(flipped);
  EXPECT_EQ(r.mapping().voxelAxis, (std::array<int, 3>{0, 1, 2}));
  EXPECT_EQ(r.mapping().reversed, (std::array<bool, 3>{true, false, true}));
  const QImage axial = r.render(Plane::Axial, 0, kIdentity);
  // Image column 0 is the patient's rightmost voxel, which is i = 4 here.
  for (int x = 0; x < 5; ++x) EXPECT_EQ(grey(axial, x, 0), (4 - x));
  // Coronal top row is the most superior slice, which is k = 0 here.
  const QImage coronal = r.render(Plane::Coronal, 0, kIdentity);
  for (int y = 0; y < 3; ++y) EXPECT_EQ(grey(coronal, 4, y), 20 * y);

  const OrientationLabels a = r.orientationLabels(Plane::Axial);
  EXPECT_EQ(a.left, "R");
  EXPECT_EQ(a.right, "L");
  EXPECT_EQ(a.top, "A");
  EXPECT_EQ(a.bottom, "P");
  const OrientationLabels c = r.orientationLabels(Plane::Coronal);
  EXPECT_EQ(c.top, "S");
  EXPECT_EQ(c.bottom, "I");
  EXPECT_EQ(c.left, "R");
  const OrientationLabels s = r.orientationLabels(Plane::Sagittal);
  EXPECT_EQ(s.left, "A");
  EXPECT_EQ(s.right, "P");
  EXPECT_EQ(s.top, "S");
}

TEST(SliceRenderer, PermutedAxesMapToPatientAxes) {
  // A stack acquired sagittally: columns run A -> P (+y), rows S -> I (-z),
  // slices R -> L (+x).
  auto v = makeCoded({0, 0, 1, 1, 0, 0, 0, -1, 0});
  SliceRenderer r(v);
  EXPECT_EQ(r.mapping().voxelAxis, (std::array<int, 3>{2, 0, 1}));
  EXPECT_EQ(r.mapping().reversed, (std::array<bool, 3>{false, false, true}));
  // The sagittal plane is now the stored slice: columns = voxel i, rows = voxel j.
  const QImage sagittal = r.render(Plane::Sagittal, 1, kIdentity);
  ASSERT_EQ(sagittal.size(), QSize(5, 4));
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 5; ++x) EXPECT_EQ(grey(sagittal, x, y), x + 5 * y + 20);
  EXPECT_EQ(r.orientationLabels(Plane::Sagittal).left, "A");
  EXPECT_EQ(r.orientationLabels(Plane::Sagittal).top, "S");
}

TEST(SliceRenderer, ObliqueLabelsNameBothDirections) {
  const double c = std::cos(30 * M_PI / 180), s = std::sin(30 * M_PI / 180);
  auto v = makeCoded({c, -s, 0, s, c, 0, 0, 0, 1});
  SliceRenderer r(v);
  const OrientationLabels a = r.orientationLabels(Plane::Axial);
  EXPECT_EQ(a.right, "LP");
  EXPECT_EQ(a.left, "RA");
  EXPECT_EQ(a.bottom, "PR");
  EXPECT_EQ(directionLetters({0, 0, 1}), "S");
  EXPECT_EQ(directionLetters({0.1, 0, -0.99}), "I");
}

TEST(SliceRenderer, AnisotropicPlanesKeepTheirAspectRatio) {
  auto v = std::make_shared<Volume>(Volume::allocate(100, 100, 40, {0.7, 0.7, 2.5}, {0, 0, 0}));
  SliceRenderer r(v);
  EXPECT_EQ(r.imageSize(Plane::Coronal), QSize(100, 40));
  EXPECT_EQ(r.pixelSpacing(Plane::Coronal), QSizeF(0.7, 2.5));
  EXPECT_EQ(r.pixelSpacing(Plane::Sagittal), QSizeF(0.7, 2.5));
  EXPECT_EQ(r.pixelSpacing(Plane::Axial), QSizeF(0.7, 0.7));
  EXPECT_DOUBLE_EQ(r.sliceSpacing(Plane::Axial), 2.5);

  ViewTransform t;
  t.imageSize = QSizeF(r.imageSize(Plane::Coronal));
  t.pixelSpacing = r.pixelSpacing(Plane::Coronal);
  t.viewport = QSizeF(800, 800);
  const QRectF rect = t.imageRect();
  // 70 mm wide, 100 mm tall: fits the height.
  EXPECT_NEAR(rect.height(), 800, 1e-9);
  EXPECT_NEAR(rect.width() / rect.height(), 70.0 / 100.0, 1e-9);
  EXPECT_NEAR(t.viewportPixelsPerMm(), 8.0, 1e-9);
  EXPECT_NEAR(rect.center().x(), 400, 1e-9);
}

TEST(SliceRenderer, SlabMipTakesTheMaximumAlongEachNormal) {
  auto v = std::make_shared<Volume>(Volume::allocate(64, 48, 40, {1, 1, 1}, {0, 0, 0}));
  std::fill(v->data(), v->data() + v->hu.numel(), -1000.0f);
  const int bi = 30, bj = 20, bk = 10;
  v->data()[(bk * 48 + bj) * 64 + bi] = 500;
  SliceRenderer r(v);
  const WindowLevel w{2000, 0};  // -1000 -> 0, 500 -> 191
  EXPECT_EQ(r.slabSlices(Plane::Axial, 10), 10);
  EXPECT_EQ(r.slabSlices(Plane::Axial, 0.2), 1);
  EXPECT_EQ(r.slabSlices(Plane::Axial, 1000), 40);

  auto bright = [](const QImage& image, int x, int y) { return qGray(image.pixel(x, y)) > 150; };
  // Axial at k = 13 with a 10 mm slab covers k = 9..18: the voxel shows.
  EXPECT_TRUE(bright(r.render(Plane::Axial, 13, w, 10), bi, bj));
  EXPECT_FALSE(bright(r.render(Plane::Axial, 13, w, 0), bi, bj));
  EXPECT_FALSE(bright(r.render(Plane::Axial, 16, w, 10), bi, bj));  // 12..21
  EXPECT_TRUE(bright(r.render(Plane::Axial, 14, w, 10), bi, bj));   // 10..19
  // Coronal (normal j) and sagittal (normal i).
  const int row = 39 - bk;
  EXPECT_TRUE(bright(r.render(Plane::Coronal, bj + 3, w, 10), bi, row));
  EXPECT_FALSE(bright(r.render(Plane::Coronal, bj + 6, w, 10), bi, row));
  EXPECT_TRUE(bright(r.render(Plane::Sagittal, bi - 4, w, 10), bj, row));
  EXPECT_FALSE(bright(r.render(Plane::Sagittal, bi - 6, w, 10), bj, row));
  // A slab at the edge stays inside the volume and still covers 10 slices.
  v->data()[(0 * 48 + 5) * 64 + 5] = 500;
  EXPECT_TRUE(bright(r.render(Plane::Axial, 0, w, 10), 5, 5));
  EXPECT_TRUE(bright(r.render(Plane::Axial, 4, w, 10), 5, 5));   // 0..9
  EXPECT_FALSE(bright(r.render(Plane::Axial, 6, w, 10), 5, 5));  // 2..11
  // Everything else stays dark.
  const QImage mip = r.render(Plane::Axial, 13, w, 10);
  int brightCount = 0;
  for (int y = 0; y < mip.height(); ++y)
    for (int x = 0; x < mip.width(); ++x) brightCount += bright(mip, x, y);
  EXPECT_EQ(brightCount, 1);
}

TEST(SliceRenderer, PlaneCoordinatesRoundTrip) {
  auto v = makeCoded({-1, 0, 0, 0, 1, 0, 0, 0, -1});
  SliceRenderer r(v);
  const Vec3 voxel{1.25, 2.5, 0.75};
  for (Plane plane : kPlanes) {
    const PlanePoint p = r.toPlane(plane, voxel);
    const Vec3 back = r.toVoxel(plane, p);
    for (int a = 0; a < 3; ++a) EXPECT_NEAR(back[a], voxel[a], 1e-12) << planeName(plane).toStdString();
  }
  // Voxel centres are pixel centres.
  const PlanePoint p = r.toPlane(Plane::Axial, {4, 0, 0});
  EXPECT_DOUBLE_EQ(p.x, 0.5);  // i = 4 is the patient's rightmost column
  EXPECT_DOUBLE_EQ(p.y, 0.5);
  EXPECT_FLOAT_EQ(r.huAt({4, 3, 2}), 4 + 15 + 40);
  EXPECT_TRUE(std::isnan(r.huAt({5, 0, 0})));
  EXPECT_TRUE(r.contains({4.4, 3.4, 2.4}));
  EXPECT_FALSE(r.contains({-0.6, 0, 0}));
}

TEST(ViewTransform, MapsBothWaysWithZoomAndPan) {
  ViewTransform t;
  t.imageSize = QSizeF(200, 100);
  t.pixelSpacing = QSizeF(0.5, 1.0);  // 100 mm x 100 mm
  t.viewport = QSizeF(400, 300);
  EXPECT_NEAR(t.viewportPixelsPerMm(), 3.0, 1e-12);
  EXPECT_EQ(t.imageRect(), QRectF(50, 0, 300, 300));
  t.zoom = 2;
  t.pan = QPointF(10, -20);
  const QPointF image(37.5, 81.25);
  const QPointF back = t.toImage(t.toViewport(image));
  EXPECT_NEAR(back.x(), image.x(), 1e-9);
  EXPECT_NEAR(back.y(), image.y(), 1e-9);
  // The image centre sits at the viewport centre plus the pan.
  const QPointF centre = t.toViewport(QPointF(100, 50));
  EXPECT_NEAR(centre.x(), 210, 1e-9);
  EXPECT_NEAR(centre.y(), 130, 1e-9);
}

TEST(ScaleBar, PicksTheLongestRoundLengthThatFits) {
  EXPECT_EQ(scaleBarMm(2.0, 100), 50);
  EXPECT_EQ(scaleBarMm(2.0, 99), 20);
  EXPECT_EQ(scaleBarMm(0.1, 100), 1000);
  EXPECT_EQ(scaleBarMm(8.0, 100), 10);
  EXPECT_EQ(scaleBarMm(200.0, 100), 0);
}

TEST(SliceRenderer, RendersTheSyntheticChestInTheLungWindow) {
  auto v = test::makeChest();
  SliceRenderer r(v);
  const QImage axial = r.render(Plane::Axial, 20, kLungWindow);
  // Outside air, lung and soft tissue in the lung window.
  EXPECT_EQ(grey(axial, 0, 0), WindowLut(kLungWindow)(-1000));
  EXPECT_EQ(grey(axial, 48 - 21, 40), WindowLut(kLungWindow)(-850));
  EXPECT_EQ(grey(axial, 48, 40), WindowLut(kLungWindow)(40));
}

}  // namespace
}  // namespace hilum::ui
