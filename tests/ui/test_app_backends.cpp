// The workstation on Hilum's real back ends (ui/app_backends.h): a phantom
// study opened from DICOM, analysed with a tiny model bundle in the real
// formats (random weights; tests/app/report_fixture.h), the impression drafted
// by its text model, exports read back (findings.json, the SR with DCMTK, the
// PDF with pdftotext), the assistant streaming from the text model, and the
// clinical text of a study's DICOM SR.
#include <gtest/gtest.h>

#include <QAction>
#include <QLabel>
#include <QLineEdit>
#include <QPlainTextEdit>
#include <QProgressBar>
#include <QSignalSpy>
#include <QStatusBar>
#include <QTest>
#include <cmath>
#include <filesystem>

#include "app/clinical_text.h"
#include "model/file_io.h"
#include "tests/app/report_fixture.h"
#include "tests/support/test_support.h"
#include "tests/ui/ui_test_support.h"
#include "ui/app_backends.h"
#include "ui/main_window.h"
#include "ui/panels.h"
#include "ui/study_document.h"

#if defined(HILUM_HAVE_IMAGING) && HILUM_HAVE_IMAGING
#include "dcmtk/config/osconfig.h"
#include "dcmtk/dcmdata/dctk.h"
#include "dcmtk/dcmsr/dsrdoc.h"
#endif

