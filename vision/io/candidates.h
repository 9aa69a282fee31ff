// Nodule candidates: multi-scale blob detection inside the lung mask, tuned
// for sensitivity (the fusion head decides which are nodules).
//
// Inside the mask the HU image is kept (clamped to [-1000, 200]); outside it
// is replaced by the parenchyma level, so the chest wall and mediastinum
// vanish and a juxtapleural nodule (kept inside by the mask's closing) becomes
// an isolated blob. At each scale sigma (mm) the image is Gaussian-smoothed
// (ITK, on a grid coarsened to about sigma / 1.2); candidates are strict local
// maxima of the smoothed image whose Hessian is negative definite with
// |lambda_min| / |lambda_max| >= min_blobness (a ball gives 1, a vessel ~0;
// relaxed where slices are thicker than 1.5 sigma). The larger scales run a
// second time on the image clipped at ground-glass density (-650 HU), so that a
// vessel beside or through a ground-glass nodule does not pull its maximum away.
// Response = sigma^2 * lambda_min^2 / |lambda_max| (scale-normalised "dot"
// filter). Maxima of all scales go through 3D non-maximum suppression (by
// response), then are ranked by a score that also rewards large, isolated
// blobs (vessels cross a shell around the candidate where isolated nodules do
// not) and the best max_candidates are kept. See docs/findings.md, "Candidates".
#pragma once

#include <vector>

#include "model/progress.h"
#include "model/result.h"
#include "vision/io/lung_mask.h"
#include "vision/volume.h"

namespace hilum {

struct CandidateOptions {
  // A ball of diameter D responds most near sigma = D / 4: 0.9 .. 8 mm covers 3 .. 30 mm nodules.
  std::vector<double> sigmas_mm = {0.9, 1.3, 1.9, 2.7, 3.9, 5.6, 8.0};
  int max_candidates = 300;
  double min_contrast_hu = 60;  // smoothed peak above the parenchyma level
  double min_blobness = 0.3;    // |lambda_min| / |lambda_max|
  // Second pass for ground-glass nodules: scales >= this on the image clipped at clip_hu.
  double ground_glass_min_sigma_mm = 2.5;
  double ground_glass_clip_hu = -650;
};

struct Candidate {
  Vec3 center_mm{};        // world LPS (sub-voxel)
  Vec3 voxel{};            // continuous voxel index (x, y, z)
  double sigma_mm = 0;     // scale of the strongest response
  double diameter_mm = 0;  // 4 * sigma: a rough size (+-40 %) for NMS and sizing
  double response = 0;
  double contrast_hu = 0;  // smoothed peak minus parenchyma level at that scale
  double blobness = 0;
  double isolation = 0;  // share of a shell at twice its radius that is not bright (vessels cross it)
  double score = 0;      // ranking: contrast * blobness * sigma * isolation^2, x4 when isolated
  uint8_t lung = kNoLung;
};

// Candidates by decreasing score. An empty mask gives no candidates.
Result<std::vector<Candidate>> detect_candidates(const Volume& volume, const LungMask& mask,
                                                 const CandidateOptions& options, Progress& progress);

// Eigenvalues of the symmetric 3x3 matrix [[a, d, e], [d, b, f], [e, f, c]],
// sorted by decreasing magnitude.
std::array<double, 3> symmetric_eigenvalues(double a, double b, double c, double d, double e, double f);

}  // namespace hilum
