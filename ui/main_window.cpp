#include "ui/main_window.h"

#include <QAction>
#include <QActionGroup>
#include <QApplication>
#include <QBuffer>
#include <QCloseEvent>
#include <QDir>
#include <QDockWidget>
#include <QDoubleSpinBox>
#include <QDragEnterEvent>
#include <QDropEvent>
#include <QFileDialog>
#include <QFileInfo>
#include <QInputDialog>
#include <QLabel>
#include <QMenuBar>
#include <QMessageBox>
#include <QMimeData>
#include <QPlainTextEdit>
#include <QPointer>
#include <QProgressBar>
#include <QSettings>
#include <QSplitter>
#include <QStatusBar>
#include <QTableView>
#include <QTemporaryDir>
#include <QTimer>
#include <QToolBar>
#include <QToolButton>
#include <QUndoStack>
#include <algorithm>
#include <cmath>

#include "model/file_io.h"
#include "ui/background_task.h"
#include "ui/pacs_browser.h"
#include "ui/panels.h"
#include "ui/slice_view.h"
#include "ui/study_document.h"

#if defined(HILUM_HAVE_PACS) && HILUM_HAVE_PACS
#include "app/pacs/pacs_client.h"
#endif

namespace hilum::ui {

namespace {

constexpr int kMaxRecent = 10;

QString errorText(const Error& e) { return QString::fromStdString(e.message()); }

std::vector<std::filesystem::path> toPaths(const QStringList& paths) {
  std::vector<std::filesystem::path> out;
  for (const QString& p : paths) out.emplace_back(p.toStdString());
  return out;
}

QString studySummary(const LoadedStudyData& data) {
  const StudyInfo& info = data.info;
  const Volume& v = *data.volume;
  QStringList lines;
  // Patient identifiers are shown to the user who opened the study; they are
  // never logged.
  const QString name =
      QString::fromStdString(info.patient.name).replace(QLatin1Char('^'), QLatin1Char(' ')).trimmed();
  if (!name.isEmpty() || !info.patient.id.empty()) {
    lines << QStringLiteral("<b>%1</b> %2")
                 .arg(name.toHtmlEscaped(), QString::fromStdString(info.patient.id).toHtmlEscaped());
  }
  QStringList demo;
  if (!info.patient_age.empty()) demo << QString::fromStdString(info.patient_age);
  if (!info.patient.sex.empty()) demo << QString::fromStdString(info.patient.sex);
  if (!info.study_date.empty()) demo << QString::fromStdString(info.study_date);
  if (!demo.isEmpty()) lines << demo.join(QStringLiteral(" · ")).toHtmlEscaped();
  if (!info.study_description.empty())
    lines << QString::fromStdString(info.study_description).toHtmlEscaped();
  lines << QStringLiteral("%1 × %2 × %3 voxels, %4 × %5 × %6 mm")
               .arg(v.nx())
               .arg(v.ny())
               .arg(v.nz())
               .arg(v.spacing[0], 0, 'f', 2)
               .arg(v.spacing[1], 0, 'f', 2)
               .arg(v.spacing[2], 0, 'f', 2);
  if (!info.convolution_kernel.empty())
    lines << QObject::tr("Kernel %1").arg(QString::fromStdString(info.convolution_kernel).toHtmlEscaped());
  return lines.join(QStringLiteral("<br>"));
}

}  // namespace

MainWindow::MainWindow(WorkstationBackends backends, Options options, QWidget* parent)
    : QMainWindow(parent), m_backends(std::move(backends)), m_options(options) {
  setObjectName(QStringLiteral("mainWindow"));
  setWindowTitle(tr("Hilum Workstation"));
  setAcceptDrops(true);
  setDockOptions(QMainWindow::AnimatedDocks | QMainWindow::AllowTabbedDocks);

  m_document = new StudyDocument(this);
  m_loadTask = new BackgroundTask(this);
  m_analysisTask = new BackgroundTask(this);
  m_reportTask = new BackgroundTask(this);
  m_draftTask = new BackgroundTask(this);
  m_assistantTask = new BackgroundTask(this);
  m_redraftTimer = new QTimer(this);
  m_redraftTimer->setSingleShot(true);
  m_redraftTimer->setInterval(500);
  connect(m_redraftTimer, &QTimer::timeout, this, &MainWindow::draftReport);
  m_thumbnailTask = new BackgroundTask(this);

  // The three planes: axial on the left, coronal over sagittal on the right.
  auto* central = new QSplitter(Qt::Horizontal, this);
  auto* side = new QSplitter(Qt::Vertical, central);
  for (Plane plane : kPlanes) {
    auto* view = new SliceView(m_document, plane);
    m_views[static_cast<int>(plane)] = view;
    connect(view, &SliceView::probed, this, &MainWindow::showProbe);
    connect(view, &SliceView::probeLeft, this, [this] { m_probeLabel->clear(); });
  }
  central->addWidget(view(Plane::Axial));
  side->addWidget(view(Plane::Coronal));
  side->addWidget(view(Plane::Sagittal));
  central->addWidget(side);
  central->setStretchFactor(0, 3);
  central->setStretchFactor(1, 2);
  central->setHandleWidth(3);
  side->setHandleWidth(3);
  setCentralWidget(central);

  createActions();
  createDocks();
  createMenus();
  createToolBar();
  createStatusBar();
  for (BackgroundTask* task : {m_loadTask, m_analysisTask, m_reportTask, m_draftTask, m_assistantTask})
    bindTask(task);

  connect(m_document, &StudyDocument::selectedFindingChanged, this, &MainWindow::updateActions);
  connect(m_document, &StudyDocument::measurementsChanged, this, &MainWindow::updateActions);
  connect(m_document, &StudyDocument::studyChanged, this, &MainWindow::updateActions);
  connect(m_document->findings(), &QAbstractItemModel::modelReset, this, &MainWindow::updateActions);
  // The report follows the review: a changed finding redrafts an unedited
  // impression (or marks an edited one as older than the findings).
  connect(m_document->findings(), &FindingsModel::findingChanged, this, &MainWindow::scheduleRedraft);
  connect(m_reportPanel->editor(), &QPlainTextEdit::textChanged, this, &MainWindow::updateReportMessage);
  connect(m_document, &StudyDocument::mipChanged, this, [this] {
    m_actions["toggleMip"]->setChecked(m_document->mipEnabled());
    m_slabSpin->setValue(m_document->slabMm());
  });
  connect(m_document, &StudyDocument::toolModeChanged, this, [this] {
    const char* names[] = {"toolWindowLevel", "toolCrosshair", "toolCaliper"};
    m_actions[names[static_cast<int>(m_document->toolMode())]]->setChecked(true);
  });

  resize(1600, 1000);
  if (m_options.useSettings) restoreSettings();
  updateRecentMenu();
  updateActions();
  view(Plane::Axial)->setFocus();
}

MainWindow::~MainWindow() {
  // Stop workers before the document they read goes away.
  if (m_pacsBrowser) delete m_pacsBrowser.data();
  for (BackgroundTask* task :
       {m_thumbnailTask, m_assistantTask, m_draftTask, m_reportTask, m_analysisTask, m_loadTask}) {
    task->cancel();
    task->waitForFinished();
  }
}

QAction* MainWindow::makeAction(const QString& name, const QString& text, const QKeySequence& shortcut) {
  auto* a = new QAction(text, this);
  a->setObjectName(name);
  if (!shortcut.isEmpty()) a->setShortcut(shortcut);
  addAction(a);  // shortcuts work even when the action is in no visible menu
  m_actions[name] = a;
  return a;
}

QAction* MainWindow::action(const QString& name) const {
  auto it = m_actions.find(name);
  return it == m_actions.end() ? nullptr : it->second;
}

void MainWindow::createActions() {
  connect(makeAction("openFolder", tr("Open &Folder…"), QKeySequence::Open), &QAction::triggered, this,
          &MainWindow::openFolderDialog);
  connect(
      makeAction("openFiles", tr("Open F&iles or DICOMDIR…"), QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_O)),
      &QAction::triggered, this, &MainWindow::openFilesDialog);
  connect(makeAction("openFromPacs", tr("Open from &PACS…"), QKeySequence(Qt::CTRL | Qt::Key_P)),
          &QAction::triggered, this, [this] { openPacsBrowser(); });
  connect(makeAction("closeStudy", tr("&Close Study"), QKeySequence::Close), &QAction::triggered, this,
          [this] {
            m_loadTask->cancel();
            m_analysisTask->cancel();
            m_thumbnailTask->cancel();
            m_draftTask->cancel();
            m_assistantTask->cancel();
            m_document->closeStudy();
            m_seriesBrowser->clear();
            m_clinicalPanel->setSource({});
            m_analysis.reset();
            m_analyzed = false;
            m_draft = {};
            m_draftFindings.clear();
            m_draftStale = false;
            m_reportPanel->setDraft({});
            setWindowTitle(tr("Hilum Workstation"));
            updateActions();
          });
  connect(makeAction("saveScreenshot", tr("Save &Screenshot…")), &QAction::triggered, this, [this] {
    const QString path = QFileDialog::getSaveFileName(this, tr("Save Screenshot"),
                                                      QStringLiteral("hilum.png"), tr("PNG images (*.png)"));
    if (path.isEmpty()) return;
    if (Status s = saveScreenshot(path); !s.ok()) showError(tr("Screenshot"), errorText(s.error()));
  });
  connect(makeAction("quit", tr("&Quit"), QKeySequence::Quit), &QAction::triggered, this, &QWidget::close);

