// Test helper: writes small real DICOM series with DCMTK (any transfer syntax
// DCMTK can encode), enhanced multi-frame CT and DICOMDIRs, so the loader is
// tested on real files with known content. Header-only; used by the vision/io
// and the CLI tests. Its own namespace (hilum::dicomtest) keeps its inline
// definitions apart from other test helpers linked into the same binary.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "dcmtk/config/osconfig.h"  // must come first
#include "dcmtk/dcmdata/dcddirif.h"
#include "dcmtk/dcmdata/dcdeftag.h"
#include "dcmtk/dcmdata/dcfilefo.h"
#include "dcmtk/dcmdata/dcrleerg.h"
#include "dcmtk/dcmdata/dcuid.h"
#include "dcmtk/dcmdata/dcvrss.h"
#include "dcmtk/dcmdata/dcvrus.h"
#include "dcmtk/dcmjpeg/djencode.h"
#include "dcmtk/dcmjpeg/djrplol.h"
#include "dcmtk/dcmjpeg/djrploss.h"
#include "dcmtk/dcmjpls/djencode.h"
#include "dcmtk/dcmjpls/djrparam.h"
#include "dcmtk/oflog/oflog.h"

namespace hilum::dicomtest {

namespace fs = std::filesystem;

// Patient identifiers written into every synthetic file; tests assert they never
// show up in messages, warnings or meta.json.
inline constexpr const char* kSecretName = "SECRETARY^HILDA";
inline constexpr const char* kSecretId = "PID-77X-SECRET";
inline constexpr const char* kSecretBirth = "19510203";

inline std::string new_uid() {
  char buf[100];
  dcmGenerateUniqueIdentifier(buf, SITE_INSTANCE_UID_ROOT);
  return buf;
}

inline void ensure_encoders() {
  struct Encoders {
    Encoders() {
      OFLog::configure(OFLogger::OFF_LOG_LEVEL);
      DJEncoderRegistration::registerCodecs();
      DJLSEncoderRegistration::registerCodecs();
      DcmRLEEncoderRegistration::registerCodecs();
    }
  };
  static Encoders encoders;
  (void)encoders;
}

// One single-frame image.
struct SliceSpec {
  std::string series_uid;
  std::string study_uid;
  std::string sop_uid;  // empty: a new one
  std::string modality = "CT";
  std::string sop_class = UID_CTImageStorage;
  std::string image_type = "ORIGINAL\\PRIMARY\\AXIAL";
  std::string description = "synthetic chest";
  int rows = 8, columns = 6;
  std::array<double, 3> position{0, 0, 0};
  std::array<double, 6> orientation{1, 0, 0, 0, 1, 0};
  std::optional<std::array<double, 2>> pixel_spacing = std::array<double, 2>{0.75, 0.5};  // row, column
  std::optional<double> slope = 1.0, intercept = -1024.0;
  int bits_allocated = 16, bits_stored = 16, high_bit = 15, pixel_representation = 1;
  std::string photometric = "MONOCHROME2";
  std::vector<uint16_t> pixels;  // container values, rows*columns
  std::optional<int> padding, padding_limit;
  int instance_number = 1;
  std::optional<int> acquisition_number;
  std::optional<double> gantry_tilt;
  double slice_thickness = 1.0;
  bool pixel_data = true;
  E_TransferSyntax xfer = EXS_LittleEndianExplicit;
  int near_lossless = 0;  // JPEG-LS lossy: NEAR
};

inline std::string ds_list(const double* v, int n) {
  std::string s;
  char buf[64];
  for (int i = 0; i < n; ++i) {
    std::snprintf(buf, sizeof buf, "%.10g", v[i]);
    s += (i ? "\\" : "") + std::string(buf);
  }
  return s;
}

inline void put_stored_value(DcmItem* ds, const DcmTagKey& key, int value, int pixel_representation) {
  if (pixel_representation == 1) {
    auto* e = new DcmSignedShort(DcmTag(key, EVR_SS));
    e->putSint16(static_cast<Sint16>(value));
    ds->insert(e, true);
  } else {
    auto* e = new DcmUnsignedShort(DcmTag(key, EVR_US));
    e->putUint16(static_cast<Uint16>(value));
    ds->insert(e, true);
  }
}

inline void put_common(DcmDataset* ds, const std::string& study_uid, const std::string& series_uid,
                       const std::string& modality, const std::string& description) {
  ds->putAndInsertString(DCM_PatientName, kSecretName);
  ds->putAndInsertString(DCM_PatientID, kSecretId);
  ds->putAndInsertString(DCM_PatientBirthDate, kSecretBirth);
  ds->putAndInsertString(DCM_PatientSex, "F");
  ds->putAndInsertString(DCM_PatientAge, "071Y");
  ds->putAndInsertString(DCM_StudyInstanceUID, study_uid.c_str());
  ds->putAndInsertString(DCM_StudyDate, "20240102");
  ds->putAndInsertString(DCM_StudyTime, "101500");
  ds->putAndInsertString(DCM_StudyID, "1");
  ds->putAndInsertString(DCM_AccessionNumber, "ACC1");
  ds->putAndInsertString(DCM_ReferringPhysicianName, "");
  ds->putAndInsertString(DCM_SeriesInstanceUID, series_uid.c_str());
  ds->putAndInsertString(DCM_SeriesNumber, "1");
  ds->putAndInsertString(DCM_SeriesDescription, description.c_str());
  ds->putAndInsertString(DCM_Modality, modality.c_str());
  ds->putAndInsertString(DCM_FrameOfReferenceUID, (study_uid + ".9").c_str());
  ds->putAndInsertString(DCM_Manufacturer, "Hilum tests");
}

// Writes one file; returns "" or the DCMTK error.
inline std::string write_slice(const fs::path& path, const SliceSpec& s) {
  ensure_encoders();
  DcmFileFormat ff;
  DcmDataset* ds = ff.getDataset();
  const std::string study = s.study_uid.empty() ? s.series_uid + ".1" : s.study_uid;
  put_common(ds, study, s.series_uid, s.modality, s.description);
  ds->putAndInsertString(DCM_SOPClassUID, s.sop_class.c_str());
  ds->putAndInsertString(DCM_SOPInstanceUID, (s.sop_uid.empty() ? new_uid() : s.sop_uid).c_str());
  ds->putAndInsertString(DCM_ImageType, s.image_type.c_str());
  ds->putAndInsertString(DCM_InstanceNumber, std::to_string(s.instance_number).c_str());
  if (s.acquisition_number)
    ds->putAndInsertString(DCM_AcquisitionNumber, std::to_string(*s.acquisition_number).c_str());
  ds->putAndInsertString(DCM_ImagePositionPatient, ds_list(s.position.data(), 3).c_str());
  ds->putAndInsertString(DCM_ImageOrientationPatient, ds_list(s.orientation.data(), 6).c_str());
  if (s.pixel_spacing) ds->putAndInsertString(DCM_PixelSpacing, ds_list(s.pixel_spacing->data(), 2).c_str());
  ds->putAndInsertString(DCM_SliceThickness, ds_list(&s.slice_thickness, 1).c_str());
  if (s.gantry_tilt) ds->putAndInsertString(DCM_GantryDetectorTilt, ds_list(&*s.gantry_tilt, 1).c_str());
  if (s.slope) ds->putAndInsertString(DCM_RescaleSlope, ds_list(&*s.slope, 1).c_str());
  if (s.intercept) ds->putAndInsertString(DCM_RescaleIntercept, ds_list(&*s.intercept, 1).c_str());
  if (s.slope || s.intercept) ds->putAndInsertString(DCM_RescaleType, s.modality == "CT" ? "HU" : "US");
  ds->putAndInsertUint16(DCM_SamplesPerPixel, 1);
  ds->putAndInsertString(DCM_PhotometricInterpretation, s.photometric.c_str());
  ds->putAndInsertUint16(DCM_Rows, static_cast<Uint16>(s.rows));
  ds->putAndInsertUint16(DCM_Columns, static_cast<Uint16>(s.columns));
  ds->putAndInsertUint16(DCM_BitsAllocated, static_cast<Uint16>(s.bits_allocated));
  ds->putAndInsertUint16(DCM_BitsStored, static_cast<Uint16>(s.bits_stored));
  ds->putAndInsertUint16(DCM_HighBit, static_cast<Uint16>(s.high_bit));
  ds->putAndInsertUint16(DCM_PixelRepresentation, static_cast<Uint16>(s.pixel_representation));
  if (s.padding) put_stored_value(ds, DCM_PixelPaddingValue, *s.padding, s.pixel_representation);
  if (s.padding_limit)
    put_stored_value(ds, DCM_PixelPaddingRangeLimit, *s.padding_limit, s.pixel_representation);
  if (s.pixel_data) {
    if (s.bits_allocated == 8) {
      std::vector<Uint8> bytes(s.pixels.begin(), s.pixels.end());
      ds->putAndInsertUint8Array(DCM_PixelData, bytes.data(), bytes.size());
    } else {
      ds->putAndInsertUint16Array(DCM_PixelData, s.pixels.data(), s.pixels.size());
    }
  }
  if (DcmXfer(s.xfer).isEncapsulated()) {
    OFCondition c;
    if (s.xfer == EXS_JPEGLSLossy) {
      DJLSRepresentationParameter rp(static_cast<Uint16>(s.near_lossless), OFFalse);
      c = ds->chooseRepresentation(s.xfer, &rp);
    } else if (s.xfer == EXS_JPEGProcess1 || s.xfer == EXS_JPEGProcess2_4) {
      DJ_RPLossy rp(95);
      c = ds->chooseRepresentation(s.xfer, &rp);
    } else {
      c = ds->chooseRepresentation(s.xfer, nullptr);
    }
    if (c.bad() || !ds->canWriteXfer(s.xfer)) return std::string("cannot encode: ") + c.text();
  }
  OFCondition c = ff.saveFile(path.c_str(), s.xfer);
  return c.good() ? "" : std::string(c.text());
}

// Deterministic pixel content: value depends on (row, column, slice) so that
// every slice is different and the position of each can be checked.
inline std::vector<uint16_t> pattern(int rows, int columns, int z, int base = 1000) {
  std::vector<uint16_t> p(static_cast<size_t>(rows) * columns);
  for (int r = 0; r < rows; ++r) {
    for (int c = 0; c < columns; ++c)
      p[static_cast<size_t>(r) * columns + c] = static_cast<uint16_t>(base + 100 * z + 10 * r + c);
  }
  return p;
}

// Expected value of pattern() after rescale (slope 1, intercept -1024).
inline float pattern_hu(int r, int c, int z, int base = 1000) {
  return static_cast<float>(base + 100 * z + 10 * r + c - 1024);
}

// A plain axial CT series: slice z at position (0, 0, z0 + z * step); pixels = pattern(z).
struct SeriesSpec {
  std::string series_uid = new_uid();
  int slices = 6;
  double z0 = -20, step = 2.5;
  int rows = 8, columns = 6;
  E_TransferSyntax xfer = EXS_LittleEndianExplicit;
  std::string modality = "CT";
};

inline std::vector<SliceSpec> axial_series(const SeriesSpec& spec) {
  std::vector<SliceSpec> out;
  for (int z = 0; z < spec.slices; ++z) {
    SliceSpec s;
    s.series_uid = spec.series_uid;
    s.modality = spec.modality;
    if (spec.modality == "MR") s.sop_class = UID_MRImageStorage;
    s.rows = spec.rows;
    s.columns = spec.columns;
    s.position = {-10.0, -20.0, spec.z0 + z * spec.step};
    s.pixels = pattern(spec.rows, spec.columns, z);
    s.instance_number = z + 1;
    s.xfer = spec.xfer;
    out.push_back(std::move(s));
  }
  return out;
}

// Writes the slices as dir/<prefix>NNNN.dcm; returns "" or the first error.
inline std::string write_series(const fs::path& dir, const std::vector<SliceSpec>& slices,
                                const std::string& prefix = "IM") {
  fs::create_directories(dir);
  for (size_t i = 0; i < slices.size(); ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "%s%04zu", prefix.c_str(), i);
    std::string err = write_slice(dir / name, slices[i]);
    if (!err.empty()) return err;
  }
  return "";
}

