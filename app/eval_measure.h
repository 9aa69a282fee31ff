// What `hilum eval batch` says about the findings' measurements: for every
// truth nodule a finding hits, the finding's mean diameter, type and Lung-RADS
// category against the truth's (docs/evaluation.md, "Measurements").
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "fusion/lung_rads.h"
#include "model/result.h"
#include "vision/nodule.h"

namespace hilum {

// One side's measurement of a nodule; a finding or a truth row may lack any part.
struct NoduleMeasures {
  std::optional<double> mean_mm;  // mean diameter
  std::optional<NoduleType> type;
  std::optional<double> solid_mm;             // part-solid: the solid component's mean diameter
  std::optional<LungRadsCategory> lung_rads;  // findings: as written; truth: from the three above
};

// A truth nodule and the finding that hits it (the one the malignancy ROC reads).
struct MeasuredPair {
  std::string seriesuid;
  double x = 0, y = 0, z = 0;
  NoduleMeasures truth, finding;
};

// The truth's Lung-RADS category by the same v2022 rules the findings use
// (type, mean diameter and, for part-solid, the solid component, capped at the
// mean diameter); nullopt when the type or a size it needs is missing.
std::optional<LungRadsCategory> truth_lung_rads(const NoduleMeasures& truth);

// Cohen's kappa of two raters' ordinal ratings (0-based ranks) with linear
// weights |i - j| over the ranks either rater used (sklearn's cohen_kappa_score
// with weights="linear"). nullopt for fewer than two pairs or when the expected
// disagreement is zero (both raters used one and the same rank throughout).
std::optional<double> linear_weighted_kappa(const std::vector<std::pair<int, int>>& ratings);

struct MeasurementReport {
  nlohmann::ordered_json json;  // metrics.json's "measurement"
  std::string csv;              // measurements.csv: one row per pair
  std::string summary;          // the CLI's "measurement:" line (no newline)
};

// `reference` names the truth column the sizes come from (for the report).
// nullopt when no pair has a measured mean diameter on both sides.
std::optional<MeasurementReport> compare_measurements(const std::vector<MeasuredPair>& pairs,
                                                      const std::string& reference);

}  // namespace hilum
