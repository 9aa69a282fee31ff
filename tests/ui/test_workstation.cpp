// The main window driven like a radiologist would: keys, wheel, mouse drags,
// the findings table, and the panels whose back ends do not exist yet.
#include <gtest/gtest.h>

#include <QAction>
#include <QApplication>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSettings>
#include <QSignalSpy>
#include <QTableView>
#include <QTemporaryDir>
#include <QTest>
#include <QThread>
#include <atomic>
#include <fstream>

#include "tests/ui/ui_test_support.h"
#include "ui/background_task.h"
#include "ui/main_window.h"
#include "ui/panels.h"
#include "ui/slice_view.h"
#include "ui/study_document.h"

namespace hilum::ui {
namespace {

MainWindow::Options testOptions() {
  MainWindow::Options o;
  o.interactive = false;
  o.useSettings = false;
  return o;
}

class Workstation : public ::testing::Test {
 protected:
  void open(WorkstationBackends backends = {}) {
    window = std::make_unique<MainWindow>(std::move(backends), testOptions());
    window->resize(1400, 900);
    auto chest = test::makeChest();
    test::addNodule(*chest);
    volume = chest;
    window->showStudy({}, test::makeStudyData(volume));
    window->show();
    window->activateWindow();
    ASSERT_TRUE(QTest::qWaitForWindowActive(window.get()));
  }
  StudyDocument& doc() { return *window->document(); }
  SliceView* axial() { return window->view(Plane::Axial); }
  void press(QWidget* target, int key, Qt::KeyboardModifiers modifiers = Qt::NoModifier) {
    QTest::keyClick(target, static_cast<Qt::Key>(key), modifiers);
  }
  void mouse(QWidget* w, QEvent::Type type, QPointF pos, Qt::MouseButton button, Qt::MouseButtons buttons,
             Qt::KeyboardModifiers modifiers = Qt::NoModifier) {
    QMouseEvent e(type, pos, w->mapToGlobal(pos), button, buttons, modifiers);
    QApplication::sendEvent(w, &e);
  }
  void drag(QWidget* w, QPointF from, QPointF to, Qt::MouseButton button = Qt::LeftButton,
            Qt::KeyboardModifiers modifiers = Qt::NoModifier) {
    mouse(w, QEvent::MouseButtonPress, from, button, button, modifiers);
    for (int i = 1; i <= 4; ++i) {
      mouse(w, QEvent::MouseMove, from + (to - from) * (i / 4.0), Qt::NoButton, button, modifiers);
    }
    mouse(w, QEvent::MouseButtonRelease, to, button, Qt::NoButton, modifiers);
  }
  void wheel(QWidget* w, QPointF pos, int delta, Qt::KeyboardModifiers modifiers = Qt::NoModifier) {
    QWheelEvent e(pos, w->mapToGlobal(pos), QPoint(), QPoint(0, delta), Qt::NoButton, modifiers,
                  Qt::NoScrollPhase, false);
    QApplication::sendEvent(w, &e);
  }
  void setFindings() {
    doc().setFindings({test::makeFinding(1, volume->world_from_voxel(test::noduleVoxel(*volume)), 6.0, "3"),
                       test::makeFinding(2, volume->world_from_voxel({70, 30, 10}), 9.5, "4A")});
  }