  QUndoStack* undo = m_document->undoStack();
  QAction* undoAction = undo->createUndoAction(this, tr("&Undo"));
  undoAction->setObjectName(QStringLiteral("undo"));
  undoAction->setShortcut(QKeySequence::Undo);
  addAction(undoAction);
  m_actions["undo"] = undoAction;
  QAction* redoAction = undo->createRedoAction(this, tr("&Redo"));
  redoAction->setObjectName(QStringLiteral("redo"));
  redoAction->setShortcuts(
      {QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_Z), QKeySequence(Qt::CTRL | Qt::Key_Y)});
  addAction(redoAction);
  m_actions["redo"] = redoAction;
  connect(makeAction("deleteMeasurement", tr("&Delete Measurement"), QKeySequence::Delete),
          &QAction::triggered, this,
          [this] { m_document->deleteMeasurement(m_document->selectedMeasurementId()); });

  connect(makeAction("presetLung", tr("&Lung (W1500 L-600)"), QKeySequence(Qt::Key_1)), &QAction::triggered,
          this, [this] { applyWindowPreset(kLungWindow); });
  connect(makeAction("presetMediastinum", tr("&Mediastinum (W350 L50)"), QKeySequence(Qt::Key_2)),
          &QAction::triggered, this, [this] { applyWindowPreset(kMediastinumWindow); });
  connect(makeAction("presetBone", tr("&Bone (W2000 L500)"), QKeySequence(Qt::Key_3)), &QAction::triggered,
          this, [this] { applyWindowPreset(kBoneWindow); });
  QAction* mip = makeAction("toggleMip", tr("Thick-Slab &MIP"), QKeySequence(Qt::Key_M));
  mip->setCheckable(true);
  mip->setToolTip(tr("Maximum intensity over a slab along each plane's normal (M); slab [ and ]"));
  connect(mip, &QAction::toggled, m_document, &StudyDocument::setMipEnabled);
  connect(makeAction("thickerSlab", tr("Thicker Slab"), QKeySequence(Qt::Key_BracketRight)),
          &QAction::triggered, this, [this] { m_document->setSlabMm(m_document->slabMm() + 2); });
  connect(makeAction("thinnerSlab", tr("Thinner Slab"), QKeySequence(Qt::Key_BracketLeft)),
          &QAction::triggered, this, [this] { m_document->setSlabMm(m_document->slabMm() - 2); });
  connect(makeAction("resetViews", tr("&Fit Views"), QKeySequence(Qt::Key_F)), &QAction::triggered, this,
          [this] {
            for (SliceView* v : m_views) v->resetView();
          });

  auto* tools = new QActionGroup(this);
  const std::pair<const char*, ToolMode> toolActions[] = {{"toolWindowLevel", ToolMode::WindowLevel},
                                                          {"toolCrosshair", ToolMode::Crosshair},
                                                          {"toolCaliper", ToolMode::Caliper}};
  const QString toolText[] = {tr("&Window/Level"), tr("&Crosshair"), tr("&Caliper (Distance)")};
  const QKeySequence toolKeys[] = {QKeySequence(Qt::Key_W), QKeySequence(Qt::Key_X), QKeySequence(Qt::Key_D)};
  for (int i = 0; i < 3; ++i) {
    QAction* a = makeAction(toolActions[i].first, toolText[i], toolKeys[i]);
    a->setCheckable(true);
    a->setActionGroup(tools);
    const ToolMode mode = toolActions[i].second;
    connect(a, &QAction::triggered, this, [this, mode] { m_document->setToolMode(mode); });
  }
  m_actions["toolWindowLevel"]->setChecked(true);

  connect(makeAction("analyze", tr("&Analyze"), QKeySequence(Qt::CTRL | Qt::Key_Return)), &QAction::triggered,
          this, &MainWindow::analyze);
  connect(makeAction("acceptFinding", tr("&Accept"), QKeySequence(Qt::Key_A)), &QAction::triggered, this,
          &MainWindow::acceptSelected);
  connect(makeAction("rejectFinding", tr("&Reject"), QKeySequence(Qt::Key_R)), &QAction::triggered, this,
          &MainWindow::rejectSelected);
  connect(makeAction("editFinding", tr("&Edit…"), QKeySequence(Qt::Key_E)), &QAction::triggered, this,
          &MainWindow::editSelected);
  connect(makeAction("caliperToFinding", tr("Long Axis from &Caliper"), QKeySequence(Qt::SHIFT | Qt::Key_E)),
          &QAction::triggered, this, &MainWindow::caliperToSelected);
  connect(makeAction("nextFinding", tr("&Next Finding"), QKeySequence(Qt::Key_N)), &QAction::triggered, this,
          [this] { stepFinding(1); });
  connect(makeAction("previousFinding", tr("&Previous Finding"), QKeySequence(Qt::SHIFT | Qt::Key_N)),
          &QAction::triggered, this, [this] { stepFinding(-1); });

  connect(makeAction("draftReport", tr("&Draft Report")), &QAction::triggered, this,
          &MainWindow::draftReport);
  connect(makeAction("exportPdf", tr("Export &PDF…")), &QAction::triggered, this,
          [this] { exportReport(QStringLiteral("pdf"), tr("Export PDF"), tr("PDF (*.pdf)")); });
  connect(makeAction("exportSr", tr("Export DICOM &SR…")), &QAction::triggered, this,
          [this] { exportReport(QStringLiteral("sr"), tr("Export DICOM SR"), tr("DICOM (*.dcm)")); });
  connect(makeAction("exportJson", tr("Export &JSON…")), &QAction::triggered, this,
          [this] { exportReport(QStringLiteral("json"), tr("Export findings JSON"), tr("JSON (*.json)")); });
  connect(makeAction("sendToPacs", tr("Send Results to P&ACS")), &QAction::triggered, this,
          [this] { sendResultsToPacs({}); });
  connect(makeAction("askAssistant", tr("Ask")), &QAction::triggered, this, &MainWindow::askAssistant);

  connect(makeAction("shortcuts", tr("&Keyboard Shortcuts"), QKeySequence::HelpContents), &QAction::triggered,
          this, &MainWindow::showShortcuts);
  connect(makeAction("about", tr("&About Hilum")), &QAction::triggered, this, [this] {
    if (!m_options.interactive) return;
    QMessageBox::about(this, tr("About Hilum"),
                       tr("<b>Hilum Workstation</b><p>Lung-nodule CT reading.</p>"
                          "<p>Research software, not a medical device.</p>"));
  });
  connect(makeAction("cancelTask", tr("Cancel"), QKeySequence(Qt::Key_Escape)), &QAction::triggered, this,
          [this] {
            if (m_visibleTask) m_visibleTask->cancel();
          });
  m_actions["cancelTask"]->setShortcutContext(Qt::WindowShortcut);
}

