// The findings table: a Qt model over the reviewed findings of the open study.
//
// Rows are findings in the order the analysis reported them. The model shows
// the radiologist's current values; cells the radiologist changed are shown in
// italics with the AI's value in the tooltip. Changes go through the undo
// commands in finding_commands.h, which call replace(); views never edit cells.
#pragma once

#include <QAbstractTableModel>
#include <vector>

#include "ui/finding.h"

namespace hilum::ui {

class FindingsModel : public QAbstractTableModel {
  Q_OBJECT

 public:
  enum Column {
    Id,
    Location,
    LongAxis,
    ShortAxis,
    Volume,
    Type,
    Probability,
    Malignancy,
    LungRads,
    Review,
    ColumnCount
  };
  static constexpr int FindingIdRole = Qt::UserRole + 1;

  explicit FindingsModel(QObject* parent = nullptr);

  int rowCount(const QModelIndex& parent = {}) const override;
  int columnCount(const QModelIndex& parent = {}) const override;
  QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
  QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

  // Replaces everything with a new AI output; every finding starts pending.
  void setFindings(const std::vector<Finding>& findings);
  void clear();

  const ReviewedFinding& at(int row) const { return m_findings.at(row); }
  const std::vector<ReviewedFinding>& findings() const { return m_findings; }
  int rowForId(int id) const;  // -1 when absent

  // What the report follows: the radiologist's current values of every finding
  // not rejected.
  std::vector<Finding> reportedFindings() const;

  // Sets the review of finding `id` (used by the undo commands).
  void replace(int id, const ReviewedFinding& review);

 signals:
  void findingChanged(int id);

 private:
  std::vector<ReviewedFinding> m_findings;
};

}  // namespace hilum::ui
