// The AI back ends as the workstation sees them. The app layer fills these in
// (analysis: issue 5; report drafting and export: issue 6; the assistant's
// text model: issue 4) with adapters from its own types. Each runs on a worker
// thread with a Progress whose cancelled() the Cancel button sets; none may
// touch widgets. An empty function means "not built": the GUI then shows the
// feature disabled and says why, never a stand-in result.
#pragma once

#include <QString>
#include <filesystem>
#include <functional>
#include <memory>
#include <vector>

#include "model/progress.h"
#include "model/result.h"
#include "ui/finding.h"
#include "vision/volume.h"

namespace hilum::ui {

struct StudyContext {
  std::shared_ptr<const Volume> volume;
  StudyInfo info;
  QString clinicalText;  // as the radiologist left it in the clinical text panel
};

// Study + clinical text -> the AI's findings.
using AnalysisRunner = std::function<Result<std::vector<Finding>>(const StudyContext&, Progress&)>;

// The reviewed findings (rejected ones left out, the radiologist's edits applied).
struct ReportInput {
  StudyContext study;
  std::vector<Finding> findings;
  QString draft;  // the report text as shown (for export)
};
using ReportDrafter = std::function<Result<QString>(const ReportInput&, Progress&)>;
using ReportExporter = std::function<Status(const ReportInput&, const std::filesystem::path& out, Progress&)>;

// A question about the case; the answer arrives token by token through
// `onToken` (called on the worker thread).
struct AssistantQuery {
  QString question;
  StudyContext study;
  std::vector<Finding> findings;
};
using TokenSink = std::function<void(const QString& token)>;
using AssistantResponder = std::function<Status(const AssistantQuery&, const TokenSink& onToken, Progress&)>;

struct WorkstationBackends {
  AnalysisRunner analyze;
  ReportDrafter draftReport;
  ReportExporter exportPdf;
  ReportExporter exportDicomSr;
  ReportExporter exportJson;
  AssistantResponder ask;
};

// Tooltips of the actions whose back end is missing.
inline const char* const kNeedsPipeline = "requires the analysis pipeline (not built yet)";
inline const char* const kNeedsReports = "requires the report generator (not built yet)";
inline const char* const kNeedsTextModel = "requires the text model (not built yet)";

}  // namespace hilum::ui
