#include "ui/panels.h"

#include <QAction>
#include <QComboBox>
#include <QDialogButtonBox>
#include <QDoubleSpinBox>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QItemSelectionModel>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QPainter>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QScrollBar>
#include <QTableView>
#include <QToolButton>
#include <QVBoxLayout>

#include "ui/study_document.h"
#include "ui/study_loader.h"

namespace hilum::ui {

namespace {

QWidget* makeButtonRow(QWidget* parent) {
  auto* row = new QWidget(parent);
  auto* layout = new QHBoxLayout(row);
  layout->setContentsMargins(0, 0, 0, 0);
  layout->addStretch(1);
  return row;
}

void fillButtonRow(QWidget* row, const QList<QAction*>& actions) {
  auto* layout = static_cast<QHBoxLayout*>(row->layout());
  for (QAction* action : actions) {
    auto* button = new QToolButton(row);
    button->setDefaultAction(action);
    button->setToolButtonStyle(Qt::ToolButtonTextOnly);
    layout->insertWidget(layout->count() - 1, button);
  }
}

QLabel* makeMessage(QWidget* parent) {
  auto* label = new QLabel(parent);
  label->setWordWrap(true);
  label->setStyleSheet(QStringLiteral("color: #a8a8a8;"));
  return label;
}

}  // namespace

// ---- series browser --------------------------------------------------------

SeriesBrowser::SeriesBrowser(QWidget* parent) : QWidget(parent) {
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(4, 4, 4, 4);
  m_studyLabel = new QLabel(tr("No study open."), this);
  m_studyLabel->setWordWrap(true);
  m_studyLabel->setTextInteractionFlags(Qt::TextSelectableByMouse);
  m_list = new QListWidget(this);
  m_list->setObjectName(QStringLiteral("seriesList"));
  m_list->setIconSize(QSize(72, 72));
  m_list->setSpacing(2);
  m_list->setWordWrap(true);
  layout->addWidget(m_studyLabel);
  layout->addWidget(m_list, 1);

  QPixmap empty(72, 72);
  empty.fill(QColor(24, 24, 24));
  QPainter p(&empty);
  p.setPen(QColor(90, 90, 90));
  p.drawRect(0, 0, 71, 71);
  p.drawText(empty.rect(), Qt::AlignCenter, QStringLiteral("CT"));
  p.end();
  m_placeholder = QIcon(empty);

  connect(m_list, &QListWidget::itemActivated, this,
          [this](QListWidgetItem* item) { emit seriesActivated(item->data(SelectorRole).toString()); });
}

void SeriesBrowser::setSeries(const std::vector<SeriesSummary>& series, const std::string& loadedSelector) {
  m_list->clear();
  for (const SeriesSummary& s : series) {
    QString title = QString::fromStdString(s.description);
    if (title.isEmpty()) title = tr("(no description)");
    if (s.stack_index > 0) title += tr(" [stack %1]").arg(s.stack_index + 1);
    QString details = tr("%1 · %2 slices · %3×%4")
                          .arg(QString::fromStdString(s.modality))
                          .arg(s.num_slices)
                          .arg(s.columns)
                          .arg(s.rows);
    if (s.spacing[2] > 0) details += tr(" · %1 mm").arg(s.spacing[2], 0, 'f', 2);
    if (s.is_localizer) details += tr(" · localizer");
    auto* item = new QListWidgetItem(m_placeholder, title + QLatin1Char('\n') + details, m_list);
    item->setData(SelectorRole, QString::fromStdString(seriesSelector(s)));
    QString tip = details;
    for (const std::string& w : s.warnings) tip += QLatin1Char('\n') + QString::fromStdString(w);
    item->setToolTip(tip);
    if (seriesSelector(s) == loadedSelector) {
      QFont font = item->font();
      font.setBold(true);
      item->setFont(font);
      m_list->setCurrentItem(item);
    }
  }
}

void SeriesBrowser::setThumbnail(const std::string& selector, const QImage& thumbnail) {
  if (thumbnail.isNull()) return;
  QPixmap framed(m_list->iconSize());
  framed.fill(Qt::black);
  QPainter p(&framed);
  const QImage scaled = thumbnail.scaled(framed.size(), Qt::KeepAspectRatio, Qt::SmoothTransformation);
  p.drawImage((framed.width() - scaled.width()) / 2, (framed.height() - scaled.height()) / 2, scaled);
  p.end();
  const QString key = QString::fromStdString(selector);
  for (int i = 0; i < m_list->count(); ++i) {
    if (m_list->item(i)->data(SelectorRole).toString() == key) m_list->item(i)->setIcon(QIcon(framed));
  }
}

void SeriesBrowser::setStudyText(const QString& text) { m_studyLabel->setText(text); }

void SeriesBrowser::clear() {
  m_list->clear();
  m_studyLabel->setText(tr("No study open."));
}

// ---- findings ---------------------------------------------------------------

FindingsPanel::FindingsPanel(StudyDocument* document, QWidget* parent)
    : QWidget(parent), m_document(document) {
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(4, 4, 4, 4);
  m_table = new QTableView(this);
  m_table->setObjectName(QStringLiteral("findingsTable"));
  m_table->setModel(document->findings());
  m_table->setSelectionBehavior(QAbstractItemView::SelectRows);
  m_table->setSelectionMode(QAbstractItemView::SingleSelection);
  m_table->setEditTriggers(QAbstractItemView::NoEditTriggers);
  m_table->verticalHeader()->hide();
  m_table->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
  m_table->horizontalHeader()->setStretchLastSection(true);
  m_table->setAlternatingRowColors(true);
  m_message = makeMessage(this);
  m_buttons = makeButtonRow(this);
  layout->addWidget(m_table, 1);
  layout->addWidget(m_message);
  layout->addWidget(m_buttons);

  auto select = [this](const QModelIndex& index) {
    if (m_syncing || !index.isValid()) return;
    m_document->selectFinding(index.data(FindingsModel::FindingIdRole).toInt());
  };
  connect(m_table->selectionModel(), &QItemSelectionModel::currentRowChanged, this, select);
  // Clicking the selected row again centres the planes on it again.
  connect(m_table, &QTableView::clicked, this, select);
  connect(document, &StudyDocument::selectedFindingChanged, this, &FindingsPanel::syncSelection);
}

void FindingsPanel::syncSelection(int findingId) {
  m_syncing = true;
  const int row = m_document->findings()->rowForId(findingId);
  if (row < 0) {
    m_table->clearSelection();
  } else if (m_table->currentIndex().row() != row) {
    m_table->selectRow(row);
  }
  m_syncing = false;
}

void FindingsPanel::setActions(const QList<QAction*>& actions) { fillButtonRow(m_buttons, actions); }

void FindingsPanel::setMessage(const QString& text) {
  m_message->setText(text);
  m_message->setVisible(!text.isEmpty());
}

QString FindingsPanel::message() const { return m_message->text(); }

// ---- clinical text ------------------------------------------------------------

ClinicalTextPanel::ClinicalTextPanel(StudyDocument* document, QWidget* parent)
    : QWidget(parent), m_document(document) {
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(4, 4, 4, 4);
  m_source = makeMessage(this);
  m_editor = new QPlainTextEdit(this);
  m_editor->setObjectName(QStringLiteral("clinicalText"));
  m_editor->setPlaceholderText(
      tr("Referral, history, prior report… (read from clinical.txt beside the study, or from a DICOM SR "
         "sent with it)."));
  layout->addWidget(m_source);
  layout->addWidget(m_editor, 1);
  setSource({});
  connect(m_editor, &QPlainTextEdit::textChanged, this,
          [this] { m_document->setClinicalText(m_editor->toPlainText()); });
  connect(document, &StudyDocument::clinicalTextChanged, this, [this] {
    if (m_editor->toPlainText() != m_document->clinicalText())
      m_editor->setPlainText(m_document->clinicalText());
  });
}

void ClinicalTextPanel::setSource(const QString& path, bool fromSr) {
  if (path.isEmpty()) {
    m_source->setText(
        tr("No clinical text found with the study (clinical.txt beside it, or a DICOM SR with "
           "text in it)."));
  } else {
    m_source->setText(fromSr ? tr("From the DICOM SR %1").arg(path) : tr("From %1").arg(path));
  }
}

QString ClinicalTextPanel::sourceText() const { return m_source->text(); }

// ---- report -------------------------------------------------------------------

ReportPanel::ReportPanel(QWidget* parent) : QWidget(parent) {
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(4, 4, 4, 4);
  m_message = makeMessage(this);
  m_editor = new QPlainTextEdit(this);
  m_editor->setObjectName(QStringLiteral("reportDraft"));
  m_editor->setPlaceholderText(tr("The draft report appears here."));
  m_buttons = makeButtonRow(this);
  layout->addWidget(m_message);
  layout->addWidget(m_editor, 1);
  layout->addWidget(m_buttons);
}

void ReportPanel::setActions(const QList<QAction*>& actions) { fillButtonRow(m_buttons, actions); }

void ReportPanel::setDraft(const QString& text) { m_editor->setPlainText(text); }

QString ReportPanel::draft() const { return m_editor->toPlainText(); }

void ReportPanel::setMessage(const QString& text) {
  m_message->setText(text);
  m_message->setVisible(!text.isEmpty());
}

// ---- assistant ------------------------------------------------------------------

AssistantPanel::AssistantPanel(QWidget* parent) : QWidget(parent) {
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(4, 4, 4, 4);
  m_message = makeMessage(this);
  m_transcript = new QPlainTextEdit(this);
  m_transcript->setObjectName(QStringLiteral("assistantTranscript"));
  m_transcript->setReadOnly(true);
  m_question = new QLineEdit(this);
  m_question->setObjectName(QStringLiteral("assistantQuestion"));
  m_question->setPlaceholderText(tr("Ask about this case…"));
  m_buttons = new QWidget(this);
  auto* row = new QHBoxLayout(m_buttons);
  row->setContentsMargins(0, 0, 0, 0);
  row->addWidget(m_question, 1);
  layout->addWidget(m_message);
  layout->addWidget(m_transcript, 1);
  layout->addWidget(m_buttons);
}

void AssistantPanel::setAskAction(QAction* ask) {
  auto* button = new QToolButton(m_buttons);
  button->setDefaultAction(ask);
  button->setToolButtonStyle(Qt::ToolButtonTextOnly);
  m_buttons->layout()->addWidget(button);
  connect(m_question, &QLineEdit::returnPressed, ask, &QAction::trigger);
}

void AssistantPanel::setAvailable(bool available, const QString& message) {
  m_question->setEnabled(available);
  m_transcript->setEnabled(available || !m_transcript->toPlainText().isEmpty());
  m_question->setToolTip(available ? QString() : message);
  m_message->setText(message);
  m_message->setVisible(!message.isEmpty());
}

QString AssistantPanel::message() const { return m_message->text(); }

QString AssistantPanel::question() const { return m_question->text().trimmed(); }

void AssistantPanel::beginAnswer(const QString& question) {
  m_transcript->appendPlainText(tr("Q: %1").arg(question));
  m_transcript->appendPlainText(tr("A: "));
  m_question->clear();
}

void AssistantPanel::appendToken(const QString& token) {
  QTextCursor cursor = m_transcript->textCursor();
  cursor.movePosition(QTextCursor::End);
  cursor.insertText(token);
  m_transcript->verticalScrollBar()->setValue(m_transcript->verticalScrollBar()->maximum());
}

void AssistantPanel::endAnswer(const QString& note) {
  if (!note.isEmpty()) appendToken(QStringLiteral(" [%1]").arg(note));
  m_transcript->appendPlainText(QString());
}

// ---- edit finding ---------------------------------------------------------------

EditFindingDialog::EditFindingDialog(const Finding& current, double caliperMm, QWidget* parent)
    : QDialog(parent), m_finding(current) {
  setWindowTitle(tr("Edit finding %1").arg(current.id));
  auto* form = new QFormLayout;
  auto makeSpin = [this](double value) {
    auto* spin = new QDoubleSpinBox(this);
    spin->setRange(0, 300);
    spin->setDecimals(1);
    spin->setSuffix(tr(" mm"));
    spin->setValue(value);
    return spin;
  };
  m_long = makeSpin(current.longAxisMm);
  m_short = makeSpin(current.shortAxisMm);
  auto* longRow = new QHBoxLayout;
  longRow->addWidget(m_long, 1);
  auto* fromCaliper = new QPushButton(tr("From caliper"), this);
  fromCaliper->setEnabled(caliperMm > 0);
  fromCaliper->setToolTip(caliperMm > 0
                              ? tr("Use the selected caliper measurement (%1 mm)").arg(caliperMm, 0, 'f', 1)
                              : tr("Select a caliper measurement first"));
  connect(fromCaliper, &QPushButton::clicked, this, [this, caliperMm] { m_long->setValue(caliperMm); });
  longRow->addWidget(fromCaliper);
  m_type = new QComboBox(this);
  for (NoduleType t : {NoduleType::kSolid, NoduleType::kPartSolid, NoduleType::kGroundGlass}) {
    m_type->addItem(noduleTypeLabel(t), static_cast<int>(t));
  }
  m_type->setCurrentIndex(m_type->findData(static_cast<int>(current.type)));
  m_lungRads = new QComboBox(this);
  m_lungRads->addItems(lungRadsCategories());
  m_lungRads->setCurrentText(current.lungRads);
  form->addRow(tr("Long axis"), longRow);
  form->addRow(tr("Short axis"), m_short);
  form->addRow(tr("Type"), m_type);
  form->addRow(tr("Lung-RADS"), m_lungRads);
  auto* buttons = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel, this);
  connect(buttons, &QDialogButtonBox::accepted, this, &QDialog::accept);
  connect(buttons, &QDialogButtonBox::rejected, this, &QDialog::reject);
  auto* layout = new QVBoxLayout(this);
  layout->addLayout(form);
  layout->addWidget(buttons);
}

Finding EditFindingDialog::finding() const {
  Finding f = m_finding;
  f.longAxisMm = m_long->value();
  f.shortAxisMm = std::min(m_short->value(), f.longAxisMm);
  f.type = static_cast<NoduleType>(m_type->currentData().toInt());
  f.lungRads = m_lungRads->currentText();
  return f;
}

}  // namespace hilum::ui
