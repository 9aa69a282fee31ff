// Shared by the candidate tests: the lung mask and candidates of a volume with
// the defaults, and the LUNA16 hit rule.
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

#include "model/progress.h"
#include "model/result.h"
#include "vision/io/candidates.h"
#include "vision/io/lung_mask.h"

namespace hilum::testing {

inline Result<std::vector<Candidate>> candidates_of(const Volume& v) {
  NullProgress progress;
  HILUM_ASSIGN_OR_RETURN(LungMask mask, segment_lungs(v, LungMaskOptions{}, progress));
  return detect_candidates(v, mask, CandidateOptions{}, progress);
}

// The first candidate within max(diameter / 2, 1.5 mm) of a nodule's centre, or null.
inline const Candidate* hitting(const std::vector<Candidate>& candidates, const Vec3& center, double diameter_mm) {
  for (const Candidate& k : candidates) {
    const double d =
        std::hypot(k.center_mm[0] - center[0], k.center_mm[1] - center[1], k.center_mm[2] - center[2]);
    if (d <= std::max(diameter_mm / 2, 1.5)) return &k;
  }
  return nullptr;
}

}  // namespace hilum::testing