  std::shared_ptr<Volume> volume;
  std::unique_ptr<MainWindow> window;
};

TEST_F(Workstation, ScrollByKeysAndWheel) {
  open();
  axial()->setFocus();
  const int start = doc().slice(Plane::Axial);
  press(axial(), Qt::Key_Down);
  EXPECT_EQ(doc().slice(Plane::Axial), start + 1);
  press(axial(), Qt::Key_Up);
  press(axial(), Qt::Key_Up);
  EXPECT_EQ(doc().slice(Plane::Axial), start - 1);
  press(axial(), Qt::Key_PageDown);
  EXPECT_EQ(doc().slice(Plane::Axial), start + 9);
  press(axial(), Qt::Key_Home);
  EXPECT_EQ(doc().slice(Plane::Axial), 0);
  press(axial(), Qt::Key_End);
  EXPECT_EQ(doc().slice(Plane::Axial), 39);
  press(axial(), Qt::Key_PageUp);
  EXPECT_EQ(doc().slice(Plane::Axial), 29);
  // Wheel: one notch, one slice; towards the user = next slice.
  const QPointF centre = QRectF(axial()->rect()).center();
  wheel(axial(), centre, -120);
  EXPECT_EQ(doc().slice(Plane::Axial), 30);
  wheel(axial(), centre, 60);  // half a notch: nothing yet
  EXPECT_EQ(doc().slice(Plane::Axial), 30);
  wheel(axial(), centre, 60);
  EXPECT_EQ(doc().slice(Plane::Axial), 29);
  // The other planes scroll their own axis and the crosshair follows.
  SliceView* coronal = window->view(Plane::Coronal);
  const int coronalStart = doc().slice(Plane::Coronal);
  press(coronal, Qt::Key_Down);
  EXPECT_EQ(doc().slice(Plane::Coronal), coronalStart + 1);
  EXPECT_EQ(doc().slice(Plane::Axial), 29);
  // The view renders the slice it shows.
  EXPECT_EQ(axial()->image(), doc().renderer()->render(Plane::Axial, 29, doc().windowLevel()));
}

TEST_F(Workstation, PresetKeysSetTheWindow) {
  open();
  axial()->setFocus();
  press(axial(), Qt::Key_2);
  EXPECT_EQ(doc().windowLevel(), kMediastinumWindow);
  press(axial(), Qt::Key_3);
  EXPECT_EQ(doc().windowLevel(), kBoneWindow);
  press(axial(), Qt::Key_1);
  EXPECT_EQ(doc().windowLevel(), kLungWindow);
  // Typing in the clinical text must not switch windows.
  QPlainTextEdit* text = window->clinicalTextPanel()->editor();
  text->setFocus();
  press(text, Qt::Key_2);
  EXPECT_EQ(doc().windowLevel(), kLungWindow);
  EXPECT_EQ(doc().clinicalText(), "2");
}

TEST_F(Workstation, WindowLevelByDragging) {
  open();
  press(axial(), Qt::Key_W);
  ASSERT_EQ(doc().toolMode(), ToolMode::WindowLevel);
  const WindowLevel before = doc().windowLevel();
  drag(axial(), {300, 300}, {340, 280});
  const WindowLevel after = doc().windowLevel();
  EXPECT_GT(after.width, before.width);                     // right: wider
  EXPECT_LT(after.level, before.level);                     // up: lower level
  EXPECT_NEAR(after.width - before.width, 40 * 6.0, 1e-9);  // 1500 / 250 HU per pixel
}

TEST_F(Workstation, ZoomAndPan) {
  open();
  const QPointF centre = QRectF(axial()->rect()).center();
  wheel(axial(), centre, 480, Qt::ControlModifier);
  EXPECT_GT(axial()->zoom(), 1.5);
  const double zoomed = axial()->zoom();
  drag(axial(), {200, 200}, {260, 230}, Qt::MiddleButton);
  EXPECT_EQ(axial()->pan(), QPointF(60, 30));
  drag(axial(), {200, 200}, {190, 200}, Qt::LeftButton, Qt::ShiftModifier);
  EXPECT_EQ(axial()->pan(), QPointF(50, 30));
  drag(axial(), {300, 300}, {300, 200}, Qt::RightButton);
  EXPECT_GT(axial()->zoom(), zoomed);
  press(axial(), Qt::Key_F);
  EXPECT_EQ(axial()->zoom(), 1.0);
  EXPECT_EQ(axial()->pan(), QPointF());
}

TEST_F(Workstation, ProbeShowsVoxelPositionAndHu) {
  open();
  const Vec3 nodule = test::noduleVoxel(*volume);
  doc().setCursor(nodule);
  const QPointF at = axial()->widgetPoint(nodule);
  mouse(axial(), QEvent::MouseMove, at, Qt::NoButton, Qt::NoButton);
  const QString probe = window->probeText();
  EXPECT_TRUE(probe.contains(QStringLiteral("ijk (%1, %2, %3)").arg(nodule[0]).arg(nodule[1]).arg(nodule[2])))
      << probe.toStdString();
  EXPECT_TRUE(probe.contains("HU 40")) << probe.toStdString();
  const Vec3 lps = volume->world_from_voxel(nodule);
  EXPECT_TRUE(probe.contains(QString::number(lps[0], 'f', 1))) << probe.toStdString();
  // A lung voxel next to it.
  const Vec3 lung{nodule[0], nodule[1] + 8, nodule[2]};
  mouse(axial(), QEvent::MouseMove, axial()->widgetPoint(lung), Qt::NoButton, Qt::NoButton);
  EXPECT_TRUE(window->probeText().contains("HU -850")) << window->probeText().toStdString();
}

TEST_F(Workstation, CaliperMeasuresInMillimetresAndDeletes) {
  open();
  press(axial(), Qt::Key_D);
  ASSERT_EQ(doc().toolMode(), ToolMode::Caliper);
  const int k = doc().slice(Plane::Axial);
  const Vec3 a{20, 40, double(k)}, b{45, 40, double(k)};  // 25 voxels x 0.8 mm
  drag(axial(), axial()->widgetPoint(a), axial()->widgetPoint(b));
  ASSERT_EQ(doc().measurements().size(), 1u);
  const Measurement& m = doc().measurements()[0];
  EXPECT_EQ(m.plane, Plane::Axial);
  EXPECT_NEAR(measurementLengthMm(*volume, m), 20.0, 0.05);
  EXPECT_NEAR(m.start[2], k, 1e-9);
  // Delete removes the selected measurement; undo brings it back.
  press(axial(), Qt::Key_Delete);
  EXPECT_TRUE(doc().measurements().empty());
  press(axial(), Qt::Key_Z, Qt::ControlModifier);
  EXPECT_EQ(doc().measurements().size(), 1u);
  // A click without dragging adds nothing.
  mouse(axial(), QEvent::MouseButtonPress, {50, 50}, Qt::LeftButton, Qt::LeftButton);
  mouse(axial(), QEvent::MouseButtonRelease, {50, 50}, Qt::LeftButton, Qt::NoButton);
  EXPECT_EQ(doc().measurements().size(), 1u);
}

TEST_F(Workstation, CrosshairLinksThePlanes) {
  open();
  const Vec3 target{30, 25, 12};
  // Double-click in the coronal view moves the in-plane coordinates (i, k).
  doc().setSlice(Plane::Coronal, 25);
  SliceView* coronal = window->view(Plane::Coronal);
  QTest::mouseDClick(coronal, Qt::LeftButton, Qt::NoModifier, coronal->widgetPoint(target).toPoint());
  EXPECT_EQ(doc().slice(Plane::Sagittal), 30);
  EXPECT_EQ(doc().slice(Plane::Axial), 12);
  EXPECT_EQ(doc().slice(Plane::Coronal), 25);
  // The crosshair tool follows a drag.
  press(axial(), Qt::Key_X);
  drag(axial(), axial()->widgetPoint({10, 10, 12}), axial()->widgetPoint({50, 60, 12}));
  EXPECT_EQ(doc().slice(Plane::Sagittal), 50);
  EXPECT_EQ(doc().slice(Plane::Coronal), 60);
}

TEST_F(Workstation, MipToggleAndSlabThickness) {
  open();
  press(axial(), Qt::Key_M);
  EXPECT_TRUE(doc().mipEnabled());
  EXPECT_TRUE(window->action("toggleMip")->isChecked());
  EXPECT_EQ(doc().effectiveSlabMm(), 10);
  press(axial(), Qt::Key_BracketRight);
  EXPECT_EQ(doc().slabMm(), 12);
  EXPECT_EQ(window->findChild<QDoubleSpinBox*>("slabThickness")->value(), 12);
  press(axial(), Qt::Key_BracketLeft);
  press(axial(), Qt::Key_BracketLeft);
  EXPECT_EQ(doc().slabMm(), 8);
  EXPECT_EQ(axial()->image(),
            doc().renderer()->render(Plane::Axial, doc().slice(Plane::Axial), doc().windowLevel(), 8));
  press(axial(), Qt::Key_M);
  EXPECT_FALSE(doc().mipEnabled());
}

TEST_F(Workstation, SelectingAFindingCentresEveryPlane) {
  open();
  setFindings();
  QTableView* table = window->findingsPanel()->table();
  for (SliceView* v : {axial(), window->view(Plane::Coronal), window->view(Plane::Sagittal)}) v->setZoom(3);
  QTest::mouseClick(table->viewport(), Qt::LeftButton, Qt::NoModifier,
                    table->visualRect(table->model()->index(1, 1)).center());
  EXPECT_EQ(doc().selectedFindingId(), 2);
  EXPECT_EQ(doc().slice(Plane::Axial), 10);
  EXPECT_EQ(doc().slice(Plane::Coronal), 30);
  EXPECT_EQ(doc().slice(Plane::Sagittal), 70);
  // Zoomed views pan so the finding is in the middle.
  for (SliceView* v : {axial(), window->view(Plane::Coronal), window->view(Plane::Sagittal)}) {
    const QPointF at = v->widgetPoint(doc().cursor());
    EXPECT_NEAR(at.x(), v->width() / 2.0, 1.0) << planeName(v->plane()).toStdString();
    EXPECT_NEAR(at.y(), v->height() / 2.0, 1.0) << planeName(v->plane()).toStdString();
  }
  // N / Shift+N step through the findings; the table follows.
  press(axial(), Qt::Key_N);
  EXPECT_EQ(doc().selectedFindingId(), 1);
  EXPECT_EQ(table->currentIndex().row(), 0);
  EXPECT_EQ(doc().slice(Plane::Axial), int(test::noduleVoxel(*volume)[2]));
  press(axial(), Qt::Key_N, Qt::ShiftModifier);
  EXPECT_EQ(doc().selectedFindingId(), 2);
}

TEST_F(Workstation, AcceptRejectUndoRedoByKeys) {
  open();
  setFindings();
  EXPECT_FALSE(window->action("acceptFinding")->isEnabled());
  doc().selectFinding(1);
  EXPECT_TRUE(window->action("acceptFinding")->isEnabled());
  axial()->setFocus();
  const FindingsModel& model = *doc().findings();
  press(axial(), Qt::Key_A);
  EXPECT_EQ(model.at(0).state, ReviewState::Accepted);
  press(axial(), Qt::Key_R);
  EXPECT_EQ(model.at(0).state, ReviewState::Rejected);
  press(axial(), Qt::Key_Z, Qt::ControlModifier);
  EXPECT_EQ(model.at(0).state, ReviewState::Accepted);
  press(axial(), Qt::Key_Z, Qt::ControlModifier);
  EXPECT_EQ(model.at(0).state, ReviewState::Pending);
  press(axial(), Qt::Key_Z, Qt::ControlModifier | Qt::ShiftModifier);
  EXPECT_EQ(model.at(0).state, ReviewState::Accepted);
  EXPECT_TRUE(window->action("undo")->isEnabled());
  EXPECT_TRUE(window->action("undo")->text().contains("Accept finding 1"));
  // The table shows the review.
  EXPECT_EQ(model.data(model.index(0, FindingsModel::Review)).toString(), "accepted");
}

TEST_F(Workstation, CaliperSetsTheLongAxisOfAFinding) {
  open();
  setFindings();
  doc().selectFinding(1);
  EXPECT_FALSE(window->action("caliperToFinding")->isEnabled());
  const int k = doc().slice(Plane::Axial);
  doc().addMeasurement(Plane::Axial, {20, 40, double(k)}, {30, 40, double(k)});  // 8 mm
  ASSERT_TRUE(window->action("caliperToFinding")->isEnabled());
  press(axial(), Qt::Key_E, Qt::ShiftModifier);
  const ReviewedFinding& r = doc().findings()->at(0);
  EXPECT_DOUBLE_EQ(r.current.longAxisMm, 8.0);
  EXPECT_DOUBLE_EQ(r.original.longAxisMm, 6.0);
  EXPECT_DOUBLE_EQ(r.current.shortAxisMm, 4.8);
  press(axial(), Qt::Key_Z, Qt::ControlModifier);
  EXPECT_DOUBLE_EQ(doc().findings()->at(0).current.longAxisMm, 6.0);
}

TEST_F(Workstation, MissingBackEndsAreDisabledAndSaySo) {
  WorkstationBackends none;
  none.unavailable = "needs a model bundle, and none was found";
  open(std::move(none));
  QAction* analyze = window->action("analyze");
  EXPECT_FALSE(analyze->isEnabled());
  EXPECT_EQ(analyze->toolTip(), "Analyze needs a model bundle, and none was found");
  EXPECT_TRUE(window->findingsPanel()->message().contains("needs a model bundle, and none was found"));
  for (const char* name : {"draftReport", "exportPdf", "exportSr", "exportJson", "sendToPacs"}) {
    EXPECT_FALSE(window->action(name)->isEnabled()) << name;
    EXPECT_TRUE(window->action(name)->toolTip().endsWith("needs a model bundle, and none was found")) << name;
  }
  EXPECT_FALSE(window->action("askAssistant")->isEnabled());
  EXPECT_EQ(window->action("askAssistant")->toolTip(), "Ask needs a model bundle, and none was found");
  EXPECT_FALSE(window->assistantPanel()->questionEdit()->isEnabled());
  EXPECT_TRUE(window->assistantPanel()->message().contains("needs a model bundle"));
  EXPECT_FALSE(window->reportPanel()->editor()->isEnabled());
  // Triggering a disabled feature does nothing.
  window->analyze();
  EXPECT_FALSE(window->isAnalyzing());
  EXPECT_EQ(doc().findings()->rowCount(), 0);
}

TEST_F(Workstation, AnalyzeRunsOnAWorkerAndCanBeCancelled) {
  // The runner is the test's: it checks it is off the GUI thread, reports
  // progress, reads the clinical text, and returns findings built here.
  std::atomic<bool> offGuiThread{false};
  std::atomic<bool> waitForCancel{false};
  QThread* gui = QThread::currentThread();
  WorkstationBackends backends;
  backends.analyze = [&, gui](const StudyContext& study, Progress& progress) -> Result<AnalysisOutput> {
    offGuiThread = QThread::currentThread() != gui;
    for (int i = 0; i <= 10; ++i) {
      progress.report(i / 10.0, "candidates");
      if (progress.cancelled()) return cancelled_error();
      QThread::msleep(waitForCancel ? 50 : 2);
      if (waitForCancel) --i;  // runs until cancelled
    }
    if (study.clinicalText != "smoker") return bad_input("clinical text did not reach the runner");
    AnalysisOutput out;
    out.findings = {test::makeFinding(5, study.volume->world_from_voxel({40, 30, 20}))};
    return out;
  };
  open(std::move(backends));
  doc().setClinicalText("smoker");
  EXPECT_EQ(window->clinicalTextPanel()->editor()->toPlainText(), "smoker");
  QAction* analyze = window->action("analyze");
  ASSERT_TRUE(analyze->isEnabled());
  QSignalSpy finished(window.get(), &MainWindow::analysisFinished);
  press(axial(), Qt::Key_Return, Qt::ControlModifier);
  EXPECT_TRUE(window->isAnalyzing());
  EXPECT_FALSE(analyze->isEnabled());
  ASSERT_TRUE(finished.wait(5000));
  EXPECT_TRUE(finished.at(0).at(0).toBool()) << finished.at(0).at(1).toString().toStdString();
  EXPECT_TRUE(offGuiThread);
  ASSERT_EQ(doc().findings()->rowCount(), 1);
  EXPECT_EQ(doc().findings()->at(0).original.id, 5);
  EXPECT_TRUE(analyze->isEnabled());

  // Cancel: the Cancel action sets the flag the runner polls.
  waitForCancel = true;
  window->analyze();
  ASSERT_TRUE(window->isAnalyzing());
  ASSERT_TRUE(window->action("cancelTask")->isEnabled());
  QTest::qWait(30);
  window->action("cancelTask")->trigger();
  ASSERT_TRUE(finished.wait(5000));
  EXPECT_FALSE(finished.at(1).at(0).toBool());
  EXPECT_EQ(finished.at(1).at(1).toString(), "cancelled");
  EXPECT_EQ(doc().findings()->rowCount(), 1);  // the earlier findings stay
  EXPECT_FALSE(window->action("cancelTask")->isEnabled());
}

TEST_F(Workstation, AssistantStreamsTokens) {
  WorkstationBackends backends;
  backends.ask = [](const AssistantQuery& query, const TokenSink& sink, Progress&) -> Status {
    if (query.study.findings.size() != 1) return bad_input("findings missing from the context");
    for (const char* token : {"One ", "nodule, ", "right ", "lung."}) sink(QString::fromLatin1(token));
    return Status::Ok();
  };
  open(std::move(backends));
  doc().setFindings({test::makeFinding(1, volume->world_from_voxel({40, 30, 20}))});
  ASSERT_TRUE(window->action("askAssistant")->isEnabled());
  window->assistantPanel()->questionEdit()->setText("How many nodules?");
  window->action("askAssistant")->trigger();
  ASSERT_TRUE(test::waitUntil([&] {
    return window->assistantPanel()->transcript()->toPlainText().contains("One nodule, right lung.");
  }));
  EXPECT_TRUE(window->assistantPanel()->transcript()->toPlainText().contains("Q: How many nodules?"));
}

TEST_F(Workstation, SeriesBrowserListsTheStudy) {
  open();
  QListWidget* list = window->seriesBrowser()->list();
  ASSERT_EQ(list->count(), 1);
  EXPECT_TRUE(list->item(0)->text().contains("Synthetic chest"));
  EXPECT_TRUE(list->item(0)->text().contains("40 slices"));
  EXPECT_FALSE(list->item(0)->icon().isNull());
  EXPECT_TRUE(window->windowTitle().contains("Synthetic chest"));
}

TEST(WorkstationSettings, WindowAndRecentStudiesPersist) {
  QSettings().clear();
  auto volume = test::makeChest(32, 32, 8);
  {
    MainWindow window;
    StudyRequest request;
    request.inputs = {"/data/studies/case-17"};
    window.showStudy(request, test::makeStudyData(volume));
    window.document()->setWindowLevel({400, 40});
    window.document()->setSlabMm(16);
    window.close();
  }
  MainWindow again;
  EXPECT_EQ(again.document()->windowLevel(), (WindowLevel{400, 40}));
  EXPECT_EQ(again.document()->slabMm(), 16);
  const QVariantList recent = QSettings().value("recentStudies").toList();
  ASSERT_EQ(recent.size(), 1);
  EXPECT_EQ(recent[0].toStringList(), QStringList{"/data/studies/case-17"});
  QSettings().clear();
}

TEST(BackgroundTask, ReportsProgressOnTheGuiThreadAndSupersedes) {
  BackgroundTask task;
  QSignalSpy progressed(&task, &BackgroundTask::progressed);
  std::vector<int> done;
  std::atomic<bool> firstCancelled{false};
  task.run<int>(
      "first",
      [&](Progress& p) -> Result<int> {
        for (int i = 0; i < 500 && !p.cancelled(); ++i) {
          p.report(i / 500.0, "working");
          QThread::msleep(2);
        }
        firstCancelled = p.cancelled();
        return 1;
      },
      [&](Result<int> r) { done.push_back(*r); });
  QTest::qWait(20);
  task.run<int>(
      "second",
      [](Progress& p) -> Result<int> {
        p.report(1.0, "done");
        return 2;
      },
      [&](Result<int> r) { done.push_back(*r); });
  ASSERT_TRUE(test::waitUntil([&] { return !done.empty() && !task.isRunning(); }));
  EXPECT_TRUE(firstCancelled);
  EXPECT_EQ(done, std::vector<int>{2});  // the superseded job's result is dropped
  EXPECT_GT(progressed.count(), 0);
  EXPECT_LE(progressed.count(), 400);  // throttled
}

TEST(ClinicalSidecar, FoundInTheStudyFolderOrItsParent) {
  QTemporaryDir dir;
  const std::filesystem::path root = dir.path().toStdString();
  std::filesystem::create_directories(root / "dicom");
  EXPECT_FALSE(findClinicalSidecar({root / "dicom"}).has_value());
  std::ofstream(root / "clinical.txt") << "62-year-old smoker";
  EXPECT_EQ(findClinicalSidecar({root / "dicom"}), root / "clinical.txt");
  EXPECT_EQ(findClinicalSidecar({root}), root / "clinical.txt");
  EXPECT_EQ(findClinicalSidecar({root / "dicom" / "IM0001.dcm"}), root / "clinical.txt");
  // Failing clinical.txt, the only .txt file of the folder.
  std::filesystem::remove(root / "clinical.txt");
  std::ofstream(root / "dicom" / "referral.txt") << "cough";
  EXPECT_EQ(findClinicalSidecar({root / "dicom"}), root / "dicom" / "referral.txt");
  std::ofstream(root / "dicom" / "other.txt") << "x";
  EXPECT_FALSE(findClinicalSidecar({root / "dicom"}).has_value());
}

}  // namespace
}  // namespace hilum::ui

