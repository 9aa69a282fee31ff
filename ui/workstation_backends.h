// The AI back ends as the workstation sees them. ui/app_backends.h fills them
// in from a model bundle (analysis, report drafting and export, the
// assistant); tests plug in their own. Each runs on a worker thread with a
// Progress whose cancelled() the Cancel button sets; none may touch widgets.
// An empty function means "not available": the GUI then shows the feature
// disabled and says why (WorkstationBackends::unavailable), never a stand-in
// result.
#pragma once

#include <QString>
#include <QStringList>
#include <filesystem>
#include <functional>
#include <memory>
#include <vector>

#include "model/progress.h"
#include "model/result.h"
#include "ui/finding.h"
#include "vision/volume.h"

namespace hilum::ui {

// The back end's own record of one analysis (the AI's complete output); the
// GUI keeps it, unchanged, next to the findings it shows and hands it back in
// StudyContext::analysis. Defined by the back end (ui/app_backends.h).
struct AnalysisRecord;

struct StudyContext {
  std::shared_ptr<const Volume> volume;
  StudyInfo info;                                  // PHI: for the report header and the SR only
  QString clinicalText;                            // as the radiologist left it in the clinical text panel
  std::shared_ptr<const AnalysisRecord> analysis;  // the last analysis of this study; null before one
};

struct AnalysisOutput {
  std::vector<Finding> findings;                 // what the findings table shows
  std::shared_ptr<const AnalysisRecord> record;  // may be null (a back end without one)
  QStringList notes;                             // the pipeline's warnings (no PHI)
  QString source;                                // which model produced them ("model bundle hilum-demo 1")
};
// Study + clinical text -> the AI's findings.
using AnalysisRunner = std::function<Result<AnalysisOutput>(const StudyContext&, Progress&)>;

// A drafted impression and where it came from.
struct ReportDraft {
  QString impression;
  QString label;  // "AI draft by the general text model: review and edit before use", "Template impression"
  QString note;   // e.g. why the template replaced the model's draft
  bool fromModel = false;
};

// The study under review: every finding with the radiologist's decision and
// values (`review`), and what the report follows (`findings`: the
// radiologist's version of every finding not rejected).
struct ReportInput {
  StudyContext study;
  std::vector<Finding> findings;
  std::vector<ReviewedFinding> review;
  ReportDraft draft;              // the last draft (empty impression: none yet)
  QString impression;             // the impression as shown in the report panel (for export)
  bool impressionEdited = false;  // the radiologist changed the draft's text
};
using ReportDrafter = std::function<Result<ReportDraft>(const ReportInput&, Progress&)>;
using ReportExporter = std::function<Status(const ReportInput&, const std::filesystem::path& out, Progress&)>;
// Writes the DICOM objects to send to the PACS (the SR and, where PDFs can be
// made, the PDF report as Encapsulated PDF) into `dir`; returns their paths.
using PacsObjectWriter = std::function<Result<std::vector<std::filesystem::path>>(
    const ReportInput&, const std::filesystem::path& dir, Progress&)>;

// A question about the case; the answer arrives token by token through
// `onToken` (called on the worker thread).
struct AssistantQuery {
  QString question;
  ReportInput study;  // the case as reviewed so far
};
using TokenSink = std::function<void(const QString& token)>;
using AssistantResponder = std::function<Status(const AssistantQuery&, const TokenSink& onToken, Progress&)>;

struct WorkstationBackends {
  AnalysisRunner analyze;
  ReportDrafter draftReport;
  ReportExporter exportPdf;
  ReportExporter exportDicomSr;
  ReportExporter exportJson;
  PacsObjectWriter writePacsObjects;
  AssistantResponder ask;
  // Shown in the assistant panel while it is available (where answers come
  // from, how far to trust them).
  QString assistantNote;
  // Why the missing back ends are missing (tooltips and panel messages);
  // empty: kNotAvailable.
  QString unavailable;
};

inline const char* const kNotAvailable = "not available in this build";
// Tooltips of actions that wait for an analysis.
inline const char* const kNeedsAnalysis = "Analyze the study first";

}  // namespace hilum::ui
