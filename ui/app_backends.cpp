#include "ui/app_backends.h"

#include <QCoreApplication>
#include <QDir>
#include <QFileInfo>
#include <QtGlobal>
#include <mutex>

#include "app/narrative.h"

#if defined(HILUM_HAVE_IMAGING) && HILUM_HAVE_IMAGING
#include "app/analyze.h"
#include "app/assistant.h"
#include "app/report_content.h"
#include "app/report_pdf.h"
#include "app/report_sr.h"
#include "model/file_io.h"
#if defined(HILUM_HAVE_PACS) && HILUM_HAVE_PACS
#include "app/pacs/encapsulated_pdf.h"
#endif
#if defined(HILUM_HAVE_REPORT_PDF) && HILUM_HAVE_REPORT_PDF
#include "app/pdf/report_pdf_qt.h"
#endif
#endif

namespace hilum::ui {

namespace fs = std::filesystem;

namespace {

QString qs(const std::string& s) { return QString::fromStdString(s); }

bool holdsBundle(const fs::path& dir) {
  std::error_code ec;
  return fs::is_regular_file(dir / "manifest.json", ec);
}

}  // namespace

Result<std::optional<fs::path>> locateModelBundle(const QString& explicitDir, QStringList* tried) {
  using Found = std::optional<fs::path>;
  if (!explicitDir.isEmpty()) return Found(explicitDir.toStdString());
  const QString env = qEnvironmentVariable("HILUM_MODEL_BUNDLE");
  if (!env.isEmpty()) return Found(env.toStdString());
  HILUM_ASSIGN_OR_RETURN(const bool builtIn, hilum::built_in_bundles_allowed());
  if (!builtIn) return Found();
  const QString bin = QCoreApplication::applicationDirPath();
  for (const QString& rel : {QStringLiteral("resources/models"), QStringLiteral("../resources/models"),
                             QStringLiteral("../share/hilum/models")}) {
    const QString dir = QDir::cleanPath(bin + QLatin1Char('/') + rel);
    if (tried) *tried << dir;
    if (holdsBundle(dir.toStdString())) return Found(dir.toStdString());
  }
  // The demo bundle of the source tree this binary was built from (as `hilum analyze`).
  HILUM_ASSIGN_OR_RETURN(fs::path demo, hilum::default_model_bundle_dir());
  if (!demo.empty()) return Found(std::move(demo));
  return Found();
}

Finding toUiFinding(const hilum::Finding& f) {
  Finding u;
  u.id = f.id;
  u.centerMm = {f.center_mm[0], f.center_mm[1], f.center_mm[2]};
  u.location = qs(lobe_phrase(f.location));
  if (f.location.juxtapleural) u.location += QStringLiteral(" (juxtapleural)");
  u.longAxisMm = f.long_axis_mm;
  u.shortAxisMm = f.short_axis_mm;
  u.volumeMm3 = f.volume_mm3;
  u.type = f.type;
  u.probability = f.probability;
  u.malignancy = f.malignancy;
  const std::string_view cat = lung_rads_label(f.lung_rads.category);
  u.lungRads = QString::fromLatin1(cat.data(), static_cast<qsizetype>(cat.size()));
  return u;
}

std::vector<FindingReview> toFindingReviews(const std::vector<ReviewedFinding>& review) {
  std::vector<FindingReview> out;
  for (const ReviewedFinding& r : review) {
    FindingReview f;
    f.id = r.original.id;
    f.decision = r.state == ReviewState::Accepted   ? ReviewDecision::kAccepted
                 : r.state == ReviewState::Rejected ? ReviewDecision::kRejected
                                                    : ReviewDecision::kPending;
    f.long_axis_mm = r.current.longAxisMm;
    f.short_axis_mm = r.current.shortAxisMm;
    f.type = r.current.type;
    f.lung_rads = r.current.lungRads.toStdString();
    out.push_back(std::move(f));
  }
  return out;
}

Result<FindingsDocument> reviewedDocument(const ReportInput& input) {
  if (!input.study.analysis) return bad_input("the study has not been analysed (Analyze first)");
  return apply_review(input.study.analysis->findings, toFindingReviews(input.review));
}

#if defined(HILUM_HAVE_IMAGING) && HILUM_HAVE_IMAGING

namespace {

// The model bundle, loaded by the first worker that needs it.
class BundleSlot {
 public:
  BundleSlot(fs::path dir, BundleOptions options) : m_dir(std::move(dir)), m_options(std::move(options)) {}

  Result<std::shared_ptr<const ModelBundle>> get(Progress& progress) {
    std::lock_guard<std::mutex> lock(m_mutex);
    if (m_bundle) return m_bundle;
    progress.report(0, "loading the model bundle");
    HILUM_ASSIGN_OR_RETURN(m_bundle, load_model_bundle(m_dir, m_options));
    return m_bundle;
  }