namespace hilum::ui {
namespace {

TEST_F(Workstation, FindingsAreDrawnInEveryPlane) {
  open();
  setFindings();
  doc().selectFinding(1);
  doc().acceptFinding(1);
  for (Plane plane : kPlanes) {
    SliceView* v = window->view(plane);
    const QImage shot = v->grab().toImage();
    const double dpr = shot.devicePixelRatio();
    const QPointF centre = v->widgetPoint(doc().cursor()) * dpr;
    // The accepted finding's outline is green, around the nodule (3 mm radius + margin).
    const double radius = (3.0 * v->viewTransform().viewportPixelsPerMm() + 4) * dpr;
    int green = 0, greenFar = 0;
    for (int y = 0; y < shot.height(); ++y) {
      for (int x = 0; x < shot.width(); ++x) {
        const QColor c = shot.pixelColor(x, y);
        if (!(c.green() > 150 && c.red() < 140 && c.blue() < 160)) continue;
        const double d = std::hypot(x - centre.x(), y - centre.y());
        (std::abs(d - radius) < 3 * dpr ? green : greenFar)++;
      }
    }
    EXPECT_GT(green, 20) << planeName(plane).toStdString();
    // Elsewhere only the coronal crosshair line and the coronal label are green.
    EXPECT_LT(greenFar, shot.width() + shot.height() + 2000) << planeName(plane).toStdString();
  }
  // Far from the nodule the finding is not drawn.
  doc().setSlice(Plane::Axial, 0);
  const QImage far = axial()->grab().toImage();
  const QPointF at = axial()->widgetPoint(doc().cursor()) * far.devicePixelRatio();
  const QColor c = far.pixelColor(
      at.toPoint() +
      QPoint(0, -int((3.0 * axial()->viewTransform().viewportPixelsPerMm() + 4) * far.devicePixelRatio())));
  EXPECT_FALSE(c.green() > 150 && c.red() < 140);
}

TEST_F(Workstation, ReportDraftFollowsTheReview) {
  std::vector<Finding> seen;
  int drafts = 0;
  WorkstationBackends backends;
  backends.draftReport = [&seen, &drafts](const ReportInput& input, Progress&) -> Result<ReportDraft> {
    seen = input.findings;
    ++drafts;
    ReportDraft d;
    d.impression = QStringLiteral("Findings: %1.").arg(input.findings.size());
    for (const Finding& f : input.findings)
      d.impression += QStringLiteral(" #%1 %2 mm").arg(f.id).arg(f.longAxisMm, 0, 'f', 1);
    d.label = QStringLiteral("Test draft");
    return d;
  };
  open(std::move(backends));
  setFindings();
  doc().rejectFinding(2);
  Finding edited = doc().findings()->at(0).current;
  edited.longAxisMm = 7.5;
  doc().editFinding(1, edited);
  ASSERT_TRUE(window->action("draftReport")->isEnabled());
  EXPECT_FALSE(window->action("exportPdf")->isEnabled());  // that back end is still missing
  window->action("draftReport")->trigger();
  ASSERT_TRUE(test::waitUntil([&] { return !window->reportPanel()->draft().isEmpty(); }));
  EXPECT_EQ(window->reportPanel()->draft(), "Findings: 1. #1 7.5 mm");
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].id, 1);

