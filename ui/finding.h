// A lung-nodule finding as the workstation shows and reviews it.
//
// The analysis pipeline (issue 5) will produce its own findings type; the
// workstation's AnalysisRunner converts them into these plain structs so the
// GUI does not depend on the pipeline's internals. Tests create them directly.
#pragma once

#include <QString>
#include <QStringList>
#include <vector>

#include "vision/nodule.h"
#include "vision/volume.h"

namespace hilum::ui {

struct Finding {
  int id = 0;
  Vec3 centerMm{};   // world LPS
  QString location;  // "right upper lobe", "left lung", ...
  double longAxisMm = 0;
  double shortAxisMm = 0;
  double volumeMm3 = 0;
  NoduleType type = NoduleType::kSolid;
  double probability = 0;  // nodule probability, 0..1
  double malignancy = 0;   // malignancy probability, 0..1
  QString lungRads;        // "2", "3", "4A", "4B", "4X"

  bool operator==(const Finding&) const = default;
};

enum class ReviewState { Pending, Accepted, Rejected };
QString reviewStateName(ReviewState state);  // "pending", "accepted", "rejected"

// The AI's finding and the radiologist's version of it, kept apart: `original`
// is never changed after the analysis; edits go into `current`.
struct ReviewedFinding {
  Finding original;
  Finding current;
  ReviewState state = ReviewState::Pending;

  explicit ReviewedFinding(Finding ai = {}) : original(ai), current(std::move(ai)) {}
  bool isEdited() const { return !(original == current); }
  bool operator==(const ReviewedFinding&) const = default;
};

// Lung-RADS v2022 categories a radiologist may assign to a nodule.
QStringList lungRadsCategories();
QString noduleTypeLabel(NoduleType type);  // "solid", "part-solid", "ground-glass"

}  // namespace hilum::ui
