#include "ui/slice_view.h"

#include <QKeyEvent>
#include <QMouseEvent>
#include <QPainter>
#include <QPainterPath>
#include <QWheelEvent>
#include <algorithm>
#include <cmath>

namespace hilum::ui {

QColor planeColor(Plane plane) {
  switch (plane) {
    case Plane::Axial:
      return QColor(224, 82, 82);
    case Plane::Coronal:
      return QColor(88, 196, 96);
    case Plane::Sagittal:
      return QColor(230, 196, 64);
  }
  return Qt::white;
}

namespace {

// The planes whose intersections with `plane` appear as its crosshair's vertical
// and horizontal lines.
Plane verticalLinePlane(Plane plane) { return plane == Plane::Sagittal ? Plane::Coronal : Plane::Sagittal; }
Plane horizontalLinePlane(Plane plane) { return plane == Plane::Axial ? Plane::Coronal : Plane::Axial; }

QColor reviewColor(ReviewState state) {
  switch (state) {
    case ReviewState::Pending:
      return QColor(255, 196, 40);
    case ReviewState::Accepted:
      return QColor(80, 210, 110);
    case ReviewState::Rejected:
      return QColor(150, 150, 150);
  }
  return Qt::white;
}

// Text with a dark outline, legible on any grey.
void drawOverlayText(QPainter& p, const QRectF& rect, int flags, const QString& text,
                     const QColor& color = Qt::white) {
  p.save();
  p.setPen(QColor(0, 0, 0, 200));
  for (const QPointF& d : {QPointF(1, 1), QPointF(-1, 1), QPointF(1, -1), QPointF(-1, -1)}) {
    p.drawText(rect.translated(d), flags, text);
  }
  p.setPen(color);
  p.drawText(rect, flags, text);
  p.restore();
}

double distanceToSegment(const QPointF& p, const QPointF& a, const QPointF& b) {
  const QPointF ab = b - a;
  const double len2 = QPointF::dotProduct(ab, ab);
  double t = len2 > 0 ? QPointF::dotProduct(p - a, ab) / len2 : 0;
  t = std::clamp(t, 0.0, 1.0);
  const QPointF d = p - (a + t * ab);
  return std::hypot(d.x(), d.y());
}

}  // namespace

SliceView::SliceView(StudyDocument* document, Plane plane, QWidget* parent)
    : QWidget(parent), m_document(document), m_plane(plane) {
  setObjectName(planeName(plane).toLower() + QStringLiteral("View"));
  setFocusPolicy(Qt::StrongFocus);
  setMouseTracking(true);
  setAttribute(Qt::WA_OpaquePaintEvent);
  setSizePolicy(QSizePolicy::Expanding, QSizePolicy::Expanding);
  auto repaint = [this] { update(); };
  connect(document, &StudyDocument::studyChanged, this, [this] {
    resetView();
    update();
  });
  connect(document, &StudyDocument::cursorChanged, this, repaint);
  connect(document, &StudyDocument::windowLevelChanged, this, repaint);
  connect(document, &StudyDocument::mipChanged, this, repaint);
  connect(document, &StudyDocument::measurementsChanged, this, repaint);
  connect(document, &StudyDocument::selectedFindingChanged, this, repaint);
  connect(document, &StudyDocument::toolModeChanged, this, [this] {
    setCursor(m_document->toolMode() == ToolMode::WindowLevel ? Qt::ArrowCursor : Qt::CrossCursor);
  });
  connect(document, &StudyDocument::centreRequested, this, &SliceView::centreOnCursor);
  connect(document->findings(), &QAbstractItemModel::dataChanged, this, repaint);
  connect(document->findings(), &QAbstractItemModel::modelReset, this, repaint);
}

void SliceView::setZoom(double zoom) {
  zoom = std::clamp(zoom, 0.25, 32.0);
  if (zoom == m_zoom) return;
  m_pan *= zoom / m_zoom;
  m_zoom = zoom;
  update();
}

void SliceView::resetView() {
  m_zoom = 1;
  m_pan = {};
  update();
}

void SliceView::centreOnCursor() {
  if (!m_document->hasStudy() || m_zoom <= 1.0) return;
  ViewTransform t = viewTransform();
  t.pan = {};
  const PlanePoint p = m_document->renderer()->toPlane(m_plane, m_document->cursor());
  const QPointF at = t.toViewport({p.x, p.y});
  m_pan = QPointF(width() / 2.0, height() / 2.0) - at;
  update();
}

ViewTransform SliceView::viewTransform() const {
  ViewTransform t;
  if (const SliceRenderer* r = m_document->renderer()) {
    t.imageSize = QSizeF(r->imageSize(m_plane));
    t.pixelSpacing = r->pixelSpacing(m_plane);
  }
  t.viewport = QSizeF(size());
  t.zoom = m_zoom;
  t.pan = m_pan;
  return t;
}

Vec3 SliceView::voxelAt(const QPointF& widgetPoint) const {
  const SliceRenderer* r = m_document->renderer();
  if (!r) return {};
  const QPointF p = viewTransform().toImage(widgetPoint);
  return r->toVoxel(m_plane, {p.x(), p.y(), double(m_document->slice(m_plane))});
}

QPointF SliceView::widgetPoint(const Vec3& voxel) const {
  const SliceRenderer* r = m_document->renderer();
  if (!r) return {};
  const PlanePoint p = r->toPlane(m_plane, voxel);
  return viewTransform().toViewport({p.x, p.y});
}

const QImage& SliceView::image() {
  const SliceRenderer* r = m_document->renderer();
  if (!r) {
    m_image = QImage();
    m_imageKey = {};
    return m_image;
  }
  const CacheKey key{m_document->generation(), m_document->slice(m_plane), m_document->windowLevel(),
                     m_document->effectiveSlabMm()};
  if (!(key == m_imageKey) || m_image.isNull()) {
    m_image = r->render(m_plane, key.slice, key.window, key.slabMm);
    m_imageKey = key;
  }
  return m_image;
}

void SliceView::moveCursorTo(const QPointF& widgetPoint) {
  const SliceRenderer* r = m_document->renderer();
  if (!r) return;
  const QPointF p = viewTransform().toImage(widgetPoint);
  const double slice = m_document->cursor()[r->normalAxis(m_plane)];
  m_document->setCursor(r->toVoxel(m_plane, {p.x(), p.y(), slice}));
}

int SliceView::measurementAt(const QPointF& point) const {
  const SliceRenderer* r = m_document->renderer();
  if (!r) return -1;
  const int slice = m_document->slice(m_plane);
  for (const Measurement& m : m_document->measurements()) {
    if (m.plane != m_plane || std::lround(m.start[r->normalAxis(m_plane)]) != slice) continue;
    if (distanceToSegment(point, widgetPoint(m.start), widgetPoint(m.end)) < 6) return m.id;
  }
  return -1;
}

// ---- painting ---------------------------------------------------------------

void SliceView::paintEvent(QPaintEvent*) {
  QPainter p(this);
  p.fillRect(rect(), Qt::black);
  const SliceRenderer* r = m_document->renderer();
  if (!r) {
    p.setPen(QColor(150, 150, 150));
    p.drawText(rect().adjusted(12, 12, -12, -12), Qt::AlignCenter | Qt::TextWordWrap,
               m_plane == Plane::Axial
                   ? tr("No study open.\nFile ▸ Open Folder (Ctrl+O), or drop a folder here.")
                   : planeName(m_plane));
  } else {
    const ViewTransform t = viewTransform();
    // The painter maps logical to device pixels (devicePixelRatio), so the
    // image is resampled once, at the screen's resolution.
    p.setRenderHint(QPainter::SmoothPixmapTransform, true);
    p.drawImage(t.imageRect(), image());
    p.setRenderHint(QPainter::Antialiasing, true);
    paintFindings(p, t);
    paintMeasurements(p, t);
    paintCrosshair(p, t);
    paintAnnotations(p, t);
  }
  QPen frame(planeColor(m_plane));
  frame.setWidthF(hasFocus() ? 2.0 : 1.0);
  frame.setColor(hasFocus() ? planeColor(m_plane) : planeColor(m_plane).darker(170));
  p.setRenderHint(QPainter::Antialiasing, false);
  p.setPen(frame);
  p.setBrush(Qt::NoBrush);
  p.drawRect(QRectF(rect()).adjusted(0.5, 0.5, -1, -1));
}

bool SliceView::findingOutline(const ReviewedFinding& f, Outline* outline) const {
  const SliceRenderer* r = m_document->renderer();
  if (!r) return false;
  const ViewTransform t = viewTransform();
  const double halfSlab = m_document->effectiveSlabMm() / 2;
  const int slice = m_document->slice(m_plane);
  const Vec3 centre = r->volume().voxel_from_world(f.current.centerMm);
  const PlanePoint pp = r->toPlane(m_plane, centre);
  const double radius = std::max(f.current.longAxisMm / 2, 1.5);
  const double offMm = std::max(0.0, std::abs((slice - pp.slice) * r->sliceSpacing(m_plane)) - halfSlab);
  if (offMm > radius) return false;
  const double shown = std::sqrt(radius * radius - offMm * offMm);
  outline->centre = t.toViewport({pp.x, pp.y});
  outline->radius = shown * t.viewportPixelsPerMm() + 4;  // a margin keeps the nodule's edge visible
  return true;
}

void SliceView::paintFindings(QPainter& p, const ViewTransform&) {
  for (const ReviewedFinding& f : m_document->findings()->findings()) {
    Outline o;
    if (!findingOutline(f, &o)) continue;
    const bool selected = f.original.id == m_document->selectedFindingId();
    QPen pen(reviewColor(f.state));
    pen.setWidthF(selected ? 2.5 : 1.5);
    if (f.state == ReviewState::Rejected) pen.setStyle(Qt::DashLine);
    p.setPen(pen);
    p.setBrush(Qt::NoBrush);
    const QPointF c = o.centre;
    const double rp = o.radius;
    p.drawEllipse(c, rp, rp);
    QString label = QString::number(f.original.id);
    if (selected) label += QStringLiteral("  %1 mm").arg(f.current.longAxisMm, 0, 'f', 1);
    drawOverlayText(p, QRectF(c.x() + rp * 0.72, c.y() - rp * 0.72 - 16, 160, 16),
                    Qt::AlignLeft | Qt::AlignBottom, label, reviewColor(f.state));
  }
}

void SliceView::paintMeasurements(QPainter& p, const ViewTransform&) {
  const SliceRenderer* r = m_document->renderer();
  const int slice = m_document->slice(m_plane);
  auto drawCaliper = [&](const Vec3& a, const Vec3& b, const QColor& color) {
    const QPointF pa = widgetPoint(a), pb = widgetPoint(b);
    QPen pen(color);
    pen.setWidthF(1.5);
    p.setPen(pen);
    p.drawLine(pa, pb);
    // End ticks perpendicular to the line.
    QPointF d = pb - pa;
    const double len = std::hypot(d.x(), d.y());
    if (len > 0) {
      const QPointF n(-d.y() / len * 5, d.x() / len * 5);
      p.drawLine(pa - n, pa + n);
      p.drawLine(pb - n, pb + n);
    }
    const Measurement m{0, m_plane, a, b};
    const QString text = QStringLiteral("%1 mm").arg(measurementLengthMm(r->volume(), m), 0, 'f', 1);
    drawOverlayText(p, QRectF(pb + QPointF(6, -8), QSizeF(120, 18)), Qt::AlignLeft | Qt::AlignVCenter, text,
                    color);
  };
  for (const Measurement& m : m_document->measurements()) {
    if (m.plane != m_plane || std::lround(m.start[r->normalAxis(m_plane)]) != slice) continue;
    const bool selected = m.id == m_document->selectedMeasurementId();
    drawCaliper(m.start, m.end, selected ? QColor(90, 210, 255) : QColor(255, 170, 60));
  }
  if (m_drag == Drag::Caliper) drawCaliper(m_caliperStart, m_caliperEnd, QColor(90, 210, 255));
}

void SliceView::paintCrosshair(QPainter& p, const ViewTransform& t) {
  const QPointF c = widgetPoint(m_document->cursor());
  const QRectF box = t.imageRect().intersected(QRectF(rect()));
  constexpr double gap = 12;  // leave the structure under the cursor visible
  auto line = [&](Plane other, QPointF a, QPointF b) {
    QColor color = planeColor(other);
    color.setAlpha(170);
    QPen pen(color);
    pen.setWidthF(1.0);
    p.setPen(pen);
    p.drawLine(a, b);
  };
  if (c.x() >= box.left() && c.x() <= box.right()) {
    line(verticalLinePlane(m_plane), {c.x(), box.top()}, {c.x(), std::max(box.top(), c.y() - gap)});
    line(verticalLinePlane(m_plane), {c.x(), std::min(box.bottom(), c.y() + gap)}, {c.x(), box.bottom()});
  }
  if (c.y() >= box.top() && c.y() <= box.bottom()) {
    line(horizontalLinePlane(m_plane), {box.left(), c.y()}, {std::max(box.left(), c.x() - gap), c.y()});
    line(horizontalLinePlane(m_plane), {std::min(box.right(), c.x() + gap), c.y()}, {box.right(), c.y()});
  }
}

void SliceView::paintAnnotations(QPainter& p, const ViewTransform& t) {
  const SliceRenderer* r = m_document->renderer();
  QFont font = p.font();
  font.setPointSizeF(std::max(8.0, font.pointSizeF()));
  p.setFont(font);
  const QRectF area = QRectF(rect()).adjusted(8, 6, -8, -6);

  // Top left: plane and slice; bottom left: window.
  QString topLeft = QStringLiteral("%1  %2 / %3")
                        .arg(planeName(m_plane))
                        .arg(m_document->slice(m_plane) + 1)
                        .arg(r->sliceCount(m_plane));
  if (m_document->mipEnabled()) topLeft += QStringLiteral("\nMIP %1 mm").arg(m_document->slabMm(), 0, 'f', 0);
  drawOverlayText(p, area, Qt::AlignLeft | Qt::AlignTop, topLeft, planeColor(m_plane).lighter(130));
  const WindowLevel w = m_document->windowLevel();
  drawOverlayText(p, area, Qt::AlignLeft | Qt::AlignBottom,
                  QStringLiteral("W %1  L %2").arg(std::lround(w.width)).arg(std::lround(w.level)));

  // Orientation labels at the middle of each edge.
  const OrientationLabels labels = r->orientationLabels(m_plane);
  QFont bold = font;
  bold.setBold(true);
  p.setFont(bold);
  const QColor labelColor(230, 230, 160);
  drawOverlayText(p, area, Qt::AlignLeft | Qt::AlignVCenter, labels.left, labelColor);
  drawOverlayText(p, area, Qt::AlignRight | Qt::AlignVCenter, labels.right, labelColor);
  drawOverlayText(p, area.adjusted(0, 18, 0, 0), Qt::AlignHCenter | Qt::AlignTop, labels.top, labelColor);
  // Above the window text and the scale bar on the bottom row.
  drawOverlayText(p, area.adjusted(0, 0, 0, -18), Qt::AlignHCenter | Qt::AlignBottom, labels.bottom,
                  labelColor);
  p.setFont(font);

  // Scale bar, bottom right: a round length up to a fifth of the view.
  const double ppm = t.viewportPixelsPerMm();
  const double mm = scaleBarMm(ppm, std::max(40.0, width() / 5.0));
  if (mm > 0) {
    const double len = mm * ppm;
    const QPointF end(area.right(), area.bottom() - 20);
    const QPointF start(end.x() - len, end.y());
    QPen pen(Qt::white);
    pen.setWidthF(2);
    p.setPen(pen);
    p.drawLine(start, end);
    p.drawLine(start, start - QPointF(0, 5));
    p.drawLine(end, end - QPointF(0, 5));
    const QString text = mm >= 10 ? QStringLiteral("%1 cm").arg(mm / 10) : QStringLiteral("%1 mm").arg(mm);
    drawOverlayText(p, QRectF(start.x(), end.y() + 2, len, 18), Qt::AlignHCenter | Qt::AlignTop, text);
  }
}

// ---- interaction ----------------------------------------------------------

void SliceView::mousePressEvent(QMouseEvent* event) {
  if (!m_document->hasStudy()) return QWidget::mousePressEvent(event);
  setFocus(Qt::MouseFocusReason);
  m_dragStart = event->position();
  m_dragStartWindow = m_document->windowLevel();
  m_dragStartZoom = m_zoom;
  m_dragStartPan = m_pan;
  if (event->button() == Qt::MiddleButton ||
      (event->button() == Qt::LeftButton && (event->modifiers() & Qt::ShiftModifier))) {
    m_drag = Drag::Pan;
    setCursor(Qt::ClosedHandCursor);
  } else if (event->button() == Qt::RightButton) {
    m_drag = Drag::Zoom;
  } else if (event->button() == Qt::LeftButton) {
    switch (m_document->toolMode()) {
      case ToolMode::WindowLevel:
        m_drag = Drag::WindowLevel;
        break;
      case ToolMode::Crosshair:
        m_drag = Drag::Crosshair;
        moveCursorTo(event->position());
        break;
      case ToolMode::Caliper:
        if (int id = measurementAt(event->position()); id >= 0) {
          m_document->selectMeasurement(id);
          m_drag = Drag::None;
        } else {
          m_drag = Drag::Caliper;
          m_caliperStart = m_caliperEnd = voxelAt(event->position());
        }
        break;
    }
  }
  event->accept();
}

void SliceView::mouseMoveEvent(QMouseEvent* event) {
  const SliceRenderer* r = m_document->renderer();
  if (!r) return;
  const QPointF pos = event->position();
  const QPointF delta = pos - m_dragStart;
  switch (m_drag) {
    case Drag::None:
      break;
    case Drag::WindowLevel: {
      const double sensitivity = std::max(1.0, m_dragStartWindow.width / 250.0);  // HU per pixel
      m_document->setWindowLevel({m_dragStartWindow.width + delta.x() * sensitivity,
                                  m_dragStartWindow.level + delta.y() * sensitivity});
      break;
    }
    case Drag::Pan:
      m_pan = m_dragStartPan + delta;
      update();
      break;
    case Drag::Zoom: {
      // Zoom about where the drag began: that point stays under the mouse.
      ViewTransform before = viewTransform();
      before.zoom = m_dragStartZoom;
      before.pan = m_dragStartPan;
      const QPointF anchor = before.toImage(m_dragStart);
      m_zoom = std::clamp(m_dragStartZoom * std::exp(-delta.y() / 200.0), 0.25, 32.0);
      m_pan = m_dragStartPan;
      const QPointF moved = viewTransform().toViewport(anchor);
      m_pan += m_dragStart - moved;
      update();
      break;
    }
    case Drag::Crosshair:
      moveCursorTo(pos);
      break;
    case Drag::Caliper:
      m_caliperEnd = voxelAt(pos);
      update();
      break;
  }
  const Vec3 voxel = voxelAt(pos);
  if (r->contains(voxel)) {
    emit probed(voxel);
  } else {
    emit probeLeft();
  }
}

void SliceView::mouseReleaseEvent(QMouseEvent* event) {
  if (m_drag == Drag::Caliper) {
    m_caliperEnd = voxelAt(event->position());
    if (QLineF(m_dragStart, event->position()).length() >= 4) {
      m_document->addMeasurement(m_plane, m_caliperStart, m_caliperEnd);
    } else {
      m_document->selectMeasurement(-1);
    }
  }
  if (m_drag == Drag::Pan) unsetCursor();
  m_drag = Drag::None;
  update();
  event->accept();
}

void SliceView::mouseDoubleClickEvent(QMouseEvent* event) {
  if (event->button() == Qt::LeftButton && m_document->hasStudy()) {
    moveCursorTo(event->position());
    event->accept();
    return;
  }
  QWidget::mouseDoubleClickEvent(event);
}

void SliceView::wheelEvent(QWheelEvent* event) {
  if (!m_document->hasStudy()) return QWidget::wheelEvent(event);
  const double dy = event->angleDelta().y();
  if (event->modifiers() & Qt::ControlModifier) {
    const QPointF pos = event->position();
    const QPointF anchor = viewTransform().toImage(pos);
    m_zoom = std::clamp(m_zoom * std::pow(1.0015, dy), 0.25, 32.0);
    m_pan += pos - viewTransform().toViewport(anchor);
    update();
  } else {
    // One slice per wheel notch (120), accumulating high-resolution wheels.
    m_wheelRemainder += dy;
    const int steps = static_cast<int>(m_wheelRemainder / 120);
    m_wheelRemainder -= steps * 120.0;
    if (steps != 0) m_document->stepSlice(m_plane, -steps);
  }
  event->accept();
}

void SliceView::keyPressEvent(QKeyEvent* event) {
  const SliceRenderer* r = m_document->renderer();
  if (!r) return QWidget::keyPressEvent(event);
  switch (event->key()) {
    case Qt::Key_Up:
      m_document->stepSlice(m_plane, -1);
      break;
    case Qt::Key_Down:
      m_document->stepSlice(m_plane, 1);
      break;
    case Qt::Key_PageUp:
      m_document->stepSlice(m_plane, -10);
      break;
    case Qt::Key_PageDown:
      m_document->stepSlice(m_plane, 10);
      break;
    case Qt::Key_Home:
      m_document->setSlice(m_plane, 0);
      break;
    case Qt::Key_End:
      m_document->setSlice(m_plane, r->sliceCount(m_plane) - 1);
      break;
    case Qt::Key_Delete:
    case Qt::Key_Backspace:
      if (m_document->selectedMeasurementId() < 0) return QWidget::keyPressEvent(event);
      m_document->deleteMeasurement(m_document->selectedMeasurementId());
      break;
    case Qt::Key_Escape:
      if (m_drag != Drag::Caliper) return QWidget::keyPressEvent(event);
      m_drag = Drag::None;
      update();
      break;
    default:
      return QWidget::keyPressEvent(event);
  }
  event->accept();
}

void SliceView::leaveEvent(QEvent* event) {
  emit probeLeft();
  QWidget::leaveEvent(event);
}

}  // namespace hilum::ui