  // An unedited draft follows the next review step by itself.
  edited.longAxisMm = 8.0;
  doc().editFinding(1, edited);
  ASSERT_TRUE(test::waitUntil([&] { return window->reportPanel()->draft() == "Findings: 1. #1 8.0 mm"; }));
  doc().undoStack()->undo();
  ASSERT_TRUE(test::waitUntil([&] { return window->reportPanel()->draft() == "Findings: 1. #1 7.5 mm"; }));
  ASSERT_TRUE(test::waitUntil([&] { return !window->isReporting(); }));
  EXPECT_FALSE(window->reportInput().impressionEdited);
  EXPECT_EQ(window->reportInput().impression, "Findings: 1. #1 7.5 mm");
  // Accepting changes nothing the impression says: no new draft.
  const int before = drafts;
  doc().acceptFinding(1);
  QTest::qWait(700);
  EXPECT_EQ(drafts, before);
  doc().undoStack()->undo();

  // The radiologist's own text is never replaced: it is marked as older than the findings.
  window->reportPanel()->editor()->setPlainText("My impression.");
  EXPECT_TRUE(window->reportInput().impressionEdited);
  doc().acceptFinding(1);
  doc().rejectFinding(1);
  QTest::qWait(700);
  EXPECT_EQ(window->reportPanel()->draft(), "My impression.");
  EXPECT_EQ(window->reportInput().impression, "My impression.");
  auto* message = window->reportPanel()->findChild<QLabel*>();
  ASSERT_NE(message, nullptr);
  EXPECT_TRUE(message->text().contains("changed after this draft")) << message->text().toStdString();
  EXPECT_TRUE(message->text().contains("0 accepted, 2 rejected")) << message->text().toStdString();
}

