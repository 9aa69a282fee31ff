// `hilum eval batch`: detection (LUNA16 FROC) and malignancy (ROC) of a batch
// run against a truth table. The batch directory contract is in
// docs/evaluation.md.
#include <algorithm>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>

#include "app/csv.h"
#include "app/eval_groups.h"
#include "app/eval_measure.h"
#include "app/eval_report.h"
#include "app/eval_run.h"
#include "model/file_io.h"
#include "model/log.h"

namespace hilum {

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

namespace {

struct BatchFinding {
  double x = 0, y = 0, z = 0;
  double probability = 0;
  double malignancy = 0;
  NoduleMeasures measures;  // what the file gives of mean_diameter_mm, type, solid_component_mm, lung_rads
};

struct StudyFindings {
  std::string series_uid;
  std::vector<BatchFinding> findings;
  std::optional<double> written_at;  // reporting.min_probability of the file, when it says
};

Result<double> json_number(const nlohmann::json& item, const char* key, const std::string& where) {
  auto it = item.find(key);
  if (it == item.end()) return bad_input(where + ": missing '" + key + "'");
  if (!it->is_number()) return bad_input(where + ": '" + key + "' is not a number");
  const double v = it->get<double>();
  if (!std::isfinite(v)) return bad_input(where + ": '" + key + "' is not finite");
  return v;
}

// The measurements a finding carries (each optional; present but malformed is an error).
Status read_measures(const nlohmann::json& item, const std::string& where, NoduleMeasures& m) {
  if (item.contains("mean_diameter_mm")) {
    HILUM_ASSIGN_OR_RETURN(m.mean_mm, json_number(item, "mean_diameter_mm", where));
  }
  if (item.contains("solid_component_mm")) {
    HILUM_ASSIGN_OR_RETURN(m.solid_mm, json_number(item, "solid_component_mm", where));
  }
  if (auto t = item.find("type"); t != item.end()) {
    auto type = t->is_string() ? parse_nodule_type(t->get<std::string>()) : Result<NoduleType>(bad_input(""));
    if (!type.ok()) return bad_input(where + ": 'type' is not \"solid\", \"part-solid\" or \"ground-glass\"");
    m.type = *type;
  }
  if (auto lr = item.find("lung_rads"); lr != item.end()) {
    // findings.json's object, or the category alone as a string.
    const nlohmann::json* c = lr->is_object() && lr->contains("category") ? &(*lr)["category"] : &*lr;
    auto category =
        c->is_string() ? parse_lung_rads(c->get<std::string>()) : Result<LungRadsCategory>(bad_input(""));
    if (!category.ok())
      return bad_input(where + ": 'lung_rads.category' is not a Lung-RADS category (1, 2, 3, 4A, 4B, 4X)");
    m.lung_rads = *category;
  }
  return Status::Ok();
}

Result<StudyFindings> read_findings(const fs::path& file) {
  HILUM_ASSIGN_OR_RETURN(std::string text, read_file(file));
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    return bad_input(file.string() + ": not valid JSON (" + e.what() + ")");
  }
  const std::string name = file.string();
  if (!j.is_object()) return bad_input(name + ": expected a JSON object");
  StudyFindings s;
  auto uid = j.find("series_uid");
  if (uid == j.end() || !uid->is_string() || uid->get<std::string>().empty()) {
    return bad_input(name + ": missing or empty 'series_uid'");
  }
  s.series_uid = uid->get<std::string>();
  auto rep = j.find("reporting");
  if (rep != j.end() && rep->is_object() && rep->contains("min_probability") &&
      (*rep)["min_probability"].is_number()) {
    s.written_at = (*rep)["min_probability"].get<double>();
  }
  auto list = j.find("findings");
  if (list == j.end() || !list->is_array()) return bad_input(name + ": missing 'findings' array");
  for (size_t i = 0; i < list->size(); ++i) {
    const nlohmann::json& item = (*list)[i];
    const std::string where = name + ": findings[" + std::to_string(i) + "]";
    if (!item.is_object()) return bad_input(where + ": expected an object");
    auto c = item.find("center_mm");
    if (c == item.end() || !c->is_array() || c->size() != 3 || !(*c)[0].is_number() || !(*c)[1].is_number() ||
        !(*c)[2].is_number()) {
      return bad_input(where + ": 'center_mm' must be an array of 3 numbers");
    }
    BatchFinding f;
    f.x = (*c)[0].get<double>();
    f.y = (*c)[1].get<double>();
    f.z = (*c)[2].get<double>();
    if (!std::isfinite(f.x) || !std::isfinite(f.y) || !std::isfinite(f.z)) {
      return bad_input(where + ": 'center_mm' is not finite");
    }
    HILUM_ASSIGN_OR_RETURN(f.probability, json_number(item, "probability", where));
    HILUM_ASSIGN_OR_RETURN(f.malignancy, json_number(item, "malignancy", where));
    HILUM_RETURN_IF_ERROR(read_measures(item, where, f.measures));
    s.findings.push_back(f);
  }
  return s;
}

Result<std::vector<StudyFindings>> read_batch(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return bad_input(dir.string() + ": not a directory");
  std::vector<fs::path> folders;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.is_directory() && fs::is_regular_file(entry.path() / "findings.json"))
      folders.push_back(entry.path());
  }
  if (ec) return bad_input(dir.string() + ": cannot list: " + ec.message());
  std::sort(folders.begin(), folders.end());
  if (folders.empty()) {
    return bad_input(dir.string() +
                     ": no study folder with a findings.json (expected <batch>/<study>/findings.json)");
  }
  std::vector<StudyFindings> studies;
  std::map<std::string, fs::path> seen;
  for (const fs::path& folder : folders) {
    HILUM_ASSIGN_OR_RETURN(StudyFindings s, read_findings(folder / "findings.json"));
    auto [it, fresh] = seen.emplace(s.series_uid, folder);
    if (!fresh) {
      return bad_input((folder / "findings.json").string() + ": series '" + s.series_uid + "' also in " +
                       (it->second / "findings.json").string());
    }
    studies.push_back(std::move(s));
  }
  return studies;
}

