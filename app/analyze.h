// `hilum analyze`: one study from DICOM to findings, and the report files
// written next to findings.json. Imaging builds only (DICOM, lung mask,
// candidates, sizing).
//
//   DICOM -> Volume -> lung mask -> candidates -> 2.5D patches -> ResNet image
//   tokens ─┐
//   clinical text -> text model (+ medical LoRA) hidden states ─> fusion head
//   -> nodule probability + malignancy -> NMS, sizing, Lung-RADS (findings)
//
// The runner is a std::function (StudyAnalyzer) so that batch processing and
// tests can plug in another pipeline; analyze_study() with a ModelBundle is
// the real one.
//
// Model bundle (docs/reports.md, "Model bundle"):
//   manifest.json                 {"name": ..., "version": ..., ...}
//   vision/*.safetensors          ResNet, torchvision names (one file)
//   text/                         Hugging Face causal LM with tokenizer.json (the general model)
//   text/adapters/medical/        PEFT LoRA for the clinical note (optional)
//   fusion/*.safetensors          fusion head with its "hilum.fusion" metadata (one file)
// The note is encoded as "<|note|>\n" + text + "<|endoftext|>", the form the
// medical adapter is trained on (scripts/train/train_text.py).
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "app/assistant.h"
#include "app/findings_builder.h"
#include "app/narrative.h"
#include "fusion/findings.h"
#include "model/progress.h"
#include "model/result.h"
#include "vision/io/candidates.h"
#include "vision/patches.h"
#include "vision/volume.h"

namespace hilum {

struct AnalyzeRequest {
  std::vector<std::filesystem::path> inputs;  // DICOM files, folders, DICOMDIRs of one study
  std::string clinical_text;                  // may be empty (the text branch sees no note)
  std::string series;                         // "UID" or "UID#k"; empty: the loader's choice
  int threads = 0;                            // DICOM decode threads (0: all cores)
};

struct StudyAnalysis {
  Volume volume;    // HU
  StudyInfo study;  // PHI: only for the report header and the SR
  FindingsDocument findings;
  std::vector<ScoredCandidate> candidates;  // every candidate with its probability (candidates.csv)
  // Wall time of each stage, in order ("load", "lung mask", ...), seconds.
  std::vector<std::pair<std::string, double>> stage_seconds;
};

using StudyAnalyzer = std::function<Result<StudyAnalysis>(const AnalyzeRequest& request, Progress& progress)>;

class ModelBundle;

// Whether a bundle the site did not name may be used: the demo bundle of the
// source tree here, and in the workstation also a bundle installed beside the
// program. True when $HILUM_DEFAULT_BUNDLE is unset or empty, false when it is
// "none" (a site that runs only the bundle it names; tests of the no-bundle
// paths); kBadInput naming the variable for any other value.
Result<bool> built_in_bundles_allowed();

// The bundle used when the caller names none: $HILUM_MODEL_BUNDLE when set (as
// given: loading says what is wrong with it), else, when built-in bundles are
// allowed, the demo bundle in resources/models/ of the source tree this binary
// was built from, when it is there (manifest.json). An empty path when there is
// none; the error of built_in_bundles_allowed() when that fails.
Result<std::filesystem::path> default_model_bundle_dir();

// Device for the image branch and the fusion attention: "cpu", "cuda" or
// "auto" (CUDA when a GPU is usable). The text branch runs on the CPU.
struct BundleOptions {
  std::string device = "cpu";
  FindingsOptions findings;
  // Views of each patch whose fusion logits are averaged (vision/patches.h
  // parse_view_spec names: a patch_view of the scanner's axes, or a rotated
  // frame); empty: the manifest's "inference.patch_views", else the patch alone.
  std::vector<std::string> patch_views;
};

// Loads every part once; kBadInput naming the file when a part is missing or
// malformed, or when the parts do not fit together (image channels/tokens or
// text width differ from the fusion head's configuration).
Result<std::shared_ptr<const ModelBundle>> load_model_bundle(const std::filesystem::path& dir,
                                                             const BundleOptions& options = {});

// The bundle's name and version ("hilum-demo 1") and its general text model
// (for the narrative impression, and for questions about a case).
std::string model_bundle_label(const ModelBundle& bundle);
std::shared_ptr<const ImpressionDrafter> model_bundle_drafter(const ModelBundle& bundle);
Device model_bundle_device(const ModelBundle& bundle);  // where its networks run
// The patches its image branch takes (three planes, or six with a zoom, nine with a slab).
PatchOptions model_bundle_patch_options(const ModelBundle& bundle);
std::shared_ptr<const CaseAssistant> model_bundle_assistant(const ModelBundle& bundle);

// The fusion stage alone: nodule probability and malignancy of each candidate
// given the study's note (the only place the note enters the pipeline).
struct CandidateScores {
  std::vector<float> probability, malignancy;
  double patches_s = 0, image_s = 0, text_s = 0, fusion_s = 0;  // wall time of each part
};
Result<CandidateScores> score_candidates(const ModelBundle& bundle, const Volume& volume,
                                         const std::vector<Candidate>& candidates,
                                         const std::string& clinical_text, Progress& progress);
// The same on patches already extracted in the scanner's axes: f32 [N, 3, 64,
// 64], normalised as the network expects ((u8 / 255 - 0.5) / 0.25 of the
// windowed planes; kBadInput when the bundle has a view of a rotated frame), with
// the candidates' features when the fusion head takes them (f32 [N, F] in the
// order of its configuration's candidate_features; else undefined).
Result<CandidateScores> score_patches(const ModelBundle& bundle, const Tensor& patches, const Tensor& features,
                                      const std::string& clinical_text, Progress& progress);
// The features the bundle's fusion head takes, of each candidate: f32 [N, F]
// (undefined when it takes none).
Result<Tensor> candidate_features(const ModelBundle& bundle, const std::vector<Candidate>& candidates);

// The real pipeline. Thread-safe: one bundle may serve several studies at once.
// The loader's warnings come first in the findings' notes.
Result<StudyAnalysis> analyze_study(const AnalyzeRequest& request, const ModelBundle& bundle,
                                    Progress& progress);
StudyAnalyzer bundle_analyzer(std::shared_ptr<const ModelBundle> bundle);

// The pipeline after loading, for a volume already in memory (the
// workstation's): lung mask, candidates, fusion, findings. kBadInput when the
// study is not CT. The findings' notes hold the stages' warnings.
struct VolumeAnalysis {
  FindingsDocument findings;
  std::vector<ScoredCandidate> candidates;
  std::vector<std::pair<std::string, double>> stage_seconds;  // as StudyAnalysis
};
Result<VolumeAnalysis> analyze_volume(const Volume& volume, const StudyInfo& study,
                                      const std::string& clinical_text, const ModelBundle& bundle,
                                      Progress& progress);

// The files of one analysed study, written into `out_dir` (created if
// needed), each atomically:
//   findings.json, candidates.csv, report.pdf (when a PDF renderer is
//   installed; see app/report_pdf.h), report-sr.dcm.
// `narrative` is the impression (write_impression()).
struct StudyReportFiles {
  bool pdf_written = false;
  std::vector<std::string> notes;  // e.g. "report.pdf not written: no PDF renderer in this build"
};
Result<StudyReportFiles> write_study_reports(const StudyAnalysis& analysis, const Narrative& narrative,
                                             const std::filesystem::path& out_dir);

}  // namespace hilum
