#include "app/eval_groups.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>

#include "app/csv.h"

namespace hilum {

Result<Grouping> group_rows(const std::string& spec, const CsvTable& t) {
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
  if (index.size() > kMaxGroups) {
    return bad_input(t.source() + ": column '" + column + "' has " + std::to_string(index.size()) +
                     " distinct values, more than the " + std::to_string(kMaxGroups) +
                     " groups --by takes; bin it instead (" + column + ":E1,E2,...)");
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

FrocInput group_froc_input(const FrocInput& in, const Grouping& g, size_t k) {
  FrocInput out;
  out.scans = in.scans;
  out.marks = in.marks;
  out.excluded = in.excluded;
  for (size_t r = 0; r < in.nodules.size(); ++r) {
    (g.group_of_row[r] == k ? out.nodules : out.excluded).push_back(in.nodules[r]);
  }
  return out;
}

std::string group_csv_header() {
  std::string h = "by,group,nodules,nodules_detected";
  for (double rate : kFrocRates) h += ",sensitivity_at_" + csv_number(rate);
  return h + ",cpm";
}

Result<GroupDetection> group_detection(const FrocInput& in, const Grouping& g, size_t k, int max_marks_per_scan) {
  const FrocInput gi = group_froc_input(in, g, k);
  const std::set<std::string> scans(in.scans.begin(), in.scans.end());
  int on_scans = 0;
  for (const NoduleAnnotation& n : gi.nodules) on_scans += scans.count(n.seriesuid) ? 1 : 0;
  GroupDetection d;
  d.json["group"] = g.labels[k];
  d.json["nodules"] = on_scans;
  d.csv = csv_quote(g.name) + "," + csv_quote(g.labels[k]) + "," + std::to_string(on_scans);
  d.summary = "by " + g.name + " " + g.labels[k] + ": " + std::to_string(on_scans) + " nodules";
  if (on_scans == 0) {
    d.json["nodules_detected"] = 0;
    d.json["sensitivities"] = nullptr;
    d.json["cpm"] = nullptr;
    d.csv += ",0" + std::string(kFrocRates.size() + 1, ',');
    return d;
  }
  FrocOptions fo;  // no bootstrap: a group's bands would need their own resampling rules
  fo.max_marks_per_scan = max_marks_per_scan;
  auto f = evaluate_froc(gi, fo);
  if (!f.ok()) return f.error().with_context("group " + g.name + " " + g.labels[k]);
  d.json["nodules_detected"] = f->nodules_detected;
  d.json["sensitivities"] = f->sensitivities;
  d.json["cpm"] = f->cpm;
  // Appended piece by piece: GCC 12 warns falsely (-Wrestrict) on "," + std::string here.
  d.csv += ',';
  d.csv += std::to_string(f->nodules_detected);
  for (double v : f->sensitivities) {
    d.csv += ',';
    d.csv += csv_number(v);
  }
  d.csv += ',';
  d.csv += csv_number(f->cpm);
  char buf[80];
  std::snprintf(buf, sizeof buf, ", %d hit, CPM %.3f", f->nodules_detected, f->cpm);
  d.summary += buf;
  return d;
}

}  // namespace hilum
