// Nodule candidates: multi-scale blob detection inside the lung mask, tuned
// for sensitivity (the fusion head decides which are nodules).
//
// Inside the mask the HU image is kept (clamped to [-1000, 200]); outside it
// is replaced by the parenchyma level, so the chest wall and mediastinum
// vanish and a juxtapleural nodule (kept inside by the mask's closing) becomes
// an isolated blob. At each scale sigma (mm) the image is Gaussian-smoothed
// (sampled Gaussian, vision/io/gaussian.h, on a grid coarsened to about
// sigma / 1.2); candidates are strict local
// maxima of the smoothed image whose Hessian is negative definite with
// |lambda_min| / |lambda_max| >= min_blobness (a ball gives 1, a vessel ~0;
// relaxed where slices are thicker than 1.5 sigma). The scales from 1.3 mm run a
// second time on the image clipped at ground-glass density (-650 HU), so that a
// vessel beside or through a ground-glass nodule does not pull its maximum away.
// Response = sigma^2 * lambda_min^2 / |lambda_max| (scale-normalised "dot"
// filter). Maxima of all scales go through 3D non-maximum suppression (by
// response), then are ranked by a score that also rewards large, isolated
// blobs (vessels cross a shell around the candidate where isolated nodules do
// not; a pass on a vessel-suppressed image lends its better-isolated score, and
// with it its place) and the best max_candidates are kept, then up to
// pleural_max_candidates ranked-out ones under the CT's top-hat maxima near the
// mask's edge (small juxtapleural nodules). See docs/findings.md, "Candidates".
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "model/progress.h"
#include "model/result.h"
#include "model/tensor.h"
#include "vision/io/lung_mask.h"
#include "vision/volume.h"