struct TruthNodule {
  NoduleAnnotation annotation;
  int malignant = 0;
  NoduleMeasures measures;  // the reference size, and the type and solid part where the table has them
};

// The truth column the findings' mean diameters are compared with: the drawn
// nodule's axial mean (hilum phantom's truth.csv) when there is one, else the
// LUNA16 annotation's diameter.
std::string reference_size_column(const CsvTable& t) {
  return t.find_column("axial_mean_mm") ? "axial_mean_mm" : "diameter_mm";
}

// `size_column`: reference_size_column(t).
Result<std::vector<TruthNodule>> truth_from_table(const CsvTable& t, const std::string& size_column) {
  HILUM_ASSIGN_OR_RETURN(std::vector<NoduleAnnotation> nodules, nodules_from_table(t));
  HILUM_ASSIGN_OR_RETURN(size_t col, t.column("malignant"));
  HILUM_ASSIGN_OR_RETURN(size_t size_col, t.column(size_column));
  const std::optional<size_t> type_col = t.find_column("type"),
                              solid_col = t.find_column("solid_diameter_mm");
  std::vector<TruthNodule> out;
  for (size_t r = 0; r < t.size(); ++r) {
    const auto v = parse_decimal(t.text(r, col));
    if (!v || (*v != 0.0 && *v != 1.0)) {
      return bad_input(t.where(r, col) + "'" + std::string(t.trimmed(r, col)) +
                       "' is not 0 or 1 (1 = malignant)");
    }
    TruthNodule n{nodules[r], static_cast<int>(*v), {}};
    HILUM_ASSIGN_OR_RETURN(n.measures.mean_mm, t.number(r, size_col));
    if (type_col) {
      auto type = parse_nodule_type(t.trimmed(r, *type_col));
      if (!type.ok()) {
        return bad_input(t.where(r, *type_col) + "'" + std::string(t.trimmed(r, *type_col)) +
                         "' is not solid, part-solid or ground-glass");
      }
      n.measures.type = *type;
    }
    if (solid_col) {
      HILUM_ASSIGN_OR_RETURN(n.measures.solid_mm, t.number(r, *solid_col));
    }
    n.measures.lung_rads = truth_lung_rads(n.measures);
    out.push_back(std::move(n));
  }
  return out;
}

