// File ▸ Open from PACS against a real Orthanc (tests/app/orthanc_fixture.h):
// a phantom study and a referral SR are stored, searched for in the dialog
// with QTest, retrieved by C-GET and by C-MOVE into the cache and opened; the
// reviewed results go back to the PACS; errors are shown in the dialog. No
// patient identifier reaches stderr.
#include <gtest/gtest.h>

#include <QAbstractItemModel>
#include <QCheckBox>
#include <QComboBox>
#include <QDateEdit>
#include <QLineEdit>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSignalSpy>
#include <QTableView>
#include <QTest>
#include <filesystem>
#include <set>

#include "model/file_io.h"
#include "tests/support/test_support.h"
#include "tests/ui/ui_test_support.h"
#include "ui/main_window.h"
#include "ui/pacs_browser.h"
#include "ui/panels.h"
#include "ui/study_document.h"

#if defined(HILUM_HAVE_PACS) && HILUM_HAVE_PACS
#include "app/pacs/pacs_client.h"
#include "tests/app/orthanc_fixture.h"
#include "tests/app/pacs_test_data.h"
#include "tests/app/report_fixture.h"
#include "ui/app_backends.h"
#endif

namespace hilum::ui {
namespace {

namespace fs = std::filesystem;

#if defined(HILUM_HAVE_PACS) && HILUM_HAVE_PACS

MainWindow::Options options(const fs::path& config, const fs::path& cache) {
  MainWindow::Options o;
  o.interactive = false;
  o.useSettings = false;
  o.pacsConfig = QString::fromStdString(config.string());
  o.pacsCacheDir = QString::fromStdString(cache.string());
  return o;
}

QString cell(QTableView* view, int row, int column) {
  return view->model()->index(row, column).data().toString();
}

// One Orthanc per test with the phantom (seed 5, 16 slices) and a referral SR
// of the same study stored in it.
class PacsBrowserOrthanc : public ::testing::Test {
 protected:
  void SetUp() override {
    if (hilum::test::orthanc_binary().empty()) GTEST_SKIP() << "Orthanc is not installed";
    scratch = std::make_unique<hilum::test::ScratchDir>();
    std::string error;
    orthanc = hilum::test::OrthancServer::start(scratch->path() / "orthanc", {}, &error);
    ASSERT_NE(orthanc, nullptr) << error;
    study = scratch->path() / "phantom";
    auto r = hilum::test::run_command(HILUM_CLI, {"-q", "phantom", "--out", study.string(), "--seed", "5",
                                                  "--slices", "16", "--nodules", "1"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(study / "dicom")) files.push_back(e.path());
    ASSERT_EQ(files.size(), 16u);
    auto info = pacs::read_study_identifiers(files.front());
    ASSERT_TRUE(info.ok()) << info.error().message();
    studyUid = info->study_instance_uid;
    hilum::test::TestStudy referral;
    referral.patient = {info->patient.name, info->patient.id, info->patient.birth_date, info->patient.sex};
    referral.study_uid = studyUid;
    referral.study_date = info->study_date;
    referral.study_time = info->study_time;
    referral.accession = info->accession_number;
    referral.description = info->study_description;
    files.push_back(scratch->path() / "referral.dcm");
    hilum::test::write_text_sr(referral, files.back(), "Reason for request: screening, 30 pack-years.");
    pacs::PacsClient client(orthanc->node());
    NullProgress progress;
    auto stored = client.store(files, progress);
    ASSERT_TRUE(stored.ok()) << stored.error().message();
    ASSERT_EQ(stored->stored, 17);

    config = scratch->path() / "pacs.json";
    const pacs::Node n = orthanc->node();
    ASSERT_TRUE(
        write_file_atomic(config, "{\"calling_ae\": \"" + n.calling_ae +
                                      "\", \"timeouts\": {\"connect\": 5, \"acse\": 10, \"dimse\": 20},"
                                      " \"nodes\": {\"orthanc\": {\"ae_title\": \"" +
                                      n.ae_title +
                                      "\", \"host\": \"127.0.0.1\", \"port\": " + std::to_string(n.port) +
                                      ", \"storage_port\": " + std::to_string(n.storage_port) + "}}}\n")
            .ok());
    cache = scratch->path() / "cache";
  }

  std::unique_ptr<hilum::test::ScratchDir> scratch;
  std::unique_ptr<hilum::test::OrthancServer> orthanc;
  fs::path study, config, cache;
  std::string studyUid;
};

TEST_F(PacsBrowserOrthanc, SearchRetrieveBothWaysAndOpen) {
  MainWindow window({}, options(config, cache));
  window.show();
  ASSERT_TRUE(window.action("openFromPacs")->isEnabled());
  ::testing::internal::CaptureStderr();
  PacsBrowser* browser = window.openPacsBrowser();
  ASSERT_TRUE(browser->isVisible());
  ASSERT_EQ(browser->nodeBox()->count(), 1);
  EXPECT_TRUE(browser->nodeBox()->currentText().startsWith("orthanc"));
  QSignalSpy searched(browser, &PacsBrowser::searchFinished);
  QSignalSpy listed(browser, &PacsBrowser::seriesListed);

  // By name (a prefix, any case) and a date range that excludes the study: nothing.
  QTest::keyClicks(browser->patientNameEdit(), "phantom");
  browser->fromCheck()->setChecked(true);
  browser->fromDate()->setDate(QDate(2001, 1, 1));
  QTest::mouseClick(browser->searchButton(), Qt::LeftButton);
  ASSERT_TRUE(searched.wait(20000));
  ASSERT_TRUE(searched.at(0).at(0).toBool()) << browser->statusText().toStdString();
  EXPECT_EQ(browser->studyTable()->model()->rowCount(), 0);
  EXPECT_EQ(browser->statusText(), "No study matches.");

  // By patient ID, modality CT, a range that holds 2000-01-01: the phantom.
  browser->patientNameEdit()->clear();
  QTest::keyClicks(browser->patientIdEdit(), "PHANTOM-5");
  browser->fromDate()->setDate(QDate(1999, 12, 31));
  browser->toCheck()->setChecked(true);
  browser->toDate()->setDate(QDate(2000, 1, 1));
  QTest::keyClick(browser->patientIdEdit(), Qt::Key_Return);
  ASSERT_TRUE(searched.wait(20000));
  ASSERT_TRUE(searched.at(1).at(0).toBool()) << browser->statusText().toStdString();
  QTableView* studies = browser->studyTable();
  ASSERT_EQ(studies->model()->rowCount(), 1);
  EXPECT_EQ(cell(studies, 0, 0), "PHANTOM, SEED5");
  EXPECT_EQ(cell(studies, 0, 1), "PHANTOM-5");
  EXPECT_EQ(cell(studies, 0, 3), "2000-01-01");
  EXPECT_TRUE(cell(studies, 0, 5).contains("CT"));
  // The first study is selected and its series listed.
  ASSERT_TRUE(listed.count() > 0 || listed.wait(20000));
  ASSERT_TRUE(listed.at(0).at(0).toBool()) << browser->statusText().toStdString();
  QTableView* series = browser->seriesTable();
  ASSERT_EQ(series->model()->rowCount(), 2);  // the CT and the referral SR
  EXPECT_EQ(browser->retrieveButton()->text(), "&Retrieve Study and Open");

  // C-GET of the whole study: it opens, with the referral as clinical text.
  QSignalSpy loaded(&window, &MainWindow::studyLoaded);
  QTest::mouseClick(browser->retrieveButton(), Qt::LeftButton);
  ASSERT_TRUE(browser->isBusy());
  ASSERT_TRUE(loaded.wait(30000)) << browser->statusText().toStdString();
  EXPECT_FALSE(browser->isVisible());
  EXPECT_EQ(window.document()->volume()->nz(), 16);
  EXPECT_EQ(window.document()->info().study_instance_uid, studyUid);
  EXPECT_TRUE(fs::is_directory(cache / studyUid));
  EXPECT_EQ(window.clinicalTextPanel()->editor()->toPlainText(),
            "Reason for request: screening, 30 pack-years.");
  EXPECT_TRUE(window.clinicalTextPanel()->sourceText().contains("DICOM SR"));

  // C-MOVE of the CT series alone, into an empty cache.
  fs::remove_all(cache);
  ASSERT_EQ(window.openPacsBrowser(), browser);
  int ctRow = cell(series, 0, 1) == "CT" ? 0 : 1;
  series->selectRow(ctRow);
  EXPECT_EQ(browser->retrieveButton()->text(), "&Retrieve Series and Open");
  browser->methodBox()->setCurrentIndex(browser->methodBox()->findText("C-MOVE"));
  browser->retrieve();
  ASSERT_TRUE(loaded.wait(30000)) << browser->statusText().toStdString();
  EXPECT_EQ(window.document()->volume()->nz(), 16);
  int files = 0;
  for (const auto& e : fs::recursive_directory_iterator(cache)) files += e.is_regular_file();
  EXPECT_EQ(files, 16);  // the series only
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(err.find("PHANTOM"), std::string::npos) << err;
}

TEST_F(PacsBrowserOrthanc, SendResultsBackToThePacs) {
  hilum::test::TinyBundleOptions b;
  b.nodule_bias = 8;
  b.head_std = 0.5;
  hilum::test::write_tiny_bundle(scratch->path() / "bundle", b);
  AppBackendOptions o;
  o.bundleDir = scratch->path() / "bundle";
  o.device = "cpu";
  o.maxFindings = 2;
  MainWindow window(makeAppBackends(o), options(config, cache));
  window.show();
  QSignalSpy loaded(&window, &MainWindow::studyLoaded);
  window.openStudy({QString::fromStdString(study.string())});
  ASSERT_TRUE(loaded.wait(20000));
  EXPECT_FALSE(window.action("sendToPacs")->isEnabled());  // nothing to send before the analysis
  QSignalSpy analysed(&window, &MainWindow::analysisFinished);
  window.analyze();
  ASSERT_TRUE(analysed.wait(60000));
  ASSERT_TRUE(analysed.at(0).at(0).toBool()) << analysed.at(0).at(1).toString().toStdString();
  ASSERT_TRUE(test::waitUntil([&] { return !window.isReporting(); }, 30000));
  window.document()->rejectFinding(window.document()->findings()->at(1).original.id);
  ASSERT_TRUE(window.action("sendToPacs")->isEnabled());

  QSignalSpy sent(&window, &MainWindow::resultsSent);
  window.sendResultsToPacs("orthanc");
  ASSERT_TRUE(sent.wait(60000));
  ASSERT_TRUE(sent.at(0).at(0).toBool()) << sent.at(0).at(1).toString().toStdString();
  EXPECT_TRUE(sent.at(0).at(1).toString().contains("Stored 2 object(s)"))
      << sent.at(0).at(1).toString().toStdString();

  // The PACS now lists the SR and the encapsulated PDF in the study.
  pacs::PacsClient client(orthanc->node());
  pacs::Query q;
  q.level = pacs::QueryLevel::kSeries;
  q.study_uid = studyUid;
  NullProgress progress;
  auto found = client.find(q, progress);
  ASSERT_TRUE(found.ok()) << found.error().message();
  std::set<std::string> modalities;
  for (const pacs::Match& m : *found) modalities.insert(m.modality);
  EXPECT_TRUE(modalities.count("SR")) << "no SR series";
  EXPECT_TRUE(modalities.count("DOC")) << "no encapsulated PDF";

  // An unknown node is refused with the configured ones named.
  window.sendResultsToPacs("archive");
  ASSERT_EQ(sent.count(), 2);
  EXPECT_FALSE(sent.at(1).at(0).toBool());
  EXPECT_TRUE(sent.at(1).at(1).toString().contains("no node named 'archive' (configured: orthanc)"))
      << sent.at(1).at(1).toString().toStdString();
}

TEST(PacsBrowserErrors, ShownInTheDialog) {
  hilum::test::ScratchDir d;
  // Nothing listens on this port.
  const uint16_t port = hilum::test::free_tcp_port();
  ASSERT_TRUE(write_file_atomic(d / "pacs.json",
                                "{\"nodes\": {\"down\": {\"ae_title\": \"DOWN\", \"host\": "
                                "\"127.0.0.1\", \"port\": " +
                                    std::to_string(port) + "}}}")
                  .ok());
  PacsBrowser browser(QString::fromStdString((d / "cache").string()),
                      QString::fromStdString((d / "pacs.json").string()));
  browser.show();
  QSignalSpy searched(&browser, &PacsBrowser::searchFinished);
  QTest::keyClicks(browser.patientIdEdit(), "X");
  QTest::mouseClick(browser.searchButton(), Qt::LeftButton);
  ASSERT_TRUE(searched.wait(20000));
  EXPECT_FALSE(searched.at(0).at(0).toBool());
  EXPECT_TRUE(browser.statusText().contains("connection refused")) << browser.statusText().toStdString();
  EXPECT_TRUE(browser.statusText().contains("DOWN@127.0.0.1")) << browser.statusText().toStdString();
  EXPECT_EQ(browser.studyTable()->model()->rowCount(), 0);
  EXPECT_FALSE(browser.retrieveButton()->isEnabled());
  // A start date after the end date is refused before anything is sent.
  browser.fromCheck()->setChecked(true);
  browser.toCheck()->setChecked(true);
  browser.fromDate()->setDate(QDate(2020, 1, 2));
  browser.toDate()->setDate(QDate(2020, 1, 1));
  browser.search();
  EXPECT_EQ(browser.statusText(), "The start date is after the end date.");

  // A broken configuration names the file and the field.
  ASSERT_TRUE(
      write_file_atomic(d / "bad.json", R"({"nodes": {"x": {"ae_title": "X", "host": "h", "prot": 1}}})")
          .ok());
  EXPECT_FALSE(browser.loadConfig(QString::fromStdString((d / "bad.json").string())));
  EXPECT_TRUE(browser.statusText().contains("nodes.x.prot: unknown field"))
      << browser.statusText().toStdString();
  EXPECT_EQ(browser.nodeBox()->count(), 0);
  EXPECT_FALSE(browser.searchButton()->isEnabled());

  // No configuration at all: nothing to search.
  const QByteArray configHome = qgetenv("XDG_CONFIG_HOME");
  qunsetenv("HILUM_PACS_CONFIG");
  qputenv("XDG_CONFIG_HOME", QByteArray::fromStdString((d / "none").string()));
  PacsBrowser empty(QString::fromStdString((d / "cache").string()));
  qputenv("XDG_CONFIG_HOME", configHome);
  EXPECT_EQ(empty.nodeBox()->count(), 0);
  EXPECT_FALSE(empty.searchButton()->isEnabled());
}

#endif

}  // namespace
}  // namespace hilum::ui
