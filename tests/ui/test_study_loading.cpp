// Opening real DICOM studies (written with DCMTK by the loader's test writer):
// the worker-thread loader, the series browser, drag and drop, bad input, and
// the screenshot mode under Xvfb on a `hilum phantom` study.
#include <gtest/gtest.h>

#include <QDropEvent>
#include <QFile>
#include <QImage>
#include <QListWidget>
#include <QMimeData>
#include <QProcess>
#include <QSignalSpy>
#include <QStandardPaths>
#include <QTemporaryDir>
#include <QTest>
#include <QUrl>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "tests/app/report_fixture.h"
#include "tests/ui/ui_test_support.h"
#include "ui/main_window.h"
#include "ui/panels.h"
#include "ui/study_document.h"
#include "ui/study_loader.h"

#if defined(HILUM_HAVE_IMAGING) && HILUM_HAVE_IMAGING && __has_include("tests/vision/io/dicom_writer.h")
#include "tests/vision/io/dicom_writer.h"
#define HILUM_UI_HAVE_DICOM_WRITER 1
namespace dicomw = hilum::dicomtest;
#else
#define HILUM_UI_HAVE_DICOM_WRITER 0
#endif

namespace hilum::ui {
namespace {

namespace fs = std::filesystem;

#if HILUM_UI_HAVE_DICOM_WRITER
// Writes `volume` as an axial CT series (one file per slice, HU + 1024 stored).
void writeCtSeries(const fs::path& dir, const Volume& volume, const std::string& studyUid,
                   const std::string& seriesUid, const std::string& description) {
  std::vector<dicomw::SliceSpec> slices;
  for (int k = 0; k < volume.nz(); ++k) {
    dicomw::SliceSpec s;
    s.study_uid = studyUid;
    s.series_uid = seriesUid;
    s.description = description;
    s.rows = static_cast<int>(volume.ny());
    s.columns = static_cast<int>(volume.nx());
    s.position = {volume.origin[0], volume.origin[1], volume.origin[2] + k * volume.spacing[2]};
    s.pixel_spacing = std::array<double, 2>{volume.spacing[1], volume.spacing[0]};
    s.slice_thickness = volume.spacing[2];
    s.instance_number = k + 1;
    s.pixels.resize(static_cast<size_t>(s.rows) * s.columns);
    for (int j = 0; j < s.rows; ++j)
      for (int i = 0; i < s.columns; ++i) {
        s.pixels[static_cast<size_t>(j) * s.columns + i] =
            static_cast<uint16_t>(std::lround(volume.at(i, j, k) + 1024));
      }
    slices.push_back(std::move(s));
  }
  const std::string error = dicomw::write_series(dir, slices, description.substr(0, 2));
  ASSERT_TRUE(error.empty()) << error;
}
#endif

class StudyLoading : public ::testing::Test {
 protected:
  void SetUp() override {
#if !HILUM_UI_HAVE_DICOM_WRITER
    GTEST_SKIP() << "this build has no DICOM loader (vision/io) or no DICOM test writer";
#else
    ASSERT_TRUE(dir.isValid());
    root = dir.path().toStdString();
    chest = test::makeChest(64, 56, 24, {0.7, 0.7, 2.5});
    small = test::makeChest(40, 40, 6, {1.0, 1.0, 5.0});
    studyUid = dicomw::new_uid();
    chestUid = dicomw::new_uid();
    smallUid = dicomw::new_uid();
    writeCtSeries(root / "dicom", *chest, studyUid, chestUid, "Chest 2.5 mm");
    writeCtSeries(root / "dicom", *small, studyUid, smallUid, "Scout-like 5 mm");
    std::ofstream(root / "clinical.txt") << "Referral: 64-year-old, 40 pack-years.";
#endif
  }

