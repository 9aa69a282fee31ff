// Subgroups of the true nodules for `hilum eval froc|batch --by`: each group's
// detection is read against every false positive of the run (the other groups'
// nodules are neither hits nor false positives), so the groups' sensitivities,
// weighted by their nodules, give back the whole run's. docs/evaluation.md,
// "Subgroups".
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "app/csv.h"
#include "app/eval_froc.h"
#include "model/result.h"

namespace hilum {

// The rows of a CSV table split by one spec: "COLUMN" (a group per value, in
// sorted order; an empty cell is the group "(empty)") or "COLUMN:E1,...,Ek"
// (numeric bins < E1, [E1, E2), ..., >= Ek, every bin listed even when empty).
struct Grouping {
  std::string name;                 // the spec as given
  std::vector<std::string> labels;  // the groups
  std::vector<size_t> group_of_row;
};

// Errors name the spec (no column, a bin edge that is not a number, edges that
// do not increase) or the file, line and column (a missing column, a cell of a
// binned column that is not a number, more than kMaxGroups distinct values).
inline constexpr size_t kMaxGroups = 50;
Result<Grouping> group_rows(const std::string& spec, const CsvTable& table);

// `in` with only group k's nodules (in.nodules[i] belongs to row i of the
// grouping); the other groups' nodules join the excluded findings.
FrocInput group_froc_input(const FrocInput& in, const Grouping& g, size_t k);

// One group's detection, as metrics.json's "by" item (group, nodules on the
// listed scans, nodules_detected, sensitivities and cpm; null without nodules),
// its by_group.csv cells (group_csv_header's columns) and its summary line.
struct GroupDetection {
  nlohmann::ordered_json json;
  std::string csv;
  std::string summary;
};
Result<GroupDetection> group_detection(const FrocInput& in, const Grouping& g, size_t k, int max_marks_per_scan);
std::string group_csv_header();  // by,group,nodules,nodules_detected,sensitivity_at_0.125,...,cpm

}  // namespace hilum
