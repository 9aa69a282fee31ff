#include "app/eval_froc.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <unordered_map>

#include "app/eval_stats.h"

namespace hilum {
namespace {

// One line of the FROC analysis: a nodule (detected with the probability of its
// best mark, or missed) or a false-positive mark, on scan `scan`.
struct FrocEntry {
  bool nodule = false;
  bool missed = false;  // nodules only: no mark hit it (left out of the ROC part)
  double probability = 0;
  size_t scan = 0;
};

struct FrocCurve {
  bool defined = false;  // false when the weighted set holds no nodule
  std::vector<double> fps, sensitivity;
};

// The LUNA16 computeFROC step on a multiset of entries: entry e counts
// weight[e.scan] times (1 for the data itself, the draw counts for a bootstrap
// sample). `sorted` lists the entries by decreasing probability.
FrocCurve froc_curve(const std::vector<FrocEntry>& sorted, const std::vector<int>& weight, int n_images) {
  FrocCurve curve;
  double total = 0, detected = 0, false_positives = 0;
  for (const FrocEntry& e : sorted) {
    const double w = weight[e.scan];
    if (e.nodule) {
      total += w;
      if (!e.missed) detected += w;
    } else {
      false_positives += w;
    }
  }
  if (total == 0) return curve;
  curve.defined = true;

  // Cumulative true/false positive counts at each distinct probability, from the
  // highest down (sklearn's _binary_clf_curve on the detected nodules and FPs).
  std::vector<double> tps, fps;
  double tp = 0, fp = 0;
  for (size_t i = 0; i < sorted.size();) {
    size_t j = i;
    double group_weight = 0;
    for (; j < sorted.size() && sorted[j].probability == sorted[i].probability; ++j) {
      const FrocEntry& e = sorted[j];
      const double w = weight[e.scan];
      if (e.nodule && e.missed) continue;
      group_weight += w;
      (e.nodule ? tp : fp) += w;
    }
    if (group_weight > 0) {
      tps.push_back(tp);
      fps.push_back(fp);
    }
    i = j;
  }
  // drop_intermediate: keep a point unless both counts are evenly spaced
  // (second differences zero) around it; the end points always stay.
  if (tps.size() > 2) {
    std::vector<double> kt, kf;
    for (size_t i = 0; i < tps.size(); ++i) {
      const bool keep = i == 0 || i + 1 == tps.size() || fps[i + 1] - 2 * fps[i] + fps[i - 1] != 0 ||
                        tps[i + 1] - 2 * tps[i] + tps[i - 1] != 0;
      if (keep) {
        kt.push_back(tps[i]);
        kf.push_back(fps[i]);
      }
    }
    tps.swap(kt);
    fps.swap(kf);
  }
  tps.insert(tps.begin(), 0.0);
  fps.insert(fps.begin(), 0.0);

  const size_t n = tps.size();
  curve.fps.assign(n, 0.0);
  curve.sensitivity.assign(n, 0.0);
  for (size_t i = 0; i < n; ++i) {
    // With no false positive at all the script sets every FP rate to 0; with no
    // detected nodule its tpr is 0/0 and we report sensitivity 0.
    if (false_positives > 0) curve.fps[i] = (fps[i] / false_positives) * false_positives / n_images;
    if (detected > 0) curve.sensitivity[i] = (tps[i] / detected) * detected / total;
  }
  return curve;
}

std::array<double, 7> at_rates(const FrocCurve& c) {
  std::array<double, 7> s{};
  for (size_t i = 0; i < kFrocRates.size(); ++i) s[i] = numpy_interp(kFrocRates[i], c.fps, c.sensitivity);
  return s;
}

double mean7(const std::array<double, 7>& s) { return std::accumulate(s.begin(), s.end(), 0.0) / 7.0; }

// The LUNA16 band: mean and sorted[floor(Pz n)], sorted[floor((1-Pz) n)] with
// Pz = (1 - 0.95) / 2, evaluated exactly as the script does.
void band_stats(std::vector<double> v, double& mean, double& low, double& high) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  if (v.empty()) {
    mean = low = high = nan;
    return;
  }
  std::sort(v.begin(), v.end());
  mean = std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
  const double pz = (1.0 - 0.95) / 2.0;
  const double n = static_cast<double>(v.size());
  low = v[static_cast<size_t>(std::floor(pz * n))];
  high = v[std::min(v.size() - 1, static_cast<size_t>(std::floor((1.0 - pz) * n)))];
}

}  // namespace