  QTemporaryDir dir;
  fs::path root;
  std::shared_ptr<Volume> chest, small;
  std::string studyUid, chestUid, smallUid;
};

TEST_F(StudyLoading, LoaderReadsTheSeriesAndTheClinicalText) {
  NullProgress progress;
  StudyRequest request;
  request.inputs = {root / "dicom"};
  Result<LoadedStudyData> data = loadStudy(request, progress);
  ASSERT_TRUE(data.ok()) << data.error().message();
  // The default choice is the series with most slices.
  EXPECT_EQ(data->volume->nz(), 24);
  EXPECT_EQ(data->loadedSelector, chestUid);
  EXPECT_EQ(data->series.size(), 2u);
  EXPECT_FLOAT_EQ(data->volume->at(20, 28, 12), chest->at(20, 28, 12));
  EXPECT_EQ(data->clinicalText, "Referral: 64-year-old, 40 pack-years.");
  EXPECT_TRUE(data->clinicalTextPath.endsWith("clinical.txt"));
  EXPECT_FALSE(data->thumbnail.isNull());
  // Another series by its selector.
  request.series = smallUid;
  Result<LoadedStudyData> other = loadStudy(request, progress);
  ASSERT_TRUE(other.ok()) << other.error().message();
  EXPECT_EQ(other->volume->nz(), 6);
}

TEST_F(StudyLoading, WindowLoadsInTheBackgroundAndBrowsesSeries) {
  MainWindow::Options options;
  options.interactive = false;
  options.useSettings = false;
  MainWindow window({}, options);
  window.show();
  QSignalSpy loaded(&window, &MainWindow::studyLoaded);
  // Drag and drop of the folder opens it.
  QMimeData mime;
  mime.setUrls({QUrl::fromLocalFile(QString::fromStdString((root / "dicom").string()))});
  QDragEnterEvent enter(QPoint(100, 100), Qt::CopyAction, &mime, Qt::LeftButton, Qt::NoModifier);
  QCoreApplication::sendEvent(&window, &enter);
  ASSERT_TRUE(enter.isAccepted());
  QDropEvent drop(QPointF(100, 100), Qt::CopyAction, &mime, Qt::LeftButton, Qt::NoModifier);
  QCoreApplication::sendEvent(&window, &drop);
  EXPECT_TRUE(window.isLoading());
  EXPECT_FALSE(window.document()->hasStudy());  // nothing happens on the GUI thread meanwhile
  ASSERT_TRUE(loaded.wait(20000));
  ASSERT_TRUE(window.document()->hasStudy());
  EXPECT_EQ(window.document()->volume()->nz(), 24);
  EXPECT_EQ(window.document()->clinicalText(), "Referral: 64-year-old, 40 pack-years.");

  QListWidget* list = window.seriesBrowser()->list();
  ASSERT_EQ(list->count(), 2);
  int smallRow = -1;
  for (int i = 0; i < list->count(); ++i) {
    if (list->item(i)->data(SeriesBrowser::SelectorRole).toString().toStdString() == smallUid) smallRow = i;
  }
  ASSERT_GE(smallRow, 0);
  EXPECT_TRUE(list->item(smallRow)->text().contains("6 slices"));
  EXPECT_TRUE(list->item(1 - smallRow)->text().contains("24 slices"));
  EXPECT_TRUE(list->item(1 - smallRow)->text().contains("Chest 2.5 mm"));
  // The other series' thumbnail arrives from the background.
  const qint64 placeholder = list->item(smallRow)->icon().cacheKey();
  EXPECT_TRUE(test::waitUntil([&] { return list->item(smallRow)->icon().cacheKey() != placeholder; }, 20000));

  // Activating it loads that series.
  emit list->itemActivated(list->item(smallRow));
  ASSERT_TRUE(loaded.wait(20000));
  EXPECT_EQ(window.document()->volume()->nz(), 6);
}

TEST_F(StudyLoading, BadInputIsReportedAndNothingChanges) {
  MainWindow::Options options;
  options.interactive = false;
  options.useSettings = false;
  MainWindow window({}, options);
  QSignalSpy failed(&window, &MainWindow::studyLoadFailed);
  window.openStudy({QString::fromStdString((root / "missing").string())});
  ASSERT_TRUE(failed.wait(20000));
  EXPECT_EQ(failed.at(0).at(1).toInt(), 2);
  EXPECT_FALSE(window.document()->hasStudy());
#if HILUM_UI_HAVE_DICOM_WRITER
  // No patient identifier in the message.
  EXPECT_FALSE(failed.at(0).at(0).toString().contains(dicomw::kSecretName));
#endif
}

// ---- screenshot mode under Xvfb -------------------------------------------------

struct Region {
  int x = 0, y = 0, w = 0, h = 0;
};

// Runs `program args`, returning the exit code (-1 when it did not finish).
// The child gets a real display from xvfb-run, not this process's offscreen
// platform.
int runProcess(const QString& program, const QStringList& args, QString* out = nullptr,
               QString* err = nullptr, int timeoutMs = 120000) {
  QProcess p;
  QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
  if (program.endsWith(QLatin1String("xvfb-run"))) env.remove(QStringLiteral("QT_QPA_PLATFORM"));
  p.setProcessEnvironment(env);
  p.start(program, args);
  if (!p.waitForFinished(timeoutMs)) {
    p.kill();
    p.waitForFinished();
    return -1;
  }
  if (out) *out = QString::fromLocal8Bit(p.readAllStandardOutput());
  if (err) *err = QString::fromLocal8Bit(p.readAllStandardError());
  return p.exitStatus() == QProcess::NormalExit ? p.exitCode() : -1;
}

class Screenshot : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!dicomLoaderAvailable()) GTEST_SKIP() << "this build has no DICOM loader";
    xvfbRun = QStandardPaths::findExecutable(QStringLiteral("xvfb-run"));
    if (xvfbRun.isEmpty()) GTEST_SKIP() << "xvfb-run is not installed";
    ASSERT_TRUE(dir.isValid());
  }

  // A 40-slice phantom study (`hilum phantom`).
  QString makeStudy() {
    const QString study = dir.filePath(QStringLiteral("study"));
    QString err;
    const int rc = runProcess(QStringLiteral(HILUM_CLI),
                              {"phantom", "--out", study, "--seed", "7", "--slices", "40"}, nullptr, &err);
    EXPECT_EQ(rc, 0) << err.toStdString();
    return rc == 0 ? study : QString();
  }

  QString xvfbRun;
  QTemporaryDir dir;
};

