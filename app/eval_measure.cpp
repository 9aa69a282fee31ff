#include "app/eval_measure.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <map>

#include "app/csv.h"

namespace hilum {

using ojson = nlohmann::ordered_json;

std::optional<LungRadsCategory> truth_lung_rads(const NoduleMeasures& t) {
  if (!t.type || !t.mean_mm) return std::nullopt;
  LungRadsInput in;
  in.type = *t.type;
  in.mean_diameter_mm = *t.mean_mm;
  if (*t.type == NoduleType::kPartSolid) {
    if (!t.solid_mm) return std::nullopt;
    // The nominal solid part may exceed the drawn nodule's axial mean by a little.
    in.solid_component_mm = std::min(*t.solid_mm, *t.mean_mm);
  }
  auto a = assess_lung_rads(in);
  if (!a.ok()) return std::nullopt;
  return a->category;
}

std::optional<double> linear_weighted_kappa(const std::vector<std::pair<int, int>>& ratings) {
  if (ratings.size() < 2) return std::nullopt;
  std::vector<int> labels;
  for (const auto& [a, b] : ratings) {
    labels.push_back(a);
    labels.push_back(b);
  }
  std::sort(labels.begin(), labels.end());
  labels.erase(std::unique(labels.begin(), labels.end()), labels.end());
  const size_t k = labels.size();
  auto index = [&](int v) {
    return static_cast<size_t>(std::lower_bound(labels.begin(), labels.end(), v) - labels.begin());
  };
  std::vector<double> observed(k * k, 0.0), row(k, 0.0), col(k, 0.0);
  for (const auto& [a, b] : ratings) {
    const size_t i = index(a), j = index(b);
    observed[i * k + j] += 1;
    row[i] += 1;
    col[j] += 1;
  }
  const double n = static_cast<double>(ratings.size());
  double disagree = 0, expected = 0;
  for (size_t i = 0; i < k; ++i)
    for (size_t j = 0; j < k; ++j) {
      const double w = std::abs(static_cast<double>(i) - static_cast<double>(j));
      disagree += w * observed[i * k + j];
      expected += w * row[i] * col[j] / n;
    }
  if (!(expected > 0)) return std::nullopt;
  return 1.0 - disagree / expected;
}

namespace {

std::string fixed(const char* format, double v) {
  char buf[48];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}
std::string size_text(const std::optional<double>& v) { return v ? fixed("%.1f", *v) : ""; }
// The solid part's size where it means something: part-solid nodules only.
std::string solid_text(const NoduleMeasures& m) {
  return m.type == NoduleType::kPartSolid ? size_text(m.solid_mm) : "";
}
std::string type_text(const std::optional<NoduleType>& t) {
  return t ? std::string(nodule_type_name(*t)) : "";
}
std::string category_text(const std::optional<LungRadsCategory>& c) {
  return c ? std::string(lung_rads_label(*c)) : "";
}

double median_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace

std::optional<MeasurementReport> compare_measurements(const std::vector<MeasuredPair>& pairs,
                                                      const std::string& reference) {
  std::vector<double> diff;
  for (const MeasuredPair& p : pairs)
    if (p.truth.mean_mm && p.finding.mean_mm) diff.push_back(*p.finding.mean_mm - *p.truth.mean_mm);
  if (diff.empty()) return std::nullopt;

  MeasurementReport r;
  r.csv =
      "seriesuid,coordX,coordY,coordZ,truth_mean_mm,finding_mean_mm,truth_type,finding_type,truth_solid_mm,"
      "finding_solid_mm,truth_lung_rads,finding_lung_rads\n";
  for (const MeasuredPair& p : pairs) {
    r.csv += csv_quote(p.seriesuid) + "," + fixed("%.3f", p.x) + "," + fixed("%.3f", p.y) + "," +
             fixed("%.3f", p.z) + "," + size_text(p.truth.mean_mm) + "," + size_text(p.finding.mean_mm) +
             "," + type_text(p.truth.type) + "," + type_text(p.finding.type) + "," + solid_text(p.truth) +
             "," + solid_text(p.finding) + "," + category_text(p.truth.lung_rads) + "," +
             category_text(p.finding.lung_rads) + "\n";
  }

  // Mean diameter: Bland-Altman bias and 95 % limits, absolute errors.
  const double n = static_cast<double>(diff.size());
  double bias = 0;
  for (double d : diff) bias += d;
  bias /= n;
  double ss = 0;
  for (double d : diff) ss += (d - bias) * (d - bias);
  const double sd = diff.size() > 1 ? std::sqrt(ss / (n - 1)) : 0.0;
  std::vector<double> abs_err;
  double within1 = 0, within2 = 0, mae = 0;
  for (double d : diff) {
    const double a = std::abs(d);
    abs_err.push_back(a);
    mae += a;
    // Sizes are written to 0.1 mm: a hair over the limit from rounding still counts.
    within1 += a <= 1.0 + 1e-9;
    within2 += a <= 2.0 + 1e-9;
  }
  mae /= n;
  const double median_ae = median_of(abs_err);
  ojson size = {{"pairs", diff.size()},
                {"bias_mm", bias},
                {"sd_mm", sd},
                {"limits_of_agreement_mm", {bias - 1.96 * sd, bias + 1.96 * sd}},
                {"mean_abs_error_mm", mae},
                {"median_abs_error_mm", median_ae},
                {"within_1mm", within1 / n},
                {"within_2mm", within2 / n}};

  // Type: confusion, rows = truth.
  static constexpr std::array<NoduleType, 3> kTypes = {NoduleType::kSolid, NoduleType::kPartSolid,
                                                       NoduleType::kGroundGlass};
  std::map<std::pair<int, int>, int> type_counts;
  int type_pairs = 0, type_agree = 0;
  for (const MeasuredPair& p : pairs) {
    if (!p.truth.type || !p.finding.type) continue;
    ++type_pairs;
    type_agree += *p.truth.type == *p.finding.type;
    ++type_counts[{static_cast<int>(*p.truth.type), static_cast<int>(*p.finding.type)}];
  }
  ojson type_confusion = ojson::object();
  for (NoduleType t : kTypes) {
    ojson row = ojson::object();
    for (NoduleType f : kTypes) row[std::string(nodule_type_name(f))] = type_counts[{int(t), int(f)}];
    type_confusion[std::string(nodule_type_name(t))] = std::move(row);
  }
  ojson type = {
      {"pairs", type_pairs},
      {"agreement", type_pairs ? ojson(static_cast<double>(type_agree) / type_pairs) : ojson(nullptr)},
      {"confusion", std::move(type_confusion)}};

  // Lung-RADS: confusion over the categories either side used, rows = truth.
  std::vector<std::pair<int, int>> ranks;
  std::map<std::pair<int, int>, int> lr_counts;
  std::map<int, LungRadsCategory> used;
  int higher = 0, lower = 0;
  for (const MeasuredPair& p : pairs) {
    if (!p.truth.lung_rads || !p.finding.lung_rads) continue;
    const int a = lung_rads_rank(*p.truth.lung_rads), b = lung_rads_rank(*p.finding.lung_rads);
    ranks.push_back({a, b});
    ++lr_counts[{a, b}];
    used[a] = *p.truth.lung_rads;
    used[b] = *p.finding.lung_rads;
    higher += b > a;
    lower += b < a;
  }
  const double lr_n = static_cast<double>(ranks.size());
  int lr_agree = static_cast<int>(ranks.size()) - higher - lower;
  ojson lr_confusion = ojson::object();
  for (const auto& [a, ca] : used) {
    ojson row = ojson::object();
    for (const auto& [b, cb] : used) row[std::string(lung_rads_label(cb))] = lr_counts[{a, b}];
    lr_confusion[std::string(lung_rads_label(ca))] = std::move(row);
  }
  const std::optional<double> kappa = linear_weighted_kappa(ranks);
  auto share = [&](int count) { return ranks.empty() ? ojson(nullptr) : ojson(count / lr_n); };
  ojson lung_rads = {{"pairs", ranks.size()},
                     {"agreement", share(lr_agree)},
                     {"finding_higher", share(higher)},
                     {"finding_lower", share(lower)},
                     {"weighted_kappa", kappa ? ojson(*kappa) : ojson(nullptr)},
                     {"confusion", std::move(lr_confusion)}};

  r.json = {{"reference", reference},
            {"pairs", pairs.size()},
            {"mean_diameter", std::move(size)},
            {"type", std::move(type)},
            {"lung_rads", std::move(lung_rads)}};

  char buf[512];
  std::snprintf(
      buf, sizeof buf,
      "measurement (%zu nodules with a finding, against the truth's %s): mean diameter bias %+.2f mm "
      "(95 %% limits %.2f to %.2f), median |error| %.2f mm, %.1f %% within 1 mm",
      diff.size(), reference.c_str(), bias, bias - 1.96 * sd, bias + 1.96 * sd, median_ae,
      100.0 * within1 / n);
  r.summary = buf;
  if (type_pairs > 0) {
    std::snprintf(buf, sizeof buf, "; type agrees for %.1f %%", 100.0 * type_agree / type_pairs);
    r.summary += buf;
  }
  if (!ranks.empty()) {
    std::snprintf(buf, sizeof buf, "; Lung-RADS agrees for %.1f %% (finding higher %.1f %%, lower %.1f %%",
                  100.0 * lr_agree / lr_n, 100.0 * higher / lr_n, 100.0 * lower / lr_n);
    r.summary += buf;
    if (kappa) {
      std::snprintf(buf, sizeof buf, "; linear weighted kappa %.3f", *kappa);
      r.summary += buf;
    }
    r.summary += ")";
  }
  return r;
}

}  // namespace hilum
