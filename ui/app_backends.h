// The workstation's AI back ends on Hilum's own pipeline and model bundle
// (app/analyze.h): analysis of the open volume, the impression drafted by the
// general text model (app/narrative.h), export of the reviewed findings as
// PDF, DICOM SR and findings.json, the DICOM objects sent back to the PACS,
// and the assistant (app/assistant.h).
//
// The bundle is loaded once, on the first worker that needs it, so the window
// opens at once; a bundle that does not load makes each call fail with the
// loader's message (naming the file). Reports always follow the radiologist's
// review (app/review.h): rejected findings left out, edits applied and named
// in the report's notes; the AI's own output (AnalysisRecord) never changes.
#pragma once

#include <QString>
#include <QStringList>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "app/review.h"
#include "fusion/findings.h"
#include "ui/workstation_backends.h"

namespace hilum::ui {

struct AnalysisRecord {
  FindingsDocument findings;  // the AI's findings exactly as the pipeline gave them
  std::vector<ScoredCandidate> candidates;
};

// Where the model bundle is: `explicitDir` when not empty (even if it holds no
// bundle: loading then says what is wrong), else $HILUM_MODEL_BUNDLE, else the
// first of <program dir>/resources/models, <program dir>/../resources/models
// and <program dir>/../share/hilum/models that holds a manifest.json, else the
// demo bundle of the source tree (default_model_bundle_dir()). The last two
// steps are skipped when $HILUM_DEFAULT_BUNDLE is "none" (built_in_bundles_allowed()).
// nullopt when none; `tried` (optional) receives the folders looked at.
// kBadInput when $HILUM_DEFAULT_BUNDLE holds another value.
Result<std::optional<std::filesystem::path>> locateModelBundle(const QString& explicitDir,
                                                               QStringList* tried = nullptr);

struct AppBackendOptions {
  std::optional<std::filesystem::path> bundleDir;  // nullopt: no bundle, the AI features are unavailable
  std::string device = "auto";                     // image branch and fusion: cpu, cuda or auto
  double minProbability = 0.5;                     // a candidate becomes a finding at or above this
  int maxFindings = 25;
  QStringList searched;  // where a bundle was looked for (for the message)
};

// Back ends on the bundle. Without one every AI function is empty and
// `unavailable` says that no bundle was found and where to put one. Installs
// the Qt PDF renderer (call on the GUI thread, before workers start).
WorkstationBackends makeAppBackends(const AppBackendOptions& options);

// Conversions (exposed for tests).
Finding toUiFinding(const hilum::Finding& finding);
std::vector<FindingReview> toFindingReviews(const std::vector<ReviewedFinding>& review);
// The AI's findings with the radiologist's review applied (kBadInput without an
// analysis record, or when the review does not fit the record).
Result<FindingsDocument> reviewedDocument(const ReportInput& input);

}  // namespace hilum::ui
