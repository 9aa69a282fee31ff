#include "fusion/lung_rads.h"

#include <cmath>
#include <limits>

namespace hilum {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// One row of a size table: sizes in [lower, upper) map to `category`.
struct SizeRule {
  double lower;
  double upper;
  LungRadsCategory category;
  const char* rule;
};

// Baseline solid nodules, by mean diameter.
constexpr SizeRule kSolid[] = {
    {0, 6, LungRadsCategory::k2, "solid < 6 mm"},
    {6, 8, LungRadsCategory::k3, "solid 6 to < 8 mm"},
    {8, 15, LungRadsCategory::k4A, "solid 8 to < 15 mm"},
    {15, kInf, LungRadsCategory::k4B, "solid >= 15 mm"},
};

// Baseline part-solid nodules at least 6 mm in total, by the solid component's mean diameter.
constexpr SizeRule kPartSolidBySolidPart[] = {
    {0, 6, LungRadsCategory::k3, "part-solid >= 6 mm with solid component < 6 mm"},
    {6, 8, LungRadsCategory::k4A, "part-solid with solid component 6 to < 8 mm"},
    {8, kInf, LungRadsCategory::k4B, "part-solid with solid component >= 8 mm"},
};

// Baseline ground-glass nodules, by mean diameter.
constexpr SizeRule kGroundGlass[] = {
    {0, 30, LungRadsCategory::k2, "ground-glass < 30 mm"},
    {30, kInf, LungRadsCategory::k3, "ground-glass >= 30 mm"},
};

template <size_t N>
const SizeRule& lookup(const SizeRule (&table)[N], double mm) {
  for (const SizeRule& r : table) {
    if (mm >= r.lower && mm < r.upper) return r;
  }
  return table[N - 1];
}

}  // namespace

std::string_view lung_rads_label(LungRadsCategory c) {
  switch (c) {
    case LungRadsCategory::k1:
      return "1";
    case LungRadsCategory::k2:
      return "2";
    case LungRadsCategory::k3:
      return "3";
    case LungRadsCategory::k4A:
      return "4A";
    case LungRadsCategory::k4B:
      return "4B";
    case LungRadsCategory::k4X:
      return "4X";
  }
  return "2";
}

Result<LungRadsCategory> parse_lung_rads(std::string_view label) {
  for (LungRadsCategory c : {LungRadsCategory::k1, LungRadsCategory::k2, LungRadsCategory::k3,
                             LungRadsCategory::k4A, LungRadsCategory::k4B, LungRadsCategory::k4X}) {
    if (label == lung_rads_label(c)) return c;
  }
  return bad_input("unknown Lung-RADS category '" + std::string(label) + "' (1, 2, 3, 4A, 4B, 4X)");
}

std::string_view lung_rads_descriptor(LungRadsCategory c) {
  switch (c) {
    case LungRadsCategory::k1:
      return "negative";
    case LungRadsCategory::k2:
      return "benign appearance or behavior";
    case LungRadsCategory::k3:
      return "probably benign";
    case LungRadsCategory::k4A:
      return "suspicious";
    case LungRadsCategory::k4B:
      return "very suspicious";
    case LungRadsCategory::k4X:
      return "very suspicious, with additional suspicious features";
  }
  return "";
}

std::string_view lung_rads_management(LungRadsCategory c) {
  switch (c) {
    case LungRadsCategory::k1:
    case LungRadsCategory::k2:
      return "Continue annual screening: low-dose CT in 12 months.";
    case LungRadsCategory::k3:
      return "Low-dose CT in 6 months.";
    case LungRadsCategory::k4A:
      return "Low-dose CT in 3 months; PET/CT may be considered when there is a solid component of 8 mm "
             "or more.";
    case LungRadsCategory::k4B:
    case LungRadsCategory::k4X:
      return "Diagnostic chest CT with or without contrast; PET/CT may be considered when there is a solid "
             "component of 8 mm or more; tissue sampling and/or referral for further clinical evaluation.";
  }
  return "";
}

int lung_rads_rank(LungRadsCategory c) { return static_cast<int>(c); }

double round_to_tenth(double mm) { return std::round(mm * 10.0) / 10.0; }

Result<LungRadsAssessment> assess_lung_rads(const LungRadsInput& in) {
  if (!std::isfinite(in.mean_diameter_mm) || in.mean_diameter_mm < 0) {
    return bad_input("Lung-RADS: mean diameter must be a finite size >= 0 mm");
  }
  if (!std::isfinite(in.solid_component_mm) || in.solid_component_mm < 0) {
    return bad_input("Lung-RADS: solid component must be a finite size >= 0 mm");
  }
  const double mean = round_to_tenth(in.mean_diameter_mm);
  const double solid = round_to_tenth(in.solid_component_mm);
  if (in.type == NoduleType::kPartSolid && solid > mean) {
    return bad_input("Lung-RADS: solid component (" + std::to_string(solid) +
                     " mm) larger than the part-solid nodule (" + std::to_string(mean) + " mm)");
  }

  LungRadsAssessment out;
  const SizeRule* rule = nullptr;
  switch (in.type) {
    case NoduleType::kSolid:
      rule = &lookup(kSolid, mean);
      break;
    case NoduleType::kPartSolid:
      if (mean < 6) {
        static constexpr SizeRule kSmall{0, 6, LungRadsCategory::k2, "part-solid < 6 mm in total"};
        rule = &kSmall;
      } else {
        rule = &lookup(kPartSolidBySolidPart, solid);
      }
      break;
    case NoduleType::kGroundGlass:
      rule = &lookup(kGroundGlass, mean);
      break;
  }
  out.category = rule->category;
  out.rule = rule->rule;

  const bool pleural = in.juxtapleural || in.perifissural;
  if (pleural && in.type == NoduleType::kSolid && mean < 10) {
    if (in.benign_perifissural_morphology) {
      if (out.category != LungRadsCategory::k2) {
        out.category = LungRadsCategory::k2;
        out.rule = "juxtapleural/perifissural solid < 10 mm with benign morphology";
      }
    } else if (out.category != LungRadsCategory::k2) {
      out.notes.push_back(
          "juxtapleural/perifissural solid nodule < 10 mm: category 2 applies if margins are smooth and "
          "the shape is oval, lentiform or triangular (confirm on the images)");
    }
  }
  if (in.additional_suspicious_features) {
    if (lung_rads_rank(out.category) >= lung_rads_rank(LungRadsCategory::k3)) {
      out.category = LungRadsCategory::k4X;
      out.notes.push_back("category 3 or 4 nodule with additional suspicious features: 4X");
    } else {
      out.notes.push_back("additional features noted; 4X applies only to category 3 or 4 nodules");
    }
  }
  out.management = std::string(lung_rads_management(out.category));
  return out;
}

}  // namespace hilum
