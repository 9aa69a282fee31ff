// DICOM -> Volume. Reads a folder (recursively), a DICOMDIR, one file or a
// list of files with DCMTK (OpenJPEG for JPEG 2000), groups instances into
// series and geometry stacks, and builds an HU volume the way careful loaders
// do: slices sorted by position along the slice normal (never InstanceNumber),
// spacing from position deltas, per-slice rescale, padding, BitsStored masking.
// The rules (duplicates, gaps, tilt, localizers, selection) are in docs/dicom.md.
//
// Errors are values: bad input (no DICOM, broken files, inconsistent geometry)
// is ErrorKind::kBadInput, a valid but unhandled encoding (RGB, 32-bit pixels)
// is kUnsupported; the one-line message names the file or series and the
// problem. Messages and warnings never contain patient identifiers.
//
// Thread safety: the functions are reentrant; each call decodes with its own
// DCMTK objects on up to LoadOptions::threads worker threads. Progress::report
// is only called from the calling thread.
#pragma once

#include <array>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "model/progress.h"
#include "model/result.h"
#include "vision/volume.h"

namespace hilum {

// One geometry stack found in the input, without PHI. A SeriesInstanceUID
// normally gives one stack; it is split when its images differ in
// orientation, matrix size, enhanced-CT StackID, or (only to resolve
// duplicate positions) AcquisitionNumber.
struct SeriesSummary {
  std::string series_uid;
  std::string selector;  // what `--series` takes for this stack: "UID" or "UID#k"
  std::string modality;
  std::string description;  // SeriesDescription (not PHI)
  std::string image_type;   // e.g. "ORIGINAL\PRIMARY\AXIAL"
  int stack_index = 0;      // k of "UID#k"; 0 = the series' main stack
  int num_slices = 0;       // images (or frames of a multi-frame object)
  int num_files = 0;
  int rows = 0, columns = 0;
  Vec3 spacing{0, 0, 0};                // x, y, z mm (z from position deltas; 0 when unknown)
  std::array<double, 6> orientation{};  // ImageOrientationPatient (row, column cosines)
  std::string transfer_syntax;          // name of the (first) transfer syntax
  bool is_localizer = false;            // LOCALIZER image type or scout: never chosen automatically
  bool is_default = false;              // what load_dicom_volume picks without LoadOptions::series_uid
  std::string problem;                  // non-empty: why this stack cannot become a volume
  std::vector<std::string> warnings;
};

// What scan_dicom found.
struct DicomInventory {
  std::vector<SeriesSummary> series;  // sorted by SeriesInstanceUID, then stack index
  int files = 0;                      // files looked at
  int dicom_images = 0;               // DICOM files with pixel data
  std::vector<std::string> warnings;  // skipped files and other input-level notes, no PHI
};

// Receives the volume slice by slice instead of holding it in memory (the CLI
// writes the NPY file this way: no volume-sized buffer, no copy). begin() is
// called once, on the calling thread, with the final geometry and shape
// [slices, rows, columns] before any slice; write() is then called once per
// slice z, possibly concurrently from decode threads and in any order. An
// error from either stops the load with that error. With a writer set,
// LoadedStudy::volume has its geometry but an empty `hu`.
class VolumeWriter {
 public:
  virtual ~VolumeWriter() = default;
  virtual Status begin(const Volume& geometry, const Shape& shape) = 0;
  virtual Status write(int64_t z, const float* slice) = 0;  // rows*columns floats; thread-safe
};

struct LoadOptions {
  // "UID" (the main stack of that series) or "UID#k"; else the CT stack with most slices.
  std::optional<std::string> series_uid;
  bool resample_tilt = true;       // gantry tilt: resample onto an orthogonal grid; false: refuse
  bool resample_spacing = true;    // non-uniform spacing / small gaps: resample; false: refuse
  int max_gap_slices = 2;          // a gap of more missing slices is refused, never interpolated
  int threads = 0;                 // decode threads; 0 = hardware concurrency
  VolumeWriter* writer = nullptr;  // optional: stream slices out instead of keeping them
};

struct LoadedStudy {
  Volume volume;                // `hu` is empty when LoadOptions::writer took the slices
  StudyInfo info;               // PHI lives here and only here
  std::string series_selector;  // the stack that was loaded ("UID" or "UID#k")
  std::string transfer_syntax;
  std::vector<std::string> warnings;  // geometry and decoding warnings, no PHI
  std::string selection_note;         // why this series was chosen when several were present
};

// Lists the series in `inputs` (files, folders, DICOMDIRs) without decoding
// pixels. Fails (kBadInput) when an input is missing, when an explicitly named
// file is not readable DICOM, or when no DICOM file is found at all.
Result<DicomInventory> scan_dicom(const std::vector<std::filesystem::path>& inputs, Progress& progress,
                                  int threads = 0);

// Loads one stack as a Volume (HU for CT; modality values otherwise).
Result<LoadedStudy> load_dicom_volume(const std::vector<std::filesystem::path>& inputs,
                                      const LoadOptions& options, Progress& progress);

}  // namespace hilum