void MainWindow::createMenus() {
  QMenu* file = menuBar()->addMenu(tr("&File"));
  file->addAction(m_actions["openFolder"]);
  file->addAction(m_actions["openFiles"]);
  file->addAction(m_actions["openFromPacs"]);
  m_recentMenu = file->addMenu(tr("Open &Recent"));
  file->addAction(m_actions["closeStudy"]);
  file->addSeparator();
  file->addAction(m_actions["saveScreenshot"]);
  file->addSeparator();
  file->addAction(m_actions["quit"]);

  QMenu* edit = menuBar()->addMenu(tr("&Edit"));
  edit->addAction(m_actions["undo"]);
  edit->addAction(m_actions["redo"]);
  edit->addSeparator();
  edit->addAction(m_actions["deleteMeasurement"]);

  QMenu* view = menuBar()->addMenu(tr("&View"));
  QMenu* presets = view->addMenu(tr("Window &Presets"));
  presets->addAction(m_actions["presetLung"]);
  presets->addAction(m_actions["presetMediastinum"]);
  presets->addAction(m_actions["presetBone"]);
  view->addAction(m_actions["toggleMip"]);
  view->addAction(m_actions["thickerSlab"]);
  view->addAction(m_actions["thinnerSlab"]);
  view->addSeparator();
  view->addAction(m_actions["resetViews"]);
  view->addSeparator();
  for (QDockWidget* dock : findChildren<QDockWidget*>()) view->addAction(dock->toggleViewAction());

  QMenu* tools = menuBar()->addMenu(tr("&Tools"));
  tools->addAction(m_actions["toolWindowLevel"]);
  tools->addAction(m_actions["toolCrosshair"]);
  tools->addAction(m_actions["toolCaliper"]);

  QMenu* findings = menuBar()->addMenu(tr("F&indings"));
  findings->addAction(m_actions["analyze"]);
  findings->addSeparator();
  for (const char* name : {"acceptFinding", "rejectFinding", "editFinding", "caliperToFinding"}) {
    findings->addAction(m_actions[name]);
  }
  findings->addSeparator();
  findings->addAction(m_actions["nextFinding"]);
  findings->addAction(m_actions["previousFinding"]);

  QMenu* report = menuBar()->addMenu(tr("&Report"));
  for (const char* name : {"draftReport", "exportPdf", "exportSr", "exportJson"})
    report->addAction(m_actions[name]);
  report->addSeparator();
  report->addAction(m_actions["sendToPacs"]);

  QMenu* help = menuBar()->addMenu(tr("&Help"));
  help->addAction(m_actions["shortcuts"]);
  help->addAction(m_actions["about"]);
}

void MainWindow::createToolBar() {
  QToolBar* bar = addToolBar(tr("Tools"));
  bar->setObjectName(QStringLiteral("mainToolBar"));
  bar->setMovable(false);
  bar->setToolButtonStyle(Qt::ToolButtonTextOnly);
  bar->addAction(m_actions["openFolder"]);
  bar->addSeparator();
  bar->addAction(m_actions["toolWindowLevel"]);
  bar->addAction(m_actions["toolCrosshair"]);
  bar->addAction(m_actions["toolCaliper"]);
  bar->addSeparator();
  bar->addAction(m_actions["presetLung"]);
  bar->addAction(m_actions["presetMediastinum"]);
  bar->addAction(m_actions["presetBone"]);
  bar->addSeparator();
  bar->addAction(m_actions["toggleMip"]);
  m_slabSpin = new QDoubleSpinBox(bar);
  m_slabSpin->setObjectName(QStringLiteral("slabThickness"));
  m_slabSpin->setRange(2, 50);
  m_slabSpin->setSingleStep(2);
  m_slabSpin->setDecimals(0);
  m_slabSpin->setSuffix(tr(" mm"));
  m_slabSpin->setValue(m_document->slabMm());
  m_slabSpin->setToolTip(tr("MIP slab thickness"));
  m_slabSpin->setFocusPolicy(Qt::ClickFocus);
  connect(m_slabSpin, &QDoubleSpinBox::valueChanged, m_document, &StudyDocument::setSlabMm);
  bar->addWidget(m_slabSpin);
  bar->addSeparator();
  bar->addAction(m_actions["analyze"]);
  bar->addSeparator();
  bar->addAction(m_actions["undo"]);
  bar->addAction(m_actions["redo"]);
}

void MainWindow::createDocks() {
  auto dock = [this](const QString& name, const QString& title, QWidget* widget, Qt::DockWidgetArea area) {
    auto* d = new QDockWidget(title, this);
    d->setObjectName(name);
    d->setWidget(widget);
    d->setFeatures(QDockWidget::DockWidgetMovable | QDockWidget::DockWidgetClosable |
                   QDockWidget::DockWidgetFloatable);
    addDockWidget(area, d);
    return d;
  };
  m_seriesBrowser = new SeriesBrowser(this);
  connect(m_seriesBrowser, &SeriesBrowser::seriesActivated, this, [this](const QString& selector) {
    if (selector.toStdString() == m_loadedSelector || m_currentRequest.inputs.empty()) return;
    QStringList paths;
    for (const auto& p : m_currentRequest.inputs) paths << QString::fromStdString(p.string());
    openStudy(paths, selector);
  });
  QDockWidget* seriesDock =
      dock(QStringLiteral("seriesDock"), tr("Series"), m_seriesBrowser, Qt::LeftDockWidgetArea);

  m_findingsPanel = new FindingsPanel(m_document, this);
  m_findingsPanel->setActions({m_actions["analyze"], m_actions["acceptFinding"], m_actions["rejectFinding"],
                               m_actions["editFinding"]});
  QDockWidget* findings =
      dock(QStringLiteral("findingsDock"), tr("Findings"), m_findingsPanel, Qt::RightDockWidgetArea);

  m_clinicalPanel = new ClinicalTextPanel(m_document, this);
  QDockWidget* clinical =
      dock(QStringLiteral("clinicalDock"), tr("Clinical Text"), m_clinicalPanel, Qt::RightDockWidgetArea);

  m_reportPanel = new ReportPanel(this);
  m_reportPanel->setActions({m_actions["draftReport"], m_actions["exportPdf"], m_actions["exportSr"],
                             m_actions["exportJson"], m_actions["sendToPacs"]});
  QDockWidget* report =
      dock(QStringLiteral("reportDock"), tr("Report"), m_reportPanel, Qt::RightDockWidgetArea);

  m_assistantPanel = new AssistantPanel(this);
  m_assistantPanel->setAskAction(m_actions["askAssistant"]);
  QDockWidget* assistant =
      dock(QStringLiteral("assistantDock"), tr("Assistant"), m_assistantPanel, Qt::RightDockWidgetArea);

  splitDockWidget(findings, clinical, Qt::Vertical);
  tabifyDockWidget(clinical, report);
  tabifyDockWidget(report, assistant);
  clinical->raise();
  resizeDocks({findings, clinical}, {3, 2}, Qt::Vertical);
  // The images get most of the screen.
  resizeDocks({findings, seriesDock}, {420, 200}, Qt::Horizontal);
}

