// One plane of the open study: the image, the linked crosshair, finding
// overlays, caliper measurements, orientation labels and a scale bar.
//
// Mouse: wheel scrolls slices, Ctrl+wheel zooms; left-drag does the current
// tool (window/level, crosshair, caliper); Shift+left-drag or middle-drag pans;
// right-drag zooms; double-click moves the crosshair. Keys (when focused):
// Up/Down one slice, PgUp/PgDn ten, Home/End first/last, Delete removes the
// selected measurement, Escape drops a caliper being drawn.
#pragma once

#include <QImage>
#include <QWidget>

#include "ui/slice_renderer.h"
#include "ui/study_document.h"

namespace hilum::ui {

class SliceView : public QWidget {
  Q_OBJECT

 public:
  SliceView(StudyDocument* document, Plane plane, QWidget* parent = nullptr);

  Plane plane() const { return m_plane; }
  double zoom() const { return m_zoom; }
  QPointF pan() const { return m_pan; }
  void setZoom(double zoom);  // about the viewport centre; clamped to [0.25, 32]
  void resetView();           // fit the image, no pan
  void centreOnCursor();      // pans so the crosshair is in the middle (when zoomed in)

  ViewTransform viewTransform() const;
  Vec3 voxelAt(const QPointF& widgetPoint) const;  // on the displayed slice
  QPointF widgetPoint(const Vec3& voxel) const;

  // The rendered image of the current slice (for tests and thumbnails).
  const QImage& image();

  // Where the outline of a finding is drawn on the current slice (widget
  // coordinates); false when the slice does not cross the finding.
  struct Outline {
    QPointF centre;
    double radius = 0;
  };
  bool findingOutline(const ReviewedFinding& finding, Outline* outline) const;

  QSize sizeHint() const override { return {512, 512}; }
  QSize minimumSizeHint() const override { return {160, 160}; }

 signals:
  void probed(const hilum::Vec3& voxel);  // the mouse is over this voxel
  void probeLeft();

 protected:
  void paintEvent(QPaintEvent* event) override;
  void mousePressEvent(QMouseEvent* event) override;
  void mouseMoveEvent(QMouseEvent* event) override;
  void mouseReleaseEvent(QMouseEvent* event) override;
  void mouseDoubleClickEvent(QMouseEvent* event) override;
  void wheelEvent(QWheelEvent* event) override;
  void keyPressEvent(QKeyEvent* event) override;
  void leaveEvent(QEvent* event) override;

 private:
  enum class Drag { None, WindowLevel, Pan, Zoom, Crosshair, Caliper };
  struct CacheKey {
    quint64 generation = 0;
    int slice = -1;
    WindowLevel window;
    double slabMm = -1;
    bool operator==(const CacheKey&) const = default;
  };

  void moveCursorTo(const QPointF& widgetPoint);
  int measurementAt(const QPointF& widgetPoint) const;
  void paintFindings(QPainter& painter, const ViewTransform& t);
  void paintMeasurements(QPainter& painter, const ViewTransform& t);
  void paintCrosshair(QPainter& painter, const ViewTransform& t);
  void paintAnnotations(QPainter& painter, const ViewTransform& t);

  StudyDocument* m_document;
  Plane m_plane;
  double m_zoom = 1;
  QPointF m_pan;
  QImage m_image;
  CacheKey m_imageKey;

  Drag m_drag = Drag::None;
  QPointF m_dragStart;
  WindowLevel m_dragStartWindow;
  double m_dragStartZoom = 1;
  QPointF m_dragStartPan;
  Vec3 m_caliperStart{}, m_caliperEnd{};
  double m_wheelRemainder = 0;
};

// Colours that identify each plane (Slicer's convention): its frame, and the
// crosshair line it makes in the other planes.
QColor planeColor(Plane plane);

}  // namespace hilum::ui
