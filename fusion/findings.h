// Lung-nodule findings: the Finding type, findings.json (see
// docs/findings-schema.md), the LUNA16 candidates.csv and 3D non-maximum
// suppression.
//
// Coordinates are world LPS millimetres (DICOM patient space), the same frame
// as LUNA16's coordX/Y/Z. Every number of a finding names the stage that
// produced it in `evidence` ("sizing", "fusion", "lung-rads", ...), so a report
// can say where it came from.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "fusion/lung_rads.h"
#include "model/result.h"
#include "vision/nodule.h"

namespace hilum {

// findings.json schema version this code writes; readers accept <= this.
inline constexpr int kFindingsSchemaVersion = 1;

enum class LungSide { kUnknown, kRight, kLeft };
std::string_view lung_side_name(LungSide s);  // "right", "left", "unknown"

struct FindingLocation {
  LungSide side = LungSide::kUnknown;
  std::string lobe;                      // "RUL", "RML", "RLL", "LUL", "LLL"; empty when not estimated
  int slice_index = -1;                  // axial slice (0-based, volume order) through the centre
  std::array<double, 3> voxel{0, 0, 0};  // continuous voxel index (x, y, z) of the centre
  bool juxtapleural = false;
};

struct Finding {
  int id = 0;                                // 1-based, in order of decreasing probability
  std::array<double, 3> center_mm{0, 0, 0};  // world LPS
  double long_axis_mm = 0;                   // axial slice of maximal area (Lung-RADS / Fleischner)
  double short_axis_mm = 0;                  // perpendicular to the long axis, same slice
  double mean_diameter_mm = 0;               // (long + short) / 2, rounded to 0.1 mm
  double volume_mm3 = 0;
  NoduleType type = NoduleType::kSolid;
  double solid_component_mm = 0;  // part-solid: mean diameter of the solid part
  double probability = 0;         // nodule probability (fused)
  double malignancy = 0;          // malignancy probability (fused)
  LungRadsAssessment lung_rads;
  FindingLocation location;
  std::map<std::string, std::string> evidence;  // field -> stage that produced it
};

// The rule that chose which candidates became findings (app/findings_builder.h
// FindingsOptions), written with them so a reader or an evaluation knows the
// operating point of the list.
struct ReportingRule {
  double min_probability = 0.5;   // a candidate's detection probability at or above this
  double min_long_axis_mm = 3.0;  // and its measured long axis at or above this
  int max_findings = 25;          // at most this many per study, by decreasing probability
  double nms_distance_mm = 5.0;   // and at least this far apart
};

struct FindingsDocument {
  int schema_version = kFindingsSchemaVersion;
  std::string series_uid;
  std::string generator;            // "hilum 0.1.0"
  bool clinical_text_used = false;  // false: the text branch saw an empty note
  std::string model_bundle;         // manifest name + version, or empty
  std::string device;               // the device the study ran on ("cpu", "cuda"), or empty
  std::string lung_rads_study;      // most suspicious category over findings ("1" when none)
  std::vector<std::string> notes;   // warnings for the reader (no PHI)
  std::optional<ReportingRule> reporting;  // absent in files written before it existed
  std::vector<Finding> findings;
};

// JSON text of the document (2-space indentation, stable key order).
std::string findings_to_json(const FindingsDocument& doc);
// Parses findings.json text; `name` (the file) prefixes error messages. Unknown
// keys are ignored; missing or mistyped required keys and a schema_version
// newer than kFindingsSchemaVersion are kBadInput naming the key.
Result<FindingsDocument> findings_from_json(std::string_view text, const std::string& name);

Status write_findings_json(const std::filesystem::path& path, const FindingsDocument& doc);
Result<FindingsDocument> read_findings_json(const std::filesystem::path& path);

// One row of a LUNA16 submission.
struct ScoredCandidate {
  std::array<double, 3> center_mm{0, 0, 0};
  double probability = 0;
  double radius_mm = 0;  // estimated size (for NMS); not written to the CSV
};

// candidates.csv: header "seriesuid,coordX,coordY,coordZ,probability", one row
// per candidate, written atomically. The series UID must not contain a comma.
Status write_candidates_csv(const std::filesystem::path& path, const std::string& series_uid,
                            const std::vector<ScoredCandidate>& candidates);

// 3D non-maximum suppression: visits candidates by decreasing probability and
// keeps one unless a kept candidate lies closer than
// max(min_distance_mm, max(radius_a, radius_b)). Returns the indices kept, by
// decreasing probability (ties: lower index first).
std::vector<size_t> non_maximum_suppression_3d(const std::vector<ScoredCandidate>& candidates,
                                               double min_distance_mm);

// The most suspicious category among the findings ("1" when there are none).
std::string study_lung_rads(const std::vector<Finding>& findings);

}  // namespace hilum
