// From computed evaluation results to what the commands write: the
// metrics.json objects (schema in docs/evaluation.md), the plots, and an
// all-or-nothing writer for a set of output files.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "app/eval_froc.h"
#include "app/eval_plot.h"
#include "app/eval_roc.h"
#include "model/result.h"

namespace hilum {

// Everything one ROC analysis reports, for one score or two compared ones.
struct RocReport {
  std::string score_name;
  size_t n_positive = 0, n_negative = 0;
  AucInterval delong;
  std::optional<BootstrapInterval> bootstrap;
  uint64_t seed = 0;
  RocPoint youden{};
  std::vector<RocPoint> curve;
  struct Comparison {
    std::string score_name_b;
    AucInterval delong_b;
    std::vector<RocPoint> curve_b;
    PairedDelongTest test;
  };
  std::optional<Comparison> compare;
};

// Runs the analyses on `a` (and the paired comparison with `b` when given).
// Both samples need >= 2 positives and >= 2 negatives (checked by callers).
RocReport analyze_scores(const ScoredSample& a, std::string name_a,
                         const std::optional<std::pair<ScoredSample, std::string>>& b, int bootstrap,
                         uint64_t seed);

nlohmann::ordered_json roc_metrics_json(const RocReport& report);
Plot roc_plot(const RocReport& report, const std::string& title);

// One-line console summaries.
std::string roc_summary(const RocReport& report);
std::string froc_summary(const FrocResult& result);

nlohmann::ordered_json froc_metrics_json(const FrocResult& result, int max_marks_per_scan);
// froc_nodules.csv: one row per annotated nodule, in the annotations' order:
// row (its data row, from 1), seriesuid, coordX, coordY, coordZ, diameter_mm,
// on_listed_scan (0/1), hits (kept marks on it), probability (the highest of
// theirs) and fps_per_scan (the false positives per scan at or above that
// probability: from there on the nodule counts as found); the last two are
// empty for a nodule no mark hit.
std::string froc_nodules_csv(const FrocInput& input, const FrocResult& result);
Plot froc_plot(const FrocResult& result, const std::string& title);

// A set of output files written together: commit() creates the directory if
// needed, writes every file to a temporary name first, then renames them into
// place in the order they were added (put metrics.json last). On any failure
// it removes what it wrote (and the directory if it created it).
class OutputFiles {
 public:
  void add(std::string name, std::string bytes) { files_.emplace_back(std::move(name), std::move(bytes)); }
  Status commit(const std::filesystem::path& dir) const;

 private:
  std::vector<std::pair<std::string, std::string>> files_;
};

// "%.3f".
std::string format_3(double v);

}  // namespace hilum