// One enhanced CT frame.
struct EnhancedFrame {
  std::array<double, 3> position{0, 0, 0};
  std::optional<std::array<double, 2>> rescale;  // per-frame slope, intercept (else the shared one)
  std::vector<uint16_t> pixels;
};

// Writes an Enhanced CT Image Storage object (signed 16-bit) with shared
// orientation/spacing/rescale and per-frame positions.
inline std::string write_enhanced_ct(const fs::path& path, const std::string& series_uid, int rows,
                                     int columns, const std::vector<EnhancedFrame>& frames, double slope,
                                     double intercept,
                                     std::array<double, 6> orientation = {1, 0, 0, 0, 1, 0}) {
  ensure_encoders();
  DcmFileFormat ff;
  DcmDataset* ds = ff.getDataset();
  put_common(ds, series_uid + ".1", series_uid, "CT", "enhanced synthetic");
  ds->putAndInsertString(DCM_SOPClassUID, UID_EnhancedCTImageStorage);
  ds->putAndInsertString(DCM_SOPInstanceUID, new_uid().c_str());
  ds->putAndInsertString(DCM_ImageType, "ORIGINAL\\PRIMARY\\AXIAL\\NONE");
  ds->putAndInsertString(DCM_InstanceNumber, "1");
  ds->putAndInsertString(DCM_NumberOfFrames, std::to_string(frames.size()).c_str());
  ds->putAndInsertUint16(DCM_SamplesPerPixel, 1);
  ds->putAndInsertString(DCM_PhotometricInterpretation, "MONOCHROME2");
  ds->putAndInsertUint16(DCM_Rows, static_cast<Uint16>(rows));
  ds->putAndInsertUint16(DCM_Columns, static_cast<Uint16>(columns));
  ds->putAndInsertUint16(DCM_BitsAllocated, 16);
  ds->putAndInsertUint16(DCM_BitsStored, 16);
  ds->putAndInsertUint16(DCM_HighBit, 15);
  ds->putAndInsertUint16(DCM_PixelRepresentation, 1);
  DcmItem* shared = nullptr;
  ds->findOrCreateSequenceItem(DCM_SharedFunctionalGroupsSequence, shared, 0);
  DcmItem* item = nullptr;
  shared->findOrCreateSequenceItem(DCM_PixelMeasuresSequence, item, 0);
  item->putAndInsertString(DCM_PixelSpacing, "0.75\\0.5");
  item->putAndInsertString(DCM_SliceThickness, "1");
  shared->findOrCreateSequenceItem(DCM_PlaneOrientationSequence, item, 0);
  item->putAndInsertString(DCM_ImageOrientationPatient, ds_list(orientation.data(), 6).c_str());
  shared->findOrCreateSequenceItem(DCM_PixelValueTransformationSequence, item, 0);
  item->putAndInsertString(DCM_RescaleSlope, ds_list(&slope, 1).c_str());
  item->putAndInsertString(DCM_RescaleIntercept, ds_list(&intercept, 1).c_str());
  item->putAndInsertString(DCM_RescaleType, "HU");
  shared->findOrCreateSequenceItem(DCM_CTImageFrameTypeSequence, item, 0);
  item->putAndInsertString(DCM_FrameType, "ORIGINAL\\PRIMARY\\AXIAL\\NONE");
  std::vector<uint16_t> all;
  for (size_t f = 0; f < frames.size(); ++f) {
    DcmItem* fg = nullptr;
    ds->findOrCreateSequenceItem(DCM_PerFrameFunctionalGroupsSequence, fg, static_cast<long>(f));
    fg->findOrCreateSequenceItem(DCM_PlanePositionSequence, item, 0);
    item->putAndInsertString(DCM_ImagePositionPatient, ds_list(frames[f].position.data(), 3).c_str());
    fg->findOrCreateSequenceItem(DCM_FrameContentSequence, item, 0);
    item->putAndInsertString(DCM_StackID, "1");
    item->putAndInsertString(DCM_InStackPositionNumber, std::to_string(f + 1).c_str());
    if (frames[f].rescale) {
      fg->findOrCreateSequenceItem(DCM_PixelValueTransformationSequence, item, 0);
      item->putAndInsertString(DCM_RescaleSlope, ds_list(&(*frames[f].rescale)[0], 1).c_str());
      item->putAndInsertString(DCM_RescaleIntercept, ds_list(&(*frames[f].rescale)[1], 1).c_str());
      item->putAndInsertString(DCM_RescaleType, "HU");
    }
    all.insert(all.end(), frames[f].pixels.begin(), frames[f].pixels.end());
  }
  ds->putAndInsertUint16Array(DCM_PixelData, all.data(), all.size());
  OFCondition c = ff.saveFile(path.c_str(), EXS_LittleEndianExplicit);
  return c.good() ? "" : std::string(c.text());
}