void MainWindow::createStatusBar() {
  m_probeLabel = new QLabel(this);
  m_probeLabel->setObjectName(QStringLiteral("probe"));
  m_probeLabel->setMinimumWidth(420);
  m_taskLabel = new QLabel(this);
  m_progressBar = new QProgressBar(this);
  m_progressBar->setObjectName(QStringLiteral("taskProgress"));
  m_progressBar->setRange(0, 1000);
  m_progressBar->setMaximumWidth(240);
  m_progressBar->setTextVisible(false);
  m_cancelButton = new QToolButton(this);
  m_cancelButton->setDefaultAction(m_actions["cancelTask"]);
  statusBar()->addWidget(m_probeLabel, 1);
  statusBar()->addPermanentWidget(m_taskLabel);
  statusBar()->addPermanentWidget(m_progressBar);
  statusBar()->addPermanentWidget(m_cancelButton);
  m_taskLabel->hide();
  m_progressBar->hide();
  m_cancelButton->hide();
}

void MainWindow::bindTask(BackgroundTask* task) {
  connect(task, &BackgroundTask::started, this, [this, task](const QString& title) {
    m_visibleTask = task;
    m_taskLabel->setText(title);
    m_progressBar->setValue(0);
    m_taskLabel->show();
    m_progressBar->show();
    m_cancelButton->show();
    updateActions();
  });
  connect(task, &BackgroundTask::progressed, this, [this, task](double fraction, const QString& stage) {
    if (task != m_visibleTask) return;
    m_progressBar->setValue(static_cast<int>(std::lround(fraction * 1000)));
    m_taskLabel->setText(task->title() + (stage.isEmpty() ? QString() : QStringLiteral(": ") + stage));
  });
  connect(task, &BackgroundTask::finished, this, [this, task] {
    if (task == m_visibleTask) {
      m_visibleTask = nullptr;
      m_taskLabel->hide();
      m_progressBar->hide();
      m_cancelButton->hide();
    }
    updateActions();
  });
}

QString MainWindow::unavailableText() const {
  return m_backends.unavailable.isEmpty() ? tr(kNotAvailable) : m_backends.unavailable;
}

bool MainWindow::analyzed() const { return m_analyzed || m_document->findings()->rowCount() > 0; }

bool MainWindow::isReporting() const { return m_reportTask->isRunning() || m_draftTask->isRunning(); }

void MainWindow::updateActions() {
  const bool study = m_document->hasStudy();
  const int selected = m_document->selectedFindingId();
  const bool hasFindings = m_document->findings()->rowCount() > 0;
  const bool done = study && analyzed();
  const QString missing = unavailableText();
  // Enabled when the back end exists and `ready`; the tooltip says why not.
  auto enable = [&](QAction* a, bool backend, bool ready, const QString& readyTip = {},
                    const QString& notReadyTip = {}) {
    a->setEnabled(backend && ready);
    const QString name = a->text().remove(QLatin1Char('&')).remove(QStringLiteral("…"));
    if (!backend) {
      a->setToolTip(tr("%1 %2").arg(name, missing));
    } else if (!ready && !notReadyTip.isEmpty()) {
      a->setToolTip(notReadyTip);
    } else {
      a->setToolTip(readyTip.isEmpty() ? name : readyTip);
    }
  };
  enable(m_actions["analyze"], bool(m_backends.analyze), study && !m_analysisTask->isRunning(),
         tr("Find lung nodules with the AI (Ctrl+Enter)"));
  for (const char* name : {"acceptFinding", "rejectFinding", "editFinding"}) {
    m_actions[name]->setEnabled(selected >= 0);
  }
  m_actions["caliperToFinding"]->setEnabled(selected >= 0 && m_document->selectedMeasurementId() >= 0);
  m_actions["nextFinding"]->setEnabled(hasFindings);
  m_actions["previousFinding"]->setEnabled(hasFindings);
  m_actions["deleteMeasurement"]->setEnabled(m_document->selectedMeasurementId() >= 0);
  m_actions["closeStudy"]->setEnabled(study);
  m_actions["cancelTask"]->setEnabled(m_visibleTask != nullptr);
  m_actions["openFromPacs"]->setEnabled(pacsAvailable());
  m_actions["openFromPacs"]->setToolTip(pacsAvailable() ? tr("Search a PACS and retrieve a study (Ctrl+P)")
                                                        : tr("This build has no PACS client"));
  const bool exportBusy = m_reportTask->isRunning();
  const QString needs = tr(kNeedsAnalysis);
  enable(m_actions["draftReport"], bool(m_backends.draftReport), done && !m_draftTask->isRunning(),
         tr("Draft the impression from the reviewed findings"), needs);
  enable(m_actions["exportPdf"], bool(m_backends.exportPdf), done && !exportBusy,
         tr("Write the report of the reviewed findings as PDF"), needs);
  enable(m_actions["exportSr"], bool(m_backends.exportDicomSr), done && !exportBusy,
         tr("Write the reviewed findings as DICOM SR (TID 1500)"), needs);
  enable(m_actions["exportJson"], bool(m_backends.exportJson), done && !exportBusy,
         tr("Write the reviewed findings as findings.json"), needs);
  enable(m_actions["sendToPacs"], bool(m_backends.writePacsObjects) && pacsAvailable(), done && !exportBusy,
         tr("Store the SR and the PDF report of the reviewed findings on the PACS"), needs);
  enable(m_actions["askAssistant"], bool(m_backends.ask), done && !m_assistantTask->isRunning(),
         tr("Ask the text model about this case"), needs);
  if (!m_backends.ask) {
    m_assistantPanel->setAvailable(false, tr("The assistant %1.").arg(missing));
  } else if (!done) {
    m_assistantPanel->setAvailable(false, tr("The assistant answers from the findings: %1.").arg(needs));
  } else {
    m_assistantPanel->setAvailable(true, m_backends.assistantNote);
  }

  const bool reports =
      m_backends.draftReport || m_backends.exportPdf || m_backends.exportDicomSr || m_backends.exportJson;
  m_reportPanel->editor()->setEnabled(reports);
  updateReportMessage();

  if (!m_backends.analyze) {
    m_findingsPanel->setMessage(tr("No AI findings: Analyze %1.").arg(missing));
  } else if (!study) {
    m_findingsPanel->setMessage(tr("Open a study, then Analyze (Ctrl+Enter)."));
  } else if (m_analysisTask->isRunning()) {
    m_findingsPanel->setMessage(tr("Analyzing…"));
  } else if (!hasFindings && !m_analyzed) {
    m_findingsPanel->setMessage(tr("Not analyzed yet."));
  } else if (!hasFindings) {
    m_findingsPanel->setMessage(
        tr("The AI found no lung nodule.") +
        (m_analysisNotes.isEmpty() ? QString() : QLatin1Char(' ') + m_analysisNotes.join(QLatin1Char(' '))));
  } else {
    m_findingsPanel->setMessage(
        tr("AI findings: review each (A accept, R reject, E edit; N next). "
           "Your changes are kept apart from the AI's values."));
  }
}

