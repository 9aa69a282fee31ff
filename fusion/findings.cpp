#include "fusion/findings.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <numeric>

#include "model/file_io.h"

namespace hilum {
namespace {

using Json = nlohmann::ordered_json;

Json vec3(const std::array<double, 3>& v) { return Json::array({v[0], v[1], v[2]}); }

// Lookups that turn a missing or mistyped key into a message naming it.
class Reader {
 public:
  explicit Reader(std::string name) : name_(std::move(name)) {}

  Result<const Json*> member(const Json& obj, const std::string& key, const std::string& where) const {
    auto it = obj.find(key);
    if (it == obj.end()) return bad_input(name_ + ": " + where + " has no \"" + key + "\"");
    return &*it;
  }
  Result<double> number(const Json& obj, const std::string& key, const std::string& where) const {
    HILUM_ASSIGN_OR_RETURN(const Json* v, member(obj, key, where));
    if (!v->is_number()) return bad_input(name_ + ": " + where + "." + key + " is not a number");
    return v->get<double>();
  }
  Result<std::string> string(const Json& obj, const std::string& key, const std::string& where) const {
    HILUM_ASSIGN_OR_RETURN(const Json* v, member(obj, key, where));
    if (!v->is_string()) return bad_input(name_ + ": " + where + "." + key + " is not a string");
    return v->get<std::string>();
  }
  Result<std::array<double, 3>> triple(const Json& obj, const std::string& key,
                                       const std::string& where) const {
    HILUM_ASSIGN_OR_RETURN(const Json* v, member(obj, key, where));
    if (!v->is_array() || v->size() != 3 || !(*v)[0].is_number() || !(*v)[1].is_number() ||
        !(*v)[2].is_number()) {
      return bad_input(name_ + ": " + where + "." + key + " is not an array of 3 numbers");
    }
    return std::array<double, 3>{(*v)[0].get<double>(), (*v)[1].get<double>(), (*v)[2].get<double>()};
  }
  Error error(const std::string& message) const { return bad_input(name_ + ": " + message); }

