#include "ui/study_document.h"

#include <algorithm>
#include <cmath>

#include "ui/finding_commands.h"

namespace hilum::ui {

double measurementLengthMm(const Volume& volume, const Measurement& m) {
  double sum = 0;
  for (int a = 0; a < 3; ++a) {
    const double d = (m.end[a] - m.start[a]) * volume.spacing[a];
    sum += d * d;
  }
  return std::sqrt(sum);
}

StudyDocument::StudyDocument(QObject* parent) : QObject(parent) {}

StudyDocument::~StudyDocument() {
  // Commands refer to the model and to this document; drop them first.
  m_undoStack.clear();
}

void StudyDocument::setStudy(std::shared_ptr<const Volume> volume, StudyInfo info) {
  m_undoStack.clear();
  m_findings.clear();
  m_measurements.clear();
  m_selectedFindingId = m_selectedMeasurementId = -1;
  m_volume = std::move(volume);
  m_info = std::move(info);
  m_renderer = m_volume ? std::make_unique<SliceRenderer>(m_volume) : nullptr;
  ++m_generation;
  if (m_volume) {
    m_cursor = {std::floor(m_volume->nx() / 2.0), std::floor(m_volume->ny() / 2.0),
                std::floor(m_volume->nz() / 2.0)};
  } else {
    m_cursor = {};
  }
  emit studyChanged();
  emit cursorChanged();
  emit measurementsChanged();
  emit selectedFindingChanged(-1);
}

void StudyDocument::closeStudy() {
  setStudy(nullptr, {});
  setClinicalText({});
}

void StudyDocument::setCursor(const Vec3& voxel) {
  if (!m_volume) return;
  const double extent[3] = {double(m_volume->nx()), double(m_volume->ny()), double(m_volume->nz())};
  Vec3 clamped;
  for (int a = 0; a < 3; ++a) clamped[a] = std::clamp(voxel[a], 0.0, std::max(0.0, extent[a] - 1));
  if (clamped == m_cursor) return;
  m_cursor = clamped;
  emit cursorChanged();
}

int StudyDocument::slice(Plane plane) const {
  if (!m_renderer) return 0;
  return static_cast<int>(std::lround(m_cursor[m_renderer->normalAxis(plane)]));
}

void StudyDocument::setSlice(Plane plane, int slice) {
  if (!m_renderer) return;
  Vec3 c = m_cursor;
  c[m_renderer->normalAxis(plane)] = std::clamp(slice, 0, m_renderer->sliceCount(plane) - 1);
  setCursor(c);
}

void StudyDocument::stepSlice(Plane plane, int delta) { setSlice(plane, slice(plane) + delta); }

void StudyDocument::setWindowLevel(WindowLevel window) {
  window.width = std::clamp(window.width, 1.0, 10000.0);
  window.level = std::clamp(window.level, -2000.0, 6000.0);
  if (window == m_window) return;
  m_window = window;
  emit windowLevelChanged();
}

void StudyDocument::setMipEnabled(bool enabled) {
  if (enabled == m_mipEnabled) return;
  m_mipEnabled = enabled;
  emit mipChanged();
}

void StudyDocument::setSlabMm(double mm) {
  mm = std::clamp(mm, 2.0, 50.0);
  if (mm == m_slabMm) return;
  m_slabMm = mm;
  emit mipChanged();
}

void StudyDocument::setToolMode(ToolMode mode) {
  if (mode == m_toolMode) return;
  m_toolMode = mode;
  emit toolModeChanged();
}

void StudyDocument::setClinicalText(const QString& text) {
  if (text == m_clinicalText) return;
  m_clinicalText = text;
  emit clinicalTextChanged();
}

void StudyDocument::selectFinding(int id) {
  const int row = m_findings.rowForId(id);
  if (row < 0) id = -1;
  const bool changed = id != m_selectedFindingId;
  m_selectedFindingId = id;
  if (id >= 0 && m_volume) {
    setCursor(m_volume->voxel_from_world(m_findings.at(row).current.centerMm));
    emit centreRequested();
  }
  if (changed) emit selectedFindingChanged(id);
}

void StudyDocument::setFindings(const std::vector<Finding>& findings) {
  m_undoStack.clear();
  m_findings.setFindings(findings);
  m_selectedFindingId = -1;
  emit selectedFindingChanged(-1);
}

void StudyDocument::acceptFinding(int id) {
  const int row = m_findings.rowForId(id);
  if (row < 0 || m_findings.at(row).state == ReviewState::Accepted) return;
  m_undoStack.push(new AcceptFindingCommand(&m_findings, id));
}

void StudyDocument::rejectFinding(int id) {
  const int row = m_findings.rowForId(id);
  if (row < 0 || m_findings.at(row).state == ReviewState::Rejected) return;
  m_undoStack.push(new RejectFindingCommand(&m_findings, id));
}

void StudyDocument::editFinding(int id, const Finding& edited) {
  const int row = m_findings.rowForId(id);
  if (row < 0) return;
  Finding next = edited;
  next.id = id;
  if (next == m_findings.at(row).current) return;
  m_undoStack.push(new EditFindingCommand(&m_findings, id, next));
}

const Measurement* StudyDocument::measurement(int id) const {
  for (const Measurement& m : m_measurements) {
    if (m.id == id) return &m;
  }
  return nullptr;
}

void StudyDocument::selectMeasurement(int id) {
  if (!measurement(id)) id = -1;
  if (id == m_selectedMeasurementId) return;
  m_selectedMeasurementId = id;
  emit measurementsChanged();
}

int StudyDocument::addMeasurement(Plane plane, const Vec3& start, const Vec3& end) {
  Measurement m;
  m.id = m_nextMeasurementId++;
  m.plane = plane;
  m.start = start;
  m.end = end;
  m_undoStack.push(new AddMeasurementCommand(this, m));
  return m.id;
}

void StudyDocument::deleteMeasurement(int id) {
  if (!measurement(id)) return;
  m_undoStack.push(new DeleteMeasurementCommand(this, id));
}

void StudyDocument::insertMeasurement(const Measurement& measurement, int index) {
  if (index < 0 || index > static_cast<int>(m_measurements.size()))
    index = static_cast<int>(m_measurements.size());
  m_measurements.insert(m_measurements.begin() + index, measurement);
  m_selectedMeasurementId = measurement.id;
  emit measurementsChanged();
}

int StudyDocument::removeMeasurement(int id) {
  auto it = std::find_if(m_measurements.begin(), m_measurements.end(),
                         [id](const Measurement& m) { return m.id == id; });
  if (it == m_measurements.end()) return -1;
  const int index = static_cast<int>(it - m_measurements.begin());
  m_measurements.erase(it);
  if (m_selectedMeasurementId == id) m_selectedMeasurementId = -1;
  emit measurementsChanged();
  return index;
}

}  // namespace hilum::ui