void MainWindow::updateReportMessage() {
  const bool reports =
      m_backends.draftReport || m_backends.exportPdf || m_backends.exportDicomSr || m_backends.exportJson;
  if (!reports) {
    m_reportPanel->setMessage(tr("Report drafting and export %1.").arg(unavailableText()));
    return;
  }
  if (!m_document->hasStudy() || !analyzed()) {
    m_reportPanel->setMessage(
        tr("Analyze the study: the drafted impression appears here, and the report "
           "follows your review of the findings."));
    return;
  }
  QStringList lines;
  const QString text = m_reportPanel->draft().trimmed();
  if (m_draftTask->isRunning()) {
    lines << tr("Drafting the impression…");
  } else if (!m_draft.impression.isEmpty()) {
    QString label = QStringLiteral("<b>%1</b>").arg(m_draft.label.toHtmlEscaped());
    if (!m_draft.note.isEmpty()) label += QStringLiteral(" — ") + m_draft.note.toHtmlEscaped();
    lines << label;
  }
  if (!text.isEmpty() && text != m_draft.impression.trimmed())
    lines << tr("Edited by you: exported as yours.");
  int accepted = 0, rejected = 0, edited = 0, pending = 0;
  for (const ReviewedFinding& f : m_document->findings()->findings()) {
    accepted += f.state == ReviewState::Accepted;
    rejected += f.state == ReviewState::Rejected;
    pending += f.state == ReviewState::Pending;
    edited += f.state != ReviewState::Rejected && f.isEdited();
  }
  lines << tr("The report follows your review: %1 accepted, %2 rejected (left out), %3 not reviewed, %4 "
              "edited.")
               .arg(accepted)
               .arg(rejected)
               .arg(pending)
               .arg(edited);
  if (m_draftStale && !text.isEmpty() && text != m_draft.impression.trimmed()) {
    lines << tr(
        "<span style='color:#ffb347'>The findings changed after this draft: Draft Report writes a new "
        "one (replacing your text).</span>");
  }
  m_reportPanel->setMessage(lines.join(QStringLiteral("<br>")));
}

// ---- studies --------------------------------------------------------------------

void MainWindow::openFolderDialog() {
  const QString dir = QFileDialog::getExistingDirectory(this, tr("Open Study Folder"));
  if (!dir.isEmpty()) openStudy({dir});
}

void MainWindow::openFilesDialog() {
  const QStringList files = QFileDialog::getOpenFileNames(this, tr("Open DICOM Files or DICOMDIR"), {},
                                                          tr("DICOM (*.dcm *.DCM DICOMDIR);;All files (*)"));
  if (!files.isEmpty()) openStudy(files);
}

bool MainWindow::isLoading() const { return m_loadTask->isRunning(); }

bool MainWindow::isAnalyzing() const { return m_analysisTask->isRunning(); }

void MainWindow::openStudy(const QStringList& paths, const QString& series) {
  if (paths.isEmpty()) return;
  StudyRequest request;
  request.inputs = toPaths(paths);
  if (!series.isEmpty()) request.series = series.toStdString();
  if (!dicomLoaderAvailable()) {
    const QString message = tr("This build of Hilum has no DICOM loader.");
    statusBar()->showMessage(message, 10000);
    emit studyLoadFailed(message, 2);
    return;
  }
  m_thumbnailTask->cancel();
  m_loadTask->run<LoadedStudyData>(
      tr("Loading study"), [request](Progress& p) { return loadStudy(request, p); },
      [this, request](Result<LoadedStudyData> result) {
        if (!result.ok()) {
          const Error& e = result.error();
          if (e.kind() == ErrorKind::kCancelled) {
            statusBar()->showMessage(tr("Loading cancelled."), 5000);
            emit studyLoadFailed(tr("cancelled"), 1);
          } else {
            showError(tr("Could not open the study"), errorText(e));
            emit studyLoadFailed(errorText(e), exit_code_for(e));
          }
          return;
        }
        showStudy(request, std::move(result).value());
      });
}

void MainWindow::showStudy(const StudyRequest& request, LoadedStudyData data) {
  m_analysisTask->cancel();
  m_draftTask->cancel();
  m_assistantTask->cancel();
  m_redraftTimer->stop();
  m_analysis.reset();
  m_analyzed = false;
  m_analysisNotes.clear();
  m_draft = {};
  m_draftFindings.clear();
  m_draftStale = false;
  m_currentRequest = request;
  m_loadedSelector = data.loadedSelector.empty() ? data.info.series_instance_uid : data.loadedSelector;
  const std::string loadedUid = m_loadedSelector;
  m_document->setStudy(data.volume, data.info);
  m_document->setClinicalText(data.clinicalText);
  m_clinicalPanel->setSource(data.clinicalTextPath, data.clinicalTextFromSr);
  m_reportPanel->setDraft({});
  m_seriesBrowser->setSeries(data.series, loadedUid);
  m_seriesBrowser->setThumbnail(loadedUid, data.thumbnail);
  m_seriesBrowser->setStudyText(studySummary(data));

  QString title = QString::fromStdString(data.info.series_description);
  if (title.isEmpty()) title = QString::fromStdString(data.info.study_description);
  setWindowTitle(title.isEmpty() ? tr("Hilum Workstation") : tr("%1 — Hilum Workstation").arg(title));
  QString message = tr("Loaded %1 slices.").arg(data.volume->nz());
  if (!data.warnings.empty()) {
    message += tr(" %n warning(s): %1", nullptr, static_cast<int>(data.warnings.size()))
                   .arg(QString::fromStdString(data.warnings.front()));
  }
  statusBar()->showMessage(message, 15000);

  QStringList paths;
  for (const auto& p : request.inputs) paths << QString::fromStdString(p.string());
  if (!paths.isEmpty()) addRecent(paths);
  startThumbnails(request, data.series, loadedUid);
  updateActions();
  emit studyLoaded();
}

