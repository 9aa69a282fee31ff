// The radiologist's review of the AI's findings, applied to the AI's findings
// document to make what a report shows. The AI's document is never changed:
// the review produces a new one whose notes and evidence say what the
// radiologist did.
#pragma once

#include <string>
#include <vector>

#include "fusion/findings.h"
#include "model/result.h"

namespace hilum {

enum class ReviewDecision { kPending, kAccepted, kRejected };
std::string_view review_decision_name(ReviewDecision d);  // "pending", "accepted", "rejected"

// One finding as the radiologist left it. The values equal the AI's when not
// edited.
struct FindingReview {
  int id = 0;  // the AI finding's id
  ReviewDecision decision = ReviewDecision::kPending;
  double long_axis_mm = 0;
  double short_axis_mm = 0;
  NoduleType type = NoduleType::kSolid;
  std::string lung_rads;  // "1", "2", "3", "4A", "4B", "4X"
};

// The review entry that leaves finding `f` as the AI reported it.
FindingReview unreviewed(const Finding& f);

// The reviewed document:
//  - rejected findings are left out; the others keep their AI ids and order;
//  - edited values replace the AI's: long and short axis (the mean diameter is
//    recomputed), type (a part-solid nodule that was not one has no measured
//    solid component), Lung-RADS category (management from the category); the
//    evidence of each edited field says "radiologist";
//  - a note per edited finding says what changed and what the AI had, and one
//    note sums the review up (see review_summary());
//  - the study's Lung-RADS category is recomputed.
// AI findings without an entry count as pending. kBadInput for an entry whose
// id the document lacks (or given twice), a size that is negative or not
// finite, a short axis longer than the long axis, an unknown category.
Result<FindingsDocument> apply_review(const FindingsDocument& ai, const std::vector<FindingReview>& reviews);

// "Radiologist review: 1 accepted, 1 rejected (nodule 2, left out), 1 not
// reviewed (nodule 3); edited: nodule 1." (no PHI; ids only).
std::string review_summary(const FindingsDocument& ai, const std::vector<FindingReview>& reviews);

}  // namespace hilum
