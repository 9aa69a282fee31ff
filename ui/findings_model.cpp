#include "ui/findings_model.h"

#include <QBrush>
#include <QColor>
#include <QFont>

namespace hilum::ui {

QString reviewStateName(ReviewState state) {
  switch (state) {
    case ReviewState::Pending:
      return QStringLiteral("pending");
    case ReviewState::Accepted:
      return QStringLiteral("accepted");
    case ReviewState::Rejected:
      return QStringLiteral("rejected");
  }
  return {};
}

// Category 0 (incomplete) is not offered: the findings and reports describe
// assessed nodules only.
QStringList lungRadsCategories() { return {"1", "2", "3", "4A", "4B", "4X"}; }

QString noduleTypeLabel(NoduleType type) {
  const std::string_view name = nodule_type_name(type);
  return QString::fromLatin1(name.data(), static_cast<qsizetype>(name.size()));
}

namespace {

QString formatCell(const Finding& f, int column) {
  switch (column) {
    case FindingsModel::Id:
      return QString::number(f.id);
    case FindingsModel::Location:
      return f.location;
    case FindingsModel::LongAxis:
      return QString::number(f.longAxisMm, 'f', 1);
    case FindingsModel::ShortAxis:
      return QString::number(f.shortAxisMm, 'f', 1);
    case FindingsModel::Volume:
      return QString::number(f.volumeMm3, 'f', 0);
    case FindingsModel::Type:
      return noduleTypeLabel(f.type);
    case FindingsModel::Probability:
      return QString::number(f.probability * 100, 'f', 0) + QStringLiteral(" %");
    case FindingsModel::Malignancy:
      return QString::number(f.malignancy * 100, 'f', 0) + QStringLiteral(" %");
    case FindingsModel::LungRads:
      return f.lungRads;
    default:
      return {};
  }
}

}  // namespace

FindingsModel::FindingsModel(QObject* parent) : QAbstractTableModel(parent) {}

int FindingsModel::rowCount(const QModelIndex& parent) const {
  return parent.isValid() ? 0 : static_cast<int>(m_findings.size());
}

int FindingsModel::columnCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : ColumnCount; }

QVariant FindingsModel::data(const QModelIndex& index, int role) const {
  if (!index.isValid() || index.row() >= rowCount()) return {};
  const ReviewedFinding& r = m_findings[index.row()];
  const int column = index.column();
  const bool cellEdited = column != Review && formatCell(r.original, column) != formatCell(r.current, column);

  switch (role) {
    case Qt::DisplayRole:
      if (column == Review) {
        return r.isEdited() ? reviewStateName(r.state) + QStringLiteral(" (edited)")
                            : reviewStateName(r.state);
      }
      return formatCell(r.current, column);
    case Qt::ToolTipRole:
      if (cellEdited)
        return tr("Edited by the radiologist; AI reported: %1").arg(formatCell(r.original, column));
      return {};
    case Qt::FontRole:
      if (cellEdited || r.state == ReviewState::Rejected) {
        QFont font;
        font.setItalic(cellEdited);
        font.setStrikeOut(r.state == ReviewState::Rejected && column != Review);
        return font;
      }
      return {};
    case Qt::ForegroundRole:
      if (r.state == ReviewState::Rejected) return QBrush(QColor(140, 140, 140));
      if (column == Review && r.state == ReviewState::Accepted) return QBrush(QColor(110, 200, 120));
      return {};
    case Qt::TextAlignmentRole:
      if (column == Location || column == Type || column == Review)
        return int(Qt::AlignLeft | Qt::AlignVCenter);
      return int(Qt::AlignRight | Qt::AlignVCenter);
    case FindingIdRole:
      return r.current.id;
    default:
      return {};
  }
}

QVariant FindingsModel::headerData(int section, Qt::Orientation orientation, int role) const {
  if (orientation != Qt::Horizontal || role != Qt::DisplayRole) return {};
  switch (section) {
    case Id:
      return tr("ID");
    case Location:
      return tr("Location");
    case LongAxis:
      return tr("Long (mm)");
    case ShortAxis:
      return tr("Short (mm)");
    case Volume:
      return tr("Volume (mm³)");
    case Type:
      return tr("Type");
    case Probability:
      return tr("Nodule p");
    case Malignancy:
      return tr("Malignancy");
    case LungRads:
      return tr("Lung-RADS");
    case Review:
      return tr("Review");
    default:
      return {};
  }
}

void FindingsModel::setFindings(const std::vector<Finding>& findings) {
  beginResetModel();
  m_findings.clear();
  m_findings.reserve(findings.size());
  for (const Finding& f : findings) m_findings.emplace_back(f);
  endResetModel();
}

void FindingsModel::clear() { setFindings({}); }

int FindingsModel::rowForId(int id) const {
  for (size_t i = 0; i < m_findings.size(); ++i) {
    if (m_findings[i].original.id == id) return static_cast<int>(i);
  }
  return -1;
}

std::vector<Finding> FindingsModel::reportedFindings() const {
  std::vector<Finding> out;
  for (const ReviewedFinding& r : m_findings) {
    if (r.state != ReviewState::Rejected) out.push_back(r.current);
  }
  return out;
}

void FindingsModel::replace(int id, const ReviewedFinding& review) {
  const int row = rowForId(id);
  if (row < 0) return;
  // The AI's output and the finding's identity are never overwritten.
  ReviewedFinding next = review;
  next.original = m_findings[row].original;
  next.current.id = next.original.id;
  if (next == m_findings[row]) return;
  m_findings[row] = next;
  emit dataChanged(index(row, 0), index(row, ColumnCount - 1));
  emit findingChanged(id);
}

}  // namespace hilum::ui
