// `hilum eval batch`: detection (LUNA16 FROC) and malignancy (ROC) of a batch
// run against a truth table. The batch directory contract is in
// docs/evaluation.md.
#include <algorithm>
#include <cstdio>
#include <map>
#include <optional>
#include <nlohmann/json.hpp>

#include "app/csv.h"
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
};

struct StudyFindings {
  std::string series_uid;
  std::vector<BatchFinding> findings;
};

Result<double> json_number(const nlohmann::json& item, const char* key, const std::string& where) {
  auto it = item.find(key);
  if (it == item.end()) return bad_input(where + ": missing '" + key + "'");
  if (!it->is_number()) return bad_input(where + ": '" + key + "' is not a number");
  const double v = it->get<double>();
  if (!std::isfinite(v)) return bad_input(where + ": '" + key + "' is not finite");
  return v;
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
};

Result<std::vector<TruthNodule>> read_truth(const fs::path& path) {
  HILUM_ASSIGN_OR_RETURN(std::vector<NoduleAnnotation> nodules, read_nodule_csv(path));
  HILUM_ASSIGN_OR_RETURN(CsvTable t, read_csv(path));
  HILUM_ASSIGN_OR_RETURN(size_t col, t.column("malignant"));
  std::vector<TruthNodule> out;
  for (size_t r = 0; r < t.size(); ++r) {
    const auto v = parse_decimal(t.text(r, col));
    if (!v || (*v != 0.0 && *v != 1.0)) {
      return bad_input(t.where(r, col) + "'" + std::string(t.trimmed(r, col)) +
                       "' is not 0 or 1 (1 = malignant)");
    }
    out.push_back({nodules[r], static_cast<int>(*v)});
  }
  return out;
}