bool mark_hits(const NoduleAnnotation& nodule, double x, double y, double z) {
  double diameter = nodule.diameter_mm;
  if (diameter < 0.0) diameter = 10.0;
  const double r = diameter / 2.0;
  const double dx = nodule.x - x, dy = nodule.y - y, dz = nodule.z - z;
  return dx * dx + dy * dy + dz * dz < r * r;
}

double numpy_interp(double x, const std::vector<double>& xp, const std::vector<double>& fp) {
  const size_t len = xp.size();
  if (len == 1) return fp[0];
  if (x > xp[len - 1]) return fp[len - 1];
  if (x < xp[0]) return fp[0];
  const size_t j = static_cast<size_t>(std::upper_bound(xp.begin(), xp.end(), x) - xp.begin()) - 1;
  if (j == len - 1 || xp[j] == x) return fp[j];
  const double slope = (fp[j + 1] - fp[j]) / (xp[j + 1] - xp[j]);
  double r = slope * (x - xp[j]) + fp[j];
  if (std::isnan(r)) {
    r = slope * (x - xp[j + 1]) + fp[j + 1];
    if (std::isnan(r) && fp[j] == fp[j + 1]) r = fp[j];
  }
  return r;
}

Result<FrocResult> evaluate_froc(const FrocInput& in, const FrocOptions& options) {
  FrocResult out;
  const size_t n_scans = in.scans.size();
  if (n_scans == 0) return bad_input("the scan list is empty");
  std::unordered_map<std::string, size_t> scan_index;
  for (size_t i = 0; i < n_scans; ++i) {
    if (!scan_index.emplace(in.scans[i], i).second) {
      return bad_input("scan '" + in.scans[i] + "' is listed twice in the scan list");
    }
  }
  out.scans = static_cast<int>(n_scans);
  out.marks_read = static_cast<int>(in.marks.size());

  // Marks, nodules and excluded findings per listed scan (file order kept).
  std::vector<std::vector<const CadMark*>> marks(n_scans);
  for (const CadMark& m : in.marks) {
    auto it = scan_index.find(m.seriesuid);
    if (it == scan_index.end()) {
      ++out.marks_on_unlisted_scans;
      continue;
    }
    marks[it->second].push_back(&m);
  }
  std::vector<std::vector<size_t>> nodules(n_scans);  // indices into in.nodules
  std::vector<std::vector<const NoduleAnnotation*>> excluded(n_scans);
  out.nodule_outcomes.resize(in.nodules.size());
  for (size_t i = 0; i < in.nodules.size(); ++i) {
    auto it = scan_index.find(in.nodules[i].seriesuid);
    if (it == scan_index.end()) continue;
    nodules[it->second].push_back(i);
    out.nodule_outcomes[i].on_listed_scan = true;
  }
  for (const NoduleAnnotation& a : in.excluded) {
    auto it = scan_index.find(a.seriesuid);
    if (it != scan_index.end()) excluded[it->second].push_back(&a);
  }

  std::vector<FrocEntry> entries;
  for (size_t s = 0; s < n_scans; ++s) {
    std::vector<const CadMark*>& scan_marks = marks[s];
    // Each nodule's marks before the limit (what the system marked at all).
    for (size_t index : nodules[s])
      for (const CadMark* m : scan_marks)
        out.nodule_outcomes[index].marks_before_limit += mark_hits(in.nodules[index], m->x, m->y, m->z);
    // The per-scan limit: keep the marks strictly above the (limit+1)-th highest
    // probability (ties at that value all go, so fewer may remain).
    if (options.max_marks_per_scan > 0 &&
        scan_marks.size() > static_cast<size_t>(options.max_marks_per_scan)) {
      std::vector<double> probs;
      for (const CadMark* m : scan_marks) probs.push_back(m->probability);
      std::nth_element(probs.begin(), probs.begin() + options.max_marks_per_scan, probs.end(),
                       std::greater<>());
      const double cut = probs[options.max_marks_per_scan];
      std::vector<const CadMark*> kept;
      for (const CadMark* m : scan_marks) {
        if (m->probability > cut) kept.push_back(m);
      }
      out.marks_over_cap += static_cast<int>(scan_marks.size() - kept.size());
      scan_marks.swap(kept);
    }

    std::vector<bool> claimed(scan_marks.size(), false);  // hit a nodule or an excluded finding
    for (size_t index : nodules[s]) {
      const NoduleAnnotation* nodule = &in.nodules[index];
      ++out.nodules_total;
      int hits = 0;
      double best = 0;
      for (size_t k = 0; k < scan_marks.size(); ++k) {
        const CadMark& m = *scan_marks[k];
        if (!mark_hits(*nodule, m.x, m.y, m.z)) continue;
        if (hits == 0 || m.probability > best) best = m.probability;
        ++hits;
        if (claimed[k]) ++out.multi_nodule_marks;
        claimed[k] = true;
      }
      FrocEntry e;
      e.nodule = true;
      e.scan = s;
      out.nodule_outcomes[index].hits = hits;
      if (hits > 0) {
        ++out.nodules_detected;
        out.duplicate_hits += hits - 1;
        e.probability = best;
        out.nodule_outcomes[index].probability = best;
      } else {
        if (out.nodule_outcomes[index].marks_before_limit > 0) ++out.nodules_lost_to_limit;
        e.missed = true;
        e.probability = -1e9;  // the script's placeholder; never used, missed nodules leave the ROC part
      }
      entries.push_back(e);
    }
    for (const NoduleAnnotation* finding : excluded[s]) {
      for (size_t k = 0; k < scan_marks.size(); ++k) {
        const CadMark& m = *scan_marks[k];
        if (!claimed[k] && mark_hits(*finding, m.x, m.y, m.z)) {
          claimed[k] = true;
          ++out.marks_on_excluded;
        }
      }
    }
    for (size_t k = 0; k < scan_marks.size(); ++k) {
      if (claimed[k]) continue;
      ++out.false_positives;
      FrocEntry e;
      e.probability = scan_marks[k]->probability;
      e.scan = s;
      entries.push_back(e);
    }
  }
  if (out.nodules_total == 0) {
    return bad_input("no nodule of the annotations lies on a listed scan, so sensitivity is undefined");
  }

  // Each found nodule's operating point: the false positives at or above its probability.
  std::vector<double> fp_probabilities;
  for (const FrocEntry& e : entries) {
    if (!e.nodule) fp_probabilities.push_back(e.probability);
  }
  std::sort(fp_probabilities.begin(), fp_probabilities.end());
  for (NoduleOutcome& o : out.nodule_outcomes) {
    if (o.hits == 0) continue;
    const auto at_or_above = fp_probabilities.end() -
                             std::lower_bound(fp_probabilities.begin(), fp_probabilities.end(), o.probability);
    o.fps_per_scan = static_cast<double>(at_or_above) / static_cast<double>(n_scans);
  }

  std::stable_sort(entries.begin(), entries.end(),
                   [](const FrocEntry& a, const FrocEntry& b) { return a.probability > b.probability; });
  const int n_images = static_cast<int>(n_scans);
  const std::vector<int> ones(n_scans, 1);
  FrocCurve curve = froc_curve(entries, ones, n_images);
  out.sensitivities = at_rates(curve);
  out.cpm = mean7(out.sensitivities);
  out.curve_fps = std::move(curve.fps);
  out.curve_sensitivity = std::move(curve.sensitivity);

  if (options.bootstrap_samples > 0) {
    FrocBootstrap bs;
    bs.samples = options.bootstrap_samples;
    bs.seed = options.seed;
    const int points = std::max(2, options.band_points);
    for (int i = 0; i < points; ++i) {
      bs.band_fps.push_back(kFrocRates.front() * std::exp2(6.0 * i / (points - 1)));
    }
    std::vector<std::vector<double>> at_rate(7), at_band(points);
    std::vector<double> cpms;
    SplitMix64 rng(options.seed);
    std::vector<int> weight(n_scans);
    for (int b = 0; b < options.bootstrap_samples; ++b) {
      std::fill(weight.begin(), weight.end(), 0);
      for (size_t i = 0; i < n_scans; ++i) ++weight[rng.index(n_scans)];
      const FrocCurve c = froc_curve(entries, weight, n_images);
      if (!c.defined) continue;
      ++bs.used;
      const std::array<double, 7> s = at_rates(c);
      for (size_t i = 0; i < 7; ++i) at_rate[i].push_back(s[i]);
      cpms.push_back(mean7(s));
      for (int i = 0; i < points; ++i)
        at_band[i].push_back(numpy_interp(bs.band_fps[i], c.fps, c.sensitivity));
    }
    for (size_t i = 0; i < 7; ++i) band_stats(at_rate[i], bs.mean[i], bs.low[i], bs.high[i]);
    band_stats(cpms, bs.cpm_mean, bs.cpm_low, bs.cpm_high);
    bs.band_mean.resize(points);
    bs.band_low.resize(points);
    bs.band_high.resize(points);
    for (int i = 0; i < points; ++i) band_stats(at_band[i], bs.band_mean[i], bs.band_low[i], bs.band_high[i]);
    out.bootstrap = std::move(bs);
  }
  return out;
}

}  // namespace hilum
