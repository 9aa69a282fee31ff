// The evaluation commands as library calls: each reads its inputs, validates
// them, computes the metrics and writes metrics.json and plots (PNG and SVG)
// into an output directory. docs/evaluation.md documents formulas, rules and
// the metrics.json schema.
//
// On success each returns a short human summary of the main numbers (what the
// CLI prints).
//
// Failure contract: bad input (a missing file or column, a value that is not a
// number, a label other than 0/1, too few positives or negatives, no nodule on
// the listed scans...) returns a kBadInput error whose one-line message names
// the file, and the line and column where there is one. All inputs are read
// and checked before anything is written; the outputs are then written to
// temporary names and renamed into place together (metrics.json last), so an
// error never leaves a partial output set. A directory the call created is
// removed again when writing fails.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "app/csv.h"
#include "app/eval_froc.h"
#include "model/result.h"

namespace hilum {

struct RocEvalOptions {
  std::filesystem::path csv;
  std::filesystem::path out_dir;
  std::string label_column = "label";  // values 0 (negative) or 1 (positive)
  std::string score_column = "score";  // higher = more likely positive
  // Two score columns to compare with DeLong's paired test; the first is then
  // the one the top-level metrics describe (score_column is not used).
  std::optional<std::pair<std::string, std::string>> compare;
  int bootstrap = 0;  // replicates of the stratified bootstrap; 0 = none
  uint64_t seed = 0;
};
// Writes metrics.json, roc.png, roc.svg.
Result<std::string> run_roc_eval(const RocEvalOptions& options);

struct FrocEvalOptions {
  std::filesystem::path annotations;              // seriesuid,coordX,coordY,coordZ,diameter_mm
  std::filesystem::path seriesuids;               // one series UID per line (first column; no header needed)
  std::filesystem::path candidates;               // seriesuid,coordX,coordY,coordZ,probability
  std::optional<std::filesystem::path> excluded;  // as annotations
  std::filesystem::path out_dir;
  int bootstrap = 0;
  uint64_t seed = 0;
  int max_marks_per_scan = kLuna16MaxMarksPerScan;
  // Subgroups of the annotations ("COLUMN" or "COLUMN:E1,E2,...", as
  // BatchEvalOptions::by), e.g. diameter_mm:6,10 for sensitivity by size.
  std::vector<std::string> by;
};
// Writes metrics.json, froc.png, froc.svg, froc_curve.csv and, with
// subgroups, by_group.csv.
Result<std::string> run_froc_eval(const FrocEvalOptions& options);

// How a true nodule that no finding hits enters the malignancy ROC.
enum class UnmatchedNodules {
  kScoreZero,  // scored 0 (a missed nodule is a missed cancer if it is malignant)
  kExclude,    // left out (the ROC then describes matched nodules only)
};

struct BatchEvalOptions {
  std::filesystem::path batch_dir;  // a `hilum batch` output directory
  std::filesystem::path truth;      // LUNA16 annotations plus a 0/1 `malignant` column
  std::optional<std::filesystem::path> excluded;
  std::filesystem::path out_dir;
  int bootstrap = 0;
  uint64_t seed = 0;
  UnmatchedNodules unmatched = UnmatchedNodules::kScoreZero;
  // Subgroups of the truth nodules, each "COLUMN" (one group per value of that
  // truth.csv column) or "COLUMN:E1,E2,..." (numeric bins: < E1, [E1, E2), ...,
  // >= Ek). Each group gets its own FROC against the run's false positives (the
  // other groups' nodules are neither hits nor false positives) and its own
  // malignancy AUC where it holds >= 2 malignant and >= 2 benign nodules.
  std::vector<std::string> by;
  // Only the findings at or above this detection probability count (as if the batch had
  // been run with `hilum batch --min-probability`; findings are kept greedily by
  // probability, so that is exact up to the 25-per-study cap). Unset: every finding.
  std::optional<double> min_probability;
};
// Writes metrics.json (detection + malignancy; "by" with the subgroups),
// froc.png/.svg, roc.png/.svg, malignancy_scores.csv (the per-nodule table,
// readable by run_roc_eval), with subgroups by_group.csv, and, when findings
// carry sizes, measurements.csv (metrics.json's "measurement": each matched
// finding's mean diameter, type and Lung-RADS against the truth's).
Result<std::string> run_batch_eval(const BatchEvalOptions& options);

// Input readers shared with other tools. Errors name the file, line and column.
Result<std::vector<NoduleAnnotation>> read_nodule_csv(const std::filesystem::path& path);
// The same from a table already read (its errors name the table's file).
Result<std::vector<NoduleAnnotation>> nodules_from_table(const CsvTable& table);
Result<std::vector<CadMark>> read_candidates_csv(const std::filesystem::path& path);
// The first field of every non-blank line; a first line reading "seriesuid"
// is a header and skipped. Empty lists and repeated UIDs are errors.
Result<std::vector<std::string>> read_scan_list(const std::filesystem::path& path);

}  // namespace hilum