std::string g17(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

// The truth rows split by one --by spec: "COLUMN" (a group per value, in
// sorted order; an empty cell is the group "(empty)") or "COLUMN:E1,...,Ek"
// (numeric bins < E1, [E1, E2), ..., >= Ek, every bin listed).
struct Grouping {
  std::string name;                 // the spec as given
  std::vector<std::string> labels;  // the groups
  std::vector<size_t> group_of_row;
};

Result<Grouping> group_truth(const std::string& spec, const fs::path& truth_path) {
  Grouping g;
  g.name = spec;
  const size_t colon = spec.find(':');
  const std::string column = spec.substr(0, colon);
  if (column.empty()) return bad_input("--by '" + spec + "': no column named");
  std::vector<double> edges;
  if (colon != std::string::npos) {
    const std::string list = spec.substr(colon + 1);
    size_t start = 0;
    while (true) {
      const size_t comma = list.find(',', start);
      const std::string item = list.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      const auto v = parse_decimal(item);
      if (!v) return bad_input("--by '" + spec + "': bin edge '" + item + "' is not a number");
      if (!edges.empty() && *v <= edges.back()) {
        return bad_input("--by '" + spec + "': bin edges must increase");
      }
      edges.push_back(*v);
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  HILUM_ASSIGN_OR_RETURN(CsvTable t, read_csv(truth_path));
  HILUM_ASSIGN_OR_RETURN(size_t col, t.column(column));
  g.group_of_row.resize(t.size());
  if (!edges.empty()) {
    char buf[80];
    std::snprintf(buf, sizeof buf, "<%g", edges.front());
    g.labels.push_back(buf);
    for (size_t i = 0; i + 1 < edges.size(); ++i) {
      std::snprintf(buf, sizeof buf, "[%g,%g)", edges[i], edges[i + 1]);
      g.labels.push_back(buf);
    }
    std::snprintf(buf, sizeof buf, ">=%g", edges.back());
    g.labels.push_back(buf);
    for (size_t r = 0; r < t.size(); ++r) {
      HILUM_ASSIGN_OR_RETURN(double v, t.number(r, col));
      g.group_of_row[r] = static_cast<size_t>(std::upper_bound(edges.begin(), edges.end(), v) - edges.begin());
    }
    return g;
  }
  std::map<std::string, size_t> index;
  for (size_t r = 0; r < t.size(); ++r) {
    const std::string_view cell = t.trimmed(r, col);
    index.emplace(cell.empty() ? "(empty)" : std::string(cell), 0);
  }
  for (auto& [label, k] : index) {
    k = g.labels.size();
    g.labels.push_back(label);
  }
  for (size_t r = 0; r < t.size(); ++r) {
    const std::string_view cell = t.trimmed(r, col);
    g.group_of_row[r] = index.at(cell.empty() ? "(empty)" : std::string(cell));
  }
  return g;
}

}  // namespace

Result<std::string> run_batch_eval(const BatchEvalOptions& o) {
  if (o.bootstrap < 0) return bad_input("--bootstrap must be >= 0");
  HILUM_ASSIGN_OR_RETURN(std::vector<StudyFindings> studies, read_batch(o.batch_dir));
  HILUM_ASSIGN_OR_RETURN(std::vector<TruthNodule> truth, read_truth(o.truth));
  // The subgroups first: a bad --by is refused before any other message.
  std::vector<Grouping> groupings;
  for (const std::string& spec : o.by) {
    HILUM_ASSIGN_OR_RETURN(Grouping g, group_truth(spec, o.truth));
    if (g.group_of_row.size() != truth.size()) return bad_input(o.truth.string() + ": rows changed while read");
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
    if (best) {
      ++matched;
    } else {
      ++unmatched;
      if (o.unmatched == UnmatchedNodules::kExclude) continue;
    }
    const double score = best ? best->malignancy : 0.0;
    (t.malignant ? scores.positives : scores.negatives).push_back(score);
    row_score[r] = score;
    const NoduleAnnotation& a = t.annotation;
    table += csv_quote(a.seriesuid) + "," + g17(a.x) + "," + g17(a.y) + "," + g17(a.z) + "," +
             g17(a.diameter_mm) + "," + std::to_string(t.malignant) + "," + (best ? "1" : "0") + "," +
             g17(score) + "\n";
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
  std::string by_csv = "by,group,nodules,nodules_detected";
  for (double rate : kFrocRates) by_csv += ",sensitivity_at_" + g17(rate);
  by_csv += ",cpm,malignant,benign,malignancy_auc\n";
  std::string by_summary;
  for (const Grouping& g : groupings) {
    ojson list = ojson::array();
    for (size_t k = 0; k < g.labels.size(); ++k) {
      FrocInput gi;
      gi.scans = in.scans;
      gi.marks = in.marks;
      gi.excluded = in.excluded;
      ScoredSample gs;
      int on_scans = 0;
      for (size_t r = 0; r < truth.size(); ++r) {
        if (g.group_of_row[r] != k) {
          gi.excluded.push_back(truth[r].annotation);
          continue;
        }
        gi.nodules.push_back(truth[r].annotation);
        if (study_of.count(truth[r].annotation.seriesuid)) ++on_scans;
        if (row_score[r]) (truth[r].malignant ? gs.positives : gs.negatives).push_back(*row_score[r]);
      }
      ojson item;
      item["group"] = g.labels[k];
      item["nodules"] = on_scans;
      std::string row = csv_quote(g.name) + "," + csv_quote(g.labels[k]) + "," + std::to_string(on_scans);
      std::string line = "by " + g.name + " " + g.labels[k] + ": " + std::to_string(on_scans) + " nodules";
      if (on_scans > 0) {
        FrocOptions go;  // no bootstrap: the groups' bands would need their own resampling rules
        auto gf = evaluate_froc(gi, go);
        if (!gf.ok()) return gf.error().with_context(o.truth.string() + ", group " + g.name + " " + g.labels[k]);
        item["nodules_detected"] = gf->nodules_detected;
        item["sensitivities"] = gf->sensitivities;
        item["cpm"] = gf->cpm;
        row += "," + std::to_string(gf->nodules_detected);
        for (double v : gf->sensitivities) row += "," + g17(v);
        row += "," + g17(gf->cpm);
        char buf[120];
        std::snprintf(buf, sizeof buf, ", %d hit, CPM %.3f", gf->nodules_detected, gf->cpm);
        line += buf;
      } else {
        item["nodules_detected"] = 0;
        item["sensitivities"] = nullptr;
        item["cpm"] = nullptr;
        row += ",0" + std::string(kFrocRates.size() + 1, ',');
      }
      item["malignant"] = gs.positives.size();
      item["benign"] = gs.negatives.size();
      row += "," + std::to_string(gs.positives.size()) + "," + std::to_string(gs.negatives.size()) + ",";
      if (gs.positives.size() >= 2 && gs.negatives.size() >= 2) {
        const RocReport gr = analyze_scores(gs, "malignancy", std::nullopt, 0, o.seed);
        item["malignancy_auc"] = gr.delong.auc;
        item["malignancy_ci_low"] = gr.delong.ci_low;
        item["malignancy_ci_high"] = gr.delong.ci_high;
        row += g17(gr.delong.auc);
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
  if (!groupings.empty()) metrics["by"] = std::move(by_json);

  const Plot froc_p = froc_plot(*froc, "Detection FROC (" + std::to_string(froc->scans) + " scans, " +
                                           std::to_string(froc->nodules_total) + " nodules)");
  const Plot roc_p = roc_plot(roc, "Malignancy ROC (" + std::to_string(roc.n_positive) + " malignant, " +
                                       std::to_string(roc.n_negative) + " benign)");
  OutputFiles files;
  files.add("malignancy_scores.csv", table);
  files.add("froc.svg", render_svg(froc_p));
  files.add("froc.png", render_png(froc_p));
  files.add("roc.svg", render_svg(roc_p));
  files.add("roc.png", render_png(roc_p));
  if (!groupings.empty()) files.add("by_group.csv", by_csv);
  files.add("metrics.json", metrics.dump(2) + "\n");
  HILUM_RETURN_IF_ERROR(files.commit(o.out_dir));
  return "detection: " + froc_summary(*froc) + "\nmalignancy: " + roc_summary(roc) + by_summary;
}

}  // namespace hilum
