#include "app/eval_run.h"

#include <cstdio>
#include <set>

#include "app/csv.h"
#include "app/eval_groups.h"
#include "app/eval_report.h"
#include "app/eval_roc.h"
#include "model/log.h"

namespace hilum {

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

namespace {

std::string dump(const ojson& j) { return j.dump(2) + "\n"; }

Result<std::vector<size_t>> columns(const CsvTable& t, std::initializer_list<const char*> names) {
  std::vector<size_t> idx;
  for (const char* n : names) {
    HILUM_ASSIGN_OR_RETURN(size_t i, t.column(n));
    idx.push_back(i);
  }
  return idx;
}

Result<int> binary_label(const CsvTable& t, size_t row, size_t col) {
  const auto v = parse_decimal(t.text(row, col));
  if (!v || (*v != 0.0 && *v != 1.0)) {
    return bad_input(t.where(row, col) + "label '" + std::string(t.trimmed(row, col)) +
                     "' is not 0 or 1 (1 = positive, 0 = negative)");
  }
  return static_cast<int>(*v);
}

Status check_counts(const std::string& source, const std::string& what, size_t pos, size_t neg) {
  if (pos >= 2 && neg >= 2) return Status::Ok();
  return bad_input(source + ": " + std::to_string(pos) + " positive and " + std::to_string(neg) +
                   " negative " + what + "; the ROC analysis needs at least 2 of each");
}

}  // namespace

Result<std::vector<NoduleAnnotation>> read_nodule_csv(const fs::path& path) {
  HILUM_ASSIGN_OR_RETURN(CsvTable t, read_csv(path));
  return nodules_from_table(t);
}

Result<std::vector<NoduleAnnotation>> nodules_from_table(const CsvTable& t) {
  HILUM_ASSIGN_OR_RETURN(auto c, columns(t, {"seriesuid", "coordX", "coordY", "coordZ", "diameter_mm"}));
  std::vector<NoduleAnnotation> out;
  for (size_t r = 0; r < t.size(); ++r) {
    NoduleAnnotation a;
    a.seriesuid = std::string(t.trimmed(r, c[0]));
    if (a.seriesuid.empty()) return bad_input(t.where(r, c[0]) + "empty series UID");
    HILUM_ASSIGN_OR_RETURN(a.x, t.number(r, c[1]));
    HILUM_ASSIGN_OR_RETURN(a.y, t.number(r, c[2]));
    HILUM_ASSIGN_OR_RETURN(a.z, t.number(r, c[3]));
    HILUM_ASSIGN_OR_RETURN(a.diameter_mm, t.number(r, c[4]));
    out.push_back(std::move(a));
  }
  return out;
}

Result<std::vector<CadMark>> read_candidates_csv(const fs::path& path) {
  HILUM_ASSIGN_OR_RETURN(CsvTable t, read_csv(path));
  HILUM_ASSIGN_OR_RETURN(auto c, columns(t, {"seriesuid", "coordX", "coordY", "coordZ", "probability"}));
  std::vector<CadMark> out;
  out.reserve(t.size());
  for (size_t r = 0; r < t.size(); ++r) {
    CadMark m;
    m.seriesuid = std::string(t.trimmed(r, c[0]));
    if (m.seriesuid.empty()) return bad_input(t.where(r, c[0]) + "empty series UID");
    HILUM_ASSIGN_OR_RETURN(m.x, t.number(r, c[1]));
    HILUM_ASSIGN_OR_RETURN(m.y, t.number(r, c[2]));
    HILUM_ASSIGN_OR_RETURN(m.z, t.number(r, c[3]));
    HILUM_ASSIGN_OR_RETURN(m.probability, t.number(r, c[4]));
    out.push_back(std::move(m));
  }
  return out;
}

Result<std::vector<std::string>> read_scan_list(const fs::path& path) {
  HILUM_ASSIGN_OR_RETURN(CsvTable t, read_csv(path, /*has_header=*/false));
  std::vector<std::string> scans;
  std::set<std::string> seen;
  for (size_t r = 0; r < t.size(); ++r) {
    std::string uid(t.trimmed(r, 0));
    if (r == 0 && uid == "seriesuid") continue;
    if (uid.empty()) return bad_input(t.where(r, 0) + "empty series UID");
    if (!seen.insert(uid).second)
      return bad_input(t.where(r, 0) + "series UID '" + uid + "' is listed twice");
    scans.push_back(std::move(uid));
  }
  if (scans.empty()) return bad_input(path.string() + ": no series UIDs listed");
  return scans;
}

Result<std::string> run_roc_eval(const RocEvalOptions& o) {
  if (o.bootstrap < 0) return bad_input("--bootstrap must be >= 0");
  HILUM_ASSIGN_OR_RETURN(CsvTable t, read_csv(o.csv));
  HILUM_ASSIGN_OR_RETURN(size_t label_col, t.column(o.label_column));
  const std::string name_a = o.compare ? o.compare->first : o.score_column;
  HILUM_ASSIGN_OR_RETURN(size_t col_a, t.column(name_a));
  std::optional<size_t> col_b;
  if (o.compare) {
    if (o.compare->second == o.compare->first)
      return bad_input("--compare needs two different score columns");
    HILUM_ASSIGN_OR_RETURN(size_t b, t.column(o.compare->second));
    col_b = b;
  }

  ScoredSample a, b;
  for (size_t r = 0; r < t.size(); ++r) {
    HILUM_ASSIGN_OR_RETURN(int label, binary_label(t, r, label_col));
    HILUM_ASSIGN_OR_RETURN(double sa, t.number(r, col_a));
    (label ? a.positives : a.negatives).push_back(sa);
    if (col_b) {
      HILUM_ASSIGN_OR_RETURN(double sb, t.number(r, *col_b));
      (label ? b.positives : b.negatives).push_back(sb);
    }
  }
  HILUM_RETURN_IF_ERROR(check_counts(t.source(), "rows", a.positives.size(), a.negatives.size()));

  std::optional<std::pair<ScoredSample, std::string>> other;
  if (o.compare) other = std::make_pair(std::move(b), o.compare->second);
  const RocReport report = analyze_scores(a, name_a, other, o.bootstrap, o.seed);

  ojson metrics;
  metrics["schema_version"] = 1;
  metrics["kind"] = "roc";
  metrics["input"] = o.csv.filename().string();
  metrics["label_column"] = o.label_column;
  metrics.update(roc_metrics_json(report));

  std::string title = "ROC (" + std::to_string(report.n_positive) + " positive, " +
                      std::to_string(report.n_negative) + " negative)";
  if (report.compare) title += ", DeLong p = " + format_3(report.compare->test.p_value);
  const Plot plot = roc_plot(report, title);
  OutputFiles files;
  files.add("roc.svg", render_svg(plot));
  files.add("roc.png", render_png(plot));
  files.add("metrics.json", dump(metrics));
  HILUM_RETURN_IF_ERROR(files.commit(o.out_dir));
  return roc_summary(report);
}

Result<std::string> run_froc_eval(const FrocEvalOptions& o) {
  if (o.bootstrap < 0) return bad_input("--bootstrap must be >= 0");
  FrocInput in;
  HILUM_ASSIGN_OR_RETURN(const CsvTable annotations, read_csv(o.annotations));
  HILUM_ASSIGN_OR_RETURN(in.nodules, nodules_from_table(annotations));
  std::vector<Grouping> groupings;
  for (const std::string& spec : o.by) {
    HILUM_ASSIGN_OR_RETURN(Grouping g, group_rows(spec, annotations));
    groupings.push_back(std::move(g));
  }
  if (o.excluded) {
    HILUM_ASSIGN_OR_RETURN(in.excluded, read_nodule_csv(*o.excluded));
  }
  HILUM_ASSIGN_OR_RETURN(in.scans, read_scan_list(o.seriesuids));
  HILUM_ASSIGN_OR_RETURN(in.marks, read_candidates_csv(o.candidates));

  FrocOptions fo;
  fo.max_marks_per_scan = o.max_marks_per_scan;
  fo.bootstrap_samples = o.bootstrap;
  fo.seed = o.seed;
  auto result = evaluate_froc(in, fo);
  if (!result.ok()) return result.error().with_context(o.annotations.string());
  const FrocResult& f = *result;
  if (f.marks_on_unlisted_scans > 0) {
    log_warning(std::to_string(f.marks_on_unlisted_scans) + " candidates lie on scans not in " +
                o.seriesuids.string() + " and are ignored");
  }

  ojson metrics;
  metrics["schema_version"] = 1;
  metrics["kind"] = "froc";
  metrics.update(froc_metrics_json(f, o.max_marks_per_scan));
  std::string by_csv = group_csv_header() + "\n", by_summary;
  if (!groupings.empty()) {
    ojson by = ojson::object();
    for (const Grouping& g : groupings) {
      ojson list = ojson::array();
      for (size_t k = 0; k < g.labels.size(); ++k) {
        auto det = group_detection(in, g, k, o.max_marks_per_scan);
        if (!det.ok()) return det.error().with_context(o.annotations.string());
        list.push_back(std::move(det->json));
        by_csv += det->csv + "\n";
        by_summary += "\n" + det->summary;
      }
      by[g.name] = std::move(list);
    }
    metrics["by"] = std::move(by);
  }
  std::string curve = "fps_per_scan,sensitivity\n";
  for (size_t i = 0; i < f.curve_fps.size(); ++i) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.17g,%.17g\n", f.curve_fps[i], f.curve_sensitivity[i]);
    curve += buf;
  }
  const Plot plot = froc_plot(
      f, "FROC (" + std::to_string(f.scans) + " scans, " + std::to_string(f.nodules_total) + " nodules)");
  OutputFiles files;
  files.add("froc_curve.csv", curve);
  files.add("froc_nodules.csv", froc_nodules_csv(in, f));
  files.add("froc.svg", render_svg(plot));
  files.add("froc.png", render_png(plot));
  if (!groupings.empty()) files.add("by_group.csv", by_csv);
  files.add("metrics.json", dump(metrics));
  HILUM_RETURN_IF_ERROR(files.commit(o.out_dir));
  return froc_summary(f) + by_summary;
}

}  // namespace hilum