// Writes dir/DICOMDIR referencing `files` (paths relative to dir, upper-case,
// at most 8 characters per component).
inline std::string write_dicomdir(const fs::path& dir, const std::vector<std::string>& files) {
  DicomDirInterface ddir;
  ddir.enableInventMode(OFTrue);
  OFCondition c =
      ddir.createNewDicomDir(DicomDirInterface::AP_GeneralPurpose, (dir / "DICOMDIR").c_str(), "HILUMTEST");
  if (c.bad()) return std::string("createNewDicomDir: ") + c.text();
  for (const auto& f : files) {
    c = ddir.addDicomFile(f.c_str(), dir.c_str());
    if (c.bad()) return "addDicomFile " + f + ": " + c.text();
  }
  c = ddir.writeDicomDir();
  return c.good() ? "" : std::string("writeDicomDir: ") + c.text();
}

// A scratch folder removed at the end of the test.
class TempDir {
 public:
  explicit TempDir(const std::string& tag) {
    static std::mt19937_64 rng(std::random_device{}());
    path_ = fs::temp_directory_path() / ("hilum-" + tag + "-" + std::to_string(rng()));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }
  fs::path operator/(const std::string& s) const { return path_ / s; }

 private:
  fs::path path_;
};

inline void write_text(const fs::path& p, const std::string& text) {
  std::ofstream(p, std::ios::binary) << text;
}

inline void truncate_copy(const fs::path& from, const fs::path& to, double keep_fraction) {
  std::ifstream in(from, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  bytes.resize(static_cast<size_t>(bytes.size() * keep_fraction));
  write_text(to, bytes);
}

}  // namespace hilum::dicomtest
