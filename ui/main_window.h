// The workstation's main window: three linked planes (axial large, coronal
// and sagittal beside it), the series browser, the findings, clinical text,
// report and assistant panels, menus and shortcuts, and the status bar with
// the HU probe and the progress of background work.
//
// Loading, analysis, report drafting and the assistant run on worker threads
// (BackgroundTask); the GUI thread only renders and responds.
#pragma once

#include <QMainWindow>
#include <QPointer>
#include <QStringList>
#include <array>
#include <map>

#include "model/result.h"
#include "ui/slice_renderer.h"
#include "ui/study_loader.h"
#include "ui/workstation_backends.h"

class QLabel;
class QMenu;
class QTimer;
class QProgressBar;
class QToolButton;
class QDoubleSpinBox;

namespace hilum::ui {

class AssistantPanel;
class BackgroundTask;
class ClinicalTextPanel;
class FindingsPanel;
class PacsBrowser;
class ReportPanel;
class SeriesBrowser;
class SliceView;
class StudyDocument;

struct MainWindowOptions {
  bool interactive = true;  // false: never open modal dialogs (tests, screenshots)
  bool useSettings = true;  // restore and save QSettings
  QString pacsCacheDir;     // where PACS retrieves go; empty: defaultPacsCacheDir()
  QString pacsConfig;       // pacs.json; empty: pacs::default_config_path()
};

class MainWindow : public QMainWindow {
  Q_OBJECT

 public:
  using Options = MainWindowOptions;

  explicit MainWindow(WorkstationBackends backends = {}, Options options = {}, QWidget* parent = nullptr);
  ~MainWindow() override;

  StudyDocument* document() const { return m_document; }
  SliceView* view(Plane plane) const { return m_views[static_cast<int>(plane)]; }
  SeriesBrowser* seriesBrowser() const { return m_seriesBrowser; }
  FindingsPanel* findingsPanel() const { return m_findingsPanel; }
  ClinicalTextPanel* clinicalTextPanel() const { return m_clinicalPanel; }
  ReportPanel* reportPanel() const { return m_reportPanel; }
  AssistantPanel* assistantPanel() const { return m_assistantPanel; }
  QString probeText() const;
  // The action with this objectName ("analyze", "presetLung", ...), or null.
  QAction* action(const QString& name) const;
  bool isLoading() const;
  bool isAnalyzing() const;
  bool isReporting() const;  // drafting, exporting or sending
  // The back end's record of the last analysis (null before one).
  std::shared_ptr<const AnalysisRecord> analysisRecord() const { return m_analysis; }
  // The study under review, as the report back ends receive it.
  ReportInput reportInput() const;

  // Shows a study that has been loaded (by the loader, or built by a test).
  void showStudy(const StudyRequest& request, LoadedStudyData data);

  // Grabs the window and writes it as PNG, atomically.
  Status saveScreenshot(const QString& path);
  // Where each plane lies in the window, in the grabbed image's pixels:
  // "axial X Y W H CX CY" lines (CX CY: the crosshair, when a study is open).
  QString viewportGeometry(double devicePixelRatio) const;

 public slots:
  // `series`: a stack selector from the scan ("UID" or "UID#k"); empty: the default.
  void openStudy(const QStringList& paths, const QString& series = {});
  void analyze();
  void applyWindowPreset(hilum::ui::WindowLevel window);
  // File > Open from PACS: shows the PACS browser (one per window) and returns it.
  PacsBrowser* openPacsBrowser();
  // Writes the report objects (SR, encapsulated PDF) and stores them on the
  // PACS node `nodeName` of the configuration ("" : the default node).
  void sendResultsToPacs(const QString& nodeName = {});
  // Writes one export to `path` (the Export actions ask for the path first).
  void exportTo(const QString& kind, const QString& path);

 signals:
  void studyLoaded();
  // exitCode: what the command line should return (2: bad input, 1: other).
  void studyLoadFailed(const QString& message, int exitCode);
  // exitCode: what the command line should return for a failure (2: bad input).
  void analysisFinished(bool ok, const QString& message, int exitCode = 0);
  void reportDrafted(bool ok, const QString& message);
  void exportFinished(bool ok, const QString& message);
  void resultsSent(bool ok, const QString& message);

 protected:
  void closeEvent(QCloseEvent* event) override;
  void dragEnterEvent(QDragEnterEvent* event) override;
  void dropEvent(QDropEvent* event) override;

 private:
  QAction* makeAction(const QString& name, const QString& text, const QKeySequence& shortcut = {});
  void createActions();
  void createMenus();
  void createToolBar();
  void createDocks();
  void createStatusBar();
  void bindTask(BackgroundTask* task);
  void updateActions();
  void updateRecentMenu();
  void addRecent(const QStringList& paths);
  void restoreSettings();
  void saveSettings();
  void showProbe(const Vec3& voxel);
  void showError(const QString& title, const QString& message);
  void startThumbnails(const StudyRequest& request, const std::vector<SeriesSummary>& series,
                       const std::string& loadedSelector);
  StudyContext studyContext() const;

  void openFolderDialog();
  void openFilesDialog();
  void acceptSelected();
  void rejectSelected();
  void editSelected();
  void caliperToSelected();
  void stepFinding(int delta);
  void draftReport();
  void scheduleRedraft();
  void updateReportMessage();
  void exportReport(const QString& kind, const QString& title, const QString& filter);
  QString unavailableText() const;
  bool analyzed() const;
  void askAssistant();
  void showShortcuts();

  WorkstationBackends m_backends;
  Options m_options;
  StudyDocument* m_document;
  std::array<SliceView*, 3> m_views{};
  SeriesBrowser* m_seriesBrowser = nullptr;
  FindingsPanel* m_findingsPanel = nullptr;
  ClinicalTextPanel* m_clinicalPanel = nullptr;
  ReportPanel* m_reportPanel = nullptr;
  AssistantPanel* m_assistantPanel = nullptr;

  BackgroundTask* m_loadTask;
  BackgroundTask* m_analysisTask;
  BackgroundTask* m_reportTask;  // exports and sending
  BackgroundTask* m_draftTask;
  BackgroundTask* m_assistantTask;
  BackgroundTask* m_thumbnailTask;
  BackgroundTask* m_visibleTask = nullptr;

  std::map<QString, QAction*> m_actions;
  QMenu* m_recentMenu = nullptr;
  QDoubleSpinBox* m_slabSpin = nullptr;
  QLabel* m_probeLabel = nullptr;
  QLabel* m_taskLabel = nullptr;
  QProgressBar* m_progressBar = nullptr;
  QToolButton* m_cancelButton = nullptr;
  StudyRequest m_currentRequest;
  std::string m_loadedSelector;
  std::shared_ptr<const AnalysisRecord> m_analysis;
  bool m_analyzed = false;
  QStringList m_analysisNotes;
  ReportDraft m_draft;        // the last draft; its impression is what the panel held then
  std::vector<Finding> m_draftFindings;  // what the last draft was made from
  bool m_draftStale = false;  // the review changed after the draft
  QTimer* m_redraftTimer = nullptr;
  QPointer<PacsBrowser> m_pacsBrowser;
};

}  // namespace hilum::ui
