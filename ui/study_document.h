// The open study and everything the radiologist does with it: the volume, the
// shared 3-D cursor that links the planes, the display window, the slab MIP,
// caliper measurements, the findings under review and the undo stack that
// records their changes. Views observe it through signals; only the GUI thread
// touches it.
#pragma once

#include <QObject>
#include <QString>
#include <QUndoStack>
#include <memory>
#include <vector>

#include "ui/finding.h"
#include "ui/findings_model.h"
#include "ui/measurement.h"
#include "ui/slice_renderer.h"
#include "vision/volume.h"

namespace hilum::ui {

// What left-dragging on an image does.
enum class ToolMode { WindowLevel, Crosshair, Caliper };

class StudyDocument : public QObject {
  Q_OBJECT
  Q_DISABLE_COPY_MOVE(StudyDocument)

 public:
  explicit StudyDocument(QObject* parent = nullptr);
  ~StudyDocument() override;

  // Replaces the open study (findings, measurements and undo history are
  // cleared; the cursor goes to the centre of the volume).
  void setStudy(std::shared_ptr<const Volume> volume, StudyInfo info);
  void closeStudy();
  bool hasStudy() const { return m_renderer != nullptr; }
  const SliceRenderer* renderer() const { return m_renderer.get(); }
  std::shared_ptr<const Volume> volume() const { return m_volume; }
  const StudyInfo& info() const { return m_info; }
  // Changes whenever the study does (for caches).
  quint64 generation() const { return m_generation; }

  // The linked crosshair, as a continuous voxel index, kept inside the volume.
  Vec3 cursor() const { return m_cursor; }
  void setCursor(const Vec3& voxel);
  int slice(Plane plane) const;  // the cursor's slice in that plane
  void setSlice(Plane plane, int slice);
  void stepSlice(Plane plane, int delta);

  WindowLevel windowLevel() const { return m_window; }
  void setWindowLevel(WindowLevel window);

  bool mipEnabled() const { return m_mipEnabled; }
  void setMipEnabled(bool enabled);
  double slabMm() const { return m_slabMm; }
  void setSlabMm(double mm);  // clamped to [2, 50]
  double effectiveSlabMm() const { return m_mipEnabled ? m_slabMm : 0; }

  ToolMode toolMode() const { return m_toolMode; }
  void setToolMode(ToolMode mode);

  QString clinicalText() const { return m_clinicalText; }
  void setClinicalText(const QString& text);

  FindingsModel* findings() { return &m_findings; }
  QUndoStack* undoStack() { return &m_undoStack; }

  // The finding the radiologist is looking at; selecting one moves the cursor
  // to its centre and asks the views to centre on it. -1: none.
  int selectedFindingId() const { return m_selectedFindingId; }
  void selectFinding(int id);
  // Loads a new AI output (clears the review undo history).
  void setFindings(const std::vector<Finding>& findings);

  // Review actions, each one undoable command on undoStack(). They do nothing
  // when the finding does not exist or the action would change nothing.
  void acceptFinding(int id);
  void rejectFinding(int id);
  void editFinding(int id, const Finding& edited);

  const std::vector<Measurement>& measurements() const { return m_measurements; }
  const Measurement* measurement(int id) const;
  int selectedMeasurementId() const { return m_selectedMeasurementId; }
  void selectMeasurement(int id);
  // Undoable; returns the new measurement's id.
  int addMeasurement(Plane plane, const Vec3& start, const Vec3& end);
  void deleteMeasurement(int id);

  // Used by the measurement undo commands.
  void insertMeasurement(const Measurement& measurement, int index = -1);
  int removeMeasurement(int id);  // returns the index it had, -1 if absent

 signals:
  void studyChanged();
  void cursorChanged();
  void windowLevelChanged();
  void mipChanged();
  void toolModeChanged();
  void measurementsChanged();
  void selectedFindingChanged(int id);
  void clinicalTextChanged();
  void centreRequested();

 private:
  std::shared_ptr<const Volume> m_volume;
  std::unique_ptr<SliceRenderer> m_renderer;
  StudyInfo m_info;
  quint64 m_generation = 0;
  Vec3 m_cursor{};
  WindowLevel m_window = kLungWindow;
  bool m_mipEnabled = false;
  double m_slabMm = 10;
  ToolMode m_toolMode = ToolMode::WindowLevel;
  QString m_clinicalText;
  FindingsModel m_findings;
  QUndoStack m_undoStack;
  int m_selectedFindingId = -1;
  std::vector<Measurement> m_measurements;
  int m_selectedMeasurementId = -1;
  int m_nextMeasurementId = 1;
};

}  // namespace hilum::ui
