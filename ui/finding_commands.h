// Undoable review actions on a study's findings and measurements. They live on
// the StudyDocument's QUndoStack; redo() applies, undo() restores exactly the
// state before. The AI's original output is never touched (FindingsModel keeps
// it); commands only change the radiologist's version and the review state.
#pragma once

#include <QUndoCommand>

#include "ui/finding.h"
#include "ui/measurement.h"

namespace hilum::ui {

class FindingsModel;
class StudyDocument;

// Sets finding `id` from its review `before` to `after`.
class ReviewFindingCommand : public QUndoCommand {
 public:
  ReviewFindingCommand(FindingsModel* model, int id, ReviewedFinding after, const QString& text,
                       QUndoCommand* parent = nullptr);
  void redo() override;
  void undo() override;

  int findingId() const { return m_id; }

 private:
  FindingsModel* m_model;
  int m_id;
  ReviewedFinding m_before, m_after;
};

class AcceptFindingCommand : public ReviewFindingCommand {
 public:
  AcceptFindingCommand(FindingsModel* model, int id);
};

class RejectFindingCommand : public ReviewFindingCommand {
 public:
  RejectFindingCommand(FindingsModel* model, int id);
};

// Replaces the radiologist's values (diameters, type, Lung-RADS, ...) of a
// finding; its id and the AI's values stay.
class EditFindingCommand : public ReviewFindingCommand {
 public:
  EditFindingCommand(FindingsModel* model, int id, const Finding& edited);
};

class AddMeasurementCommand : public QUndoCommand {
 public:
  AddMeasurementCommand(StudyDocument* document, Measurement measurement);
  void redo() override;
  void undo() override;

 private:
  StudyDocument* m_document;
  Measurement m_measurement;
};

class DeleteMeasurementCommand : public QUndoCommand {
 public:
  DeleteMeasurementCommand(StudyDocument* document, int measurementId);
  void redo() override;
  void undo() override;

 private:
  StudyDocument* m_document;
  Measurement m_measurement;
  int m_index = -1;
};

}  // namespace hilum::ui