 private:
  std::string name_;
};

Json finding_json(const Finding& f) {
  Json j;
  j["id"] = f.id;
  j["center_mm"] = vec3(f.center_mm);
  j["long_axis_mm"] = f.long_axis_mm;
  j["short_axis_mm"] = f.short_axis_mm;
  j["mean_diameter_mm"] = f.mean_diameter_mm;
  j["volume_mm3"] = f.volume_mm3;
  j["type"] = std::string(nodule_type_name(f.type));
  j["solid_component_mm"] = f.solid_component_mm;
  j["probability"] = f.probability;
  j["malignancy"] = f.malignancy;
  Json lr;
  lr["category"] = std::string(lung_rads_label(f.lung_rads.category));
  lr["descriptor"] = std::string(lung_rads_descriptor(f.lung_rads.category));
  lr["management"] = f.lung_rads.management;
  lr["rule"] = f.lung_rads.rule;
  lr["notes"] = f.lung_rads.notes;
  j["lung_rads"] = std::move(lr);
  Json loc;
  loc["side"] = std::string(lung_side_name(f.location.side));
  loc["lobe"] = f.location.lobe;
  loc["slice_index"] = f.location.slice_index;
  loc["voxel"] = vec3(f.location.voxel);
  loc["juxtapleural"] = f.location.juxtapleural;
  j["location"] = std::move(loc);
  Json ev = Json::object();
  for (const auto& [k, v] : f.evidence) ev[k] = v;
  j["evidence"] = std::move(ev);
  return j;
}

Result<Finding> parse_finding(const Reader& r, const Json& j, const std::string& where) {
  if (!j.is_object()) return r.error(where + " is not an object");
  Finding f;
  HILUM_ASSIGN_OR_RETURN(double id, r.number(j, "id", where));
  f.id = static_cast<int>(id);
  HILUM_ASSIGN_OR_RETURN(f.center_mm, r.triple(j, "center_mm", where));
  HILUM_ASSIGN_OR_RETURN(f.long_axis_mm, r.number(j, "long_axis_mm", where));
  HILUM_ASSIGN_OR_RETURN(f.short_axis_mm, r.number(j, "short_axis_mm", where));
  HILUM_ASSIGN_OR_RETURN(f.mean_diameter_mm, r.number(j, "mean_diameter_mm", where));
  HILUM_ASSIGN_OR_RETURN(f.volume_mm3, r.number(j, "volume_mm3", where));
  HILUM_ASSIGN_OR_RETURN(std::string type, r.string(j, "type", where));
  auto t = parse_nodule_type(type);
  if (!t.ok()) return r.error(where + ".type: " + t.error().message());
  f.type = *t;
  HILUM_ASSIGN_OR_RETURN(f.probability, r.number(j, "probability", where));
  HILUM_ASSIGN_OR_RETURN(f.malignancy, r.number(j, "malignancy", where));
  if (j.contains("solid_component_mm")) {
    HILUM_ASSIGN_OR_RETURN(f.solid_component_mm, r.number(j, "solid_component_mm", where));
  }
  HILUM_ASSIGN_OR_RETURN(const Json* lr, r.member(j, "lung_rads", where));
  // Accept the full object or a bare category string.
  const Json* category = lr;
  if (lr->is_object()) {
    HILUM_ASSIGN_OR_RETURN(category, r.member(*lr, "category", where + ".lung_rads"));
    if (lr->contains("management") && (*lr)["management"].is_string())
      f.lung_rads.management = (*lr)["management"].get<std::string>();
    if (lr->contains("rule") && (*lr)["rule"].is_string())
      f.lung_rads.rule = (*lr)["rule"].get<std::string>();
    if (lr->contains("notes") && (*lr)["notes"].is_array()) {
      for (const Json& n : (*lr)["notes"])
        if (n.is_string()) f.lung_rads.notes.push_back(n.get<std::string>());
    }
  }
  if (!category->is_string()) return r.error(where + ".lung_rads.category is not a string");
  auto c = parse_lung_rads(category->get<std::string>());
  if (!c.ok()) return r.error(where + ".lung_rads: " + c.error().message());
  f.lung_rads.category = *c;
  if (f.lung_rads.management.empty()) f.lung_rads.management = std::string(lung_rads_management(*c));

  if (auto it = j.find("location"); it != j.end() && it->is_object()) {
    const Json& loc = *it;
    if (loc.contains("side") && loc["side"].is_string()) {
      const std::string s = loc["side"].get<std::string>();
      f.location.side = s == "right" ? LungSide::kRight : s == "left" ? LungSide::kLeft : LungSide::kUnknown;
    }
    if (loc.contains("lobe") && loc["lobe"].is_string()) f.location.lobe = loc["lobe"].get<std::string>();
    if (loc.contains("slice_index") && loc["slice_index"].is_number())
      f.location.slice_index = loc["slice_index"].get<int>();
    if (loc.contains("voxel")) {
      HILUM_ASSIGN_OR_RETURN(f.location.voxel, r.triple(loc, "voxel", where + ".location"));
    }
    if (loc.contains("juxtapleural") && loc["juxtapleural"].is_boolean())
      f.location.juxtapleural = loc["juxtapleural"].get<bool>();
  }
  if (auto it = j.find("evidence"); it != j.end() && it->is_object()) {
    for (const auto& [k, v] : it->items())
      if (v.is_string()) f.evidence[k] = v.get<std::string>();
  }
  return f;
}

std::string format_number(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

}  // namespace

std::string_view lung_side_name(LungSide s) {
  switch (s) {
    case LungSide::kRight:
      return "right";
    case LungSide::kLeft:
      return "left";
    case LungSide::kUnknown:
      return "unknown";
  }
  return "unknown";
}

std::string findings_to_json(const FindingsDocument& doc) {
  Json j;
  j["schema_version"] = doc.schema_version;
  j["series_uid"] = doc.series_uid;
  j["generator"] = doc.generator;
  j["clinical_text_used"] = doc.clinical_text_used;
  j["model_bundle"] = doc.model_bundle;
  if (!doc.device.empty()) j["device"] = doc.device;
  j["lung_rads"] = doc.lung_rads_study.empty() ? study_lung_rads(doc.findings) : doc.lung_rads_study;
  j["notes"] = doc.notes;
  if (doc.reporting) {
    const ReportingRule& r = *doc.reporting;
    j["reporting"] = {{"min_probability", r.min_probability},
                      {"min_long_axis_mm", r.min_long_axis_mm},
                      {"max_findings", r.max_findings},
                      {"nms_distance_mm", r.nms_distance_mm}};
  }
  Json list = Json::array();
  for (const Finding& f : doc.findings) list.push_back(finding_json(f));
  j["findings"] = std::move(list);
  return j.dump(2) + "\n";
}

Result<FindingsDocument> findings_from_json(std::string_view text, const std::string& name) {
  Json j;
  try {
    j = Json::parse(text);
  } catch (const std::exception& e) {
    return bad_input(name + ": not valid JSON (" + e.what() + ")");
  }
  Reader r(name);
  if (!j.is_object()) return r.error("the top level is not an object");
  FindingsDocument doc;
  HILUM_ASSIGN_OR_RETURN(const Json* version, r.member(j, "schema_version", "document"));
  if (!version->is_number_integer()) return r.error("schema_version is not an integer");
  doc.schema_version = version->get<int>();
  if (doc.schema_version < 1 || doc.schema_version > kFindingsSchemaVersion) {
    return r.error("schema_version " + std::to_string(doc.schema_version) +
                   " is not supported (this build reads 1 to " + std::to_string(kFindingsSchemaVersion) +
                   ")");
  }
  HILUM_ASSIGN_OR_RETURN(doc.series_uid, r.string(j, "series_uid", "document"));
  if (j.contains("generator") && j["generator"].is_string())
    doc.generator = j["generator"].get<std::string>();
  if (j.contains("clinical_text_used") && j["clinical_text_used"].is_boolean())
    doc.clinical_text_used = j["clinical_text_used"].get<bool>();
  if (j.contains("model_bundle") && j["model_bundle"].is_string())
    doc.model_bundle = j["model_bundle"].get<std::string>();
  if (j.contains("device") && j["device"].is_string()) doc.device = j["device"].get<std::string>();
  if (j.contains("lung_rads") && j["lung_rads"].is_string())
    doc.lung_rads_study = j["lung_rads"].get<std::string>();
  if (j.contains("notes") && j["notes"].is_array()) {
    for (const Json& n : j["notes"])
      if (n.is_string()) doc.notes.push_back(n.get<std::string>());
  }
  if (j.contains("reporting")) {
    const Json& rep = j["reporting"];
    if (!rep.is_object()) return r.error("reporting is not an object");
    ReportingRule rule;
    auto number = [&](const char* key, double& to) -> Status {
      if (!rep.contains(key)) return Status::Ok();
      if (!rep[key].is_number()) return r.error(std::string("reporting.") + key + " is not a number");
      to = rep[key].get<double>();
      return Status::Ok();
    };
    double max_findings = rule.max_findings;
    HILUM_RETURN_IF_ERROR(number("min_probability", rule.min_probability));
    HILUM_RETURN_IF_ERROR(number("min_long_axis_mm", rule.min_long_axis_mm));
    HILUM_RETURN_IF_ERROR(number("max_findings", max_findings));
    HILUM_RETURN_IF_ERROR(number("nms_distance_mm", rule.nms_distance_mm));
    rule.max_findings = static_cast<int>(max_findings);
    doc.reporting = rule;
  }
  HILUM_ASSIGN_OR_RETURN(const Json* list, r.member(j, "findings", "document"));
  if (!list->is_array()) return r.error("findings is not an array");
  for (size_t i = 0; i < list->size(); ++i) {
    HILUM_ASSIGN_OR_RETURN(Finding f, parse_finding(r, (*list)[i], "findings[" + std::to_string(i) + "]"));
    doc.findings.push_back(std::move(f));
  }
  return doc;
}

Status write_findings_json(const std::filesystem::path& path, const FindingsDocument& doc) {
  return write_file_atomic(path, findings_to_json(doc));
}

Result<FindingsDocument> read_findings_json(const std::filesystem::path& path) {
  HILUM_ASSIGN_OR_RETURN(std::string text, read_file(path));
  return findings_from_json(text, path.string());
}

Status write_candidates_csv(const std::filesystem::path& path, const std::string& series_uid,
                            const std::vector<ScoredCandidate>& candidates) {
  if (series_uid.find_first_of(",\n\r\"") != std::string::npos) {
    return bad_input(path.string() + ": series UID contains a comma, quote or newline");
  }
  std::string out = "seriesuid,coordX,coordY,coordZ,probability\n";
  for (const ScoredCandidate& c : candidates) {
    out += series_uid;
    for (double v : c.center_mm) out += "," + format_number(v);
    out += "," + format_number(c.probability) + "\n";
  }
  return write_file_atomic(path, out);
}

std::vector<size_t> non_maximum_suppression_3d(const std::vector<ScoredCandidate>& candidates,
                                               double min_distance_mm) {
  std::vector<size_t> order(candidates.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return candidates[a].probability > candidates[b].probability; });
  std::vector<size_t> kept;
  for (size_t i : order) {
    const ScoredCandidate& c = candidates[i];
    bool suppressed = false;
    for (size_t k : kept) {
      const ScoredCandidate& o = candidates[k];
      const double limit = std::max(min_distance_mm, std::max(c.radius_mm, o.radius_mm));
      double d2 = 0;
      for (int a = 0; a < 3; ++a) d2 += (c.center_mm[a] - o.center_mm[a]) * (c.center_mm[a] - o.center_mm[a]);
      if (d2 < limit * limit) {
        suppressed = true;
        break;
      }
    }
    if (!suppressed) kept.push_back(i);
  }
  return kept;
}

std::string study_lung_rads(const std::vector<Finding>& findings) {
  LungRadsCategory worst = LungRadsCategory::k1;
  for (const Finding& f : findings)
    if (lung_rads_rank(f.lung_rads.category) > lung_rads_rank(worst)) worst = f.lung_rads.category;
  return std::string(lung_rads_label(worst));
}

}  // namespace hilum
