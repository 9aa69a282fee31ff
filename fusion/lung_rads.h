// Lung-RADS v2022 assessment of one nodule at a baseline screening CT.
//
// Table-driven: each nodule type has an ordered list of size rules (see
// lung_rads.cpp and docs/findings.md). Sizes are mean diameters in mm, rounded
// to one decimal place first (as Lung-RADS asks); a boundary value belongs to
// the higher category ("6 to < 8" includes 6.0, excludes 8.0).
//
// Not assessed automatically (the caller passes what it knows): interval change
// (new / growing nodules need a prior), calcification or fat (benign, category
// 1), endobronchial location. Juxtapleural and perifissural nodules get a note;
// they are downgraded to category 2 only when the caller confirms benign
// morphology (smooth margins; oval, lentiform or triangular shape).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "model/result.h"
#include "vision/nodule.h"

namespace hilum {

enum class LungRadsCategory { k1, k2, k3, k4A, k4B, k4X };

std::string_view lung_rads_label(LungRadsCategory c);  // "1", "2", "3", "4A", "4B", "4X"
Result<LungRadsCategory> parse_lung_rads(std::string_view label);
std::string_view lung_rads_descriptor(LungRadsCategory c);  // "benign appearance or behavior", ...
std::string_view lung_rads_management(LungRadsCategory c);  // recommended follow-up, one sentence
// Order of suspicion (1 < 2 < 3 < 4A < 4B < 4X) for picking a study's category.
int lung_rads_rank(LungRadsCategory c);

struct LungRadsInput {
  NoduleType type = NoduleType::kSolid;
  double mean_diameter_mm = 0;                  // whole nodule (solid + ground-glass parts)
  double solid_component_mm = 0;                // part-solid only: mean diameter of the solid part
  bool juxtapleural = false;                    // touches the costal pleura
  bool perifissural = false;                    // touches a fissure
  bool benign_perifissural_morphology = false;  // confirmed smooth, oval/lentiform/triangular
  bool additional_suspicious_features = false;  // spiculation, lymphadenopathy, ... -> 4X
};

struct LungRadsAssessment {
  LungRadsCategory category = LungRadsCategory::k2;
  std::string management;          // lung_rads_management(category)
  std::string rule;                // the rule that decided, e.g. "solid 8 to < 15 mm"
  std::vector<std::string> notes;  // juxtapleural/perifissural and 4X notes
};

// Errors (kBadInput) for negative or non-finite sizes, or a part-solid nodule
// whose solid part is larger than the nodule.
Result<LungRadsAssessment> assess_lung_rads(const LungRadsInput& input);

// Rounds to one decimal place, half away from zero (12.25 -> 12.3).
double round_to_tenth(double mm);

}  // namespace hilum
