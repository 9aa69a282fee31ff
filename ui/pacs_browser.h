// File ▸ Open from PACS: search a PACS node (pacs.json, docs/pacs.md) by
// patient, date range and modality, list the matching studies and their
// series, and retrieve one (C-GET by default, or C-MOVE) into the local cache
// with progress and Cancel. When the instances have arrived the dialog emits
// studyRetrieved() and the main window opens the folder.
//
// Queries and retrieves run on a worker (BackgroundTask); errors (refused
// association, timeout, unknown host, nothing found) are shown in the dialog
// as the PACS client words them. Patient names, IDs and birth dates appear in
// the results table only: nothing here logs or prints them.
#pragma once

#include <QDialog>
#include <QString>
#include <filesystem>
#include <optional>
#include <vector>

class QCheckBox;
class QComboBox;
class QDateEdit;
class QLabel;
class QLineEdit;
class QProgressBar;
class QPushButton;
class QStandardItemModel;
class QTableView;

namespace hilum::pacs {
struct Config;
struct Node;
}  // namespace hilum::pacs

namespace hilum::ui {

class BackgroundTask;

// True when this build has the PACS client (app/pacs).
bool pacsAvailable();

// Where retrieved studies go: <generic cache>/hilum/pacs (on Linux
// ~/.cache/hilum/pacs), one folder per Study Instance UID.
QString defaultPacsCacheDir();

class PacsBrowser : public QDialog {
  Q_OBJECT

 public:
  // Reads the PACS configuration from `configPath`, or when empty from
  // pacs::default_config_path() ($HILUM_PACS_CONFIG, ~/.config/hilum/pacs.json).
  explicit PacsBrowser(const QString& cacheDir, const QString& configPath = {}, QWidget* parent = nullptr);
  ~PacsBrowser() override;

  // Reads another pacs.json; false (and the error shown) when it is unusable.
  bool loadConfig(const QString& path);
  bool isBusy() const;
  QString statusText() const;
  QString cacheDir() const { return m_cacheDir; }

  QComboBox* nodeBox() const { return m_node; }
  QLineEdit* patientNameEdit() const { return m_patientName; }
  QLineEdit* patientIdEdit() const { return m_patientId; }
  QCheckBox* fromCheck() const { return m_useFrom; }
  QCheckBox* toCheck() const { return m_useTo; }
  QDateEdit* fromDate() const { return m_from; }
  QDateEdit* toDate() const { return m_to; }
  QComboBox* modalityBox() const { return m_modality; }
  QComboBox* methodBox() const { return m_method; }
  QPushButton* searchButton() const { return m_search; }
  QPushButton* retrieveButton() const { return m_retrieve; }
  QPushButton* cancelButton() const { return m_cancel; }
  QTableView* studyTable() const { return m_studyView; }
  QTableView* seriesTable() const { return m_seriesView; }
  QProgressBar* progressBar() const { return m_progress; }

 public slots:
  void search();
  void retrieve();
  void cancel();

 signals:
  // A study (all of it, or with `seriesUid` one series) has arrived in `folder`.
  void studyRetrieved(const QString& folder, const QString& seriesUid);
  void searchFinished(bool ok);
  void seriesListed(bool ok);
  void retrieveFinished(bool ok);

 private:
  void showStatus(const QString& text, bool error = false);
  void listSeries();
  void updateButtons();
  std::optional<pacs::Node> currentNode() const;
  QString selectedStudyUid() const;
  QString selectedSeriesUid() const;

  QString m_cacheDir;
  std::unique_ptr<pacs::Config> m_config;
  BackgroundTask* m_task;
  QString m_taskKind;  // "search", "series", "retrieve"

  QComboBox* m_node;
  QLabel* m_configLabel;
  QLineEdit* m_patientName;
  QLineEdit* m_patientId;
  QCheckBox* m_useFrom;
  QCheckBox* m_useTo;
  QDateEdit* m_from;
  QDateEdit* m_to;
  QComboBox* m_modality;
  QPushButton* m_search;
  QStandardItemModel* m_studies;
  QStandardItemModel* m_series;
  QTableView* m_studyView;
  QTableView* m_seriesView;
  QComboBox* m_method;
  QPushButton* m_retrieve;
  QPushButton* m_cancel;
  QProgressBar* m_progress;
  QLabel* m_status;
};

}  // namespace hilum::ui
