#include "app/eval_report.h"

#include <cmath>
#include <cstdio>
#include <memory>

#include "app/csv.h"
#include "model/file_io.h"

namespace hilum {

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

namespace {

constexpr Rgb kBlue{31, 119, 180};
constexpr Rgb kOrange{230, 110, 10};
constexpr Rgb kGray{150, 150, 150};

std::string auc_legend(const std::string& name, const AucInterval& d) {
  return name + ": AUC " + format_3(d.auc) + " (95% CI " + format_3(d.ci_low) + "-" + format_3(d.ci_high) +
         ")";
}

PlotSeries roc_series(const std::vector<RocPoint>& curve, Rgb color, std::string legend) {
  PlotSeries s;
  for (const RocPoint& p : curve) {
    s.x.push_back(1.0 - p.specificity);
    s.y.push_back(p.sensitivity);
  }
  s.color = color;
  s.legend = std::move(legend);
  return s;
}

ojson array7(const std::array<double, 7>& a) {
  ojson j = ojson::array();
  for (double v : a) j.push_back(v);
  return j;
}

}  // namespace

std::string format_3(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", v);
  return buf;
}

RocReport analyze_scores(const ScoredSample& a, std::string name_a,
                         const std::optional<std::pair<ScoredSample, std::string>>& b, int bootstrap,
                         uint64_t seed) {
  RocReport r;
  r.score_name = std::move(name_a);
  r.n_positive = a.positives.size();
  r.n_negative = a.negatives.size();
  r.delong = delong_interval(a);
  r.curve = roc_curve(a);
  r.youden = youden_point(r.curve);
  r.seed = seed;
  if (bootstrap > 0) r.bootstrap = bootstrap_auc_interval(a, bootstrap, seed);
  if (b) {
    RocReport::Comparison c;
    c.score_name_b = b->second;
    c.delong_b = delong_interval(b->first);
    c.curve_b = roc_curve(b->first);
    c.test = delong_paired_test(a, b->first);
    r.compare = std::move(c);
  }
  return r;
}

ojson roc_metrics_json(const RocReport& r) {
  ojson j;
  j["score_column"] = r.score_name;
  j["n_positive"] = r.n_positive;
  j["n_negative"] = r.n_negative;
  j["auc"] = r.delong.auc;
  j["ci_low"] = r.delong.ci_low;
  j["ci_high"] = r.delong.ci_high;
  j["ci_method"] = "DeLong";
  j["confidence_level"] = 0.95;
  j["auc_variance"] = r.delong.variance;
  if (r.bootstrap) {
    j["bootstrap_ci_low"] = r.bootstrap->ci_low;
    j["bootstrap_ci_high"] = r.bootstrap->ci_high;
    j["bootstrap"] = {
        {"replicates", r.bootstrap->replicates}, {"seed", r.seed}, {"method", "stratified percentile"}};
  }
  j["youden"] = {{"threshold", r.youden.threshold},
                 {"sensitivity", r.youden.sensitivity},
                 {"specificity", r.youden.specificity},
                 {"index", r.youden.sensitivity + r.youden.specificity - 1}};
  if (r.compare) {
    const auto& c = *r.compare;
    j["compare"] = {{"score_a", r.score_name},
                    {"score_b", c.score_name_b},
                    {"auc_a", c.test.auc_a},
                    {"auc_b", c.test.auc_b},
                    {"ci_a", {r.delong.ci_low, r.delong.ci_high}},
                    {"ci_b", {c.delong_b.ci_low, c.delong_b.ci_high}},
                    {"difference", c.test.auc_a - c.test.auc_b},
                    {"z", c.test.z},
                    {"p_value", c.test.p_value},
                    {"method", "DeLong paired, two-sided"}};
  }
  return j;
}

Plot roc_plot(const RocReport& r, const std::string& title) {
  Plot p;
  p.title = title;
  p.x.label = "1 - specificity";
  p.y.label = "Sensitivity";
  for (int i = 0; i <= 5; ++i) {
    p.x.ticks.push_back(i / 5.0);
    p.y.ticks.push_back(i / 5.0);
  }
  PlotSeries diagonal;
  diagonal.x = {0, 1};
  diagonal.y = {0, 1};
  diagonal.color = kGray;
  diagonal.width = 1.5;
  diagonal.style = LineStyle::kDashed;
  p.series.push_back(diagonal);
  p.series.push_back(roc_series(r.curve, kBlue, auc_legend(r.score_name, r.delong)));
  if (r.bootstrap) {
    PlotSeries note;  // a legend line without a swatch
    note.color = kBlue;
    note.legend =
        "  bootstrap 95% CI " + format_3(r.bootstrap->ci_low) + "-" + format_3(r.bootstrap->ci_high);
    p.series.push_back(note);
  }
  if (r.compare) {
    p.series.push_back(
        roc_series(r.compare->curve_b, kOrange, auc_legend(r.compare->score_name_b, r.compare->delong_b)));
  }
  PlotSeries youden;
  youden.x = {1.0 - r.youden.specificity};
  youden.y = {r.youden.sensitivity};
  youden.color = kBlue;
  youden.markers = true;
  youden.line = false;
  youden.width = 3;
  p.series.push_back(youden);
  return p;
}

std::string roc_summary(const RocReport& r) {
  std::string s = "AUC " + format_3(r.delong.auc) + " (95% CI " + format_3(r.delong.ci_low) + "-" +
                  format_3(r.delong.ci_high);
  if (r.bootstrap) s += "; bootstrap " + format_3(r.bootstrap->ci_low) + "-" + format_3(r.bootstrap->ci_high);
  s += "), " + std::to_string(r.n_positive) + " positive, " + std::to_string(r.n_negative) + " negative";
  s += "; Youden: sensitivity " + format_3(r.youden.sensitivity) + ", specificity " +
       format_3(r.youden.specificity);
  if (r.compare) {
    const auto& c = *r.compare;
    char buf[96];
    std::snprintf(buf, sizeof buf, "; %s AUC %.3f, DeLong z = %.3f, p = %.4g", c.score_name_b.c_str(),
                  c.test.auc_b, c.test.z, c.test.p_value);
    s += buf;
  }
  return s;
}

std::string froc_nodules_csv(const FrocInput& in, const FrocResult& r) {
  std::string csv =
      "row,seriesuid,coordX,coordY,coordZ,diameter_mm,on_listed_scan,hits,probability,fps_per_scan,"
      "marks_before_limit\n";
  for (size_t i = 0; i < in.nodules.size() && i < r.nodule_outcomes.size(); ++i) {
    const NoduleAnnotation& a = in.nodules[i];
    const NoduleOutcome& o = r.nodule_outcomes[i];
    csv += std::to_string(i + 1);
    csv += ',';
    csv += csv_quote(a.seriesuid);
    for (double v : {a.x, a.y, a.z, a.diameter_mm}) {
      csv += ',';
      csv += csv_number(v);
    }
    csv += o.on_listed_scan ? ",1," : ",0,";
    csv += std::to_string(o.hits);
    csv += ',';
    if (o.hits > 0) {
      csv += csv_number(o.probability);
      csv += ',';
      csv += csv_number(o.fps_per_scan);
    } else {
      csv += ',';
    }
    csv += ',';
    csv += std::to_string(o.marks_before_limit);
    csv += '\n';
  }
  return csv;
}

std::string froc_summary(const FrocResult& f) {
  std::string s = "CPM " + format_3(f.cpm);
  if (f.bootstrap && f.bootstrap->used > 0) {
    s += " (95% CI " + format_3(f.bootstrap->cpm_low) + "-" + format_3(f.bootstrap->cpm_high) + ")";
  }
  s += "; sensitivity at 1/8..8 FPs per scan:";
  for (double v : f.sensitivities) {
    s += ' ';
    s += format_3(v);
  }
  s += "; " + std::to_string(f.nodules_detected) + " of " + std::to_string(f.nodules_total) + " nodules hit";
  if (f.nodules_lost_to_limit > 0)  // the per-scan limit dropped every mark on some
    s += " (" + std::to_string(f.nodules_marked()) + " marked before the per-scan limit)";
  s += ", " + std::to_string(f.false_positives) + " false positives on " + std::to_string(f.scans) + " scans";
  return s;
}

ojson froc_metrics_json(const FrocResult& f, int max_marks_per_scan) {
  ojson j;
  j["cpm"] = f.cpm;
  ojson rates = ojson::array();
  for (double r : kFrocRates) rates.push_back(r);
  j["fp_rates"] = rates;
  j["sensitivities"] = array7(f.sensitivities);
  j["scans"] = f.scans;
  j["nodules_total"] = f.nodules_total;
  j["nodules_detected"] = f.nodules_detected;
  j["nodules_lost_to_limit"] = f.nodules_lost_to_limit;
  j["nodules_marked"] = f.nodules_marked();
  j["false_positives"] = f.false_positives;
  j["max_marks_per_scan"] = max_marks_per_scan;
  j["marks"] = {{"read", f.marks_read},
                {"on_unlisted_scans", f.marks_on_unlisted_scans},
                {"over_limit", f.marks_over_cap},
                {"on_excluded_findings", f.marks_on_excluded},
                {"duplicate_hits", f.duplicate_hits},
                {"hitting_several_nodules", f.multi_nodule_marks}};
  if (f.bootstrap) {
    const FrocBootstrap& b = *f.bootstrap;
    j["bootstrap"] = {{"samples", b.samples},
                      {"used", b.used},
                      {"seed", b.seed},
                      {"sensitivity_mean", array7(b.mean)},
                      {"sensitivity_low", array7(b.low)},
                      {"sensitivity_high", array7(b.high)},
                      {"cpm_mean", b.cpm_mean},
                      {"cpm_low", b.cpm_low},
                      {"cpm_high", b.cpm_high}};
  }
  return j;
}

Plot froc_plot(const FrocResult& f, const std::string& title) {
  Plot p;
  p.title = title;
  p.width = 800;
  p.height = 620;
  p.x.label = "Average number of false positives per scan";
  p.x.log2 = true;
  p.x.min = kFrocRates.front();
  p.x.max = kFrocRates.back();
  p.x.ticks.assign(kFrocRates.begin(), kFrocRates.end());
  p.y.label = "Sensitivity";
  for (int i = 0; i <= 10; ++i) {
    p.y.ticks.push_back(i / 10.0);
    char buf[8];
    std::snprintf(buf, sizeof buf, "%.1f", i / 10.0);
    p.y.tick_labels.push_back(buf);
  }
  std::string legend = "CPM " + format_3(f.cpm);
  if (f.bootstrap && f.bootstrap->used > 0) {
    const FrocBootstrap& b = *f.bootstrap;
    legend += " (95% CI " + format_3(b.cpm_low) + "-" + format_3(b.cpm_high) + ")";
    PlotBand band;
    band.x = b.band_fps;
    band.low = b.band_low;
    band.high = b.band_high;
    band.color = kBlue;
    band.opacity = 0.12;
    p.bands.push_back(band);
    for (const auto* ys : {&b.band_low, &b.band_high}) {
      PlotSeries s;
      s.x = b.band_fps;
      s.y = *ys;
      s.color = kBlue;
      s.width = 1.2;
      s.style = LineStyle::kDotted;
      p.series.push_back(s);
    }
    PlotSeries mean;
    mean.x = b.band_fps;
    mean.y = b.band_mean;
    mean.color = kBlue;
    mean.width = 1.5;
    mean.style = LineStyle::kDashed;
    p.series.push_back(mean);
  }
  // The curve as the LUNA16 script draws it: interpolated on a fine grid.
  PlotSeries curve;
  constexpr int kPoints = 300;
  for (int i = 0; i < kPoints; ++i) {
    const double x = kFrocRates.front() * std::exp2(6.0 * i / (kPoints - 1));
    curve.x.push_back(x);
    curve.y.push_back(numpy_interp(x, f.curve_fps, f.curve_sensitivity));
  }
  curve.color = kBlue;
  curve.legend = legend;
  p.series.push_back(curve);
  PlotSeries points;
  points.x.assign(kFrocRates.begin(), kFrocRates.end());
  points.y.assign(f.sensitivities.begin(), f.sensitivities.end());
  points.color = kBlue;
  points.markers = true;
  points.line = false;
  points.width = 2.5;
  p.series.push_back(points);
  return p;
}

Status OutputFiles::commit(const fs::path& dir) const {
  std::error_code ec;
  fs::path created;  // the outermost directory this call creates, if any
  if (fs::exists(dir, ec)) {
    if (!fs::is_directory(dir, ec)) return bad_input(dir.string() + ": exists and is not a directory");
  } else {
    created = dir;
    for (fs::path p = dir.parent_path(); !p.empty() && !fs::exists(p, ec); p = p.parent_path()) created = p;
    fs::create_directories(dir, ec);
    if (ec) return bad_input(dir.string() + ": cannot create the output directory: " + ec.message());
  }
  auto remove_created_dir = [&] {
    std::error_code ignored;
    if (!created.empty()) fs::remove_all(created, ignored);
  };

  std::vector<std::unique_ptr<AtomicFile>> temps;
  for (const auto& [name, bytes] : files_) {
    auto file = AtomicFile::create(dir / name);
    Status s = file.ok() ? (*file)->write(bytes) : Status(file.error());
    if (!s.ok()) {
      temps.clear();
      remove_created_dir();
      return s;
    }
    temps.push_back(std::move(*file));
  }
  for (size_t i = 0; i < temps.size(); ++i) {
    Status s = temps[i]->commit();
    if (!s.ok()) {
      temps.clear();
      for (size_t k = 0; k < i; ++k) {
        std::error_code ignored;
        fs::remove(dir / files_[k].first, ignored);
      }
      remove_created_dir();
      return s;
    }
  }
  return Status::Ok();
}

}  // namespace hilum