void MainWindow::startThumbnails(const StudyRequest& request, const std::vector<SeriesSummary>& series,
                                 const std::string& loadedSelector) {
  // The other series get their thumbnails in the background, one at a time.
  std::vector<std::string> pending;
  for (const SeriesSummary& s : series) {
    const std::string selector = seriesSelector(s);
    if (selector != loadedSelector && !s.is_localizer && s.num_slices > 1 &&
        std::find(pending.begin(), pending.end(), selector) == pending.end()) {
      pending.push_back(selector);
    }
  }
  if (pending.empty() || request.inputs.empty()) return;
  QPointer<SeriesBrowser> browser = m_seriesBrowser;
  const auto inputs = request.inputs;
  m_thumbnailTask->start(tr("Thumbnails"),
                         [inputs, pending, browser](Progress& progress) {
                           for (const std::string& uid : pending) {
                             if (progress.cancelled()) return;
                             Result<QImage> thumbnail = loadSeriesThumbnail(inputs, uid, progress);
                             if (!thumbnail.ok()) continue;  // the placeholder icon stays
                             QMetaObject::invokeMethod(
                                 browser.data(),
                                 [browser, uid, image = *thumbnail] {
                                   if (browser) browser->setThumbnail(uid, image);
                                 },
                                 Qt::QueuedConnection);
                           }
                         },
                         {});
}

void MainWindow::addRecent(const QStringList& paths) {
  if (!m_options.useSettings) return;
  QSettings settings;
  QVariantList recent = settings.value(QStringLiteral("recentStudies")).toList();
  recent.removeAll(QVariant(paths));
  recent.prepend(QVariant(paths));
  while (recent.size() > kMaxRecent) recent.removeLast();
  settings.setValue(QStringLiteral("recentStudies"), recent);
  updateRecentMenu();
}

void MainWindow::updateRecentMenu() {
  m_recentMenu->clear();
  const QVariantList recent =
      m_options.useSettings ? QSettings().value(QStringLiteral("recentStudies")).toList() : QVariantList();
  for (const QVariant& entry : recent) {
    const QStringList paths = entry.toStringList();
    if (paths.isEmpty()) continue;
    QString label = QDir::toNativeSeparators(paths.front());
    if (paths.size() > 1) label = tr("%1 (+%2 files)").arg(label).arg(paths.size() - 1);
    QAction* a = m_recentMenu->addAction(label);
    connect(a, &QAction::triggered, this, [this, paths] { openStudy(paths); });
  }
  m_recentMenu->setEnabled(!m_recentMenu->isEmpty());
}

// ---- display ----------------------------------------------------------------------

void MainWindow::applyWindowPreset(WindowLevel window) { m_document->setWindowLevel(window); }

QString MainWindow::probeText() const { return m_probeLabel->text(); }

void MainWindow::showProbe(const Vec3& voxel) {
  const SliceRenderer* r = m_document->renderer();
  if (!r) return;
  const Vec3 nearest{std::round(voxel[0]), std::round(voxel[1]), std::round(voxel[2])};
  const Vec3 lps = r->volume().world_from_voxel(voxel);
  const float hu = r->huAt(nearest);
  m_probeLabel->setText(tr("ijk (%1, %2, %3)   LPS (%4, %5, %6) mm   HU %7")
                            .arg(nearest[0])
                            .arg(nearest[1])
                            .arg(nearest[2])
                            .arg(lps[0], 0, 'f', 1)
                            .arg(lps[1], 0, 'f', 1)
                            .arg(lps[2], 0, 'f', 1)
                            .arg(std::lround(hu)));
}

void MainWindow::showError(const QString& title, const QString& message) {
  statusBar()->showMessage(title + QStringLiteral(": ") + message, 20000);
  if (m_options.interactive) QMessageBox::warning(this, title, message);
}

// ---- findings ---------------------------------------------------------------------

StudyContext MainWindow::studyContext() const {
  return {m_document->volume(), m_document->info(), m_document->clinicalText(), m_analysis};
}

ReportInput MainWindow::reportInput() const {
  ReportInput in;
  in.study = studyContext();
  in.findings = m_document->findings()->reportedFindings();
  in.review = m_document->findings()->findings();
  in.draft = m_draft;
  const QString text = m_reportPanel->draft();
  in.impressionEdited = !text.trimmed().isEmpty() && text.trimmed() != m_draft.impression.trimmed();
  // An unedited draft older than the review is not exported: the back end
  // drafts anew from the findings as they stand.
  const bool stale = m_draftStale || m_draftTask->isRunning() || m_redraftTimer->isActive();
  in.impression = in.impressionEdited || !stale ? text : QString();
  return in;
}

void MainWindow::analyze() {
  if (!m_backends.analyze || !m_document->hasStudy() || m_analysisTask->isRunning()) return;
  const auto& findings = m_document->findings()->findings();
  const bool reviewed = std::any_of(findings.begin(), findings.end(), [](const ReviewedFinding& f) {
    return f.state != ReviewState::Pending || f.isEdited();
  });
  if (reviewed && m_options.interactive &&
      QMessageBox::question(this, tr("Analyze again"),
                            tr("Analyzing again replaces the findings and your review of them. Continue?")) !=
          QMessageBox::Yes) {
    return;
  }
  const quint64 generation = m_document->generation();
  AnalysisRunner runner = m_backends.analyze;
  const StudyContext context = studyContext();
  m_analysisTask->run<AnalysisOutput>(
      tr("Analyzing"), [runner, context](Progress& p) { return runner(context, p); },
      [this, generation](Result<AnalysisOutput> result) {
        if (generation != m_document->generation()) return;  // another study was opened meanwhile
        if (!result.ok()) {
          const QString message = errorText(result.error());
          if (result.error().kind() != ErrorKind::kCancelled) showError(tr("Analysis failed"), message);
          updateActions();
          emit analysisFinished(false, message, exit_code_for(result.error()));
          return;
        }
        m_analysis = result->record;
        m_analyzed = true;
        m_analysisNotes = result->notes;
        m_draft = {};
        m_draftFindings.clear();
        m_draftStale = false;
        m_reportPanel->setDraft({});
        m_document->setFindings(result->findings);
        QString message = tr("%n finding(s).", nullptr, static_cast<int>(result->findings.size()));
        if (!result->source.isEmpty()) message += QStringLiteral(" (%1)").arg(result->source);
        statusBar()->showMessage(message, 10000);
        updateActions();
        // The report panel shows the drafted impression at once.
        if (m_backends.draftReport) draftReport();
        emit analysisFinished(true, {});
      });
  updateActions();
}

void MainWindow::acceptSelected() { m_document->acceptFinding(m_document->selectedFindingId()); }

void MainWindow::rejectSelected() { m_document->rejectFinding(m_document->selectedFindingId()); }

void MainWindow::editSelected() {
  const int row = m_document->findings()->rowForId(m_document->selectedFindingId());
  if (row < 0 || !m_options.interactive) return;
  double caliper = 0;
  if (const Measurement* m = m_document->measurement(m_document->selectedMeasurementId())) {
    caliper = measurementLengthMm(*m_document->volume(), *m);
  }
  EditFindingDialog dialog(m_document->findings()->at(row).current, caliper, this);
  if (dialog.exec() == QDialog::Accepted)
    m_document->editFinding(m_document->selectedFindingId(), dialog.finding());
}

void MainWindow::caliperToSelected() {
  const int row = m_document->findings()->rowForId(m_document->selectedFindingId());
  const Measurement* m = m_document->measurement(m_document->selectedMeasurementId());
  if (row < 0 || !m) return;
  Finding edited = m_document->findings()->at(row).current;
  edited.longAxisMm = std::round(measurementLengthMm(*m_document->volume(), *m) * 10) / 10;
  edited.shortAxisMm = std::min(edited.shortAxisMm, edited.longAxisMm);
  m_document->editFinding(edited.id, edited);
}

