#include "app/review.h"

#include <cmath>
#include <cstdio>
#include <map>
#include <set>

namespace hilum {

namespace {

std::string mm(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f mm", v);
  return buf;
}

std::string id_list(const std::vector<int>& ids) {
  std::string s = ids.size() == 1 ? "nodule " : "nodules ";
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) s += i + 1 == ids.size() ? " and " : ", ";
    s += std::to_string(ids[i]);
  }
  return s;
}

bool same_mm(double a, double b) { return std::abs(a - b) < 0.05; }

// What the radiologist changed in `f`, as "long axis 8.0 mm (AI 6.0 mm)" parts.
std::vector<std::string> changes(const Finding& f, const FindingReview& r) {
  std::vector<std::string> c;
  if (!same_mm(r.long_axis_mm, f.long_axis_mm))
    c.push_back("long axis " + mm(r.long_axis_mm) + " (AI " + mm(f.long_axis_mm) + ")");
  if (!same_mm(r.short_axis_mm, f.short_axis_mm))
    c.push_back("short axis " + mm(r.short_axis_mm) + " (AI " + mm(f.short_axis_mm) + ")");
  if (r.type != f.type) {
    c.push_back("type " + std::string(nodule_type_name(r.type)) + " (AI " +
                std::string(nodule_type_name(f.type)) + ")");
  }
  if (r.lung_rads != lung_rads_label(f.lung_rads.category)) {
    c.push_back("Lung-RADS " + r.lung_rads + " (AI " + std::string(lung_rads_label(f.lung_rads.category)) +
                ")");
  }
  return c;
}

}  // namespace

std::string_view review_decision_name(ReviewDecision d) {
  switch (d) {
    case ReviewDecision::kAccepted:
      return "accepted";
    case ReviewDecision::kRejected:
      return "rejected";
    default:
      return "pending";
  }
}

FindingReview unreviewed(const Finding& f) {
  FindingReview r;
  r.id = f.id;
  r.long_axis_mm = f.long_axis_mm;
  r.short_axis_mm = f.short_axis_mm;
  r.type = f.type;
  r.lung_rads = std::string(lung_rads_label(f.lung_rads.category));
  return r;
}

std::string review_summary(const FindingsDocument& ai, const std::vector<FindingReview>& reviews) {
  std::map<int, const FindingReview*> by_id;
  for (const FindingReview& r : reviews) by_id[r.id] = &r;
  std::vector<int> accepted, rejected, pending, edited;
  for (const Finding& f : ai.findings) {
    auto it = by_id.find(f.id);
    const FindingReview r = it == by_id.end() ? unreviewed(f) : *it->second;
    (r.decision == ReviewDecision::kAccepted   ? accepted
     : r.decision == ReviewDecision::kRejected ? rejected
                                               : pending)
        .push_back(f.id);
    if (r.decision != ReviewDecision::kRejected && !changes(f, r).empty()) edited.push_back(f.id);
  }
  std::string s = "Radiologist review: " + std::to_string(accepted.size()) + " accepted";
  s += ", " + std::to_string(rejected.size()) + " rejected";
  if (!rejected.empty()) s += " (" + id_list(rejected) + ", left out)";
  s += ", " + std::to_string(pending.size()) + " not reviewed";
  if (!pending.empty()) s += " (" + id_list(pending) + ")";
  s += edited.empty() ? "; no finding edited." : "; edited: " + id_list(edited) + ".";
  return s;
}

Result<FindingsDocument> apply_review(const FindingsDocument& ai, const std::vector<FindingReview>& reviews) {
  std::map<int, const FindingReview*> by_id;
  std::set<int> ids;
  for (const Finding& f : ai.findings) ids.insert(f.id);
  for (const FindingReview& r : reviews) {
    const std::string what = "review of nodule " + std::to_string(r.id);
    if (!ids.count(r.id)) return bad_input(what + ": the findings have no such nodule");
    if (by_id.count(r.id)) return bad_input(what + ": given twice");
    if (!std::isfinite(r.long_axis_mm) || !std::isfinite(r.short_axis_mm) || r.long_axis_mm < 0 ||
        r.short_axis_mm < 0) {
      return bad_input(what + ": sizes must be finite and not negative");
    }
    if (r.short_axis_mm > r.long_axis_mm + 1e-9)
      return bad_input(what + ": short axis longer than the long axis");
    if (!parse_lung_rads(r.lung_rads).ok())
      return bad_input(what + ": unknown Lung-RADS category '" + r.lung_rads + "'");
    by_id[r.id] = &r;
  }

  FindingsDocument out = ai;
  out.findings.clear();
  std::vector<std::string> edit_notes;
  for (const Finding& original : ai.findings) {
    auto it = by_id.find(original.id);
    const FindingReview r = it == by_id.end() ? unreviewed(original) : *it->second;
    if (r.decision == ReviewDecision::kRejected) continue;
    Finding f = original;
    const std::vector<std::string> changed = changes(original, r);
    if (!changed.empty()) {
      const std::string by = "radiologist";
      if (!same_mm(r.long_axis_mm, original.long_axis_mm)) {
        f.long_axis_mm = round_to_tenth(r.long_axis_mm);
        f.evidence["long_axis_mm"] = by;
      }
      if (!same_mm(r.short_axis_mm, original.short_axis_mm)) {
        f.short_axis_mm = round_to_tenth(r.short_axis_mm);
        f.evidence["short_axis_mm"] = by;
      }
      if (f.long_axis_mm != original.long_axis_mm || f.short_axis_mm != original.short_axis_mm) {
        f.mean_diameter_mm = round_to_tenth((f.long_axis_mm + f.short_axis_mm) / 2);
        f.evidence["mean_diameter_mm"] = "(long + short) / 2 of the radiologist's axes";
      }
      if (r.type != original.type) {
        f.type = r.type;
        f.evidence["type"] = by;
      }
      if (f.type == NoduleType::kSolid) {
        f.solid_component_mm = f.mean_diameter_mm;
      } else if (f.type == NoduleType::kGroundGlass) {
        f.solid_component_mm = 0;
      } else if (original.type != NoduleType::kPartSolid) {
        f.solid_component_mm = 0;
        f.evidence["solid_component_mm"] = "not measured (the radiologist made the nodule part-solid)";
      }
      const LungRadsCategory cat = *parse_lung_rads(r.lung_rads);
      if (cat != original.lung_rads.category) {
        f.lung_rads.category = cat;
        f.lung_rads.management = std::string(lung_rads_management(cat));
        f.lung_rads.rule = "assigned by the radiologist";
        f.evidence["lung_rads"] = by;
      }
      std::string note = "Nodule " + std::to_string(f.id) + " edited by the radiologist: ";
      for (size_t i = 0; i < changed.size(); ++i) note += (i ? ", " : "") + changed[i];
      edit_notes.push_back(note + ".");
    }
    f.evidence["review"] = "radiologist: " + std::string(review_decision_name(r.decision));
    out.findings.push_back(std::move(f));
  }
  out.lung_rads_study = study_lung_rads(out.findings);
  out.notes.push_back(review_summary(ai, reviews));
  for (std::string& n : edit_notes) out.notes.push_back(std::move(n));
  return out;
}

}  // namespace hilum