double stdDev(const QImage& gray, const QRect& r, double* darkFraction, double* brightFraction) {
  double sum = 0, sum2 = 0;
  int n = 0, dark = 0, bright = 0;
  for (int y = r.top(); y <= r.bottom(); ++y) {
    const uchar* line = gray.constScanLine(y);
    for (int x = r.left(); x <= r.right(); ++x) {
      const int v = line[x];
      sum += v;
      sum2 += double(v) * v;
      ++n;
      // In the lung window lung (-850 HU) is 85 and air 60; the black around
      // the image does not count.
      dark += v >= 40 && v < 130;
      bright += v > 200;  // soft tissue and bone
    }
  }
  *darkFraction = double(dark) / n;
  *brightFraction = double(bright) / n;
  const double mean = sum / n;
  return std::sqrt(std::max(0.0, sum2 / n - mean * mean));
}

// Mean grey of the (2r+1)^2 pixels around (x, y).
double meanAround(const QImage& gray, int x, int y, int r) {
  double sum = 0;
  int n = 0;
  for (int yy = y - r; yy <= y + r; ++yy)
    for (int xx = x - r; xx <= x + r; ++xx) {
      if (!gray.rect().contains(xx, yy)) continue;
      sum += gray.constScanLine(yy)[xx];
      ++n;
    }
  return n ? sum / n : 0;
}

TEST_F(Screenshot, ShowsThePhantomsAnatomyAndItsNodule) {
  const QString study = makeStudy();
  ASSERT_FALSE(study.isEmpty());
  // The crosshair goes to the first nodule of the phantom's ground truth.
  QFile truth(study + QStringLiteral("/truth.csv"));
  ASSERT_TRUE(truth.open(QIODevice::ReadOnly));
  const QStringList rows = QString::fromUtf8(truth.readAll()).split(QLatin1Char('\n'), Qt::SkipEmptyParts);
  ASSERT_GE(rows.size(), 2) << "the phantom has no nodule";
  const QStringList header = rows[0].split(QLatin1Char(',')), nodule = rows[1].split(QLatin1Char(','));
  const auto field = [&](const char* name) { return nodule.value(header.indexOf(QLatin1String(name))); };
  const QString cursor = field("coordX") + "," + field("coordY") + "," + field("coordZ");
  const double diameter = field("diameter_mm").toDouble();
  ASSERT_GT(diameter, 3.0);

  const QString png = dir.filePath(QStringLiteral("shot.png"));
  QString out, err;
  const int rc = runProcess(xvfbRun,
                            {"-a", "-s", "-screen 0 1600x1200x24", QStringLiteral(HILUM_WORKSTATION),
                             "--screenshot", png, "--size", "1280x800", "--cursor", cursor, study},
                            &out, &err);
  ASSERT_EQ(rc, 0) << err.toStdString();
  QImage image(png);
  ASSERT_FALSE(image.isNull());
  EXPECT_GE(image.width(), 1280);
  const QImage gray = image.convertToFormat(QImage::Format_Grayscale8);
  double dark = 0, bright = 0;
  EXPECT_GT(stdDev(gray, gray.rect(), &dark, &bright), 20.0);  // not blank

  const QStringList lines = out.split(QLatin1Char('\n'), Qt::SkipEmptyParts);
  ASSERT_EQ(lines.size(), 3) << out.toStdString();
  for (const QString& line : lines) {
    const QStringList f = line.split(QLatin1Char(' '));
    ASSERT_EQ(f.size(), 7) << line.toStdString();
    const QRect viewport(f[1].toInt(), f[2].toInt(), f[3].toInt(), f[4].toInt());
    ASSERT_TRUE(gray.rect().contains(viewport)) << line.toStdString();
    // Anatomy: dark lung/air and bright body in the plane (axial: the middle
    // half, both lungs and the mediastinum; the others: all but the edges).
    const bool axial = f[0] == QLatin1String("axial");
    const int mx = viewport.width() / (axial ? 4 : 12), my = viewport.height() / (axial ? 4 : 12);
    const double sd = stdDev(gray, viewport.adjusted(mx, my, -mx, -my), &dark, &bright);
    EXPECT_GT(sd, 30.0) << line.toStdString();
    EXPECT_GT(dark, 0.03) << line.toStdString();
    EXPECT_GT(bright, 0.03) << line.toStdString();
    // The nodule sits under the crosshair (its gap leaves the centre visible):
    // denser than lung (-850 HU is grey 85 in the lung window) in every plane.
    const QPoint cross(f[5].toInt(), f[6].toInt());
    ASSERT_TRUE(viewport.contains(cross)) << line.toStdString();
    EXPECT_GT(meanAround(gray, cross.x(), cross.y(), 1), 110) << line.toStdString();
  }
}