TEST(EditFindingDialog, TakesTheCaliperAndTheCategories) {
  Finding f = test::makeFinding(3, {0, 0, 0}, 6.0, "3");
  EditFindingDialog dialog(f, 8.34);
  auto* fromCaliper = dialog.findChild<QPushButton*>();
  ASSERT_NE(fromCaliper, nullptr);
  EXPECT_TRUE(fromCaliper->isEnabled());
  fromCaliper->click();
  auto combos = dialog.findChildren<QComboBox*>();
  ASSERT_EQ(combos.size(), 2);
  combos[0]->setCurrentIndex(combos[0]->findText("part-solid"));
  combos[1]->setCurrentText("4A");
  const Finding edited = dialog.finding();
  EXPECT_NEAR(edited.longAxisMm, 8.3, 1e-9);
  EXPECT_EQ(edited.type, NoduleType::kPartSolid);
  EXPECT_EQ(edited.lungRads, "4A");
  EXPECT_EQ(edited.id, 3);
  EXPECT_DOUBLE_EQ(edited.probability, f.probability);
  // Without a caliper the button is disabled.
  EditFindingDialog none(f, 0);
  EXPECT_FALSE(none.findChild<QPushButton*>()->isEnabled());
}

}  // namespace
}  // namespace hilum::ui
