#include "app/findings_builder.h"

#if HILUM_HAVE_IMAGING

#include <algorithm>
#include <cmath>
#include <optional>

#include "model/parallel.h"

#include "vision/io/sizing.h"

namespace hilum {

Result<FindingsResult> build_findings(const Volume& volume, const LungMask& mask,
                                      const std::vector<Candidate>& candidates,
                                      const std::vector<float>& probability,
                                      const std::vector<float>& malignancy, const FindingsOptions& o,
                                      Progress& progress) {
  if (probability.size() != candidates.size() || malignancy.size() != candidates.size()) {
    return bad_input("findings: " + std::to_string(candidates.size()) + " candidates but " +
                     std::to_string(probability.size()) + " probabilities and " +
                     std::to_string(malignancy.size()) + " malignancy scores");
  }
  FindingsResult out;
  out.scored.reserve(candidates.size());
  for (size_t i = 0; i < candidates.size(); ++i) {
    out.scored.push_back({candidates[i].center_mm, probability[i], candidates[i].diameter_mm / 2});
  }
  const std::vector<size_t> kept = non_maximum_suppression_3d(out.scored, o.nms_distance_mm);
  // The candidates above the threshold are measured ahead, side by side (each
  // measurement is independent; most of a study's findings time), up to a few
  // more than max_findings; the loop below takes them in order, as before.
  std::vector<size_t> above;
  for (size_t i : kept) {
    if (probability[i] < o.min_probability) break;  // kept is sorted by probability
    above.push_back(i);
  }
  const size_t ahead = std::min(above.size(), static_cast<size_t>(std::max(o.max_findings, 0)) + 8);
  std::vector<std::optional<Result<NoduleMeasurement>>> measured(ahead);
  progress.report(0.0, "sizing");
  parallel_for(static_cast<int64_t>(ahead), 1, [&](int64_t first, int64_t last) {
    for (int64_t k = first; k < last; ++k) {
      const Candidate& c = candidates[above[static_cast<size_t>(k)]];
      measured[static_cast<size_t>(k)] = measure_nodule(volume, mask, c.center_mm, c.diameter_mm);
    }
  });
  std::vector<Finding> found;
  for (size_t k = 0; k < above.size(); ++k) {
    const size_t i = above[k];
    if (progress.cancelled()) return cancelled_error();
    progress.report(static_cast<double>(k) / above.size(), "sizing");
    if (static_cast<int>(found.size()) >= o.max_findings) {
      out.notes.push_back(
          "more candidates above the probability threshold than max_findings; the rest are not listed");
      break;
    }
    const Candidate& c = candidates[i];
    Result<NoduleMeasurement> m =
        k < ahead ? std::move(*measured[k]) : measure_nodule(volume, mask, c.center_mm, c.diameter_mm);
    if (!m.ok()) {
      out.notes.push_back("candidate at slice " + std::to_string(std::lround(c.voxel[2])) +
                          " not reported: " + m.error().message());
      continue;
    }
    if (m->long_axis_mm < o.min_long_axis_mm) {
      out.notes.push_back("candidate at slice " + std::to_string(std::lround(c.voxel[2])) + " measures " +
                          std::to_string(m->long_axis_mm).substr(0, 4) +
                          " mm in long axis: below the reporting size");
      continue;
    }
    // Sizing can move the centre onto an already reported nodule.
    bool duplicate = false;
    for (const Finding& f : found) {
      const double d = std::hypot(f.center_mm[0] - m->center_mm[0], f.center_mm[1] - m->center_mm[1],
                                  f.center_mm[2] - m->center_mm[2]);
      if (d < std::max(o.nms_distance_mm, f.mean_diameter_mm / 2)) duplicate = true;
    }
    if (duplicate) continue;

    Finding f;
    f.center_mm = m->center_mm;
    f.long_axis_mm = m->long_axis_mm;
    f.short_axis_mm = m->short_axis_mm;
    f.mean_diameter_mm = m->mean_diameter_mm;
    f.volume_mm3 = std::round(m->volume_mm3 * 10) / 10;
    f.type = m->type;
    f.solid_component_mm = m->solid_component_mm;
    f.probability = probability[i];
    f.malignancy = malignancy[i];
    LungRadsInput in;
    in.type = m->type;
    in.mean_diameter_mm = m->mean_diameter_mm;
    in.solid_component_mm = m->type == NoduleType::kPartSolid ? m->solid_component_mm : 0;
    in.juxtapleural = m->juxtapleural;
    auto lr = assess_lung_rads(in);
    if (!lr.ok()) return lr.error();
    f.lung_rads = *lr;
    const LungPosition pos = locate_in_lungs(mask, volume, m->center_mm);
    f.location.side = pos.side == kRightLung  ? LungSide::kRight
                      : pos.side == kLeftLung ? LungSide::kLeft
                                              : LungSide::kUnknown;
    f.location.lobe = pos.lobe;
    const Vec3 v = volume.voxel_from_world(m->center_mm);
    f.location.voxel = {v[0], v[1], v[2]};
    f.location.slice_index = m->axial_slice;
    f.location.juxtapleural = m->juxtapleural;
    f.evidence = {
        {"center_mm", "sizing: centroid of the local segmentation"},
        {"long_axis_mm", "sizing: axial slice of maximal area"},
        {"short_axis_mm", "sizing: perpendicular to the long axis, same slice"},
        {"mean_diameter_mm", "sizing: (long + short) / 2"},
        {"volume_mm3", m->type == NoduleType::kPartSolid
                           ? "sizing: voxel count of the segmentation"
                           : "sizing: partial-volume sum over the segmentation"},
        {"type", "sizing: HU of core and surrounding shell"},
        {"probability", "fusion head: nodule logit"},
        {"malignancy", "fusion head: malignancy logit"},
        {"lung_rads", "Lung-RADS v2022 baseline rules on the measured size and type"},
        {"side", "lung mask"},
        {"lobe", "geometric estimate from the position in the lung (no fissure detection)"},
        {"candidate", (c.bulge ? "vessel bulge detector (what the opening along the nearby vessels leaves), scale "
                               : "multi-scale blob detector, scale ") +
                          std::to_string(c.sigma_mm).substr(0, 4) + " mm"},
    };
    if (!m->note.empty()) f.evidence["sizing_note"] = m->note;
    found.push_back(std::move(f));
  }
  for (size_t k = 0; k < found.size(); ++k) found[k].id = static_cast<int>(k + 1);
  out.findings = std::move(found);
  progress.report(1.0, "sizing");
  return out;
}

}  // namespace hilum

#endif  // HILUM_HAVE_IMAGING
