// The side panels of the workstation: series browser, findings, clinical
// text, report and assistant. Panels show state and carry the main window's
// actions on their buttons; the main window runs the work.
#pragma once

#include <QDialog>
#include <QIcon>
#include <QWidget>
#include <string>
#include <vector>

#include "ui/finding.h"
#include "vision/io/dicom.h"

class QAction;
class QComboBox;
class QDoubleSpinBox;
class QLabel;
class QLineEdit;
class QListWidget;
class QListWidgetItem;
class QPlainTextEdit;
class QTableView;

namespace hilum::ui {

class StudyDocument;

// The series of the opened inputs, with thumbnails, description and slice
// count. Activating (double-click, Enter) a series asks for it to be loaded.
// Series are named by their stack selector ("UID" or "UID#k").
class SeriesBrowser : public QWidget {
  Q_OBJECT

 public:
  static constexpr int SelectorRole = Qt::UserRole + 1;

  explicit SeriesBrowser(QWidget* parent = nullptr);
  void setSeries(const std::vector<SeriesSummary>& series, const std::string& loadedSelector);
  void setThumbnail(const std::string& selector, const QImage& thumbnail);
  void setStudyText(const QString& text);  // the study summary above the list
  void clear();
  QListWidget* list() const { return m_list; }

 signals:
  void seriesActivated(const QString& selector);

 private:
  QLabel* m_studyLabel;
  QListWidget* m_list;
  QIcon m_placeholder;
};

class FindingsPanel : public QWidget {
  Q_OBJECT

 public:
  FindingsPanel(StudyDocument* document, QWidget* parent = nullptr);
  QTableView* table() const { return m_table; }
  // Buttons under the table take these actions (state and tooltip included).
  void setActions(const QList<QAction*>& actions);
  void setMessage(const QString& text);
  QString message() const;

 private:
  void syncSelection(int findingId);

  StudyDocument* m_document;
  QTableView* m_table;
  QLabel* m_message;
  QWidget* m_buttons;
  bool m_syncing = false;
};

// The clinical text that came with the study (a sidecar clinical.txt, or the
// text of a DICOM SR sent with the images), editable: it is what the analysis
// reads.
class ClinicalTextPanel : public QWidget {
  Q_OBJECT

 public:
  ClinicalTextPanel(StudyDocument* document, QWidget* parent = nullptr);
  QPlainTextEdit* editor() const { return m_editor; }
  // Where the text came from; empty: nothing found. `fromSr`: a DICOM SR.
  void setSource(const QString& path, bool fromSr = false);
  QString sourceText() const;

 private:
  StudyDocument* m_document;
  QLabel* m_source;
  QPlainTextEdit* m_editor;
};

class ReportPanel : public QWidget {
  Q_OBJECT

 public:
  explicit ReportPanel(QWidget* parent = nullptr);
  void setActions(const QList<QAction*>& actions);
  void setDraft(const QString& text);
  QString draft() const;
  void setMessage(const QString& text);
  QPlainTextEdit* editor() const { return m_editor; }

 private:
  QLabel* m_message;
  QPlainTextEdit* m_editor;
  QWidget* m_buttons;
};

class AssistantPanel : public QWidget {
  Q_OBJECT

 public:
  explicit AssistantPanel(QWidget* parent = nullptr);
  void setAskAction(QAction* ask);
  // `message`: why the assistant is unavailable, or, when available, where its
  // answers come from and how far to trust them.
  void setAvailable(bool available, const QString& message);
  QString message() const;
  QString question() const;
  void beginAnswer(const QString& question);
  void appendToken(const QString& token);
  void endAnswer(const QString& note);  // note empty when the answer completed
  QPlainTextEdit* transcript() const { return m_transcript; }
  QLineEdit* questionEdit() const { return m_question; }

 private:
  QLabel* m_message;
  QPlainTextEdit* m_transcript;
  QLineEdit* m_question;
  QWidget* m_buttons;
};

// Edits a finding's measured and categorical values; the caliper button fills
// the long axis from the selected caliper measurement.
class EditFindingDialog : public QDialog {
  Q_OBJECT

 public:
  EditFindingDialog(const Finding& current, double caliperMm, QWidget* parent = nullptr);
  Finding finding() const;

 private:
  Finding m_finding;
  QDoubleSpinBox* m_long;
  QDoubleSpinBox* m_short;
  QComboBox* m_type;
  QComboBox* m_lungRads;
};

}  // namespace hilum::ui
