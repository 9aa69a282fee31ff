#include "app/training_export.h"

#if HILUM_HAVE_IMAGING

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <numeric>
#include <optional>
#include <string_view>

#include "app/csv.h"
#include "model/file_io.h"
#include "model/npy.h"
#include "model/stopwatch.h"
#include "vision/io/candidates.h"
#include "vision/io/lung_mask.h"
#include "vision/io/phantom.h"
#include "vision/io/phantom_random.h"
#include "vision/io/sizing.h"
#include "vision/patches.h"

namespace hilum {
namespace {

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

// One notes.jsonl line: the note, the profile behind it and its part of the
// malignancy logit (docs/phantom.md, "Malignancy model").
std::string note_line(int study, uint64_t seed, const std::string& series_uid, const ClinicalProfile& cp,
                      const std::string& text) {
  nlohmann::ordered_json note;
  note["study"] = study;
  note["seed"] = seed;
  if (!series_uid.empty()) note["series_uid"] = series_uid;
  note["text"] = text;
  nlohmann::ordered_json profile;
  profile["age"] = cp.age;
  profile["sex"] = cp.sex;
  profile["pack_years"] = cp.pack_years;
  profile["current_smoker"] = cp.current_smoker;
  profile["never_smoker"] = cp.never_smoker;
  profile["years_since_quit"] = cp.years_since_quit;
  profile["prior_cancer"] = cp.prior_cancer;
  profile["prior_cancer_site"] = cp.prior_cancer_site;
  profile["family_history"] = cp.family_history;
  profile["emphysema"] = cp.emphysema;
  profile["haemoptysis"] = cp.haemoptysis;
  profile["weight_loss"] = cp.weight_loss;
  profile["symptoms"] = cp.symptoms;
  note["profile"] = std::move(profile);
  note["note_logit"] = std::round(cp.note_logit * 1e6) / 1e6;
  return note.dump() + "\n";
}

Result<TrainingExportSummary> export_notes_only(const TrainingExportOptions& o, Progress& progress) {
  TrainingExportSummary sum;
  std::string notes;
  const uint64_t count = o.last_seed - o.first_seed + 1;
  for (uint64_t k = 0; k < count; ++k) {
    if (progress.cancelled()) return cancelled_error();
    const uint64_t seed = o.first_seed + k;
    const PhantomNote note = make_phantom_note(seed);
    notes += note_line(static_cast<int>(k), seed, "", note.profile, note.text);
    ++sum.studies;
    if (k % 256 == 0) progress.report(static_cast<double>(k) / count, "notes");
  }
  nlohmann::ordered_json manifest;
  manifest["format"] = "hilum training set";
  manifest["version"] = 2;
  manifest["notes_only"] = true;
  manifest["seeds"] = {o.first_seed, o.last_seed};
  manifest["counts"] = {{"studies", sum.studies}};
  HILUM_RETURN_IF_ERROR(write_file_atomic(o.out / "notes.jsonl", notes));
  HILUM_RETURN_IF_ERROR(write_file_atomic(o.out / "manifest.json", manifest.dump(2) + "\n"));
  progress.report(1.0, "notes");
  return sum;
}

}  // namespace

Result<std::array<double, 3>> parse_nodule_sites(std::string_view text) {
  const std::string form = " (expected NAME=WEIGHT,... with NAME isolated, juxtapleural or juxtavascular)";
  const auto& names = nodule_site_names();
  std::array<double, 3> w{0, 0, 0};
  std::array<bool, 3> seen{false, false, false};
  if (text.empty()) return bad_input("--nodule-sites is empty" + form);
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = std::min(text.find(',', start), text.size());
    const std::string_view part = text.substr(start, comma - start);
    const size_t eq = part.find('=');
    if (eq == std::string_view::npos) return bad_input("--nodule-sites: '" + std::string(part) + "' has no '='" + form);
    const std::string_view name = part.substr(0, eq), value = part.substr(eq + 1);
    const auto it = std::find(names.begin(), names.end(), name);
    if (it == names.end()) return bad_input("--nodule-sites: unknown site '" + std::string(name) + "'" + form);
    const size_t k = static_cast<size_t>(it - names.begin());
    if (seen[k]) return bad_input("--nodule-sites: site '" + std::string(name) + "' given twice");
    seen[k] = true;
    const std::optional<double> x = parse_decimal(value);
    if (!x || *x < 0) {
      return bad_input("--nodule-sites: the weight of '" + std::string(name) + "' must be a number >= 0 (got '" +
                       std::string(value) + "')");
    }
    w[k] = *x;
    start = comma + 1;
  }
  PhantomOptions checked;
  checked.site_weights = w;
  HILUM_RETURN_IF_ERROR(validate_phantom_options(checked));  // at least one weight above 0
  return w;
}

