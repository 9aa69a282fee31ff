// The findings as a DICOM Structured Report: an Enhanced SR following TID 1500
// (Imaging Measurement Report), written with DCMTK's dcmsr/cmr templates.
// Imaging builds only (DCMTK).
//
//   TID 1500 Imaging Measurement Report
//     language (English), observation context (device observer: hilum + version),
//     procedure reported (CT of chest)
//     TID 1600 image library: every slice of the analysed series (SOP Class/Instance UIDs)
//     imaging measurements: one TID 1501 measurement group per nodule:
//       tracking identifier "Nodule <id>" and a tracking UID, finding (Nodule),
//       finding site (lobe, or lung with laterality),
//       TID 300 measurements: long axis, short axis, diameter (mean), volume, nodule
//         probability and malignancy probability, each referencing the axial
//         slice it was measured on, with TID 4019 algorithm identification;
//       qualitative evaluations: nodule type, Lung-RADS category
//     qualitative evaluations: study Lung-RADS category, recommendation, impression (AI draft)
//
// Codes: SNOMED CT (SCT) and DCM where they exist; a private scheme 99HILUM
// (declared in the Coding Scheme Identification Sequence) for nodule type,
// Lung-RADS category and the two probabilities. Patient and study attributes
// come from StudyInfo (the SR is an output the user asked for). UIDs and dates
// are deterministic: UIDs are 2.25 hashes of the series and the findings,
// dates are the study's, so the same findings give the same bytes.
#pragma once

#include <filesystem>
#include <string>

#include "fusion/findings.h"
#include "model/result.h"
#include "vision/volume.h"

namespace hilum {

struct SrOptions {
  std::string impression;        // narrative text ("" leaves it out)
  std::string impression_note;   // how it was made (AI draft / template)
  std::string software_version;  // "hilum 0.1.0"
};

// Writes `path` atomically. kBadInput when the study has no series UID or a
// finding's slice has no SOP Instance UID; kInternal when DCMTK refuses the tree.
Status write_report_sr(const std::filesystem::path& path, const FindingsDocument& doc, const StudyInfo& study,
                       const SrOptions& options);

// "2.25.<decimal>" from a 128-bit hash of `key` (RFC 9562 version-8 layout).
std::string hashed_uid(const std::string& key);

}  // namespace hilum