// The findings list as a reader sees it: how many, and how many hit no truth
// nodule. A finding on an excluded annotation is neither a hit nor false. (How
// many nodules the findings hit is counted where they are matched for the
// malignancy scores.)
struct FindingsOperatingPoint {
  int findings = 0, false_findings = 0, excluded = 0;
  int nodules = 0, nodules_hit = 0, malignant = 0, malignant_hit = 0;
};

FindingsOperatingPoint count_findings(const std::vector<StudyFindings>& studies, const std::vector<TruthNodule>& truth,
                                      const std::vector<NoduleAnnotation>& excluded) {
  FindingsOperatingPoint op;
  std::map<std::string, std::vector<const NoduleAnnotation*>> truth_on, excluded_on;
  for (const TruthNodule& t : truth) truth_on[t.annotation.seriesuid].push_back(&t.annotation);
  for (const NoduleAnnotation& e : excluded) excluded_on[e.seriesuid].push_back(&e);
  for (const StudyFindings& s : studies) {
    for (const BatchFinding& f : s.findings) {
      ++op.findings;
      auto hits_any = [&](const std::vector<const NoduleAnnotation*>& list) {
        return std::any_of(list.begin(), list.end(),
                           [&](const NoduleAnnotation* a) { return mark_hits(*a, f.x, f.y, f.z); });
      };
      if (hits_any(truth_on[s.series_uid])) continue;
      if (hits_any(excluded_on[s.series_uid])) {
        ++op.excluded;
        continue;
      }
      ++op.false_findings;
    }
  }
  return op;
}

}  // namespace

