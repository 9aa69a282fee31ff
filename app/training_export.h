// `hilum export-training-set`: training data for the image branch and the
// fusion head, made from phantoms by the same C++ code path as inference
// (lung mask -> candidates -> patches), so training and inference see
// identical preprocessing. See docs/findings.md, "Training data".
//
// Files in the output folder (written atomically, replacing earlier ones):
//   patches.npy    uint8 [N, C, S, S] windowed planes (vision/patches.h): C = 3, or
//                  9 with a slab (patch_slab_mm: each plane and its two neighbours),
//                  or 6 with a zoom (patch_zoom_spacing_mm: each plane at two spacings)
//   labels.csv     one row per patch (study, candidate, source, is_nodule, malignant, ...)
//   notes.jsonl    one line per study: its clinical text, profile and note_logit
//                  (the note's part of the phantom's malignancy logit)
//   nodules.csv    one row per true nodule: truth (axial long/short axis and volume from the
//                  phantom labels), detected?, candidate distance, sizing
//   studies.csv    one row per study: slices, candidates, sensitivity, stage times
//   manifest.json  options (patch geometry, window, normalisation), seeds, counts
//   patches_<frame>.npy  with extra_frames: the same rows' patches in that frame
// labels.csv and nodules.csv carry each true nodule's image_logit (the
// image-visible part of the malignancy logit). With notes_only, only
// notes.jsonl and manifest.json are written (cheap: nothing is rendered).
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "model/progress.h"
#include "model/result.h"
#include "vision/io/phantom.h"

namespace hilum {

struct TrainingExportOptions {
  std::filesystem::path out;
  uint64_t first_seed = 1;
  uint64_t last_seed = 1;
  int slices = -1;                // phantom slices (-1: from the seed)
  int nodules = -1;               // phantom nodules (-1: from the seed)
  std::array<double, 3> site_weights = PhantomOptions{}.site_weights;  // phantom nodule sites (PhantomOptions)
  int negatives_per_study = 100;  // strongest non-nodule candidates kept per study (-1: all)
  int max_candidates = 0;         // the detector's cut per study (0: its default, as hilum analyze)
  bool truth_patches = true;      // also a patch centred on every true nodule (source "truth")
  // Also this many patches per true nodule centred at random inside it (source "jitter"):
  // uniform in a ball of truth_jitter_radius_mm(diameter) around its centre, drawn from the
  // seed. The detector's candidates sit 0.3-1.5 mm from a nodule's centre, in every
  // direction; a patch cut there changes in all three planes at once (and across one of
  // them), which the training's in-plane shifts do not imitate.
  int truth_jitter = 0;
  bool measure_sizing = true;     // size each detected true nodule (nodules.csv)
  bool notes_only = false;        // only notes.jsonl (+ manifest.json): no volume is rendered
  // Frames (vision/patches.h patch_frame names other than "axes") whose patches of the same
  // rows are written too, as patches_<frame>.npy: the planes of a rotated cube.
  std::vector<std::string> extra_frames;
  // PatchOptions::slab_mm of every patch written (0: three planes; > 0: nine channels).
  double patch_slab_mm = 0;
  // PatchOptions::zoom_spacing_mm (0: one spacing; > 0: six channels).
  double patch_zoom_spacing_mm = 0;
};

// The radius of the ball jitter patches are drawn in: half the nodule's radius, at least
// 0.75 mm and at most 2 mm (within the hit rule's max(radius, 1.5 mm) for every size).
double truth_jitter_radius_mm(double diameter_mm);
static constexpr int kMaxTruthJitter = 16;

struct TrainingExportSummary {
  int studies = 0;
  int64_t patches = 0;
  int64_t positives = 0;
  int nodules = 0;           // true nodules >= 3 mm
  int nodules_detected = 0;  // ... with a candidate within their radius
  double mean_candidates = 0;
};

Result<TrainingExportSummary> export_training_set(const TrainingExportOptions& options, Progress& progress);

// Parses --nodule-sites (hilum phantom, export-training-set): comma-separated
// NAME=WEIGHT with NAME one of nodule_site_names() and WEIGHT >= 0 (app/csv.h
// parse_decimal); sites not named weigh 0, and at least one weight must be
// positive ("juxtavascular=1": every nodule on a vessel where there is room).
// Bad input names the offending part.
Result<std::array<double, 3>> parse_nodule_sites(std::string_view text);

// "A-B" or "A" -> [first, last]; bad input otherwise (and when B < A).
Status parse_seed_range(const std::string& text, uint64_t& first, uint64_t& last);

}  // namespace hilum
