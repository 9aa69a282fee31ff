#include "ui/finding_commands.h"

#include <QCoreApplication>

#include "ui/findings_model.h"
#include "ui/study_document.h"

namespace hilum::ui {

namespace {

ReviewedFinding reviewOf(const FindingsModel* model, int id) {
  const int row = model->rowForId(id);
  return row >= 0 ? model->at(row) : ReviewedFinding{};
}

ReviewedFinding withState(ReviewedFinding r, ReviewState state) {
  r.state = state;
  return r;
}

ReviewedFinding withCurrent(ReviewedFinding r, const Finding& current) {
  r.current = current;
  r.current.id = r.original.id;
  return r;
}

QString tr(const char* text) { return QCoreApplication::translate("hilum::ui::FindingCommands", text); }

}  // namespace

ReviewFindingCommand::ReviewFindingCommand(FindingsModel* model, int id, ReviewedFinding after,
                                           const QString& text, QUndoCommand* parent)
    : QUndoCommand(text, parent),
      m_model(model),
      m_id(id),
      m_before(reviewOf(model, id)),
      m_after(std::move(after)) {}

void ReviewFindingCommand::redo() { m_model->replace(m_id, m_after); }

void ReviewFindingCommand::undo() { m_model->replace(m_id, m_before); }

AcceptFindingCommand::AcceptFindingCommand(FindingsModel* model, int id)
    : ReviewFindingCommand(model, id, withState(reviewOf(model, id), ReviewState::Accepted),
                           tr("Accept finding %1").arg(id)) {}

RejectFindingCommand::RejectFindingCommand(FindingsModel* model, int id)
    : ReviewFindingCommand(model, id, withState(reviewOf(model, id), ReviewState::Rejected),
                           tr("Reject finding %1").arg(id)) {}

EditFindingCommand::EditFindingCommand(FindingsModel* model, int id, const Finding& edited)
    : ReviewFindingCommand(model, id, withCurrent(reviewOf(model, id), edited),
                           tr("Edit finding %1").arg(id)) {}

AddMeasurementCommand::AddMeasurementCommand(StudyDocument* document, Measurement measurement)
    : QUndoCommand(tr("Add measurement")), m_document(document), m_measurement(measurement) {}

void AddMeasurementCommand::redo() { m_document->insertMeasurement(m_measurement); }

void AddMeasurementCommand::undo() { m_document->removeMeasurement(m_measurement.id); }

DeleteMeasurementCommand::DeleteMeasurementCommand(StudyDocument* document, int measurementId)
    : QUndoCommand(tr("Delete measurement")), m_document(document) {
  if (const Measurement* m = document->measurement(measurementId)) m_measurement = *m;
}

void DeleteMeasurementCommand::redo() { m_index = m_document->removeMeasurement(m_measurement.id); }

void DeleteMeasurementCommand::undo() {
  if (m_index >= 0) m_document->insertMeasurement(m_measurement, m_index);
}

}  // namespace hilum::ui