 private:
  std::mutex m_mutex;
  fs::path m_dir;
  BundleOptions m_options;
  std::shared_ptr<const ModelBundle> m_bundle;
};

// The impression an exported report carries.
Narrative narrativeFor(const ReportInput& input, const FindingsDocument& doc,
                       const ImpressionDrafter* drafter, Progress& progress) {
  if (input.impression.trimmed().isEmpty()) return write_impression(doc, drafter, &progress);
  Narrative n;
  n.text = input.impression.trimmed().toStdString();
  if (input.impressionEdited) {
    n.source = Narrative::Source::kRadiologist;
    n.note = input.draft.impression.isEmpty() ? "Written by the radiologist."
                                              : "Edited by the radiologist from the drafted impression.";
  } else {
    n.source = input.draft.fromModel ? Narrative::Source::kModel : Narrative::Source::kTemplate;
    n.note = input.draft.note.toStdString();
  }
  return n;
}

Status writeSr(const ReportInput& input, const FindingsDocument& doc, const Narrative& narrative,
               const fs::path& out) {
  SrOptions sr;
  sr.impression = narrative.text;
  // The SR has no free notes: the review summary goes with the impression.
  sr.impression_note = narrative.note;
  for (const std::string& note : doc.notes) {
    if (note.rfind("Radiologist review:", 0) == 0 ||
        note.find("edited by the radiologist") != std::string::npos)
      sr.impression_note += (sr.impression_note.empty() ? "" : " ") + note;
  }
  sr.software_version = doc.generator;
  return write_report_sr(out, doc, input.study.info, sr);
}

Status writePdf(const ReportInput& input, const FindingsDocument& doc, const Narrative& narrative,
                const fs::path& out) {
  if (!have_pdf_renderer()) return unsupported("this build cannot write PDF reports (no Qt PDF renderer)");
  static const Volume kNoVolume;
  const Volume& volume = input.study.volume ? *input.study.volume : kNoVolume;
  HILUM_ASSIGN_OR_RETURN(ReportContent content,
                         build_report_content(doc, volume, input.study.info, narrative));
  return write_report_pdf(content, out);
}

// What an exported report carries: the reviewed findings and the impression
// (narrativeFor); loads the bundle for its drafter only when the panel has no
// impression yet.
struct ReportBody {
  FindingsDocument doc;
  Narrative narrative;
};

Result<ReportBody> reportBody(BundleSlot& slot, const ReportInput& input, Progress& progress) {
  ReportBody body;
  HILUM_ASSIGN_OR_RETURN(body.doc, reviewedDocument(input));
  std::shared_ptr<const ImpressionDrafter> drafter;
  if (input.impression.trimmed().isEmpty()) {
    HILUM_ASSIGN_OR_RETURN(auto bundle, slot.get(progress));
    drafter = model_bundle_drafter(*bundle);
  }
  body.narrative = narrativeFor(input, body.doc, drafter.get(), progress);
  if (progress.cancelled()) return cancelled_error();
  return body;
}

QString draftLabel(const Narrative& n) {
  return n.source == Narrative::Source::kModel
             ? QObject::tr("AI draft by the general text model: review and edit before use")
             : QObject::tr("Template impression from the structured findings");
}

}  // namespace

WorkstationBackends makeAppBackends(const AppBackendOptions& options) {
  WorkstationBackends b;
#if defined(HILUM_HAVE_REPORT_PDF) && HILUM_HAVE_REPORT_PDF
  (void)install_qt_pdf_renderer();
#endif
  if (!options.bundleDir) {
    QString where = options.searched.isEmpty()
                        ? QString()
                        : QObject::tr(" (looked in %1)").arg(options.searched.join(QStringLiteral(", ")));
    b.unavailable = QObject::tr(
                        "needs a model bundle, and none was found%1: start with --model-bundle DIR or set "
                        "HILUM_MODEL_BUNDLE")
                        .arg(where);
    return b;
  }
  BundleOptions bundleOptions;
  bundleOptions.device = options.device;
  bundleOptions.findings.min_probability = options.minProbability;
  bundleOptions.findings.max_findings = options.maxFindings;
  auto slot = std::make_shared<BundleSlot>(*options.bundleDir, bundleOptions);

  b.analyze = [slot](const StudyContext& study, Progress& progress) -> Result<AnalysisOutput> {
    if (!study.volume) return bad_input("no study is open");
    std::shared_ptr<const ModelBundle> bundle;
    {
      ProgressRange p(progress, 0.0, 0.05);
      HILUM_ASSIGN_OR_RETURN(bundle, slot->get(p));
    }
    if (progress.cancelled()) return cancelled_error();
    ProgressRange p(progress, 0.05, 1.0);
    HILUM_ASSIGN_OR_RETURN(VolumeAnalysis a, analyze_volume(*study.volume, study.info,
                                                            study.clinicalText.toStdString(), *bundle, p));
    if (progress.cancelled()) return cancelled_error();
    AnalysisOutput out;
    for (const hilum::Finding& f : a.findings.findings) out.findings.push_back(toUiFinding(f));
    for (const std::string& note : a.findings.notes) out.notes << qs(note);
    out.source = QObject::tr("model bundle %1").arg(qs(a.findings.model_bundle));
    auto record = std::make_shared<AnalysisRecord>();
    record->findings = std::move(a.findings);
    record->candidates = std::move(a.candidates);
    out.record = std::move(record);
    return out;
  };

  b.draftReport = [slot](const ReportInput& input, Progress& progress) -> Result<ReportDraft> {
    HILUM_ASSIGN_OR_RETURN(FindingsDocument doc, reviewedDocument(input));
    HILUM_ASSIGN_OR_RETURN(auto bundle, slot->get(progress));
    const auto drafter = model_bundle_drafter(*bundle);
    const Narrative n = write_impression(doc, drafter.get(), &progress);
    if (progress.cancelled()) return cancelled_error();
    ReportDraft d;
    d.impression = qs(n.text);
    d.fromModel = n.source == Narrative::Source::kModel;
    d.label = draftLabel(n);
    d.note = qs(n.note);
    return d;
  };

  // Every export drafts first when the panel has no impression yet.
  auto exporter = [slot](auto write) -> ReportExporter {
    return [slot, write](const ReportInput& input, const fs::path& out, Progress& progress) -> Status {
      HILUM_ASSIGN_OR_RETURN(ReportBody body, reportBody(*slot, input, progress));
      return write(input, body.doc, body.narrative, out);
    };
  };
  b.exportJson = exporter([](const ReportInput&, const FindingsDocument& doc, const Narrative&,
                             const fs::path& out) { return write_findings_json(out, doc); });
  b.exportDicomSr = exporter(writeSr);
  if (have_pdf_renderer()) b.exportPdf = exporter(writePdf);

#if defined(HILUM_HAVE_PACS) && HILUM_HAVE_PACS
  b.writePacsObjects = [slot](const ReportInput& input, const fs::path& dir,
                              Progress& progress) -> Result<std::vector<fs::path>> {
    HILUM_ASSIGN_OR_RETURN(ReportBody body, reportBody(*slot, input, progress));
    const FindingsDocument& doc = body.doc;
    const Narrative& n = body.narrative;
    std::vector<fs::path> files;
    HILUM_RETURN_IF_ERROR(writeSr(input, doc, n, dir / "report-sr.dcm"));
    files.push_back(dir / "report-sr.dcm");
    if (have_pdf_renderer()) {
      HILUM_RETURN_IF_ERROR(writePdf(input, doc, n, dir / "report.pdf"));
      HILUM_ASSIGN_OR_RETURN(std::string uid, pacs::write_encapsulated_pdf(
                                                  dir / "report.pdf", input.study.info,
                                                  pacs::EncapsulatedPdfOptions{}, dir / "report-pdf.dcm"));
      (void)uid;
      files.push_back(dir / "report-pdf.dcm");
    }
    return files;
  };
#endif

  b.ask = [slot](const AssistantQuery& query, const TokenSink& onToken, Progress& progress) -> Status {
    HILUM_ASSIGN_OR_RETURN(FindingsDocument doc, reviewedDocument(query.study));
    HILUM_ASSIGN_OR_RETURN(auto bundle, slot->get(progress));
    const auto assistant = model_bundle_assistant(*bundle);
    AnswerSink sink = [&](std::string_view text) {
      onToken(QString::fromUtf8(text.data(), static_cast<qsizetype>(text.size())));
      return true;
    };
    HILUM_ASSIGN_OR_RETURN(std::string answer,
                           assistant->answer(doc.findings, query.question.toStdString(), sink, &progress));
    (void)answer;
    return Status::Ok();
  };
  b.assistantNote = QObject::tr(
      "Answers come from the general text model of the model bundle, a small demo model, with the reviewed "
      "findings as context. They may be wrong: check them against the images and the findings table.");
  return b;
}

#else

WorkstationBackends makeAppBackends(const AppBackendOptions&) {
  WorkstationBackends b;
  b.unavailable = QObject::tr("needs the imaging build (DICOM, analysis pipeline), which this build lacks");
  return b;
}

#endif

}  // namespace hilum::ui
