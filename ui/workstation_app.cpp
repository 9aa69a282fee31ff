#include "ui/workstation_app.h"

#include <QApplication>
#include <QCommandLineParser>
#include <QRegularExpression>
#include <QTimer>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <utility>

#include "ui/app_backends.h"
#include "ui/main_window.h"
#include "ui/slice_view.h"
#include "ui/study_document.h"
#include "ui/theme.h"

namespace hilum::ui {

namespace {

int fail(int code, const QString& message) {
  std::fprintf(stderr, "hilum-workstation: %s\n", message.toLocal8Bit().constData());
  return code;
}

}  // namespace

void setApplicationIdentity(QApplication& app) {
  app.setOrganizationName(QStringLiteral("Hilum"));
  app.setApplicationName(QStringLiteral("Workstation"));
  app.setApplicationDisplayName(QStringLiteral("Hilum Workstation"));
}

namespace {

struct Run {
  std::optional<WorkstationBackends> backends;  // given by the caller; else from the bundle
};

int run(QApplication& app, Run given) {
  QCommandLineParser parser;
  parser.setApplicationDescription(
      QStringLiteral("Hilum Workstation: lung-nodule CT reading (research software, not a medical device)."));
  parser.addHelpOption();
  parser.addPositionalArgument(QStringLiteral("STUDY"),
                               QStringLiteral("Study folder, DICOMDIR or DICOM files"),
                               QStringLiteral("[STUDY...]"));
  QCommandLineOption screenshot(QStringLiteral("screenshot"),
                                QStringLiteral("Load STUDY, save the window as a PNG image and exit."),
                                QStringLiteral("OUT.png"));
  QCommandLineOption analyze(QStringLiteral("analyze"), QStringLiteral("With --screenshot: analyze first."));
  QCommandLineOption size(QStringLiteral("size"),
                          QStringLiteral("With --screenshot: window size (default 1600x1000)."),
                          QStringLiteral("WxH"), QStringLiteral("1600x1000"));
  QCommandLineOption cursor(QStringLiteral("cursor"),
                            QStringLiteral("With --screenshot: put the crosshair at this LPS position (mm)."),
                            QStringLiteral("X,Y,Z"));
  QCommandLineOption bundle(QStringLiteral("model-bundle"),
                            QStringLiteral("Model bundle folder (default: $HILUM_MODEL_BUNDLE, else "
                                           "resources/models beside the program, unless "
                                           "HILUM_DEFAULT_BUNDLE=none)."),
                            QStringLiteral("DIR"));
  QCommandLineOption device(QStringLiteral("device"),
                            QStringLiteral("Device of the image branch: cpu, cuda or auto (default auto)."),
                            QStringLiteral("D"), QStringLiteral("auto"));
  QCommandLineOption minProbability(
      QStringLiteral("min-probability"),
      QStringLiteral("A candidate becomes a finding at or above this (default 0.5)."), QStringLiteral("P"),
      QStringLiteral("0.5"));
  QCommandLineOption maxFindings(QStringLiteral("max-findings"),
                                 QStringLiteral("At most this many findings (default 25)."),
                                 QStringLiteral("N"), QStringLiteral("25"));
  parser.addOption(screenshot);
  parser.addOption(cursor);
  parser.addOption(analyze);
  parser.addOption(size);
  parser.addOption(bundle);
  parser.addOption(device);
  parser.addOption(minProbability);
  parser.addOption(maxFindings);
  parser.process(app);  // --help, unknown options: prints and exits

  const QStringList study = parser.positionalArguments();
  const bool screenshotMode = parser.isSet(screenshot);
  const QString deviceName = parser.value(device);
  if (deviceName != QLatin1String("cpu") && deviceName != QLatin1String("cuda") &&
      deviceName != QLatin1String("auto")) {
    return fail(2, QStringLiteral("--device must be cpu, cuda or auto (got '%1')").arg(deviceName));
  }
  bool numberOk = false;
  const double minP = parser.value(minProbability).toDouble(&numberOk);
  if (!numberOk || !(minP >= 0 && minP <= 1)) {
    return fail(2, QStringLiteral("--min-probability must be a number from 0 to 1 (got '%1')")
                       .arg(parser.value(minProbability)));
  }
  const int maxN = parser.value(maxFindings).toInt(&numberOk);
  if (!numberOk || maxN < 1 || maxN > 1000) {
    return fail(2, QStringLiteral("--max-findings must be a whole number from 1 to 1000 (got '%1')")
                       .arg(parser.value(maxFindings)));
  }
  WorkstationBackends backends;
  if (given.backends) {
    backends = std::move(*given.backends);
  } else {
    AppBackendOptions options;
    auto located = locateModelBundle(parser.value(bundle), &options.searched);
    if (!located.ok()) return fail(2, QString::fromStdString(located.error().message()));
    options.bundleDir = std::move(*located);
    options.device = deviceName.toStdString();
    options.minProbability = minP;
    options.maxFindings = maxN;
    std::error_code ec;
    if (screenshotMode && parser.isSet(analyze) && options.bundleDir &&
        !std::filesystem::is_regular_file(*options.bundleDir / "manifest.json", ec)) {
      return fail(2, QStringLiteral("--analyze: %1: not a model bundle (no manifest.json)")
                         .arg(QString::fromStdString(options.bundleDir->string())));
    }
    backends = makeAppBackends(options);
  }

  if (!screenshotMode) {
    MainWindow window(std::move(backends));
    window.show();
    if (!study.isEmpty()) window.openStudy(study);
    return app.exec();
  }

  if (study.isEmpty()) return fail(2, QStringLiteral("--screenshot needs a STUDY"));
  const QRegularExpressionMatch wh =
      QRegularExpression(QStringLiteral("^(\\d+)x(\\d+)$")).match(parser.value(size));
  if (!wh.hasMatch()) return fail(2, QStringLiteral("--size must look like 1600x1000"));
  std::optional<Vec3> cursorMm;
  if (parser.isSet(cursor)) {
    const QStringList xyz = parser.value(cursor).split(QLatin1Char(','));
    bool ok = xyz.size() == 3;
    Vec3 v{};
    for (int a = 0; ok && a < 3; ++a) v[a] = xyz[a].toDouble(&ok);
    if (!ok) return fail(2, QStringLiteral("--cursor must look like -12.5,30,-110 (LPS mm)"));
    cursorMm = v;
  }
  if (parser.isSet(analyze) && !backends.analyze) {
    return fail(2, QStringLiteral("--analyze %1")
                       .arg(backends.unavailable.isEmpty() ? QString::fromLatin1(kNotAvailable)
                                                           : backends.unavailable));
  }

  MainWindow::Options options;
  options.interactive = false;
  options.useSettings = false;  // a screenshot must not depend on this user's settings
  MainWindow window(std::move(backends), options);
  window.resize(wh.captured(1).toInt(), wh.captured(2).toInt());
  window.show();

  const QString out = parser.value(screenshot);
  const bool withAnalysis = parser.isSet(analyze);
  int exitCode = 1;
  auto shoot = [&] {
    // Let layouts settle and every plane paint before grabbing.
    QTimer::singleShot(300, &window, [&] {
      QApplication::processEvents();
      if (Status s = window.saveScreenshot(out); !s.ok()) {
        exitCode = fail(exit_code_for(s.error()), QString::fromStdString(s.error().message()));
      } else {
        const double dpr = window.devicePixelRatioF();
        QStringList lines{window.viewportGeometry(dpr)};
        if (withAnalysis) {
          StudyDocument* doc = window.document();
          lines << QStringLiteral("findings %1").arg(doc->findings()->rowCount());
          const int row = doc->findings()->rowForId(doc->selectedFindingId());
          for (Plane plane : kPlanes) {
            SliceView::Outline o;
            if (row < 0 || !window.view(plane)->findingOutline(doc->findings()->at(row), &o)) continue;
            const QPointF c = (o.centre + QPointF(window.view(plane)->mapTo(&window, QPoint(0, 0)))) * dpr;
            lines << QStringLiteral("overlay %1 %2 %3 %4")
                         .arg(planeName(plane).toLower())
                         .arg(std::lround(c.x()))
                         .arg(std::lround(c.y()))
                         .arg(o.radius * dpr, 0, 'f', 1);
          }
        }
        std::printf("%s\n", lines.join(QLatin1Char('\n')).toLocal8Bit().constData());
        exitCode = 0;
      }
      app.exit(exitCode);
    });
  };
  QObject::connect(&window, &MainWindow::studyLoadFailed, &app, [&](const QString& message, int code) {
    exitCode = fail(code, message);
    app.exit(exitCode);
  });
  QObject::connect(
      &window, &MainWindow::analysisFinished, &app, [&](bool ok, const QString& message, int code) {
        if (!ok) {
          exitCode = fail(code == 0 ? 1 : code, QStringLiteral("analysis failed: %1").arg(message));
          app.exit(exitCode);
          return;
        }
        if (window.document()->findings()->rowCount() > 0) {
          window.document()->selectFinding(window.document()->findings()->at(0).original.id);
        }
        // The report panel shows the drafted impression (drafting starts with the findings).
        if (!window.isReporting()) shoot();
      });
  QObject::connect(&window, &MainWindow::reportDrafted, &app, [&](bool ok, const QString& message) {
    if (!ok)
      std::fprintf(stderr, "hilum-workstation: no impression drafted: %s\n",
                   message.toLocal8Bit().constData());
    if (!window.isAnalyzing()) shoot();
  });
  QObject::connect(&window, &MainWindow::studyLoaded, &app, [&] {
    if (cursorMm) window.document()->setCursor(window.document()->volume()->voxel_from_world(*cursorMm));
    if (withAnalysis) {
      window.analyze();
    } else {
      shoot();
    }
  });
  QTimer::singleShot(0, &window, [&] { window.openStudy(study); });
  QTimer::singleShot(300000, &app, [&] {
    exitCode = fail(1, QStringLiteral("timed out after 5 minutes"));
    app.exit(exitCode);
  });
  app.exec();
  return exitCode;
}

}  // namespace

int runWorkstation(QApplication& app) { return run(app, {}); }

int runWorkstation(QApplication& app, WorkstationBackends backends) {
  Run given;
  given.backends = std::move(backends);
  return run(app, std::move(given));
}

}  // namespace hilum::ui