namespace hilum::ui {
namespace {

namespace fs = std::filesystem;

#if defined(HILUM_HAVE_IMAGING) && HILUM_HAVE_IMAGING

MainWindow::Options testOptions() {
  MainWindow::Options o;
  o.interactive = false;
  o.useSettings = false;
  return o;
}

// A 16-slice phantom with two nodules and a tiny bundle whose fusion head
// passes every candidate (the three most probable become findings).
class AppBackends : public ::testing::Test {
 protected:
  void SetUp() override {
    scratch = std::make_unique<hilum::test::ScratchDir>();
    study = scratch->path() / "study";
    auto r = hilum::test::run_command(HILUM_CLI, {"-q", "phantom", "--out", study.string(), "--seed", "11",
                                                  "--slices", "16", "--nodules", "2"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    hilum::test::TinyBundleOptions b;
    b.nodule_bias = 8;
    b.head_std = 0.5;
    hilum::test::write_tiny_bundle(scratch->path() / "bundle", b);
  }

  WorkstationBackends backends(const fs::path& bundle) {
    AppBackendOptions o;
    o.bundleDir = bundle;
    o.device = "cpu";
    o.maxFindings = 3;  // few findings: quick, and the random text model's draft fails its check
    return makeAppBackends(o);
  }

  void openWindow(WorkstationBackends b) {
    window = std::make_unique<MainWindow>(std::move(b), testOptions());
    window->resize(1400, 900);
    window->show();
    QSignalSpy loaded(window.get(), &MainWindow::studyLoaded);
    window->openStudy({QString::fromStdString(study.string())});
    ASSERT_TRUE(loaded.wait(20000)) << "the phantom did not load";
  }

  void analyzeAndWait() {
    QSignalSpy finished(window.get(), &MainWindow::analysisFinished);
    QSignalSpy drafted(window.get(), &MainWindow::reportDrafted);
    window->action("analyze")->trigger();
    ASSERT_TRUE(window->isAnalyzing());
    ASSERT_TRUE(finished.wait(60000));
    ASSERT_TRUE(finished.at(0).at(0).toBool()) << finished.at(0).at(1).toString().toStdString();
    // Analysis drafts the impression at once.
    ASSERT_TRUE(drafted.count() > 0 || drafted.wait(30000));
    ASSERT_TRUE(drafted.at(0).at(0).toBool()) << drafted.at(0).at(1).toString().toStdString();
  }

  StudyDocument& doc() { return *window->document(); }

  std::unique_ptr<hilum::test::ScratchDir> scratch;
  fs::path study;
  std::unique_ptr<MainWindow> window;
};

// The text values of every TEXT content item of an SR file.
std::vector<std::string> srTexts(const fs::path& file) {
  std::vector<std::string> out;
  DcmFileFormat ff;
  if (ff.loadFile(file.c_str()).bad()) return out;
  DSRDocument doc;
  if (doc.read(*ff.getDataset()).bad()) return out;
  DSRDocumentTree& tree = doc.getTree();
  if (tree.gotoRoot() > 0) {
    do {
      const DSRContentItem& item = tree.getCurrentContentItem();
      if (item.getValueType() == DSRTypes::VT_Text) out.push_back(item.getStringValue().c_str());
    } while (tree.iterate() > 0);
  }
  return out;
}

TEST_F(AppBackends, AnalyzeDraftAndExportFollowTheReview) {
  openWindow(backends(scratch->path() / "bundle"));
  ASSERT_TRUE(window->action("analyze")->isEnabled()) << window->action("analyze")->toolTip().toStdString();
  EXPECT_FALSE(window->action("exportJson")->isEnabled());  // nothing to export before the analysis
  EXPECT_EQ(window->action("exportJson")->toolTip(), "Analyze the study first");
  // The clinical text panel (as edited) is what the text branch reads.
  window->clinicalTextPanel()->editor()->setPlainText("Ex-smoker, 40 pack-years.");

  QSignalSpy progress(window->findChild<QProgressBar*>("taskProgress"), &QProgressBar::valueChanged);
  analyzeAndWait();
  EXPECT_GT(progress.count(), 3) << "the progress bar did not move";
  const int rows = doc().findings()->rowCount();
  ASSERT_EQ(rows, 3) << "the tiny bundle passes every candidate";
  const auto record = window->analysisRecord();
  ASSERT_NE(record, nullptr);
  ASSERT_EQ(record->findings.findings.size(), static_cast<size_t>(rows));
  EXPECT_TRUE(record->findings.clinical_text_used);
  EXPECT_EQ(record->findings.model_bundle, "hilum-test-tiny 1");
  // The table shows the AI's findings as the pipeline gave them.
  const hilum::Finding ai1 = record->findings.findings[0];
  EXPECT_EQ(doc().findings()->at(0).original.id, ai1.id);
  EXPECT_DOUBLE_EQ(doc().findings()->at(0).original.longAxisMm, ai1.long_axis_mm);

  // The impression was drafted (the random text model's draft fails the check,
  // so it is the template) and says so.
  const QString draft = window->reportPanel()->draft();
  ASSERT_FALSE(draft.isEmpty());
  auto* message = window->reportPanel()->findChild<QLabel*>();
  ASSERT_NE(message, nullptr);
  EXPECT_TRUE(message->text().contains("Template impression") || message->text().contains("AI draft"))
      << message->text().toStdString();

  // Review: reject finding 2, edit finding 1's long axis. The draft follows.
  const int id1 = doc().findings()->at(0).original.id, id2 = doc().findings()->at(1).original.id;
  doc().rejectFinding(id2);
  Finding edited = doc().findings()->at(0).current;
  edited.longAxisMm = std::round((std::max(edited.longAxisMm, edited.shortAxisMm) + 3.0) * 10) / 10;
  edited.lungRads = "4B";
  doc().editFinding(id1, edited);
  const QString newLong = QString::number(edited.longAxisMm, 'f', 1);
  ASSERT_TRUE(test::waitUntil([&] { return window->reportPanel()->draft().contains(newLong); }, 30000))
      << window->reportPanel()->draft().toStdString();
  ASSERT_TRUE(test::waitUntil([&] { return !window->isReporting(); }, 30000));
  // The AI's record is untouched by the review.
  EXPECT_DOUBLE_EQ(window->analysisRecord()->findings.findings[0].long_axis_mm, ai1.long_axis_mm);

  // Exports: the radiologist's version, rejected findings left out, edits named.
  QSignalSpy exported(window.get(), &MainWindow::exportFinished);
  const fs::path json = scratch->path() / "out" / "findings.json";
  fs::create_directories(json.parent_path());
  window->exportTo("json", QString::fromStdString(json.string()));
  ASSERT_TRUE(exported.wait(30000));
  ASSERT_TRUE(exported.at(0).at(0).toBool()) << exported.at(0).at(1).toString().toStdString();
  auto doc1 = read_findings_json(json);
  ASSERT_TRUE(doc1.ok()) << doc1.error().message();
  ASSERT_EQ(doc1->findings.size(), static_cast<size_t>(rows - 1));
  for (const hilum::Finding& f : doc1->findings) EXPECT_NE(f.id, id2);
  EXPECT_NEAR(doc1->findings[0].long_axis_mm, edited.longAxisMm, 0.051);
  EXPECT_EQ(lung_rads_label(doc1->findings[0].lung_rads.category), "4B");
  EXPECT_EQ(doc1->findings[0].evidence.at("long_axis_mm"), "radiologist");
  std::string notes;
  for (const std::string& n : doc1->notes) notes += n + "\n";
  EXPECT_NE(notes.find("Nodule " + std::to_string(id1) + " edited by the radiologist: long axis"),
            std::string::npos)
      << notes;
  EXPECT_NE(notes.find("rejected (nodule " + std::to_string(id2) + ", left out)"), std::string::npos)
      << notes;
  EXPECT_EQ(doc1->lung_rads_study, "4B");

  const QString impression = window->reportPanel()->draft();
  const fs::path sr = scratch->path() / "out" / "report-sr.dcm";
  window->exportTo("sr", QString::fromStdString(sr.string()));
  ASSERT_TRUE(exported.wait(30000));
  ASSERT_TRUE(exported.at(1).at(0).toBool()) << exported.at(1).at(1).toString().toStdString();
  std::string srText;
  for (const std::string& t : srTexts(sr)) srText += t + "\n";
  EXPECT_NE(srText.find("edited by the radiologist"), std::string::npos) << srText;
  EXPECT_NE(srText.find(impression.toStdString()), std::string::npos) << srText;

  // The radiologist's own impression goes into the PDF as theirs.
  window->reportPanel()->editor()->setPlainText("Solid nodule, follow the category. Reviewed.");
  const fs::path pdf = scratch->path() / "out" / "report.pdf";
  window->exportTo("pdf", QString::fromStdString(pdf.string()));
  ASSERT_TRUE(exported.wait(30000));
  ASSERT_TRUE(exported.at(2).at(0).toBool()) << exported.at(2).at(1).toString().toStdString();
  auto text = hilum::test::run_command("pdftotext", {"-layout", pdf.string(), "-"});
  if (text.exit_code == 0) {
    EXPECT_NE(text.out.find("Solid nodule, follow the category. Reviewed."), std::string::npos) << text.out;
    EXPECT_NE(text.out.find("written by the radiologist"), std::string::npos) << text.out;
    EXPECT_NE(text.out.find("edited by the radiologist"), std::string::npos) << text.out;
  } else {
    EXPECT_EQ(read_file(pdf)->substr(0, 5), "%PDF-");
  }
}

TEST_F(AppBackends, AssistantStreamsAnAnswerAboutTheCase) {
  openWindow(backends(scratch->path() / "bundle"));
  EXPECT_FALSE(window->action("askAssistant")->isEnabled());  // it answers from the findings
  analyzeAndWait();
  AssistantPanel* panel = window->assistantPanel();
  ASSERT_TRUE(window->action("askAssistant")->isEnabled());
  EXPECT_TRUE(panel->message().contains("small demo model")) << panel->message().toStdString();
  EXPECT_TRUE(panel->message().contains("may be wrong")) << panel->message().toStdString();
  int updates = 0;
  QObject::connect(panel->transcript(), &QPlainTextEdit::textChanged, [&] { ++updates; });
  panel->questionEdit()->setText("How many nodules were found?");
  QTest::keyClick(panel->questionEdit(), Qt::Key_Return);
  ASSERT_TRUE(test::waitUntil([&] { return !window->action("askAssistant")->isEnabled(); }, 2000) ||
              updates > 0);
  ASSERT_TRUE(test::waitUntil([&] { return window->action("askAssistant")->isEnabled(); }, 60000));
  const QString transcript = panel->transcript()->toPlainText();
  EXPECT_TRUE(transcript.contains("Q: How many nodules were found?")) << transcript.toStdString();
  const QString answer = transcript.mid(transcript.indexOf("A: ") + 3).trimmed();
  EXPECT_FALSE(answer.isEmpty()) << transcript.toStdString();
  EXPECT_FALSE(answer.contains("[")) << "the answer ended with an error: " << transcript.toStdString();
  // Token by token: the transcript grew in many steps, not in one.
  EXPECT_GT(updates, 4) << transcript.toStdString();
}

TEST_F(AppBackends, CancelStopsTheAnalysis) {
  openWindow(backends(scratch->path() / "bundle"));
  QSignalSpy finished(window.get(), &MainWindow::analysisFinished);
  window->analyze();
  ASSERT_TRUE(window->isAnalyzing());
  window->action("cancelTask")->trigger();
  ASSERT_TRUE(finished.wait(30000));
  EXPECT_FALSE(finished.at(0).at(0).toBool());
  EXPECT_EQ(finished.at(0).at(1).toString(), "cancelled");
  EXPECT_EQ(doc().findings()->rowCount(), 0);
  EXPECT_EQ(window->analysisRecord(), nullptr);
  EXPECT_TRUE(window->action("analyze")->isEnabled());
}

TEST_F(AppBackends, BrokenBundleIsReportedAndNothingIsShown) {
  const fs::path broken = scratch->path() / "broken";
  fs::create_directories(broken);
  ASSERT_TRUE(write_file_atomic(broken / "manifest.json", R"({"name": "broken", "version": "1"})").ok());
  openWindow(backends(broken));
  QSignalSpy finished(window.get(), &MainWindow::analysisFinished);
  window->analyze();
  ASSERT_TRUE(finished.wait(30000));
  EXPECT_FALSE(finished.at(0).at(0).toBool());
  EXPECT_TRUE(finished.at(0).at(1).toString().contains(QString::fromStdString((broken / "vision").string())))
      << finished.at(0).at(1).toString().toStdString();
  EXPECT_EQ(finished.at(0).at(2).toInt(), 2);
  EXPECT_EQ(doc().findings()->rowCount(), 0);
  EXPECT_TRUE(window->statusBar()->currentMessage().contains("Analysis failed"));
}

TEST(ModelBundleLookup, ExplicitThenEnvironmentThenBesideTheProgram) {
  hilum::test::ScratchDir d;
  qunsetenv("HILUM_DEFAULT_BUNDLE");
  qputenv("HILUM_MODEL_BUNDLE", QByteArray::fromStdString((d.path() / "env").string()));
  EXPECT_EQ(**locateModelBundle(QStringLiteral("/given")), fs::path("/given"));
  EXPECT_EQ(**locateModelBundle({}), d.path() / "env");
  qunsetenv("HILUM_MODEL_BUNDLE");
  // Nothing beside the test program: the demo bundle of the source tree.
  QStringList tried;
  const auto found = locateModelBundle({}, &tried);
  ASSERT_TRUE(found.ok()) << found.error().message();
  ASSERT_EQ(tried.size(), 3) << tried.join(", ").toStdString();
  EXPECT_TRUE(tried[0].endsWith("resources/models"));
  ASSERT_TRUE(found->has_value());
  EXPECT_TRUE(fs::equivalent(**found, fs::path(HILUM_SOURCE_DIR) / "resources" / "models"));
  EXPECT_TRUE(fs::exists(**found / "manifest.json"));
}

TEST(ModelBundleLookup, DefaultBundleNoneLeavesOnlyWhatIsNamed) {
  hilum::test::ScratchDir d;
  qunsetenv("HILUM_MODEL_BUNDLE");
  qputenv("HILUM_DEFAULT_BUNDLE", "none");
  QStringList tried;
  const auto found = locateModelBundle({}, &tried);
  // What the site names still counts.
  const auto given = locateModelBundle(QStringLiteral("/given"));
  qputenv("HILUM_MODEL_BUNDLE", QByteArray::fromStdString((d.path() / "env").string()));
  const auto fromEnv = locateModelBundle({});
  qunsetenv("HILUM_MODEL_BUNDLE");
  qputenv("HILUM_DEFAULT_BUNDLE", "/opt/bundle");
  const auto bad = locateModelBundle({});
  qunsetenv("HILUM_DEFAULT_BUNDLE");
  ASSERT_TRUE(found.ok()) << found.error().message();
  EXPECT_FALSE(found->has_value()) << found->value_or(fs::path()).string();
  EXPECT_TRUE(tried.isEmpty()) << tried.join(", ").toStdString();
  ASSERT_TRUE(given.ok());
  EXPECT_EQ(**given, fs::path("/given"));
  ASSERT_TRUE(fromEnv.ok());
  EXPECT_EQ(**fromEnv, d.path() / "env");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().kind(), hilum::ErrorKind::kBadInput);
  EXPECT_NE(bad.error().message().find("HILUM_DEFAULT_BUNDLE is '/opt/bundle'"), std::string::npos)
      << bad.error().message();
}

TEST(ModelBundleLookup, WithoutABundleEveryAiFeatureIsOff) {
  // No bundle: every AI feature is off and says why.
  AppBackendOptions none;
  none.searched = {QStringLiteral("/opt/x/resources/models")};
  const WorkstationBackends b = makeAppBackends(none);
  EXPECT_FALSE(b.analyze);
  EXPECT_FALSE(b.draftReport);
  EXPECT_FALSE(b.ask);
  EXPECT_TRUE(b.unavailable.contains("none was found (looked in /opt/x/resources/models)"))
      << b.unavailable.toStdString();
}

// A referral sent as a DICOM Basic Text SR next to the images fills the
// clinical text panel (when there is no clinical.txt).
TEST(ClinicalTextFromSr, FillsThePanelWhenThereIsNoSidecar) {
  hilum::test::ScratchDir d;
  const fs::path study = d.path() / "study";
  auto r = hilum::test::run_command(HILUM_CLI, {"-q", "phantom", "--out", study.string(), "--seed", "3",
                                                "--slices", "16", "--nodules", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  fs::remove(study / "clinical.txt");
  DSRDocument sr(DSRTypes::DT_BasicTextSR);
  sr.createNewDocument(DSRTypes::DT_BasicTextSR);
  sr.setSpecificCharacterSetType(DSRTypes::CS_Latin1);
  sr.getTree().addContentItem(DSRTypes::RT_isRoot, DSRTypes::VT_Container);
  sr.getTree().getCurrentContentItem().setConceptName(
      DSRCodedEntryValue("18748-4", "LN", "Diagnostic imaging report"));
  sr.getTree().addContentItem(DSRTypes::RT_contains, DSRTypes::VT_Text, DSRTypes::AM_belowCurrent);
  sr.getTree().getCurrentContentItem().setConceptName(
      DSRCodedEntryValue("121109", "DCM", "Indications for Procedure"));
  // "Müller" in Latin-1: read back as UTF-8.
  sr.getTree().getCurrentContentItem().setStringValue("Reason for request: cough, Dr M\xfcller.", false);
  sr.getTree().addContentItem(DSRTypes::RT_contains, DSRTypes::VT_Text, DSRTypes::AM_afterCurrent);
  sr.getTree().getCurrentContentItem().setConceptName(DSRCodedEntryValue("121060", "DCM", "History"));
  sr.getTree().getCurrentContentItem().setStringValue("Clinical history: 30 pack-years.");
  DcmFileFormat ff;
  ASSERT_TRUE(sr.write(*ff.getDataset()).good());
  ASSERT_TRUE(ff.saveFile((study / "dicom" / "referral.dcm").c_str(), EXS_LittleEndianExplicit).good());
  const std::string expected =
      "Reason for request: cough, Dr M\xc3\xbcller.\nClinical history: 30 pack-years.";
  EXPECT_EQ(find_sr_clinical_text({study}).text, expected);

  MainWindow window({}, testOptions());
  QSignalSpy loaded(&window, &MainWindow::studyLoaded);
  window.openStudy({QString::fromStdString(study.string())});
  ASSERT_TRUE(loaded.wait(20000));
  EXPECT_EQ(window.clinicalTextPanel()->editor()->toPlainText(), QString::fromStdString(expected));
  EXPECT_EQ(window.document()->clinicalText(), QString::fromStdString(expected));
  EXPECT_TRUE(window.clinicalTextPanel()->sourceText().contains("DICOM SR"))
      << window.clinicalTextPanel()->sourceText().toStdString();
}

#endif

}  // namespace
}  // namespace hilum::ui