// --analyze with a tiny bundle in the real formats (HILUM_MODEL_BUNDLE): the
// findings table has rows, and the selected finding's outline is drawn in the
// planes (pending yellow, on the ring the program reports, off the crosshair).
TEST_F(Screenshot, AnalyzeShowsTheFindingsAndTheirOutlines) {
  const QString study = dir.filePath(QStringLiteral("small"));
  QString err;
  ASSERT_EQ(runProcess(QStringLiteral(HILUM_CLI),
                       {"-q", "phantom", "--out", study, "--seed", "11", "--slices", "16", "--nodules", "2"},
                       nullptr, &err),
            0)
      << err.toStdString();
  hilum::test::TinyBundleOptions b;
  b.nodule_bias = 8;
  b.head_std = 0.5;
  const std::filesystem::path bundle = dir.filePath(QStringLiteral("bundle")).toStdString();
  hilum::test::write_tiny_bundle(bundle, b);
  qputenv("HILUM_MODEL_BUNDLE", QByteArray::fromStdString(bundle.string()));
  const QString png = dir.filePath(QStringLiteral("analyzed.png"));
  QString out;
  const int rc =
      runProcess(xvfbRun,
                 {"-a", "-s", "-screen 0 1600x1200x24", QStringLiteral(HILUM_WORKSTATION), "--screenshot",
                  png, "--analyze", "--max-findings", "3", "--size", "1280x800", study},
                 &out, &err);
  qunsetenv("HILUM_MODEL_BUNDLE");
  ASSERT_EQ(rc, 0) << err.toStdString();
  const QImage image(png);
  ASSERT_FALSE(image.isNull());
  const QStringList lines = out.split(QLatin1Char('\n'), Qt::SkipEmptyParts);
  ASSERT_GE(lines.size(), 5) << out.toStdString();
  EXPECT_EQ(lines[3], QStringLiteral("findings 3")) << out.toStdString();
  int overlays = 0;
  for (const QString& line : lines) {
    const QStringList f = line.split(QLatin1Char(' '));
    if (f[0] != QLatin1String("overlay")) continue;
    ++overlays;
    ASSERT_EQ(f.size(), 5) << line.toStdString();
    const QPointF c(f[2].toDouble(), f[3].toDouble());
    const double r = f[4].toDouble();
    ASSERT_GT(r, 4.0) << line.toStdString();
    int onRing = 0, samples = 0;
    for (int y = int(c.y() - r - 4); y <= int(c.y() + r + 4); ++y) {
      for (int x = int(c.x() - r - 4); x <= int(c.x() + r + 4); ++x) {
        const double dx = x - c.x(), dy = y - c.y();
        if (!image.rect().contains(x, y)) continue;
        // The crosshair lines stop 12 px from the centre; further out, skip them.
        if (r > 9 && (std::abs(dx) < 4 || std::abs(dy) < 4)) continue;
        if (std::abs(std::hypot(dx, dy) - r) > 2.5) continue;
        ++samples;
        const QColor px = image.pixelColor(x, y);
        onRing += px.red() > 200 && px.green() > 150 && px.green() < 230 && px.blue() < 110;
      }
    }
    EXPECT_GT(onRing, samples / 4) << line.toStdString() << ": " << onRing << " of " << samples;
  }
  EXPECT_GE(overlays, 1) << out.toStdString();
}

