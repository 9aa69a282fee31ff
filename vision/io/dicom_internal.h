// Internal parts of the DICOM loader shared by dicom_*.cpp (not a public API).
//
//   dicom_dcmtk.cpp   DCMTK set-up, finding files (folders, DICOMDIR), reading headers
//   dicom_pixels.cpp  decoding pixel data (DCMTK codecs, OpenJPEG) into modality values
//   dicom_series.cpp  stacks, geometry checks, selection, resampling, the public functions
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "model/progress.h"
#include "model/result.h"
#include "vision/volume.h"

namespace hilum::dicom {

namespace fs = std::filesystem;

// Geometry and value mapping of one frame (a single-frame image has one).
struct FrameInfo {
  bool has_position = false;
  Vec3 position{};  // ImagePositionPatient
  bool has_orientation = false;
  std::array<double, 6> orientation{};  // ImageOrientationPatient
  bool has_pixel_spacing = false;
  double row_spacing = 0, column_spacing = 0;  // PixelSpacing[0] (between rows), [1] (between columns)
  bool has_rescale = false;
  double slope = 1, intercept = 0;
  bool localizer = false;             // ImageType / FrameType value 3 is LOCALIZER
  std::string stack_id;               // enhanced: FrameContentSequence StackID
  bool position_synthesized = false;  // legacy multi-frame: IPP + f * spacing along the normal
};

// What the loader needs from one file's header. PHI fields are kept in `study`.
struct InstanceHeader {
  fs::path path;
  std::string sop_class_uid, sop_instance_uid, series_uid;
  std::string modality, series_description, image_type, photometric;
  std::string transfer_syntax_uid, transfer_syntax_name;
  std::optional<long> acquisition_number;
  int rows = 0, columns = 0, bits_allocated = 0, bits_stored = 0, high_bit = 0;
  int pixel_representation = 0, samples_per_pixel = 1;
  int frames = 1;
  bool has_pixel_data = false;
  bool float_pixel_data = false;
  bool encapsulated = false;
  uint64_t pixel_data_bytes = 0;                        // length field of native PixelData
  std::optional<int32_t> padding_value, padding_limit;  // stored-value space
  double spacing_between_slices = 0, slice_thickness = 0, gantry_tilt = 0;
  bool enhanced = false;              // has per-frame functional groups
  std::vector<FrameInfo> frame_info;  // size == frames
  StudyInfo study;                    // study-level facts incl. PHI (never logged)
};

// ---- dicom_dcmtk.cpp ------------------------------------------------------

// Registers DCMTK's decoders (JPEG, JPEG-LS, RLE) and silences its logger, once
// per process; codecs are cleaned up at exit.
void ensure_dcmtk_ready();

// Kind of file found while collecting inputs.
struct InputFile {
  fs::path path;
  bool explicit_input = false;  // named on the command line (not found in a folder)
};

struct CollectedInputs {
  std::vector<InputFile> files;
  std::vector<std::string> warnings;
};

// Expands folders (recursively) and DICOMDIRs into files; errors for missing inputs.
Result<CollectedInputs> collect_inputs(const std::vector<fs::path>& inputs);

// Outcome of reading one file's header.
struct HeaderRead {
  enum class Kind { kImage, kNotDicom, kNoPixels, kDicomDir, kUnreadable } kind = Kind::kUnreadable;
  InstanceHeader header;  // valid for kImage (and kNoPixels: modality, SOP class)
  std::string problem;    // for kNotDicom / kUnreadable / kNoPixels
};
HeaderRead read_header(const fs::path& path);

// Runs fn(i) for i in [0, count) on up to `threads` threads (0 = hardware
// concurrency), reporting progress and polling cancellation from the calling
// thread. Returns false when cancelled.
bool parallel_for(size_t count, int threads, Progress& progress, std::string_view stage,
                  const std::function<void(size_t)>& fn);

// ---- dicom_pixels.cpp -----------------------------------------------------

// How stored values become output values for one instance.
struct ValueMapping {
  float padding_fill = -1024.0f;  // what padding pixels become
  bool invert = false;            // MONOCHROME1 without a modality LUT
};

// Decodes the frames `frames` of `header.path` into dest[i] (rows*columns
// floats each): stored value (masked to BitsStored, sign-extended), padding ->
// fill, per-frame rescale. Errors name the file.
Status decode_frames(const InstanceHeader& header, const std::vector<int>& frames,
                     const std::vector<float*>& dest, const ValueMapping& mapping);

// Why this instance's pixels cannot be decoded at all (RGB, float pixels, ...); empty if fine.
std::string pixel_format_problem(const InstanceHeader& header);

}  // namespace hilum::dicom