double truth_jitter_radius_mm(double diameter_mm) { return std::clamp(diameter_mm / 4, 0.75, 2.0); }

Status parse_seed_range(const std::string& text, uint64_t& first, uint64_t& last) {
  const std::string msg = "--seeds must be A-B or A with whole numbers A <= B (got '" + text + "')";
  auto parse = [&](const std::string& s, uint64_t& v) {
    if (s.empty() || s.size() > 19 || s.find_first_not_of("0123456789") != std::string::npos) return false;
    v = std::stoull(s);
    return true;
  };
  const size_t dash = text.find('-');
  if (dash == std::string::npos) {
    if (!parse(text, first)) return bad_input(msg);
    last = first;
    return Status::Ok();
  }
  if (!parse(text.substr(0, dash), first) || !parse(text.substr(dash + 1), last) || last < first)
    return bad_input(msg);
  return Status::Ok();
}

Result<TrainingExportSummary> export_training_set(const TrainingExportOptions& o, Progress& progress) {
  if (o.out.empty()) return bad_input("--out must name a folder");
  if (o.last_seed < o.first_seed) return bad_input("--seeds: the last seed is below the first");
  if (o.last_seed - o.first_seed >= 100000) return bad_input("--seeds: at most 100000 studies per export");
  if (o.max_candidates < 0 || o.max_candidates > 100000)
    return bad_input("--max-candidates must be between 0 (the detector's default) and 100000, got " +
                     std::to_string(o.max_candidates));
  if (o.truth_jitter < 0 || o.truth_jitter > kMaxTruthJitter)
    return bad_input("--truth-jitter must be between 0 and " + std::to_string(kMaxTruthJitter) +
                     " patches per nodule, got " + std::to_string(o.truth_jitter));
  if (!(o.patch_slab_mm >= 0 && o.patch_slab_mm <= PatchOptions::kMaxSlabMm))
    return bad_input("--patch-slab must be between 0 and 20 mm, got " + fmt("%g", o.patch_slab_mm));
  if (!(o.patch_zoom_spacing_mm >= 0 && o.patch_zoom_spacing_mm <= PatchOptions::kMaxZoomSpacingMm))
    return bad_input("--patch-zoom must be between 0 and 5 mm, got " + fmt("%g", o.patch_zoom_spacing_mm));
  if (o.patch_slab_mm > 0 && o.patch_zoom_spacing_mm > 0)
    return bad_input("--patch-slab and --patch-zoom do not combine: choose one");
  PatchOptions patch_options;
  patch_options.slab_mm = o.patch_slab_mm;
  patch_options.zoom_spacing_mm = o.patch_zoom_spacing_mm;
  std::vector<PatchOptions> frame_options;
  for (const std::string& name : o.extra_frames) {
    auto frame = patch_frame(name);
    if (!frame.ok() || name == "axes")
      return bad_input("--patch-frames: '" + name + "' is not an extra frame (rz45, rx45, ry45)");
    frame_options.push_back(patch_options);
    frame_options.back().frame = *frame;
  }
  std::error_code ec;
  std::filesystem::create_directories(o.out, ec);
  if (ec) return bad_input(o.out.string() + ": cannot create the folder (" + ec.message() + ")");
  if (o.notes_only) return export_notes_only(o, progress);

  // hilum analyze's settings; only the cut may move (--max-candidates), to
  // study how the detector's score ranks the maxima beyond it.
  const CandidateOptions candidate_options = [&] {
    CandidateOptions c = with_environment_switches(CandidateOptions{});  // as analyze
    if (o.max_candidates > 0) c.max_candidates = o.max_candidates;
    return c;
  }();
  const LungMaskOptions mask_options;

  std::vector<uint8_t> patches;
  std::vector<std::vector<uint8_t>> frame_patches(frame_options.size());
  std::string labels =
      "study,seed,candidate,source,is_nodule,malignant,nodule,diameter_mm,type,distance_mm,x_mm,y_mm,z_mm,"
      "response,contrast_hu,blobness,isolation,score,scale_mm,estimated_diameter_mm,lung,image_logit,pleural,bulge\n";
  std::string nodules_csv =
      "study,seed,nodule,x_mm,y_mm,z_mm,diameter_mm,type,solid_diameter_mm,malignant,malignancy_probability,"
      "juxtapleural,juxtavascular,truth_axial_long_mm,truth_axial_short_mm,truth_axial_mean_mm,truth_volume_"
      "mm3,"
      "detected,distance_mm,candidate_rank,measured_mean_mm,measured_long_mm,measured_short_mm,measured_"
      "volume_mm3,"
      "measured_type,measured_solid_mm,margin,upper_zone,image_logit\n";
  std::string studies_csv =
      "study,seed,series_uid,slices,spacing_x_mm,spacing_z_mm,nodules,nodules_3mm,detected_3mm,candidates,"
      "patches,phantom_s,mask_s,candidates_s,patches_s,sizing_s,right_lung_ml,left_lung_ml\n";
  std::string notes;
  TrainingExportSummary sum;
  int64_t total_candidates = 0;

  const uint64_t count = o.last_seed - o.first_seed + 1;
  for (uint64_t k = 0; k < count; ++k) {
    const uint64_t seed = o.first_seed + k;
    const int study = static_cast<int>(k);
    ProgressRange step(progress, static_cast<double>(k) / count, static_cast<double>(k + 1) / count);
    if (progress.cancelled()) return cancelled_error();

    Stopwatch clock;
    PhantomOptions po;
    po.seed = seed;
    po.slices = o.slices;
    po.nodules = o.nodules;
    po.site_weights = o.site_weights;
    ProgressRange gen(step, 0, 0.4);
    HILUM_ASSIGN_OR_RETURN(Phantom ph, make_phantom(po, gen));
    const double phantom_s = clock.seconds();
    const Volume& v = ph.volume;

    clock.restart();
    ProgressRange mask_step(step, 0.4, 0.6);
    auto mask = segment_lungs(v, mask_options, mask_step);
    if (!mask.ok()) return mask.error().with_context("phantom seed " + std::to_string(seed));
    const double mask_s = clock.seconds();

    clock.restart();
    ProgressRange cand_step(step, 0.6, 0.85);
    HILUM_ASSIGN_OR_RETURN(std::vector<Candidate> cands,
                           detect_candidates(v, *mask, candidate_options, cand_step));
    const double candidates_s = clock.seconds();
    total_candidates += static_cast<int64_t>(cands.size());

    // Label each candidate by the nearest true nodule whose radius holds it (LUNA16's hit rule).
    struct Row {
      int candidate;  // -1 for truth patches, -2 for jitter patches
      int nodule;     // -1 for none
      double distance;
      Vec3 center;
    };
    std::vector<Row> rows;
    std::vector<int> nodule_rank(ph.nodules.size(), -1);
    std::vector<double> nodule_distance(ph.nodules.size(), -1);
    std::vector<Row> negatives;
    for (size_t i = 0; i < cands.size(); ++i) {
      int hit = -1;
      double best = 1e300;
      for (size_t n = 0; n < ph.nodules.size(); ++n) {
        const PhantomNodule& t = ph.nodules[n];
        const double d =
            std::hypot(cands[i].center_mm[0] - t.center_mm[0], cands[i].center_mm[1] - t.center_mm[1],
                       cands[i].center_mm[2] - t.center_mm[2]);
        if (d <= std::max(t.diameter_mm / 2, 1.5) && d < best) best = d, hit = static_cast<int>(n);
      }
      if (hit >= 0) {
        rows.push_back({static_cast<int>(i), hit, best, cands[i].center_mm});
        if (nodule_rank[hit] < 0) nodule_rank[hit] = static_cast<int>(i), nodule_distance[hit] = best;
      } else {
        negatives.push_back({static_cast<int>(i), -1, -1, cands[i].center_mm});
      }
    }
    // Candidates come by decreasing score: the first negatives are the hardest.
    const size_t keep = o.negatives_per_study < 0
                            ? negatives.size()
                            : std::min(negatives.size(), static_cast<size_t>(o.negatives_per_study));
    rows.insert(rows.end(), negatives.begin(), negatives.begin() + static_cast<std::ptrdiff_t>(keep));
    if (o.truth_patches)
      for (size_t n = 0; n < ph.nodules.size(); ++n)
        rows.push_back({-1, static_cast<int>(n), 0.0, ph.nodules[n].center_mm});
    for (size_t n = 0; n < ph.nodules.size() && o.truth_jitter > 0; ++n) {
      const PhantomNodule& t = ph.nodules[n];
      const double radius = truth_jitter_radius_mm(t.diameter_mm);
      phantom::Rng rng(seed, "truth-jitter", n);
      for (int j = 0; j < o.truth_jitter; ++j) {
        Vec3 u{};
        do {  // uniform in the unit ball
          for (double& c : u) c = rng.uniform(-1.0, 1.0);
        } while (u[0] * u[0] + u[1] * u[1] + u[2] * u[2] > 1.0);
        const Vec3 at{t.center_mm[0] + radius * u[0], t.center_mm[1] + radius * u[1],
                      t.center_mm[2] + radius * u[2]};
        rows.push_back(
            {-2, static_cast<int>(n), radius * std::sqrt(u[0] * u[0] + u[1] * u[1] + u[2] * u[2]), at});
      }
    }

    clock.restart();
    std::vector<Vec3> centers;
    for (const Row& r : rows) centers.push_back(r.center);
    // The scanner's axes, then each extra frame, in equal parts of the step's progress.
    for (size_t f = 0; f <= frame_options.size(); ++f) {
      const double share = 0.1 / static_cast<double>(frame_options.size() + 1);
      ProgressRange patch_step(step, 0.85 + f * share, 0.85 + (f + 1) * share);
      HILUM_ASSIGN_OR_RETURN(Tensor p, extract_patches_u8(v, centers, f ? frame_options[f - 1] : patch_options,
                                                          patch_step));
      std::vector<uint8_t>& to = f ? frame_patches[f - 1] : patches;
      to.insert(to.end(), p.data<uint8_t>(), p.data<uint8_t>() + p.nbytes());
    }
    const double patches_s = clock.seconds();

    auto source_name = [](int candidate) -> std::string {
      return candidate == -1 ? "truth" : candidate == -2 ? "jitter" : "detector";
    };
    for (const Row& r : rows) {
      const bool pos = r.nodule >= 0;
      const PhantomNodule* t = pos ? &ph.nodules[r.nodule] : nullptr;
      std::string line = std::to_string(study) + "," + std::to_string(seed) + "," +
                         std::to_string(std::max(r.candidate, -1)) + "," + source_name(r.candidate) + "," +
                         (pos ? "1" : "0") + "," + (pos && t->malignant ? "1" : "0") + "," +
                         std::to_string(r.nodule) + "," + (pos ? fmt("%.2f", t->diameter_mm) : "0") + "," +
                         (pos ? std::string(nodule_type_name(t->type)) : "") + "," +
                         (pos ? fmt("%.2f", r.distance) : "") + "," + fmt("%.2f", r.center[0]) + "," +
                         fmt("%.2f", r.center[1]) + "," + fmt("%.2f", r.center[2]);
      if (r.candidate >= 0) {
        const Candidate& c = cands[r.candidate];
        line += "," + fmt("%.3f", c.response) + "," + fmt("%.1f", c.contrast_hu) + "," +
                fmt("%.3f", c.blobness) + "," + fmt("%.3f", c.isolation) + "," + fmt("%.2f", c.score) + "," +
                fmt("%.2f", c.sigma_mm) + "," + fmt("%.2f", c.diameter_mm) + "," + std::to_string(c.lung);
      } else {
        line += ",,,,,,,,";
      }
      line += "," + (pos ? fmt("%.6f", t->image_logit) : std::string());
      if (r.candidate >= 0) {
        line += cands[r.candidate].pleural ? ",1" : ",0";
        line += cands[r.candidate].bulge ? ",1" : ",0";
      } else {
        line += ",,";
      }
      labels += line + "\n";
      sum.positives += pos;
    }
    sum.patches += static_cast<int64_t>(rows.size());

    // Per true nodule: detected? and sizing against the truth.
    clock.restart();
    int n3 = 0, d3 = 0;
    for (size_t n = 0; n < ph.nodules.size(); ++n) {
      const PhantomNodule& t = ph.nodules[n];
      const bool detected = nodule_rank[n] >= 0;
      if (t.diameter_mm >= 3) ++n3, d3 += detected;
      std::string measured = ",,,,,";
      if (detected && o.measure_sizing) {
        const Candidate& c = cands[nodule_rank[n]];
        auto m = measure_nodule(v, *mask, c.center_mm, c.diameter_mm);
        if (m.ok()) {
          measured = fmt("%.1f", m->mean_diameter_mm) + "," + fmt("%.1f", m->long_axis_mm) + "," +
                     fmt("%.1f", m->short_axis_mm) + "," + fmt("%.1f", m->volume_mm3) + "," +
                     std::string(nodule_type_name(m->type)) + "," + fmt("%.1f", m->solid_component_mm);
        }
      }
      nodules_csv += std::to_string(study) + "," + std::to_string(seed) + "," + std::to_string(n) + "," +
                     fmt("%.2f", t.center_mm[0]) + "," + fmt("%.2f", t.center_mm[1]) + "," +
                     fmt("%.2f", t.center_mm[2]) + "," + fmt("%.2f", t.diameter_mm) + "," +
                     std::string(nodule_type_name(t.type)) + "," + fmt("%.2f", t.solid_diameter_mm) + "," +
                     (t.malignant ? "1" : "0") + "," + fmt("%.4f", t.malignancy_probability) + "," +
                     (t.juxtapleural ? "1" : "0") + "," + (t.juxtavascular ? "1" : "0") + "," +
                     fmt("%.1f", t.drawn_long_mm) + "," + fmt("%.1f", t.drawn_short_mm) + "," +
                     fmt("%.1f", t.drawn_mean_mm) + "," + fmt("%.1f", t.drawn_volume_mm3) + "," +
                     (detected ? "1" : "0") + "," + (detected ? fmt("%.2f", nodule_distance[n]) : "") + "," +
                     (detected ? std::to_string(nodule_rank[n]) : "") + "," + measured + "," +
                     std::string(nodule_margin_name(t.margin)) + "," + (t.upper_zone ? "1" : "0") + "," +
                     fmt("%.6f", t.image_logit) + "\n";
    }
    const double sizing_s = clock.seconds();
    sum.nodules += n3;
    sum.nodules_detected += d3;
    studies_csv += std::to_string(study) + "," + std::to_string(seed) + "," + ph.info.series_instance_uid +
                   "," + std::to_string(v.nz()) + "," + fmt("%.3f", v.spacing[0]) + "," +
                   fmt("%.3f", v.spacing[2]) + "," + std::to_string(ph.nodules.size()) + "," +
                   std::to_string(n3) + "," + std::to_string(d3) + "," + std::to_string(cands.size()) + "," +
                   std::to_string(rows.size()) + "," + fmt("%.2f", phantom_s) + "," + fmt("%.2f", mask_s) +
                   "," + fmt("%.2f", candidates_s) + "," + fmt("%.2f", patches_s) + "," +
                   fmt("%.2f", sizing_s) + "," + fmt("%.0f", mask->right.volume_ml) + "," +
                   fmt("%.0f", mask->left.volume_ml) + "\n";

    notes += note_line(study, seed, ph.info.series_instance_uid, ph.clinical, ph.clinical_text);
    ++sum.studies;
    step.report(1.0, "export");
  }

  const Shape patch_shape = {sum.patches, patch_options.channels(), patch_options.size, patch_options.size};
  Tensor all = Tensor::empty(patch_shape, DType::kU8);
  if (!patches.empty()) std::copy(patches.begin(), patches.end(), all.data<uint8_t>());
  sum.mean_candidates = sum.studies ? static_cast<double>(total_candidates) / sum.studies : 0;

  nlohmann::ordered_json manifest;
  manifest["format"] = "hilum training set";
  manifest["version"] = 2;
  manifest["seeds"] = {o.first_seed, o.last_seed};
  manifest["phantom"] = {{"slices", o.slices}, {"nodules", o.nodules},
                         {"nodule_sites", nodule_sites_text(o.site_weights)}};
  manifest["patches"] = {{"file", "patches.npy"},
                         {"dtype", "uint8"},
                         {"shape", patch_shape},
                         {"channels", patch_channel_names(patch_options)},
                         {"slab_mm", patch_options.slab_mm},
                         {"zoom_spacing_mm", patch_options.zoom_spacing_mm},
                         {"spacing_mm", patch_options.spacing_mm},
                         {"window_level_hu", patch_options.window_level},
                         {"window_width_hu", patch_options.window_width},
                         {"network_input", "(u8 / 255 - mean) / std"},
                         {"mean", patch_options.mean},
                         {"std", patch_options.std}};
  manifest["candidates"] = {{"sigmas_mm", candidate_options.sigmas_mm},
                            {"max_candidates", candidate_options.max_candidates},
                            {"pleural_max_candidates", candidate_options.pleural_max_candidates},
                            {"bulge_extra_candidates", candidate_options.bulge_extra_candidates},
                            {"min_contrast_hu", candidate_options.min_contrast_hu},
                            {"min_blobness", candidate_options.min_blobness}};
  manifest["labels"] = {{"negatives_per_study", o.negatives_per_study},
                        {"truth_patches", o.truth_patches},
                        {"truth_jitter", o.truth_jitter},
                        {"truth_jitter_radius",
                         "uniform in a ball of clamp(diameter / 4, 0.75, 2) mm around the nodule's centre"},
                        {"hit_rule", "candidate within max(diameter/2, 1.5 mm) of a true nodule"},
                        {"malignancy",
                         "p = sigmoid(3 * (image_logit + note_logit - 2.5)); image_logit per "
                         "nodule in labels.csv and nodules.csv, note_logit per study in "
                         "notes.jsonl (docs/phantom.md)"}};
  manifest["counts"] = {{"studies", sum.studies},
                        {"patches", sum.patches},
                        {"positives", sum.positives},
                        {"nodules_3mm", sum.nodules},
                        {"detected_3mm", sum.nodules_detected},
                        {"mean_candidates_per_study", sum.mean_candidates}};

  if (!o.extra_frames.empty()) manifest["patches"]["extra_frames"] = o.extra_frames;
  HILUM_RETURN_IF_ERROR(write_npy(o.out / "patches.npy", all));
  for (size_t f = 0; f < frame_options.size(); ++f) {
    if (!frame_patches[f].empty()) std::copy(frame_patches[f].begin(), frame_patches[f].end(), all.data<uint8_t>());
    HILUM_RETURN_IF_ERROR(write_npy(o.out / ("patches_" + o.extra_frames[f] + ".npy"), all));
  }
  HILUM_RETURN_IF_ERROR(write_file_atomic(o.out / "labels.csv", labels));
  HILUM_RETURN_IF_ERROR(write_file_atomic(o.out / "nodules.csv", nodules_csv));
  HILUM_RETURN_IF_ERROR(write_file_atomic(o.out / "studies.csv", studies_csv));
  HILUM_RETURN_IF_ERROR(write_file_atomic(o.out / "notes.jsonl", notes));
  HILUM_RETURN_IF_ERROR(write_file_atomic(o.out / "manifest.json", manifest.dump(2) + "\n"));
  progress.report(1.0, "export");
  return sum;
}

}  // namespace hilum

#endif  // HILUM_HAVE_IMAGING