TEST_F(Screenshot, BadStudyExitsTwoWithoutWritingAnImage) {
  const QString png = dir.filePath(QStringLiteral("shot.png"));
  QDir().mkpath(dir.filePath(QStringLiteral("empty")));
  QString err;
  // No X server needed: the study fails to load before anything is drawn, and
  // xvfb-run's own clean-up can fail (exit 5) when several run at once. The
  // workstation inherits this process's offscreen platform.
  const int rc = runProcess(QStringLiteral(HILUM_WORKSTATION), {"--screenshot", png, dir.filePath("empty")},
                            nullptr, &err);
  EXPECT_EQ(rc, 2) << err.toStdString();
  EXPECT_TRUE(err.contains(QStringLiteral("hilum-workstation:"))) << err.toStdString();
  EXPECT_FALSE(QFile::exists(png));
}

TEST(WorkstationCommandLine, RefusesWhatItCannotDo) {
  // Runs offscreen (inherited from this test process): no display needed.
  QTemporaryDir dir;
  const QString png = dir.filePath(QStringLiteral("shot.png"));
  QString err;
  // --analyze without a model bundle is refused up front. HILUM_DEFAULT_BUNDLE=none
  // hides the demo bundle of the source tree (and any beside the program).
  qunsetenv("HILUM_MODEL_BUNDLE");
  qputenv("HILUM_DEFAULT_BUNDLE", "none");
  const int noBundle = runProcess(QStringLiteral(HILUM_WORKSTATION),
                                  {"--screenshot", png, "--analyze", dir.path()}, nullptr, &err);
  EXPECT_EQ(noBundle, 2) << err.toStdString();
  EXPECT_TRUE(err.contains(QStringLiteral("--analyze needs a model bundle, and none was found")))
      << err.toStdString();
  // A value other than "none" is a configuration error that names the variable.
  qputenv("HILUM_DEFAULT_BUNDLE", "off");
  const int badValue = runProcess(QStringLiteral(HILUM_WORKSTATION),
                                  {"--screenshot", png, "--analyze", dir.path()}, nullptr, &err);
  qunsetenv("HILUM_DEFAULT_BUNDLE");
  EXPECT_EQ(badValue, 2) << err.toStdString();
  EXPECT_TRUE(err.contains(QStringLiteral("HILUM_DEFAULT_BUNDLE is 'off'"))) << err.toStdString();
  EXPECT_EQ(
      runProcess(QStringLiteral(HILUM_WORKSTATION),
                 {"--screenshot", png, "--analyze", "--model-bundle", dir.path(), dir.path()}, nullptr, &err),
      2);
  EXPECT_TRUE(err.contains(QStringLiteral("not a model bundle (no manifest.json)"))) << err.toStdString();
  EXPECT_EQ(runProcess(QStringLiteral(HILUM_WORKSTATION),
                       {"--screenshot", png, "--device", "gpu", dir.path()}, nullptr, &err),
            2);
  EXPECT_TRUE(err.contains(QStringLiteral("--device must be cpu, cuda or auto"))) << err.toStdString();
  EXPECT_EQ(runProcess(QStringLiteral(HILUM_WORKSTATION), {"--screenshot", png}, nullptr, &err), 2);
  EXPECT_TRUE(err.contains(QStringLiteral("needs a STUDY"))) << err.toStdString();
  EXPECT_EQ(runProcess(QStringLiteral(HILUM_WORKSTATION), {"--screenshot", png, "--size", "big", dir.path()},
                       nullptr, &err),
            2);
  EXPECT_EQ(runProcess(QStringLiteral(HILUM_WORKSTATION),
                       {"--screenshot", png, "--cursor", "1,2", dir.path()}, nullptr, &err),
            2);
  EXPECT_TRUE(err.contains(QStringLiteral("--cursor"))) << err.toStdString();
  EXPECT_FALSE(QFile::exists(png));
}

}  // namespace
}  // namespace hilum::ui