void MainWindow::stepFinding(int delta) {
  const FindingsModel* model = m_document->findings();
  const int n = model->rowCount();
  if (n == 0) return;
  const int row = model->rowForId(m_document->selectedFindingId());
  const int next = row < 0 ? (delta > 0 ? 0 : n - 1) : ((row + delta) % n + n) % n;
  m_document->selectFinding(model->at(next).original.id);
}

// ---- report and assistant -----------------------------------------------------------

void MainWindow::draftReport() {
  m_redraftTimer->stop();
  if (!m_backends.draftReport || !m_document->hasStudy() || !analyzed()) return;
  ReportInput input = reportInput();
  ReportDrafter drafter = m_backends.draftReport;
  const quint64 generation = m_document->generation();
  m_draftTask->run<ReportDraft>(
      tr("Drafting report"), [drafter, input](Progress& p) { return drafter(input, p); },
      [this, generation, findings = input.findings](Result<ReportDraft> result) {
        if (generation != m_document->generation()) return;
        if (result.ok()) {
          m_draft = *result;
          m_draftFindings = findings;
          m_draftStale = m_document->findings()->reportedFindings() != findings;
          m_reportPanel->setDraft(m_draft.impression);
          updateActions();
          emit reportDrafted(true, {});
        } else {
          if (result.error().kind() != ErrorKind::kCancelled)
            showError(tr("Report"), errorText(result.error()));
          updateActions();
          emit reportDrafted(false, errorText(result.error()));
        }
      });
  updateActions();
}

void MainWindow::scheduleRedraft() {
  if (!analyzed() || !m_backends.draftReport) return;
  // Accepting a finding changes nothing the impression says.
  m_draftStale = m_draftTask->isRunning() || m_document->findings()->reportedFindings() != m_draftFindings;
  if (!m_draftStale) {
    m_redraftTimer->stop();
    updateReportMessage();
    return;
  }
  const QString text = m_reportPanel->draft().trimmed();
  const bool edited = !text.isEmpty() && text != m_draft.impression.trimmed();
  // An unedited draft follows the findings; the radiologist's own text is
  // never replaced without asking.
  if (!edited && (!m_draft.impression.isEmpty() || m_draftTask->isRunning())) m_redraftTimer->start();
  updateReportMessage();
}

void MainWindow::exportReport(const QString& kind, const QString& title, const QString& filter) {
  if (!m_document->hasStudy() || !m_options.interactive) return;
  QString suggested = kind == QLatin1String("pdf")  ? QStringLiteral("report.pdf")
                      : kind == QLatin1String("sr") ? QStringLiteral("report-sr.dcm")
                                                    : QStringLiteral("findings.json");
  const QString path = QFileDialog::getSaveFileName(this, title, suggested, filter);
  if (!path.isEmpty()) exportTo(kind, path);
}

void MainWindow::exportTo(const QString& kind, const QString& path) {
  const ReportExporter exporter = kind == QLatin1String("pdf")  ? m_backends.exportPdf
                                  : kind == QLatin1String("sr") ? m_backends.exportDicomSr
                                                                : m_backends.exportJson;
  if (!exporter || !m_document->hasStudy() || !analyzed() || m_reportTask->isRunning()) return;
  const ReportInput input = reportInput();
  const std::filesystem::path out = path.toStdString();
  const QString title = tr("Exporting %1").arg(kind.toUpper());
  m_reportTask->run<bool>(
      title,
      [exporter, input, out](Progress& p) -> Result<bool> {
        HILUM_RETURN_IF_ERROR(exporter(input, out, p));
        return true;
      },
      [this, path](Result<bool> result) {
        if (result.ok()) {
          statusBar()->showMessage(tr("Wrote %1").arg(QDir::toNativeSeparators(path)), 10000);
          emit exportFinished(true, path);
        } else {
          if (result.error().kind() != ErrorKind::kCancelled)
            showError(tr("Export"), errorText(result.error()));
          emit exportFinished(false, errorText(result.error()));
        }
        updateActions();
      });
  updateActions();
}

PacsBrowser* MainWindow::openPacsBrowser() {
  if (!m_pacsBrowser) {
    m_pacsBrowser = new PacsBrowser(m_options.pacsCacheDir, m_options.pacsConfig, this);
    connect(m_pacsBrowser, &PacsBrowser::studyRetrieved, this,
            [this](const QString& folder, const QString& series) {
              if (m_pacsBrowser) m_pacsBrowser->hide();
              openStudy({folder}, series);
            });
  }
  m_pacsBrowser->show();
  m_pacsBrowser->raise();
  m_pacsBrowser->activateWindow();
  return m_pacsBrowser;
}

void MainWindow::sendResultsToPacs(const QString& nodeName) {
#if defined(HILUM_HAVE_PACS) && HILUM_HAVE_PACS
  if (!m_backends.writePacsObjects || !m_document->hasStudy() || !analyzed() || m_reportTask->isRunning())
    return;
  const QString title = tr("Send to PACS");
  std::optional<std::filesystem::path> configPath;
  if (!m_options.pacsConfig.isEmpty()) {
    configPath = m_options.pacsConfig.toStdString();
  } else {
    configPath = pacs::default_config_path();
  }
  if (!configPath) {
    showError(title, tr("No PACS configured: describe the nodes in ~/.config/hilum/pacs.json or set "
                        "HILUM_PACS_CONFIG (see docs/pacs.md)."));
    emit resultsSent(false, tr("no PACS configured"));
    return;
  }
  Result<pacs::Config> config = pacs::load_config(*configPath);
  if (!config.ok()) {
    showError(title, errorText(config.error()));
    emit resultsSent(false, errorText(config.error()));
    return;
  }
  QString name = nodeName;
  if (name.isEmpty() && m_options.interactive && config->nodes.size() > 1) {
    QStringList names;
    for (const auto& [key, node] : config->nodes) names << QString::fromStdString(key);
    const int current = std::max<qsizetype>(0, names.indexOf(QString::fromStdString(config->default_node)));
    bool ok = false;
    name = QInputDialog::getItem(this, title, tr("Store the SR and the PDF report on:"), names, current,
                                 false, &ok);
    if (!ok) return;
  }
  Result<pacs::Node> node = config->node(name.toStdString());
  if (!node.ok()) {
    showError(title, errorText(node.error()));
    emit resultsSent(false, errorText(node.error()));
    return;
  }
  auto outbox = std::make_shared<QTemporaryDir>();
  if (!outbox->isValid()) {
    showError(title, tr("Cannot create a temporary folder for the report objects."));
    emit resultsSent(false, tr("no temporary folder"));
    return;
  }
  const ReportInput input = reportInput();
  PacsObjectWriter writer = m_backends.writePacsObjects;
  const std::filesystem::path dir = outbox->path().toStdString();
  const pacs::Node target = *node;
  m_reportTask->run<pacs::StoreResult>(
      tr("Sending to %1").arg(QString::fromStdString(target.ae_title)),
      [writer, input, dir, target](Progress& p) -> Result<pacs::StoreResult> {
        std::vector<std::filesystem::path> files;
        {
          ProgressRange part(p, 0.0, 0.5);
          HILUM_ASSIGN_OR_RETURN(files, writer(input, dir, part));
        }
        ProgressRange part(p, 0.5, 1.0);
        pacs::PacsClient client(target);
        return client.store(files, part);
      },
      [this, title, outbox,
       address = QString::fromStdString(target.address())](Result<pacs::StoreResult> result) {
        QString message;
        bool ok = result.ok() && result->failed == 0;
        if (!result.ok()) {
          message = errorText(result.error());
        } else if (result->failed > 0) {
          message =
              tr("%1 refused %2 of %3 objects").arg(address).arg(result->failed).arg(result->files.size());
          for (const pacs::StoreOutcome& f : result->files) {
            if (!f.problem.empty())
              message += QStringLiteral("; %1: %2")
                             .arg(QString::fromStdString(f.file.filename().string()),
                                  QString::fromStdString(f.problem));
          }
        } else {
          message = tr("Stored %n object(s) on %1 (DICOM SR and PDF report of the reviewed findings).",
                       nullptr, result->stored)
                        .arg(address);
        }
        if (ok) {
          statusBar()->showMessage(message, 15000);
        } else if (!result.ok() && result.error().kind() == ErrorKind::kCancelled) {
          statusBar()->showMessage(tr("Sending cancelled."), 5000);
        } else {
          showError(title, message);
        }
        emit resultsSent(ok, message);
        updateActions();
      });
  updateActions();
#else
  (void)nodeName;
#endif
}

