#include "vision/io/candidates.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <numeric>
#include <optional>

#include "model/env.h"
#include "model/log.h"
#include "model/parallel.h"
#include "model/stopwatch.h"
#include "vision/io/candidates_internal.h"
#include "vision/io/gaussian.h"
#include "vision/io/itk_bridge.h"
#include "vision/io/mask_box.h"

namespace hilum {
namespace {

using itk_bridge::Grid;

struct Level {
  int f[3];
  Grid grid;
  std::vector<float> image;   // block-averaged preprocessed HU
  std::vector<uint8_t> mask;  // lung label at the block centre
};

struct Maximum {
  Vec3 voxel;  // native continuous index
  double sigma, response, contrast, blobness, isolation;
  uint8_t lung;
  bool vessel_suppressed;  // found on the vessel-suppressed image
  bool bulge;              // found on the residue of the vessels' opening
};

// Ranking: isolated blobs (at most one of the 64 shell samples bright) are rare
// among vessel maxima and common among nodules, small ones included: they rank higher.
double ranking_score(const Maximum& m) {
  const bool isolated = m.isolation >= 0.98;
  return m.contrast * m.blobness * m.sigma * m.isolation * m.isolation * (isolated ? 4.0 : 1.0);
}

}  // namespace

std::array<double, 3> symmetric_eigenvalues(double a, double b, double c, double d, double e, double f) {
  std::array<double, 3> l;
  detector::symmetric_eigenvalues(a, b, c, d, e, f, l.data());
  return l;
}

std::optional<double> candidate_feature(const Candidate& c, std::string_view name) {
  const auto log_floor = [](double v) { return std::log(std::max(v, 1e-3)); };
  if (name == "log_response") return log_floor(c.response);
  if (name == "contrast_hu") return c.contrast_hu;
  if (name == "blobness") return c.blobness;
  if (name == "isolation") return c.isolation;
  if (name == "log_score") return log_floor(c.score);
  if (name == "log_sigma_mm") return log_floor(c.sigma_mm);
  if (name == "pleural") return c.pleural ? 1.0 : 0.0;
  if (name == "bulge") return c.bulge ? 1.0 : 0.0;
  return std::nullopt;
}

CandidateOptions with_environment_switches(CandidateOptions o) {
  if (!env_switch("HILUM_PLEURAL_CAPS", true)) o.pleural_max_candidates = 0;
  o.bulge_extra_candidates =
      env_switch("HILUM_BULGE_EXTRAS", true) ? env_count("HILUM_BULGE_EXTRAS", o.bulge_extra_candidates) : 0;
  o.ground_glass_min_sigma_mm =
      env_number("HILUM_GROUND_GLASS_MIN_SIGMA_MM", o.ground_glass_min_sigma_mm, 0.5, 100);
  o.ground_glass_vessels_out = env_switch("HILUM_GROUND_GLASS_VESSELS_OUT", o.ground_glass_vessels_out);
  return o;
}

const std::vector<std::string>& candidate_feature_names() {
  static const std::vector<std::string> names = {"log_response", "blobness",  "log_score",
                                                 "contrast_hu",  "isolation", "log_sigma_mm",
                                                 "pleural",      "bulge"};
  return names;
}

Vec3 symmetric_eigenvector(double a, double b, double c, double d, double e, double f, double lambda) {
  Vec3 v;
  detector::symmetric_eigenvector(a, b, c, d, e, f, lambda, v.data());
  return v;
}

namespace candidates_internal {

detector::Dims dims_of(const Grid& g) {
  detector::Dims d;
  d.nx = g.nx, d.ny = g.ny, d.nz = g.nz;
  for (int a = 0; a < 3; ++a) d.spacing[a] = g.spacing[a];
  return d;
}

namespace {

// fn(z) for the interior planes 1 .. nz - 2 of g, in parallel.
template <typename Fn>
void for_interior_planes(const Grid& g, Fn&& fn) {
  parallel_for(g.nz - 2, 1, [&](int64_t first, int64_t last) {
    for (int64_t z = first + 1; z < last + 1; ++z) fn(z);
  });
}

}  // namespace

Result<std::vector<float>> tubularity(const std::vector<float>& image, const Grid& g, float fill,
                                      const CandidateOptions& o, std::vector<std::array<float, 3>>& axis) {
  std::vector<float> t(image.size(), 0.f);
  axis.assign(image.size(), {0.f, 0.f, 0.f});
  const detector::Dims d = dims_of(g);
  for (double sigma : o.vessel_sigmas_mm) {
    HILUM_ASSIGN_OR_RETURN(std::vector<float> s, gaussian_smooth(image, g, sigma));
    const VesselScale v = vessel_scale(o, fill, sigma);
    for_interior_planes(g, [&](int64_t z) {
      for (int64_t y = 1; y + 1 < g.ny; ++y)
        for (int64_t x = 1; x + 1 < g.nx; ++x)
          detector::vesselness_update(image.data(), s.data(), d, x, y, z, v.bright, v.scale, v.a2, v.b2, v.c2,
                                      t.data(), axis.data()->data());
    });
  }
  return t;
}

VesselScale vessel_scale(const CandidateOptions& o, float fill, double sigma) {
  VesselScale v;
  v.a2 = 2 * o.tubularity_alpha * o.tubularity_alpha;
  v.b2 = 2 * o.tubularity_beta * o.tubularity_beta;
  v.c2 = 2 * o.tubularity_gamma_hu * o.tubularity_gamma_hu;
  v.bright = fill + 50.f;
  v.scale = sigma * sigma;
  return v;
}

cuda::BulgeParams bulge_params(const CandidateOptions& o, float fill, const int* level_f, const int* vessel_f) {
  cuda::BulgeParams p;
  p.bright = fill + static_cast<float>(o.bulge_min_contrast_hu);
  p.fill = fill;
  p.clear_tube = o.bulge_clear_tube;
  p.max_axes = std::clamp(o.bulge_max_axes, 1, detector::kMaxBulgeAxes);
  p.steps = std::max(1, static_cast<int>(std::lround(o.bulge_reach_mm / o.bulge_step_mm)));
  p.step = o.bulge_reach_mm / p.steps;
  for (int a = 0; a < 3; ++a) p.per[a] = std::max(1, vessel_f[a] / level_f[a]);
  return p;
}

namespace {

using BulgeAxes = float[detector::kMaxBulgeAxes][3];

// The axes (at most max_axes, each direction once) of the clearly tubular
// voxels of the vessel grid vg around (vx, vy, vz), most tubular first: the 3 x 3
// x 3 block, else the 5 x 5 x 5 one, else its most tubular voxel alone (only
// faint tubes). None where nothing around is tubular. `around` is scratch.
int gather_bulge_axes(const Grid& vg, const std::vector<float>& tube,
                      const std::vector<std::array<float, 3>>& axis, int64_t vx, int64_t vy, int64_t vz,
                      const cuda::BulgeParams& p, std::vector<std::pair<float, int64_t>>& around, BulgeAxes& axes) {
  int n_axes = 0;
  for (int64_t r = 1; r <= 2 && n_axes == 0; ++r) {
    around.clear();
    float most = 0;
    int64_t most_at = -1;
    for (int64_t cz = std::max<int64_t>(0, vz - r); cz <= std::min(vg.nz - 1, vz + r); ++cz)
      for (int64_t cy = std::max<int64_t>(0, vy - r); cy <= std::min(vg.ny - 1, vy + r); ++cy)
        for (int64_t cx = std::max<int64_t>(0, vx - r); cx <= std::min(vg.nx - 1, vx + r); ++cx) {
          const int64_t c = vg.index(cx, cy, cz);
          if (tube[c] > most) most = tube[c], most_at = c;
          if (tube[c] >= p.clear_tube) around.push_back({tube[c], c});
        }
    if (around.empty()) {
      if (r < 2) continue;
      if (most_at >= 0) around.push_back({most, most_at});  // only faint tubes: the most tubular
    }
    std::stable_sort(around.begin(), around.end(),
                     [](const auto& a, const auto& b) { return a.first > b.first; });
    for (const auto& [t, c] : around) {
      if (n_axes == p.max_axes) break;
      const auto& a = axis[c];
      bool seen = false;
      for (int k = 0; k < n_axes && !seen; ++k)
        seen = std::abs(a[0] * axes[k][0] + a[1] * axes[k][1] + a[2] * axes[k][2]) > 0.97f;
      if (!seen) {
        std::copy(a.begin(), a.end(), axes[n_axes]);
        ++n_axes;
      }
    }
  }
  return n_axes;
}

}  // namespace

std::vector<float> bulge_residue(const std::vector<float>& s, const std::vector<uint8_t>& mask, const Grid& g,
                                 const Grid& vg, const std::vector<float>& tube,
                                 const std::vector<std::array<float, 3>>& axis, const cuda::BulgeParams& p) {
  std::vector<float> out(s.size(), p.fill);
  const detector::Dims d = dims_of(g);
  const int64_t* per = p.per;
  parallel_for(vg.nz, 1, [&](int64_t first, int64_t last) {
    std::vector<std::pair<float, int64_t>> around;  // (vesselness, voxel of the vessel grid)
    for (int64_t vz = first; vz < last; ++vz)
      for (int64_t vy = 0; vy < vg.ny; ++vy)
        for (int64_t vx = 0; vx < vg.nx; ++vx) {
          // The voxels of g under this voxel of vg, which gathers its axes once, when first needed.
          const int64_t x0 = vx * per[0], y0 = vy * per[1], z0 = vz * per[2];
          const int64_t x1 = vx + 1 == vg.nx ? g.nx : std::min(g.nx, x0 + per[0]),
                        y1 = vy + 1 == vg.ny ? g.ny : std::min(g.ny, y0 + per[1]),
                        z1 = vz + 1 == vg.nz ? g.nz : std::min(g.nz, z0 + per[2]);
          int n_axes = -1;  // not gathered yet
          BulgeAxes axes;
          for (int64_t z = z0; z < z1; ++z)
            for (int64_t y = y0; y < y1; ++y)
              for (int64_t x = x0; x < x1; ++x) {
                const int64_t i = g.index(x, y, z);
                if (s[i] <= p.bright || !mask[i]) continue;
                if (n_axes < 0) n_axes = gather_bulge_axes(vg, tube, axis, vx, vy, vz, p, around, axes);
                if (n_axes == 0) {  // no tube around: a blob's voxel
                  out[i] = s[i];
                  continue;
                }
                const float opened =
                    detector::opening_along(s.data(), mask.data(), d, x, y, z, axes, n_axes, p.steps, p.step, p.fill);
                out[i] = detector::bulge_left(s[i], opened, p.fill);
              }
        }
  });
  return out;
}

std::vector<detector::Peak> scan_peaks(const std::vector<float>& s, const std::vector<uint8_t>& mask, const Grid& g,
                                       float threshold, float fill,
                                       const std::vector<std::array<double, 3>>& shell) {
  const detector::Dims d = dims_of(g);
  std::vector<std::vector<detector::Peak>> per_plane(static_cast<size_t>(std::max<int64_t>(0, g.nz)));
  const auto* off = reinterpret_cast<const double(*)[3]>(shell.data());
  for_interior_planes(g, [&](int64_t z) {
    for (int64_t y = 1; y + 1 < g.ny; ++y)
      for (int64_t x = 1; x + 1 < g.nx; ++x) {
        const int64_t i = g.index(x, y, z);
        if (s[i] < threshold || !mask[i]) continue;  // most voxels: no block gathered
        detector::Peak p;
        if (detector::peak_at(s.data(), mask.data(), d, x, y, z, threshold, fill, off,
                              static_cast<int>(shell.size()), &p))
          per_plane[z].push_back(p);
      }
  });
  std::vector<detector::Peak> out;
  for (const auto& plane : per_plane) out.insert(out.end(), plane.begin(), plane.end());
  return out;
}

}  // namespace candidates_internal

namespace {

using namespace candidates_internal;
using GpuImage = cuda::GpuDetector::Image;

// Passes: every scale on the image, then the larger scales again on the image
// clipped at ground-glass density, where a vessel running through or beside a
// ground-glass nodule no longer outweighs it. Last, the small scales on the
// vessel-suppressed image, and the bulge pass on the residue of the vessels' opening.
enum class Pass { kImage, kGroundGlass, kVesselSuppressed, kBulge };

// One pass: its scale, kind and grid, and what its scan needs.
struct PassPlan {
  double sigma = 0;
  Pass pass = Pass::kImage;
  const Level* level = nullptr;
  float threshold = 0, fill = 0;
  std::vector<std::array<double, 3>> shell;  // isolation shell offsets in the level's voxels
  cuda::BulgeParams bulge;                   // the bulge pass's
};

// Bright tubular voxels fade to the parenchyma level by their tubularity; a
// nodule half sunk into a vessel (blob-like, lower tubularity) stays and
// becomes an isolated blob with a maximum of its own. The passes read these:
// host buffers, or images of the GPU session.
struct VesselImages {
  const Level* level = nullptr;
  std::vector<float> tube, suppressed;
  std::vector<std::array<float, 3>> axis;
  GpuImage gpu_tube = -1, gpu_axis = -1, gpu_suppressed = -1;
};

Result<GpuImage> smooth_on_gpu(cuda::GpuDetector& gpu, GpuImage in, const Grid& g, double sigma_mm) {
  return gpu.smooth(in, gaussian_kernel(sigma_mm / g.spacing[0]), gaussian_kernel(sigma_mm / g.spacing[1]),
                    gaussian_kernel(sigma_mm / g.spacing[2]));
}

Result<VesselImages> vessels_on_cpu(const Level& L, float fill, const CandidateOptions& o) {
  VesselImages v;
  v.level = &L;
  HILUM_ASSIGN_OR_RETURN(v.tube, tubularity(L.image, L.grid, fill, o, v.axis));
  const double span = std::max(1e-6, o.tubularity_high - o.tubularity_low);
  v.suppressed = L.image;
  for (size_t i = 0; i < v.suppressed.size(); ++i)
    v.suppressed[i] = detector::suppress_vessel(v.suppressed[i], v.tube[i], fill, o.tubularity_low, span);
  return v;
}

Result<VesselImages> vessels_on_gpu(cuda::GpuDetector& gpu, const Level& L, GpuImage image, float fill,
                                    const CandidateOptions& o) {
  VesselImages v;
  v.level = &L;
  const detector::Dims d = dims_of(L.grid);
  HILUM_ASSIGN_OR_RETURN(v.gpu_tube, gpu.zeros(d, 1));
  HILUM_ASSIGN_OR_RETURN(v.gpu_axis, gpu.zeros(d, 3));
  for (double sigma : o.vessel_sigmas_mm) {
    HILUM_ASSIGN_OR_RETURN(GpuImage smoothed, smooth_on_gpu(gpu, image, L.grid, sigma));
    const VesselScale s = vessel_scale(o, fill, sigma);
    HILUM_RETURN_IF_ERROR(
        gpu.vesselness_update(image, smoothed, v.gpu_tube, v.gpu_axis, s.bright, s.scale, s.a2, s.b2, s.c2));
    gpu.release(smoothed);
  }
  const double span = std::max(1e-6, o.tubularity_high - o.tubularity_low);
  HILUM_ASSIGN_OR_RETURN(v.gpu_suppressed, gpu.suppress_vessels(image, v.gpu_tube, fill, o.tubularity_low, span));
  return v;
}

// The ground-glass pass's cut (detector::ground_glass_value): the clip, or
// solid tissue and its rim out to the parenchyma level `fill`.
struct GroundGlassCut {
  float hi = 0, above = 0;
  int reach = 0;
};
GroundGlassCut ground_glass_cut(const CandidateOptions& o, float fill) {
  if (o.ground_glass_vessels_out)
    return {static_cast<float>(o.ground_glass_solid_hu), fill, std::max(0, o.ground_glass_rim_voxels)};
  const float clip = static_cast<float>(o.ground_glass_clip_hu);
  return {clip, clip, 0};
}

// A pass's peaks on the CPU. `residue_ms` gets the bulge residue's time.
Result<std::vector<detector::Peak>> peaks_on_cpu(const PassPlan& p, const VesselImages& vessels,
                                                 const CandidateOptions& o, double& residue_ms) {
  const Level& L = *p.level;
  const Grid& g = L.grid;
  std::vector<float> s;
  if (p.pass == Pass::kBulge) {
    // The residue of the lightly smoothed image's opening along the vessels, at the pass's scale.
    Stopwatch residue_clock;
    std::vector<float> residue;
    {
      // Freed before the residue is smoothed: that smoothing's buffers take its memory
      // instead of fresh pages.
      HILUM_ASSIGN_OR_RETURN(std::vector<float> light, gaussian_smooth(L.image, g, o.bulge_smoothing_mm));
      residue = bulge_residue(light, L.mask, g, vessels.level->grid, vessels.tube, vessels.axis, p.bulge);
    }
    residue_ms = residue_clock.lap() * 1e3;
    HILUM_ASSIGN_OR_RETURN(s, gaussian_smooth(residue, g, p.sigma));
  } else if (p.pass == Pass::kGroundGlass) {
    const GroundGlassCut cut = ground_glass_cut(o, p.fill);
    std::vector<float> clipped(L.image.size());
    const detector::Dims d = dims_of(g);
    parallel_for(g.nz, 1, [&](int64_t first, int64_t last) {
      for (int64_t z = first; z < last; ++z)
        for (int64_t y = 0; y < g.ny; ++y)
          for (int64_t x = 0; x < g.nx; ++x)
            clipped[g.index(x, y, z)] =
                detector::ground_glass_value(L.image.data(), d, x, y, z, cut.hi, cut.above, cut.reach);
    });
    HILUM_ASSIGN_OR_RETURN(s, gaussian_smooth(clipped, g, p.sigma));
  } else {
    HILUM_ASSIGN_OR_RETURN(s, gaussian_smooth(p.pass == Pass::kVesselSuppressed ? vessels.suppressed : L.image,
                                              g, p.sigma));
  }
  return scan_peaks(s, L.mask, g, p.threshold, p.fill, p.shell);
}

// The same on the GPU session, from the level's image and mask there.
Result<std::vector<detector::Peak>> peaks_on_gpu(cuda::GpuDetector& gpu, GpuImage image, GpuImage mask,
                                                 const PassPlan& p, const VesselImages& vessels,
                                                 const CandidateOptions& o, double& residue_ms) {
  const Grid& g = p.level->grid;
  GpuImage source = image, made = -1;
  if (p.pass == Pass::kGroundGlass) {
    const GroundGlassCut cut = ground_glass_cut(o, p.fill);
    HILUM_ASSIGN_OR_RETURN(made, gpu.ground_glass_image(image, cut.hi, cut.above, cut.reach));
  } else if (p.pass == Pass::kVesselSuppressed) {
    source = vessels.gpu_suppressed;
  } else if (p.pass == Pass::kBulge) {
    Stopwatch residue_clock;
    HILUM_ASSIGN_OR_RETURN(GpuImage light, smooth_on_gpu(gpu, image, g, o.bulge_smoothing_mm));
    auto residue = gpu.bulge_residue(light, mask, vessels.gpu_tube, vessels.gpu_axis, p.bulge);
    gpu.release(light);
    HILUM_ASSIGN_OR_RETURN(made, std::move(residue));
    HILUM_RETURN_IF_ERROR(gpu.synchronize());
    residue_ms = residue_clock.lap() * 1e3;
  }
  if (made >= 0) source = made;
  auto smoothed = smooth_on_gpu(gpu, source, g, p.sigma);
  gpu.release(made);
  HILUM_ASSIGN_OR_RETURN(GpuImage s, std::move(smoothed));
  auto found = gpu.peaks(s, mask, p.threshold, p.fill, p.shell);
  gpu.release(s);
  return found;
}

// The maximum a peak of pass p makes, or none when its Hessian is not a blob's.
// b0: the crop's first native voxel; z_spacing: the volume's slice spacing.
std::optional<Maximum> maximum_of(const detector::Peak& peak, const PassPlan& p, const CandidateOptions& o,
                                  const int64_t* b0, double z_spacing, size_t shell_size) {
  const Level& L = *p.level;
  const Grid& g = L.grid;
  const double sigma = p.sigma;
  double h[6], l[3];
  detector::hessian_at(peak.block, 13, 3, 9, g.spacing.data(), 1.0, h);
  detector::symmetric_eigenvalues(h[0], h[1], h[2], h[3], h[4], h[5], l);
  if (l[0] >= 0 || l[1] >= 0 || l[2] >= 0) return std::nullopt;
  const double blobness = std::abs(l[2]) / std::abs(l[0]);
  // Slices thicker than the scale flatten the z curvature of a small blob: relax.
  // The clipped pass flattens the tops of blobs: relax there too.
  const double relax = std::min(1.0, 1.5 * sigma / z_spacing) * (p.pass == Pass::kGroundGlass ? 0.5 : 1.0);
  // Small scales resolved by the grid accept elongated maxima too: a nodule
  // half sunk into a vessel makes one (blobness 0.2-0.3) where a plain vessel's
  // maxima stay below 0.1. Under-resolved scales ripple along vessels: strict there.
  const bool resolved = sigma >= 1.2 * std::max(g.spacing[0], g.spacing[1]);
  const double min_blobness = p.pass == Pass::kImage && sigma <= o.elongated_max_sigma_mm && resolved
                                  ? o.elongated_min_blobness
                                  : o.min_blobness;
  if (blobness < min_blobness * relax) return std::nullopt;
  // Sub-voxel peak by a parabola per axis.
  auto refine = [](double m, double c0, double q) {
    const double den = m - 2 * c0 + q;
    return den < 0 ? std::clamp(0.5 * (m - q) / den, -0.5, 0.5) : 0.0;
  };
  const float c = peak.block[13];
  const double ox = refine(peak.block[12], c, peak.block[14]), oy = refine(peak.block[10], c, peak.block[16]),
               oz = refine(peak.block[4], c, peak.block[22]);
  const int64_t x = peak.index % g.nx, y = (peak.index / g.nx) % g.ny, z = peak.index / (g.nx * g.ny);
  Maximum m;
  // Level voxel (x + o) covers native voxels [b0 + x f, b0 + (x+1) f): its centre is
  // b0 + (x + 0.5) f - 0.5.
  m.voxel = {b0[0] + (x + ox + 0.5) * L.f[0] - 0.5, b0[1] + (y + oy + 0.5) * L.f[1] - 0.5,
             b0[2] + (z + oz + 0.5) * L.f[2] - 0.5};
  m.sigma = sigma;
  m.response = sigma * sigma * l[2] * l[2] / std::abs(l[0]);
  m.contrast = c - p.fill;
  m.blobness = blobness;
  m.isolation = 1.0 - static_cast<double>(peak.bright) / shell_size;
  m.lung = L.mask[peak.index];
  m.vessel_suppressed = p.pass == Pass::kVesselSuppressed;
  m.bulge = p.pass == Pass::kBulge;
  return m;
}

// The detector, its image steps on `gpu` (a session) or, when null, on the CPU.
Result<std::vector<Candidate>> detect_on(const Volume& volume, const LungMask& mask, const CandidateOptions& o,
                                         Progress& progress, cuda::GpuDetector* gpu) {
  progress.report(0.0, "candidates");
  Stopwatch step_clock;  // wall time of each step, logged with -v
  const int64_t nx = volume.nx(), ny = volume.ny(), nz = volume.nz();
  const uint8_t* labels = mask.labels.data<uint8_t>();
  const double sigma_max = *std::max_element(o.sigmas_mm.begin(), o.sigmas_mm.end());

  // Crop: the lungs' bounding box plus 3 sigma_max.
  const MaskBox box = mask_box(labels, nx, ny, nz);
  if (box.empty()) return std::vector<Candidate>{};
  int64_t b0[3] = {box.x0, box.y0, box.z0}, b1[3] = {box.x1 - 1, box.y1 - 1, box.z1 - 1};  // inclusive
  const int64_t dims[3] = {nx, ny, nz};
  for (int a = 0; a < 3; ++a) {
    const int64_t m = static_cast<int64_t>(std::ceil(3 * sigma_max / volume.spacing[a]));
    b0[a] = std::max<int64_t>(0, b0[a] - m);
    b1[a] = std::min<int64_t>(dims[a] - 1, b1[a] + m);
  }
  const float fill = mask.parenchyma_hu;
  std::map<std::array<int, 3>, Level> levels;
  // Block factors (1, 2 or 4 per axis) of the grid a scale runs on.
  auto factors_for = [&](double sigma) {
    std::array<int, 3> f{};
    for (int a = 0; a < 3; ++a) {
      int k = 1;
      while (k < 4 && volume.spacing[a] * k * 2 <= sigma / 1.2) k *= 2;
      f[a] = k;
    }
    return f;
  };
  // Every level's block averages in one pass over the crop (each native voxel
  // read once, added into each level in the same order as level by level).
  // Tasks take 4 native slices at a time: whole planes of every level (z
  // factors are 1, 2 or 4), so no two tasks add into the same plane.
  auto build_levels = [&] {
    std::vector<Level*> all;
    std::vector<std::vector<int32_t>> block_of_x;  // per level: level column of each crop column
    for (auto& [f, L] : levels) {
      std::copy(f.begin(), f.end(), L.f);
      L.grid = Grid{(b1[0] - b0[0] + f[0]) / f[0],
                    (b1[1] - b0[1] + f[1]) / f[1],
                    (b1[2] - b0[2] + f[2]) / f[2],
                    {volume.spacing[0] * f[0], volume.spacing[1] * f[1], volume.spacing[2] * f[2]}};
      L.image.assign(static_cast<size_t>(L.grid.voxels()), 0.f);
      L.mask.assign(static_cast<size_t>(L.grid.voxels()), 0);
      all.push_back(&L);
      block_of_x.emplace_back(static_cast<size_t>(b1[0] - b0[0] + 1));
      for (size_t x = 0; x < block_of_x.back().size(); ++x)
        block_of_x.back()[x] = static_cast<int32_t>(x / f[0]);
    }
    const float* src = volume.data();
    const int64_t crop_nx = b1[0] - b0[0] + 1, crop_nz = b1[2] - b0[2] + 1;
    parallel_for((crop_nz + 3) / 4, 1, [&](int64_t first, int64_t last) {
      std::vector<float> v(static_cast<size_t>(crop_nx));
      for (int64_t z = b0[2] + 4 * first; z <= std::min(b1[2], b0[2] + 4 * last - 1); ++z)
        for (int64_t y = b0[1]; y <= b1[1]; ++y) {
          const int64_t off = (z * ny + y) * nx + b0[0];
          const uint8_t* lab = labels + off;
          const float* hu = src + off;
          for (int64_t x = 0; x < crop_nx; ++x) v[x] = lab[x] ? std::clamp(hu[x], -1000.f, 200.f) : fill;
          for (size_t l = 0; l < all.size(); ++l) {
            Level& L = *all[l];
            float* row = L.image.data() + L.grid.index(0, (y - b0[1]) / L.f[1], (z - b0[2]) / L.f[2]);
            const int32_t* bx = block_of_x[l].data();
            for (int64_t x = 0; x < crop_nx; ++x) row[bx[x]] += v[x];
          }
        }
    });
    for (Level* Lp : all) {
      Level& L = *Lp;
      const Grid& g = L.grid;
      const int* f = L.f;
      // Native voxels along axis a in block k (the last block of an axis may be short).
      auto extent = [&](int a, int64_t k) {
        return static_cast<float>(std::min<int64_t>(f[a], b1[a] - b0[a] + 1 - k * f[a]));
      };
      parallel_for(g.nz, 1, [&](int64_t first, int64_t last) {
        for (int64_t zl = first; zl < last; ++zl) {
          for (int64_t y = 0; y < g.ny; ++y)
            for (int64_t x = 0; x < g.nx; ++x)
              L.image[g.index(x, y, zl)] /= extent(0, x) * extent(1, y) * extent(2, zl);
          for (int64_t y = 0; y < g.ny; ++y)
            for (int64_t x = 0; x < g.nx; ++x) {
              const int64_t X = std::min(b1[0], b0[0] + x * f[0] + f[0] / 2),
                            Y = std::min(b1[1], b0[1] + y * f[1] + f[1] / 2),
                            Z = std::min(b1[2], b0[2] + zl * f[2] + f[2] / 2);
              L.mask[g.index(x, y, zl)] = labels[(Z * ny + Y) * nx + X];
            }
        }
      });
    }
  };

  // 64 directions spread over the sphere (Fibonacci lattice) for the isolation shell.
  std::vector<std::array<double, 3>> shell(64);
  for (size_t i = 0; i < shell.size(); ++i) {
    const double zc = 1.0 - (2.0 * i + 1.0) / shell.size();
    const double r = std::sqrt(1.0 - zc * zc), phi = 2.399963229728653 * i;
    shell[i] = {r * std::cos(phi), r * std::sin(phi), zc};
  }
  // The passes (Pass, above), in that order.
  std::vector<std::pair<double, Pass>> passes;
  for (double sigma : o.sigmas_mm) passes.push_back({sigma, Pass::kImage});
  // The ground-glass pass only at scales of 1.4 in-plane pixels or more: the clip
  // leaves vessels flat-topped, and a smaller scale ripples along them into chains
  // of maxima (1.2 pixels left 16 along the vessels of Candidates.FindsPlantedBalls-
  // OfEverySizeAndType's 1.4 mm pixels). Pixels up to 0.93 mm keep the 1.3 mm scale.
  for (double sigma : o.sigmas_mm)
    if (sigma >= o.ground_glass_min_sigma_mm && sigma >= 1.4 * std::max(volume.spacing[0], volume.spacing[1]))
      passes.push_back({sigma, Pass::kGroundGlass});
  for (double sigma : o.vessel_suppressed_sigmas_mm) passes.push_back({sigma, Pass::kVesselSuppressed});
  // Coarser pixels than bulge_max_pixel_mm blur a thin vessel's core into a chain of
  // voxels whose opening leaves bulges along it: no bulge pass there.
  if (!o.vessel_suppressed_sigmas_mm.empty() && o.bulge_sigma_mm > 0 &&
      std::max(volume.spacing[0], volume.spacing[1]) <= o.bulge_max_pixel_mm)
    passes.push_back({o.bulge_sigma_mm, Pass::kBulge});
  // Every pass's grid (and the vessel-suppressed image) first; the passes then only read them.
  std::vector<Level*> pass_level(passes.size());
  for (size_t si = 0; si < passes.size(); ++si) {
    const Pass pass = passes[si].second;
    pass_level[si] =
        &levels[factors_for(pass == Pass::kVesselSuppressed ? o.vessel_grid_sigma_mm : passes[si].first)];
  }
  Level* vessel_level =
      o.vessel_suppressed_sigmas_mm.empty() ? nullptr : &levels[factors_for(o.vessel_grid_sigma_mm)];
  build_levels();
  const double grids_ms = step_clock.lap() * 1e3;
  // On the GPU every level goes to the device once; the images derived from
  // it (smoothings, the vessels, the residue) are made and scanned there, and
  // only the peaks come back. The CPU does the same steps on host buffers.
  std::map<const Level*, std::pair<GpuImage, GpuImage>> on_gpu;  // image, mask
  if (gpu) {
    for (const auto& [f, L] : levels) {
      const detector::Dims d = dims_of(L.grid);
      HILUM_ASSIGN_OR_RETURN(GpuImage image, gpu->upload(L.image.data(), d));
      HILUM_ASSIGN_OR_RETURN(GpuImage m, gpu->upload_mask(L.mask.data(), d));
      on_gpu[&L] = {image, m};
    }
  }
  VesselImages vessels;
  double vessel_ms = 0, bulge_ms = 0;
  if (vessel_level) {
    if (gpu) {
      HILUM_ASSIGN_OR_RETURN(vessels, vessels_on_gpu(*gpu, *vessel_level, on_gpu[vessel_level].first, fill, o));
    } else {
      HILUM_ASSIGN_OR_RETURN(vessels, vessels_on_cpu(*vessel_level, fill, o));
    }
    vessel_ms = step_clock.lap() * 1e3;
  }
  progress.report(0.2, "candidates");
  if (progress.cancelled()) return cancelled_error();
  // Pass by pass (the smoothing runs on the thread pool itself), each pass's scan over
  // the planes of its grid in parallel, every plane into its own list, joined
  // in plane order: the same maxima in the same order as one voxel after the
  // other, and it scales with the cores where passes side by side did not (the
  // finest pass alone took most of the time).
  std::vector<Maximum> maxima;
  for (size_t si = 0; si < passes.size(); ++si) {
    if (progress.cancelled()) return cancelled_error();
    PassPlan p;
    p.sigma = passes[si].first;
    p.pass = passes[si].second;
    p.level = pass_level[si];
    p.threshold = fill + static_cast<float>(o.min_contrast_hu);
    p.fill = fill;
    // Isolation: the share of a shell at 4 sigma (twice the blob's radius) that is
    // not bright. A vessel crosses the shell where it enters and leaves. At least
    // two grid steps out along every axis (thick slices).
    const auto& sp = p.level->grid.spacing;
    const double rx = std::max(4 * p.sigma, 2 * sp[0]), ry = std::max(4 * p.sigma, 2 * sp[1]),
                 rz = std::max(4 * p.sigma, 2 * sp[2]);
    for (const auto& d : shell) p.shell.push_back({d[0] * rx / sp[0], d[1] * ry / sp[1], d[2] * rz / sp[2]});
    if (p.pass == Pass::kBulge) p.bulge = bulge_params(o, fill, p.level->f, vessel_level->f);
    std::vector<detector::Peak> peaks;
    if (gpu) {
      const auto [image, m] = on_gpu[p.level];
      HILUM_ASSIGN_OR_RETURN(peaks, peaks_on_gpu(*gpu, image, m, p, vessels, o, bulge_ms));
    } else {
      HILUM_ASSIGN_OR_RETURN(peaks, peaks_on_cpu(p, vessels, o, bulge_ms));
    }
    for (const detector::Peak& peak : peaks)
      if (auto m = maximum_of(peak, p, o, b0, volume.spacing[2], shell.size())) maxima.push_back(*m);
    progress.report(0.2 + 0.7 * static_cast<double>(si + 1) / passes.size(), "candidates");
  }
  const double passes_ms = step_clock.lap() * 1e3;
  progress.report(0.9, "candidates");

  // Non-maximum suppression across scales, strongest response first. A weaker
  // maximum goes when it lies within max(2 mm, sigma) of a kept one, or inside
  // the kept one's radius (2 sigma) with a similar contrast (the same tissue at
  // another scale). A faint blob beside a bright vessel survives: ground-glass
  // nodules next to vessels.
  // Maxima of the vessel-suppressed image come last and only lend their score to
  // the image maximum that suppresses them: a nodule beside a vessel or the
  // pleura is isolated there (its shell no longer crosses bright tubes). A
  // maximum that lends its score lends its place too; suppression goes on from
  // the image maximum's.
  // Bulge maxima come after the image's and are suppressed only near a kept
  // candidate of the image (within bulge_core_mm): the maximum of vessel
  // and nodule a few mm away is not the nodule.
  std::sort(maxima.begin(), maxima.end(), [](const Maximum& a, const Maximum& b) {
    if (a.vessel_suppressed != b.vessel_suppressed) return b.vessel_suppressed;
    if (a.bulge != b.bulge) return b.bulge;
    return a.response > b.response;
  });
  std::vector<Candidate> out;
  std::vector<Vec3> kept_mm;
  std::vector<double> kept_sigma, kept_contrast;
  std::vector<bool> kept_bulge;
  // Kept maxima bucketed in cubes of the largest suppression radius: only the 27
  // cubes around a maximum can hold one that suppresses it.
  const double cell = std::max(2.0, 2 * sigma_max);
  std::map<std::array<int64_t, 3>, std::vector<size_t>> cells;
  auto cell_of = [&](const Vec3& w) {
    return std::array<int64_t, 3>{static_cast<int64_t>(std::floor(w[0] / cell)),
                                  static_cast<int64_t>(std::floor(w[1] / cell)),
                                  static_cast<int64_t>(std::floor(w[2] / cell))};
  };
  for (const Maximum& m : maxima) {
    const Vec3 w = volume.world_from_voxel(m.voxel);
    bool suppressed = false;
    const auto home = cell_of(w);
    for (int dz = -1; dz <= 1 && !suppressed; ++dz)
      for (int dy = -1; dy <= 1 && !suppressed; ++dy)
        for (int dx = -1; dx <= 1 && !suppressed; ++dx) {
          auto it = cells.find({home[0] + dx, home[1] + dy, home[2] + dz});
          if (it == cells.end()) continue;
          for (size_t k : it->second) {
            const double d2 = (w[0] - kept_mm[k][0]) * (w[0] - kept_mm[k][0]) +
                              (w[1] - kept_mm[k][1]) * (w[1] - kept_mm[k][1]) +
                              (w[2] - kept_mm[k][2]) * (w[2] - kept_mm[k][2]);
            const bool brighter =
                (m.bulge && !kept_bulge[k]) ||
                (m.sigma < kept_sigma[k] && m.contrast > o.nms_brighter_ratio * kept_contrast[k]);
            const double core = m.bulge && !kept_bulge[k] ? o.bulge_core_mm
                                : brighter                ? o.nms_brighter_core_mm
                                                          : std::max(2.0, kept_sigma[k]),
                         radius = std::max(2.0, 2 * kept_sigma[k]);
            if (d2 < core * core ||
                (!brighter && d2 < radius * radius && m.contrast >= 0.6 * kept_contrast[k])) {
              suppressed = true;
              // With its score the candidate takes the vessel-suppressed maximum's place
              // (vessel_suppressed_moves): the image's maximum of a nodule beside a vessel lies
              // between the two, the vessel-suppressed image's on the nodule.
              if (m.vessel_suppressed && ranking_score(m) > out[k].score) {
                out[k].score = ranking_score(m);
                if (o.vessel_suppressed_moves) out[k].center_mm = w, out[k].voxel = m.voxel;
              }
              break;
            }
          }
        }
    if (suppressed) continue;
    // A maximum of the vessel-suppressed image is not a candidate on its own
    // (remnants of partly suppressed vessels would crowd the ranking).
    if (m.vessel_suppressed) continue;
    Candidate c;
    c.center_mm = w;
    c.voxel = m.voxel;
    c.sigma_mm = m.sigma;
    c.diameter_mm = 4.0 * m.sigma;  // measured on synthetic balls (3-25 mm)
    c.response = m.response;
    c.contrast_hu = m.contrast;
    c.blobness = m.blobness;
    c.isolation = m.isolation;
    c.score = ranking_score(m);
    c.lung = m.lung;
    c.bulge = m.bulge;
    out.push_back(c);
    kept_mm.push_back(w);
    kept_sigma.push_back(m.sigma);
    kept_contrast.push_back(m.contrast);
    kept_bulge.push_back(m.bulge);
    cells[home].push_back(kept_mm.size() - 1);
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const Candidate& a, const Candidate& b) { return a.score > b.score; });
  // Only the best bulge_max_candidates bulges: most bulges are vessel junctions,
  // bends and crossings, and every extra candidate can push a nodule out of the ranking.
  // Those past the quota wait, in score order, for the places after the pleural caps.
  std::vector<Candidate> extra_bulges;
  {
    int bulges_kept = 0;
    size_t n = 0;
    for (Candidate& c : out) {
      if (c.bulge && ++bulges_kept > o.bulge_max_candidates) {
        if (static_cast<int>(extra_bulges.size()) < o.bulge_extra_candidates) extra_bulges.push_back(c);
        continue;
      }
      out[n++] = c;
    }
    out.resize(n);
  }
  const double ranked_ms = step_clock.lap() * 1e3;
  // Pleural caps: ranked-out candidates at the strongest top-hat maxima near the mask's edge.
  int pleural_kept = 0;
  // After the passes, on this thread. On a thread of its own beside them it saved
  // nothing on CUDA: it still kept the host 0.4-0.55 s, mostly one thread zeroing and
  // faulting in its buffers, which the pool's threads now touch first instead
  // (pleural_caps.cpp; about 0.1 s on the H200 machine, bench/RESULTS.md).
  if (static_cast<int>(out.size()) > o.max_candidates && o.pleural_max_candidates > 0) {
    HILUM_ASSIGN_OR_RETURN(const std::vector<PleuralPeak> peaks, pleural_peaks(volume, mask, o, &box));
    const double match2 = o.pleural_match_mm * o.pleural_match_mm;
    for (const PleuralPeak& p : peaks) {
      if (pleural_kept >= o.pleural_max_candidates) break;
      const Vec3 w = volume.world_from_voxel(p.voxel);
      size_t nearest = out.size();
      double best = match2;
      for (size_t k = 0; k < out.size(); ++k) {
        const Vec3& c = out[k].center_mm;
        const double d2 = (w[0] - c[0]) * (w[0] - c[0]) + (w[1] - c[1]) * (w[1] - c[1]) + (w[2] - c[2]) * (w[2] - c[2]);
        if (d2 <= best) best = d2, nearest = k;
      }
      if (nearest == out.size() || nearest < static_cast<size_t>(o.max_candidates) || out[nearest].pleural) continue;
      out[nearest].pleural = true;
      ++pleural_kept;
    }
  }
  // The best max_candidates, then the pleural ones (still by decreasing score).
  if (static_cast<int>(out.size()) > o.max_candidates) {
    size_t n = static_cast<size_t>(o.max_candidates);
    for (size_t k = n; k < out.size(); ++k)
      if (out[k].pleural) out[n++] = out[k];
    out.resize(n);
  }
  out.insert(out.end(), extra_bulges.begin(), extra_bulges.end());
  char timing[320];
  std::snprintf(timing, sizeof timing,
                "candidates (%s): %zu grids %.0f ms, the vessel-suppressed image %.0f ms, bulge residue %.0f ms, "
                "%zu passes %.0f ms, %zu maxima ranked %.0f ms, %d pleural caps kept %.0f ms, %zu bulges past the quota",
                gpu ? "CUDA" : "CPU", levels.size(), grids_ms, vessel_ms, bulge_ms, passes.size(), passes_ms, maxima.size(),
                ranked_ms, pleural_kept, step_clock.lap() * 1e3, extra_bulges.size());
  log_info(timing);
  progress.report(1.0, "candidates");
  return out;
}

}  // namespace

Result<std::vector<Candidate>> detect_candidates(const Volume& volume, const LungMask& mask,
                                                 const CandidateOptions& o, Progress& progress) {
  if (!mask.labels.defined() || mask.labels.shape() != volume.hu.shape()) {
    return bad_input("candidates: the lung mask does not match the volume");
  }
  if (o.sigmas_mm.empty() || o.max_candidates <= 0)
    return bad_input("candidates: no scales or no candidates asked for");
  if (o.device == Device::kCUDA) {
    // A GPU that fails (no device, out of memory) leaves the CPU to do the same work.
    auto session = cuda::GpuDetector::create();
    if (session.ok()) {
      auto found = detect_on(volume, mask, o, progress, &*session);
      if (found.ok() || found.error().kind() == ErrorKind::kCancelled) return found;
      log_warning("candidates on CUDA failed (" + found.error().message() + "); detecting on the CPU");
    } else {
      log_warning("candidates on CUDA: " + session.error().message() + "; detecting on the CPU");
    }
  }
  return detect_on(volume, mask, o, progress, nullptr);
}

}  // namespace hilum