namespace hilum {

struct CandidateOptions {
  // A ball of diameter D responds most near sigma = D / 4: 0.9 .. 8 mm covers 3 .. 30 mm nodules.
  std::vector<double> sigmas_mm = {0.9, 1.3, 1.9, 2.7, 3.9, 5.6, 8.0};
  // The best 500 by score go to the image branch and the fusion head (300 until 2026-11-29: the
  // head ranks the next 200 well, and some small nodules come only there; docs/findings.md).
  int max_candidates = 500;
  double min_contrast_hu = 60;  // smoothed peak above the parenchyma level
  double min_blobness = 0.3;    // |lambda_min| / |lambda_max|
  // A nodule half sunk into a vessel makes an elongated maximum (blobness 0.2 to
  // 0.3) at the small scales; a plain vessel's stay below 0.1. Scales up to
  // elongated_max_sigma_mm that the grid resolves (sigma >= 1.2 pixels) accept it.
  double elongated_min_blobness = 0.2;
  double elongated_max_sigma_mm = 1.5;
  // Non-maximum suppression: a smaller-scale maximum more than nms_brighter_ratio
  // times as bright as a kept one is another object (the nodule beside the
  // vessel whose junction made the larger maximum); it goes only within
  // nms_brighter_core_mm.
  double nms_brighter_ratio = 1.5;
  double nms_brighter_core_mm = 1.5;
  // Second pass for ground-glass nodules: scales >= this on the image clipped at clip_hu.
  // 1.2 mm (2.5 until 2026-11-30: only nodules of about 10 mm and more) lets a
  // 5-7 mm ground-glass nodule beside a vessel keep its own maximum too
  // (bench/RESULTS.md, "Ground-glass pass from 1.2 mm").
  double ground_glass_min_sigma_mm = 1.2;
  double ground_glass_clip_hu = -650;
  // Instead of the clip: voxels above ground_glass_solid_hu (vessels, solid
  // tissue) and those within ground_glass_rim_voxels of them on the pass's grid
  // (their partial-volume rim) take the parenchyma level, so a ground-glass
  // nodule beside a vessel keeps its own density and the vessel is gone. Off:
  // it cost CPM on held-out phantoms (bench/RESULTS.md, "The ground-glass pass
  // with the vessels out").
  bool ground_glass_vessels_out = false;
  double ground_glass_solid_hu = -300;
  int ground_glass_rim_voxels = 1;
  // Vessel-suppressed pass: on the grid of vessel_grid_sigma_mm, voxels above the
  // parenchyma level lose their contrast in proportion to their tubularity
  // (Frangi's vesselness at vessel_sigmas_mm: none below tubularity_low, all
  // above tubularity_high); vessel_suppressed_sigmas_mm then run on that image.
  // Its maxima are not candidates themselves: each lends its ranking score to
  // the image maximum that suppresses it, so a nodule beside vessels or the
  // pleura ranks as the isolated blob it is there. Empty: no such pass.
  // vessel_suppressed_moves: when the lent score is the higher, the candidate also
  // moves to that maximum's place, where the vessel no longer pulls the maximum
  // towards itself (ground-glass nodules beside vessels, docs/findings.md).
  std::vector<double> vessel_suppressed_sigmas_mm = {1.3, 1.9, 2.7};
  bool vessel_suppressed_moves = true;
  double vessel_grid_sigma_mm = 1.9;
  std::vector<double> vessel_sigmas_mm = {1.0, 1.5, 2.2};
  double tubularity_low = 0.15, tubularity_high = 0.5;
  double tubularity_alpha = 0.5, tubularity_beta = 0.5;  // Frangi's alpha (plate) and beta (blob)
  double tubularity_gamma_hu = 60;  // Frangi's gamma (structure) on the scale-normalised Hessian
  // Bulges on vessels: a nodule half sunk into a vessel of its own density has no
  // maximum of its own (the image is a plateau over both). On the grid of
  // bulge_sigma_mm, the image smoothed at bulge_smoothing_mm minus its opening by
  // segments of bulge_reach_mm each way along the nearby vessels' axes (from the
  // vessel-suppressed pass's Hessian: those of the voxels around with vesselness
  // >= bulge_clear_tube, at most bulge_max_axes; walked in steps of bulge_step_mm)
  // keeps what the vessels do not explain; smoothed at bulge_sigma_mm, its
  // maxima become candidates where no
  // kept candidate of the image lies within bulge_core_mm (nor another bulge's,
  // by the usual suppression); only the best bulge_max_candidates are kept. 0: no
  // such pass (it needs the vessel-suppressed pass's Hessian too; and pixels of at
  // most bulge_max_pixel_mm: on coarser ones thin oblique vessels leave bulges).
  double bulge_sigma_mm = 0.9;
  double bulge_smoothing_mm = 0.7;
  double bulge_reach_mm = 5;
  double bulge_step_mm = 1.67;
  double bulge_core_mm = 1.0;
  float bulge_clear_tube = 0.4;
  int bulge_max_axes = 4;
  double bulge_min_contrast_hu = 75;  // voxels below this (smoothed, above the parenchyma) keep nothing
  int bulge_max_candidates = 20;
  // Bulges past that quota (still by decreasing score) kept as well, up to this
  // many, after the max_candidates and the pleural caps: a nodule on a vessel
  // whose bulge ranks past the quota gets a candidate without pushing any other
  // out of the first max_candidates. 0: none.
  int bulge_extra_candidates = 30;
  double bulge_max_pixel_mm = 1.0;
  // Pleural caps: a small juxtapleural nodule is a cap on the chest wall, and
  // the mask keeps only the part of it that lies in the lung, so its maximum
  // ranks with the thousands the pleura's partial-volume rim leaves and is cut.
  // The strongest local maxima of the CT's white top-hat near the mask's edge
  // (candidates_internal.h, pleural_peaks: a box opening about pleural_box_mm
  // wide removes the wall and keeps what protrudes from it) each keep the
  // ranked-out candidate nearest them within pleural_match_mm, up to
  // pleural_max_candidates beyond max_candidates. Maxima that a kept candidate
  // already covers use up nothing. 0: no such pass. See docs/findings.md,
  // "Pleural caps".
  int pleural_max_candidates = 30;
  double pleural_box_mm = 7;
  double pleural_smoothing_mm = 0.6;
  double pleural_tophat_smoothing_mm = 0.7;
  double pleural_min_tophat_hu = 100;
  double pleural_band_inside_mm = 3;
  double pleural_band_outside_mm = 2;
  double pleural_match_mm = 2;
  // Where the image steps run: on CUDA every smoothing, the vesselness, the
  // bulge residue and the scans for maxima run on the GPU (cuda/detector.h;
  // the same arithmetic, so the same candidates up to float rounding in the
  // smoothing), falling back to the CPU with a warning when the GPU fails.
  Device device = Device::kCPU;
};

struct Candidate {
  Vec3 center_mm{};        // world LPS (sub-voxel); a vessel-suppressed maximum's when it gave the score
  Vec3 voxel{};            // continuous voxel index (x, y, z)
  double sigma_mm = 0;     // scale of the strongest response
  double diameter_mm = 0;  // 4 * sigma: a rough size (+-40 %) for NMS and sizing
  double response = 0;
  double contrast_hu = 0;  // smoothed peak minus parenchyma level at that scale
  double blobness = 0;
  double isolation = 0;  // share of a shell at twice its radius that is not bright (vessels cross it)
  double score = 0;      // ranking: contrast * blobness * sigma * isolation^2, x4 when isolated (or, if
                         // higher, the same of a vessel-suppressed maximum it suppressed)
  uint8_t lung = kNoLung;
  bool bulge = false;  // found on the residue of the vessels' opening: a bulge on a vessel
  bool pleural = false;  // ranked out, kept by a pleural cap's top-hat (CandidateOptions::pleural_*)
};

// `o` with the environment's switches for side-by-side runs applied (what
// `analyze` and `export-training-set` detect with): HILUM_PLEURAL_CAPS=0 leaves
// the pleural caps out; HILUM_BULGE_EXTRAS=0 leaves the bulges past the quota
// out, =N keeps up to N of them; HILUM_GROUND_GLASS_MIN_SIGMA_MM=S runs the
// ground-glass pass from scale S mm (a number of 0.5-100).
CandidateOptions with_environment_switches(CandidateOptions o);

// Candidates by decreasing score: at most max_candidates, then at most
// pleural_max_candidates pleural caps, then at most bulge_extra_candidates bulges.
// An empty mask gives no candidates.
Result<std::vector<Candidate>> detect_candidates(const Volume& volume, const LungMask& mask,
                                                 const CandidateOptions& options, Progress& progress);

// One of the detector's measurements of a candidate by name, as a fusion head
// may take them beside the image tokens (its configuration lists the names;
// scripts/train/fusion_model.py CANDIDATE_FEATURES computes the same from
// export-training-set's labels.csv): log_response, contrast_hu, blobness,
// isolation, log_score, log_sigma_mm (logarithms floored at 1e-3). nullopt for
// a name it does not know.
std::optional<double> candidate_feature(const Candidate& c, std::string_view name);
// The names candidate_feature knows.
const std::vector<std::string>& candidate_feature_names();

// Eigenvalues of the symmetric 3x3 matrix [[a, d, e], [d, b, f], [e, f, c]],
// sorted by decreasing magnitude.
std::array<double, 3> symmetric_eigenvalues(double a, double b, double c, double d, double e, double f);

// A unit eigenvector of the same matrix for its eigenvalue `lambda` (one of
// those above); any unit vector orthogonal to the others when lambda is repeated.
Vec3 symmetric_eigenvector(double a, double b, double c, double d, double e, double f, double lambda);

}  // namespace hilum
