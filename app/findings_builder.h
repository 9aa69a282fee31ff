// From scored candidates to findings: 3D non-maximum suppression, sizing,
// Lung-RADS v2022, location (side, lobe estimate, slice) and the evidence of
// every number. The last stage of `hilum analyze` (needs the imaging build).
#pragma once

#include <string>
#include <vector>

#include "fusion/findings.h"
#include "model/progress.h"
#include "model/result.h"
#include "vision/io/candidates.h"
#include "vision/io/lung_mask.h"
#include "vision/volume.h"

namespace hilum {

struct FindingsOptions {
  double min_probability = 0.5;  // a candidate becomes a finding at or above this
  double nms_distance_mm = 5.0;  // at least this apart (and outside each other's radius)
  int max_findings = 25;
  // Segmentations whose long axis is shorter are not reported as nodules: LIDC and LUNA16 count
  // nodules from 3 mm in their longest diameter. (The mean diameter, which Lung-RADS sizes by, was
  // the rule until 2026-11-29: it dropped 3-4 mm nodules whose short axis is under 3 mm and small
  // juxtapleural caps; docs/findings.md, "Findings and Lung-RADS".)
  double min_long_axis_mm = 3.0;
};

struct FindingsResult {
  std::vector<Finding> findings;        // by decreasing probability, ids 1..n
  std::vector<ScoredCandidate> scored;  // every candidate with its probability (candidates.csv)
  std::vector<std::string> notes;       // what was dropped and why (no PHI)
};

// `probability` and `malignancy` hold one value per candidate (the fusion
// head's outputs). kBadInput when their sizes differ from the candidates'.
Result<FindingsResult> build_findings(const Volume& volume, const LungMask& mask,
                                      const std::vector<Candidate>& candidates,
                                      const std::vector<float>& probability,
                                      const std::vector<float>& malignancy, const FindingsOptions& options,
                                      Progress& progress);

}  // namespace hilum
