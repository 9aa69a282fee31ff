// Detection performance by the rules of the LUNA16 challenge: the FROC curve
// (sensitivity against the average number of false positives per scan), its
// sensitivities at 1/8, 1/4, 1/2, 1, 2, 4 and 8 false positives per scan, their
// mean (the competition performance metric, CPM) and bootstrap bands over
// scans. docs/evaluation.md states every rule; in short:
//   - only scans in the scan list count; marks on other scans are ignored;
//   - per scan, when there are more than 100 marks only those with a
//     probability above the 101st highest are kept;
//   - a mark hits a finding when its squared distance to the centre is below
//     (diameter/2)^2 (strictly; a negative diameter counts as 10 mm);
//   - a nodule hit by several marks is detected once, with their highest
//     probability; a mark hitting two nodules counts for both;
//   - marks hitting an excluded finding (and no nodule) are ignored, not FPs;
//   - every other mark is a false positive;
//   - the curve is the ROC curve of the detected nodules versus the false
//     positives, scaled to sensitivity over all nodules and FPs per scan; its
//     value at a rate is read by linear interpolation (numpy.interp rules).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "model/result.h"

namespace hilum {

// A nodule (or excluded finding) from annotations.csv / annotations_excluded.csv.
struct NoduleAnnotation {
  std::string seriesuid;
  double x = 0, y = 0, z = 0;  // world mm
  double diameter_mm = 0;
};

// A CAD mark from candidates.csv.
struct CadMark {
  std::string seriesuid;
  double x = 0, y = 0, z = 0;
  double probability = 0;
};

// The LUNA16 hit rule: squared distance < (diameter/2)^2, where a negative
// diameter means 10 mm.
bool mark_hits(const NoduleAnnotation& nodule, double x, double y, double z);

inline constexpr std::array<double, 7> kFrocRates = {0.125, 0.25, 0.5, 1, 2, 4, 8};
inline constexpr int kLuna16MaxMarksPerScan = 100;

struct FrocInput {
  std::vector<std::string> scans;  // the evaluated scans (unique series UIDs)
  std::vector<NoduleAnnotation> nodules;
  std::vector<NoduleAnnotation> excluded;
  std::vector<CadMark> marks;
};

struct FrocOptions {
  int max_marks_per_scan = kLuna16MaxMarksPerScan;  // <= 0: no limit
  int bootstrap_samples = 0;                        // 0: no bootstrap
  uint64_t seed = 0;
  int band_points = 200;  // bootstrap band sampled log-uniformly over [1/8, 8] for plots
};

struct FrocBootstrap {
  int samples = 0;
  int used = 0;  // samples that held at least one nodule (others are skipped)
  uint64_t seed = 0;
  // At kFrocRates: mean and the 2.5 % / 97.5 % order statistics (the LUNA16
  // script's rule: sorted[floor(0.025 n)], sorted[floor(0.975 n)]).
  std::array<double, 7> mean{}, low{}, high{};
  double cpm_mean = 0, cpm_low = 0, cpm_high = 0;                // the same for the CPM of each sample
  std::vector<double> band_fps, band_mean, band_low, band_high;  // for the plot
};

// What became of one annotated nodule (LUNA16's per-nodule CAD analysis).
struct NoduleOutcome {
  bool on_listed_scan = false;
  int hits = 0;                 // kept marks that hit it
  double probability = 0;       // the highest of their probabilities (hits > 0)
  double fps_per_scan = 0;      // false positives per scan at or above that probability (hits > 0):
                                // the operating point from which the nodule counts as found
  int marks_before_limit = 0;   // marks that hit it before the per-scan limit: 0 when the system never
                                // marked it, above `hits` when the limit dropped some
};

struct FrocResult {
  std::array<double, 7> sensitivities{};  // at kFrocRates
  double cpm = 0;
  int scans = 0;
  int nodules_total = 0;     // nodules on the listed scans
  int nodules_detected = 0;  // hit by at least one kept mark
  int false_positives = 0;
  int marks_read = 0;               // all marks given
  int marks_on_unlisted_scans = 0;  // ignored
  int marks_over_cap = 0;           // dropped by the per-scan limit
  int nodules_lost_to_limit = 0;    // marked, but every mark on it was dropped by the per-scan limit
  int marks_on_excluded = 0;        // ignored: hit an excluded finding only
  int duplicate_hits = 0;           // extra marks on an already hit nodule
  int multi_nodule_marks = 0;       // marks that hit more than one nodule
  // The FROC curve (after sklearn's drop_intermediate): FPs per scan and
  // sensitivity, non-decreasing, starting at (0, 0).
  std::vector<double> curve_fps, curve_sensitivity;
  std::optional<FrocBootstrap> bootstrap;
  std::vector<NoduleOutcome> nodule_outcomes;  // one per FrocInput::nodules entry, in its order
  // Marked at all, before the per-scan limit: with every candidate as a mark, the candidate
  // detector's sensitivity.
  int nodules_marked() const { return nodules_detected + nodules_lost_to_limit; }
};

// Evaluates the marks. Bad input (no nodule on the listed scans, a scan listed
// twice) is an error value; the caller has validated numbers and columns.
Result<FrocResult> evaluate_froc(const FrocInput& input, const FrocOptions& options);

// numpy.interp(x, xp, fp) for a non-decreasing xp (repeated values allowed):
// below xp[0] -> fp[0]; above xp.back() -> fp.back(); at a repeated xp value,
// the fp of its last occurrence; else linear between the neighbours.
double numpy_interp(double x, const std::vector<double>& xp, const std::vector<double>& fp);

}  // namespace hilum