Result<std::string> run_batch_eval(const BatchEvalOptions& o) {
  if (o.bootstrap < 0) return bad_input("--bootstrap must be >= 0");
  if (o.min_probability && !(*o.min_probability >= 0 && *o.min_probability <= 1))
    return bad_input("--min-probability must lie in [0, 1]");
  HILUM_ASSIGN_OR_RETURN(std::vector<StudyFindings> studies, read_batch(o.batch_dir));
  // The threshold the run wrote its findings at (the highest, if the studies differ).
  std::optional<double> written_at;
  for (const StudyFindings& s : studies)
    if (s.written_at && (!written_at || *s.written_at > *written_at)) written_at = s.written_at;
  if (o.min_probability) {
    for (StudyFindings& s : studies)
      std::erase_if(s.findings, [&](const BatchFinding& f) { return f.probability < *o.min_probability; });
    if (written_at && *o.min_probability < *written_at) {
      char buf[200];
      std::snprintf(
          buf, sizeof buf,
          "--min-probability %g is below the %g the run wrote its findings at: the findings under %g "
          "are not in the files, so this reads the run as it is",
          *o.min_probability, *written_at, *written_at);
      log_warning(buf);
    }
  }
  HILUM_ASSIGN_OR_RETURN(const CsvTable truth_table, read_csv(o.truth));
  const std::string size_column = reference_size_column(truth_table);
  HILUM_ASSIGN_OR_RETURN(std::vector<TruthNodule> truth, truth_from_table(truth_table, size_column));
  // The subgroups first: a bad --by is refused before any other message.
  std::vector<Grouping> groupings;
  for (const std::string& spec : o.by) {
    HILUM_ASSIGN_OR_RETURN(Grouping g, group_rows(spec, truth_table));
    groupings.push_back(std::move(g));
  }

  FrocInput in;
  std::map<std::string, size_t> study_of;
  for (size_t i = 0; i < studies.size(); ++i) {
    in.scans.push_back(studies[i].series_uid);
    study_of[studies[i].series_uid] = i;
  }
  for (const TruthNodule& t : truth) in.nodules.push_back(t.annotation);
  if (o.excluded) {
    HILUM_ASSIGN_OR_RETURN(in.excluded, read_nodule_csv(*o.excluded));
  }
  const fs::path combined = o.batch_dir / "candidates.csv";
  const bool have_combined = fs::is_regular_file(combined);
  if (have_combined) {
    HILUM_ASSIGN_OR_RETURN(in.marks, read_candidates_csv(combined));
  } else {
    for (const StudyFindings& s : studies) {
      for (const BatchFinding& f : s.findings)
        in.marks.push_back({s.series_uid, f.x, f.y, f.z, f.probability});
    }
  }

  // Malignancy score per true nodule: the malignancy of the finding that hits
  // it with the highest detection probability (ties: the higher malignancy).
  int on_missing_scans = 0, matched = 0, unmatched = 0;
  FindingsOperatingPoint op = count_findings(studies, truth, in.excluded);
  std::vector<MeasuredPair> measured;  // each matched nodule and its finding
  ScoredSample scores;
  std::vector<std::optional<double>> row_score(truth.size());  // per truth row, when it enters the ROC
  std::string table = "seriesuid,coordX,coordY,coordZ,diameter_mm,malignant,matched,malignancy\n";
  for (size_t r = 0; r < truth.size(); ++r) {
    const TruthNodule& t = truth[r];
    auto it = study_of.find(t.annotation.seriesuid);
    if (it == study_of.end()) {
      ++on_missing_scans;
      continue;
    }
    const BatchFinding* best = nullptr;
    for (const BatchFinding& f : studies[it->second].findings) {
      if (!mark_hits(t.annotation, f.x, f.y, f.z)) continue;
      if (!best || f.probability > best->probability ||
          (f.probability == best->probability && f.malignancy > best->malignancy)) {
        best = &f;
      }
    }
    ++op.nodules;
    op.malignant += t.malignant;
    if (best) {
      measured.push_back({t.annotation.seriesuid, t.annotation.x, t.annotation.y, t.annotation.z, t.measures,
                          best->measures});
      ++matched;
      op.nodules_hit += 1;
      op.malignant_hit += t.malignant;
    } else {
      ++unmatched;
      if (o.unmatched == UnmatchedNodules::kExclude) continue;
    }
    const double score = best ? best->malignancy : 0.0;
    (t.malignant ? scores.positives : scores.negatives).push_back(score);
    row_score[r] = score;
    const NoduleAnnotation& a = t.annotation;
    table += csv_quote(a.seriesuid) + "," + csv_number(a.x) + "," + csv_number(a.y) + "," + csv_number(a.z) +
             "," + csv_number(a.diameter_mm) + "," + std::to_string(t.malignant) + "," + (best ? "1" : "0") +
             "," + csv_number(score) + "\n";
  }
  if (on_missing_scans > 0) {
    log_warning(std::to_string(on_missing_scans) + " nodules of " + o.truth.string() +
                " lie on series that are not in the batch and are not evaluated");
  }
  if (scores.positives.size() < 2 || scores.negatives.size() < 2) {
    return bad_input(o.truth.string() + ": " + std::to_string(scores.positives.size()) + " malignant and " +
                     std::to_string(scores.negatives.size()) +
                     " benign nodules are evaluated; the malignancy ROC needs at least 2 of each");
  }

  FrocOptions fo;
  fo.bootstrap_samples = o.bootstrap;
  fo.seed = o.seed;
  auto froc = evaluate_froc(in, fo);
  if (!froc.ok()) return froc.error().with_context(o.truth.string());
  const RocReport roc = analyze_scores(scores, "malignancy", std::nullopt, o.bootstrap, o.seed);

  // Subgroups: each group's nodules against every false positive of the run;
  // the other groups' nodules join the excluded findings (their marks are
  // neither hits nor false positives).
  ojson by_json = ojson::object();
  std::string by_csv = group_csv_header() + ",malignant,benign,malignancy_auc\n";
  std::string by_summary;
  for (const Grouping& g : groupings) {
    ojson list = ojson::array();
    for (size_t k = 0; k < g.labels.size(); ++k) {
      auto det = group_detection(in, g, k, fo.max_marks_per_scan);
      if (!det.ok()) return det.error().with_context(o.truth.string());
      ScoredSample gs;
      for (size_t r = 0; r < truth.size(); ++r) {
        if (g.group_of_row[r] == k && row_score[r]) {
          (truth[r].malignant ? gs.positives : gs.negatives).push_back(*row_score[r]);
        }
      }
      ojson item = std::move(det->json);
      item["malignant"] = gs.positives.size();
      item["benign"] = gs.negatives.size();
      std::string row = det->csv + "," + std::to_string(gs.positives.size()) + "," +
                        std::to_string(gs.negatives.size()) + ",";
      std::string line = det->summary;
      if (gs.positives.size() >= 2 && gs.negatives.size() >= 2) {
        const RocReport gr = analyze_scores(gs, "malignancy", std::nullopt, 0, o.seed);
        item["malignancy_auc"] = gr.delong.auc;
        item["malignancy_ci_low"] = gr.delong.ci_low;
        item["malignancy_ci_high"] = gr.delong.ci_high;
        row += csv_number(gr.delong.auc);
        char buf[80];
        std::snprintf(buf, sizeof buf, ", malignancy AUC %.3f", gr.delong.auc);
        line += buf;
      } else {
        item["malignancy_auc"] = nullptr;
      }
      list.push_back(std::move(item));
      by_csv += row + "\n";
      by_summary += "\n" + line;
    }
    by_json[g.name] = std::move(list);
  }

  ojson metrics;
  metrics["schema_version"] = 1;
  metrics["kind"] = "batch";
  metrics["batch"] = {{"studies", studies.size()},
                      {"marks_source", have_combined ? "candidates.csv" : "findings.json"},
                      {"truth_nodules_on_missing_scans", on_missing_scans}};
  metrics["detection"] = froc_metrics_json(*froc, fo.max_marks_per_scan);
  ojson malignancy = roc_metrics_json(roc);
  malignancy["unmatched_nodules"] = o.unmatched == UnmatchedNodules::kExclude ? "exclude" : "score_zero";
  malignancy["nodules_matched"] = matched;
  malignancy["nodules_unmatched"] = unmatched;
  metrics["malignancy"] = malignancy;
  const double scans = static_cast<double>(studies.size());
  metrics["findings"] = {{"min_probability", o.min_probability ? ojson(*o.min_probability) : ojson(nullptr)},
                         {"written_at_min_probability", written_at ? ojson(*written_at) : ojson(nullptr)},
                         {"findings", op.findings},
                         {"per_scan", op.findings / scans},
                         {"false_findings", op.false_findings},
                         {"false_per_scan", op.false_findings / scans},
                         {"on_excluded", op.excluded},
                         {"nodules", op.nodules},
                         {"nodules_hit", op.nodules_hit},
                         {"malignant", op.malignant},
                         {"malignant_hit", op.malignant_hit}};
  const std::optional<MeasurementReport> measurement = compare_measurements(measured, size_column);
  metrics["measurement"] = measurement ? measurement->json : ojson(nullptr);
  if (!groupings.empty()) metrics["by"] = std::move(by_json);

  const Plot froc_p = froc_plot(*froc, "Detection FROC (" + std::to_string(froc->scans) + " scans, " +
                                           std::to_string(froc->nodules_total) + " nodules)");
  const Plot roc_p = roc_plot(roc, "Malignancy ROC (" + std::to_string(roc.n_positive) + " malignant, " +
                                       std::to_string(roc.n_negative) + " benign)");
  OutputFiles files;
  files.add("malignancy_scores.csv", table);
  files.add("froc_nodules.csv", froc_nodules_csv(in, *froc));
  files.add("froc.svg", render_svg(froc_p));
  files.add("froc.png", render_png(froc_p));
  files.add("roc.svg", render_svg(roc_p));
  files.add("roc.png", render_png(roc_p));
  if (!groupings.empty()) files.add("by_group.csv", by_csv);
  if (measurement) files.add("measurements.csv", measurement->csv);
  files.add("metrics.json", metrics.dump(2) + "\n");
  HILUM_RETURN_IF_ERROR(files.commit(o.out_dir));
  char at[64] = "";
  if (o.min_probability) std::snprintf(at, sizeof at, " at probability >= %g", *o.min_probability);
  char findings_line[256];
  std::snprintf(findings_line, sizeof findings_line,
                "\nfindings%s: %.2f per scan, %.2f false per scan; they hit %d of %d nodules and %d of %d "
                "malignant ones",
                at, op.findings / scans, op.false_findings / scans, op.nodules_hit, op.nodules,
                op.malignant_hit, op.malignant);
  return "detection: " + froc_summary(*froc) + "\nmalignancy: " + roc_summary(roc) + findings_line +
         (measurement ? "\n" + measurement->summary : std::string()) + by_summary;
}

}  // namespace hilum