void MainWindow::askAssistant() {
  const QString question = m_assistantPanel->question();
  if (!m_backends.ask || question.isEmpty() || !m_document->hasStudy() || !analyzed() ||
      m_assistantTask->isRunning())
    return;
  AssistantQuery query{question, reportInput()};
  AssistantResponder responder = m_backends.ask;
  QPointer<AssistantPanel> panel = m_assistantPanel;
  m_assistantPanel->beginAnswer(question);
  m_assistantTask->run<bool>(
      tr("Assistant"),
      [responder, query, panel](Progress& p) -> Result<bool> {
        // Tokens are posted to the GUI thread as they come.
        TokenSink sink = [panel](const QString& token) {
          QMetaObject::invokeMethod(
              panel.data(),
              [panel, token] {
                if (panel) panel->appendToken(token);
              },
              Qt::QueuedConnection);
        };
        HILUM_RETURN_IF_ERROR(responder(query, sink, p));
        return true;
      },
      [this](Result<bool> result) {
        if (result.ok()) {
          m_assistantPanel->endAnswer({});
        } else {
          m_assistantPanel->endAnswer(
              result.error().kind() == ErrorKind::kCancelled ? tr("stopped") : errorText(result.error()));
        }
        updateActions();
      });
  updateActions();
}

void MainWindow::showShortcuts() {
  QStringList rows;
  for (const auto& [name, a] : m_actions) {
    if (a->shortcut().isEmpty()) continue;
    rows << QStringLiteral("<tr><td><b>%1</b></td><td>%2</td></tr>")
                .arg(a->shortcut().toString(QKeySequence::NativeText).toHtmlEscaped(),
                     a->text().remove(QLatin1Char('&')).toHtmlEscaped());
  }
  rows.sort();
  const QString views =
      tr("<tr><td><b>Wheel, Up/Down</b></td><td>Previous/next slice</td></tr>"
         "<tr><td><b>PgUp/PgDn, Home/End</b></td><td>10 slices, first/last</td></tr>"
         "<tr><td><b>Ctrl+wheel, right-drag</b></td><td>Zoom</td></tr>"
         "<tr><td><b>Middle-drag, Shift+drag</b></td><td>Pan</td></tr>"
         "<tr><td><b>Double-click</b></td><td>Move the crosshair</td></tr>");
  const QString html = QStringLiteral("<table cellspacing=4>%1%2</table>").arg(views, rows.join(QString()));
  if (m_options.interactive) QMessageBox::information(this, tr("Keyboard Shortcuts"), html);
}

// ---- screenshots --------------------------------------------------------------------

Status MainWindow::saveScreenshot(const QString& path) {
  const QPixmap pixmap = grab();
  QByteArray bytes;
  QBuffer buffer(&bytes);
  buffer.open(QIODevice::WriteOnly);
  // Quality 0: the strongest PNG compression (lossless either way).
  if (pixmap.isNull() || !pixmap.save(&buffer, "PNG", 0))
    return internal_error("could not encode the window as PNG");
  HILUM_RETURN_IF_ERROR(
      write_file_atomic(path.toStdString(), std::string_view(bytes.constData(), bytes.size())));
  return Status::Ok();
}

QString MainWindow::viewportGeometry(double dpr) const {
  QStringList lines;
  for (Plane plane : kPlanes) {
    const SliceView* v = view(plane);
    const QPoint topLeft = v->mapTo(this, QPoint(0, 0));
    QString line = QStringLiteral("%1 %2 %3 %4 %5")
                       .arg(planeName(plane).toLower())
                       .arg(std::lround(topLeft.x() * dpr))
                       .arg(std::lround(topLeft.y() * dpr))
                       .arg(std::lround(v->width() * dpr))
                       .arg(std::lround(v->height() * dpr));
    if (m_document->hasStudy()) {
      const QPointF cross = (v->widgetPoint(m_document->cursor()) + QPointF(topLeft)) * dpr;
      line += QStringLiteral(" %1 %2").arg(std::lround(cross.x())).arg(std::lround(cross.y()));
    }
    lines << line;
  }
  return lines.join(QLatin1Char('\n'));
}

// ---- settings, events -----------------------------------------------------------------

void MainWindow::restoreSettings() {
  QSettings settings;
  if (settings.contains(QStringLiteral("geometry")))
    restoreGeometry(settings.value(QStringLiteral("geometry")).toByteArray());
  if (settings.contains(QStringLiteral("windowState")))
    restoreState(settings.value(QStringLiteral("windowState")).toByteArray());
  if (settings.contains(QStringLiteral("window/width"))) {
    m_document->setWindowLevel({settings.value(QStringLiteral("window/width")).toDouble(),
                                settings.value(QStringLiteral("window/level")).toDouble()});
  }
  m_document->setSlabMm(settings.value(QStringLiteral("mip/slabMm"), m_document->slabMm()).toDouble());
}

void MainWindow::saveSettings() {
  if (!m_options.useSettings) return;
  QSettings settings;
  settings.setValue(QStringLiteral("geometry"), saveGeometry());
  settings.setValue(QStringLiteral("windowState"), saveState());
  settings.setValue(QStringLiteral("window/width"), m_document->windowLevel().width);
  settings.setValue(QStringLiteral("window/level"), m_document->windowLevel().level);
  settings.setValue(QStringLiteral("mip/slabMm"), m_document->slabMm());
}

void MainWindow::closeEvent(QCloseEvent* event) {
  saveSettings();
  QMainWindow::closeEvent(event);
}

void MainWindow::dragEnterEvent(QDragEnterEvent* event) {
  if (event->mimeData()->hasUrls()) {
    for (const QUrl& url : event->mimeData()->urls()) {
      if (!url.isLocalFile()) return;
    }
    event->acceptProposedAction();
  }
}

void MainWindow::dropEvent(QDropEvent* event) {
  QStringList paths;
  for (const QUrl& url : event->mimeData()->urls()) {
    if (url.isLocalFile()) paths << url.toLocalFile();
  }
  if (paths.isEmpty()) return;
  event->acceptProposedAction();
  openStudy(paths);
}

}  // namespace hilum::ui
