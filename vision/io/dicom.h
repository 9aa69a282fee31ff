// DICOM -> Volume. Reads a folder (recursively), a DICOMDIR, one file or a
// list of files with DCMTK, groups instances into series, and builds an HU
// volume with its geometry the way careful loaders do (sorting by position
// along the slice normal, never by InstanceNumber). See docs/dicom.md.
//
// Errors are values: bad input (no DICOM, broken files, inconsistent geometry)
// is ErrorKind::kBadInput with a one-line message naming the file and the
// problem. Messages and warnings never contain patient identifiers.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "model/progress.h"
#include "model/result.h"
#include "vision/volume.h"

namespace hilum {

// One series (one geometry stack) found in the input, without PHI.
struct SeriesSummary {
  std::string series_uid;
  std::string modality;
  std::string description;     // SeriesDescription (not PHI)
  std::string image_type;      // e.g. "ORIGINAL\PRIMARY\AXIAL"
  int stack_index = 0;         // >0 when one SeriesInstanceUID was split by orientation/acquisition
  int num_slices = 0;          // images (or frames of a multi-frame object)
  int rows = 0, columns = 0;
  Vec3 spacing{0, 0, 0};       // x, y, z mm (z from position deltas)
  std::array<double, 6> orientation{};  // ImageOrientationPatient
  std::string transfer_syntax;  // name of the (first) transfer syntax
  bool is_localizer = false;   // dropped from volume selection
  std::vector<std::string> warnings;
};

struct LoadOptions {
  std::optional<std::string> series_uid;  // choose this series; else the CT series with most slices
  bool resample_tilt = true;              // resample gantry-tilted stacks; false: refuse them
  int threads = 0;                        // decode threads; 0 = hardware concurrency
};

struct LoadedStudy {
  Volume volume;
  StudyInfo info;                     // PHI lives here and only here
  std::vector<std::string> warnings;  // geometry and decoding warnings, no PHI
  std::string selection_note;         // why this series was chosen when several were present
};

// Lists the series in `inputs` (files, folders, DICOMDIRs) without decoding pixels.
Result<std::vector<SeriesSummary>> scan_dicom(const std::vector<std::filesystem::path>& inputs,
                                              Progress& progress);

// Loads one series as a Volume in HU.
Result<LoadedStudy> load_dicom_volume(const std::vector<std::filesystem::path>& inputs,
                                      const LoadOptions& options, Progress& progress);

}  // namespace hilum
