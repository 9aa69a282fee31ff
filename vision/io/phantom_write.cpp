// write_phantom_study: the phantom as a DICOM CT series (DCMTK), truth.csv and
// clinical.txt, written under a staging folder and moved into place at the end.
#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcdict.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include "model/file_io.h"
#include "model/npy.h"
#include "vision/io/phantom.h"
#include "vision/io/phantom_parallel.h"

namespace hilum {

namespace fs = std::filesystem;

namespace {

// The files and folders a phantom study consists of (replaced as a set).
const char* const kStudyEntries[] = {"dicom", "truth.csv", "clinical.txt", "labels.npy"};

// Decimal String value: the shortest %g form that reads back exactly, within
// the 16 characters DS allows.
std::string ds(double v) {
  char buf[40];
  for (int precision = 6; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  std::string s = buf;
  if (s.size() > 16) {
    std::snprintf(buf, sizeof buf, "%.10g", v);
    s = buf;
  }
  return s;
}

class DatasetWriter {
 public:
  explicit DatasetWriter(DcmDataset* ds) : ds_(ds) {}
  void put(const DcmTagKey& tag, const std::string& value) {
    if (status_.good()) status_ = ds_->putAndInsertString(tag, value.c_str());
  }
  void put_u16(const DcmTagKey& tag, Uint16 value) {
    if (status_.good()) status_ = ds_->putAndInsertUint16(tag, value);
  }
  void put_pixels(const std::vector<Uint16>& pixels) {
    if (status_.good()) {
      status_ = ds_->putAndInsertUint16Array(DCM_PixelData, pixels.data(), static_cast<unsigned long>(pixels.size()));
    }
  }
  const OFCondition& status() const { return status_; }

 private:
  DcmDataset* ds_;
  OFCondition status_ = EC_Normal;
};

// One CT Image Storage instance for volume slice k.
Status write_slice(const Phantom& ph, int k, const fs::path& path) {
  const Volume& v = ph.volume;
  const StudyInfo& info = ph.info;
  const int nz = static_cast<int>(v.nz());
  const int instance = nz - k;  // the most superior slice is image 1
  const double z = v.origin[2] + k * v.spacing[2];
  char zbuf[32];
  std::snprintf(zbuf, sizeof zbuf, "%.3f", z);
  const std::string zs = zbuf;

  DcmFileFormat file;
  DatasetWriter w(file.getDataset());
  // SOP Common
  w.put(DCM_SOPClassUID, UID_CTImageStorage);
  w.put(DCM_SOPInstanceUID, info.sop_instance_uids[k]);
  // Patient (synthetic; no age or sex, so risk factors live in the note only)
  w.put(DCM_PatientName, info.patient.name);
  w.put(DCM_PatientID, info.patient.id);
  w.put(DCM_PatientBirthDate, "");
  w.put(DCM_PatientSex, "");
  w.put(DCM_PatientIdentityRemoved, "YES");
  w.put(DCM_DeidentificationMethod, "Synthetic phantom, no patient data");
  // General Study
  w.put(DCM_StudyInstanceUID, info.study_instance_uid);
  w.put(DCM_StudyDate, info.study_date);
  w.put(DCM_StudyTime, info.study_time);
  w.put(DCM_ReferringPhysicianName, "");
  w.put(DCM_StudyID, "1");
  w.put(DCM_AccessionNumber, info.accession_number);
  w.put(DCM_StudyDescription, info.study_description);
  // General Series
  w.put(DCM_Modality, "CT");
  w.put(DCM_SeriesInstanceUID, info.series_instance_uid);
  w.put(DCM_SeriesNumber, "2");
  w.put(DCM_SeriesDate, info.study_date);
  w.put(DCM_SeriesTime, "090500");
  w.put(DCM_SeriesDescription, info.series_description);
  w.put(DCM_BodyPartExamined, info.body_part);
  w.put(DCM_PatientPosition, "HFS");
  // Frame of Reference
  w.put(DCM_FrameOfReferenceUID, info.frame_of_reference_uid);
  w.put(DCM_PositionReferenceIndicator, "");
  // General Equipment
  w.put(DCM_Manufacturer, info.manufacturer);
  w.put(DCM_InstitutionName, info.institution_name);
  w.put(DCM_ManufacturerModelName, "Hilum phantom generator");
  w.put(DCM_SoftwareVersions, "hilum-phantom 1");
  // General Acquisition / General Image
  w.put(DCM_AcquisitionNumber, "1");
  w.put(DCM_AcquisitionDate, info.study_date);
  w.put(DCM_AcquisitionTime, "090510");
  w.put(DCM_InstanceNumber, std::to_string(instance));
  w.put(DCM_ContentDate, info.study_date);
  w.put(DCM_ContentTime, "090510");
  w.put(DCM_ImageType, "ORIGINAL\\PRIMARY\\AXIAL");
  w.put(DCM_BurnedInAnnotation, "NO");
  w.put(DCM_LossyImageCompression, "00");
  // Image Plane
  w.put(DCM_PixelSpacing, ds(v.spacing[1]) + "\\" + ds(v.spacing[0]));
  w.put(DCM_ImageOrientationPatient, "1\\0\\0\\0\\1\\0");
  w.put(DCM_ImagePositionPatient, ds(v.origin[0]) + "\\" + ds(v.origin[1]) + "\\" + zs);
  w.put(DCM_SliceThickness, ds(info.slice_thickness_mm));
  w.put(DCM_SliceLocation, zs);
  // Image Pixel
  w.put_u16(DCM_SamplesPerPixel, 1);
  w.put(DCM_PhotometricInterpretation, "MONOCHROME2");
  w.put_u16(DCM_Rows, static_cast<Uint16>(v.ny()));
  w.put_u16(DCM_Columns, static_cast<Uint16>(v.nx()));
  w.put_u16(DCM_BitsAllocated, 16);
  w.put_u16(DCM_BitsStored, 12);
  w.put_u16(DCM_HighBit, 11);
  w.put_u16(DCM_PixelRepresentation, 0);
  // CT Image
  w.put(DCM_RescaleIntercept, "-1024");
  w.put(DCM_RescaleSlope, "1");
  w.put(DCM_RescaleType, "HU");
  w.put(DCM_KVP, ds(info.kvp));
  w.put(DCM_ScanOptions, "HELICAL MODE");
  w.put(DCM_DataCollectionDiameter, "500");
  w.put(DCM_ReconstructionDiameter, ds(v.spacing[0] * v.nx()));
  w.put(DCM_GantryDetectorTilt, "0");
  w.put(DCM_TableHeight, "150");
  w.put(DCM_RotationDirection, "CW");
  w.put(DCM_ConvolutionKernel, info.convolution_kernel);
  w.put(DCM_XRayTubeCurrent, "40");
  w.put(DCM_ExposureTime, "500");
  w.put(DCM_FilterType, "BODY");
  // VOI LUT: lung and mediastinal windows
  w.put(DCM_WindowCenter, "-600\\50");
  w.put(DCM_WindowWidth, "1500\\350");
  w.put(DCM_WindowCenterWidthExplanation, "LUNG\\MEDIASTINUM");
  // Pixels: stored value = HU + 1024 (the volume already holds whole HU).
  const size_t n = static_cast<size_t>(v.nx()) * v.ny();
  const float* src = v.data() + static_cast<size_t>(k) * n;
  std::vector<Uint16> pixels(n);
  for (size_t i = 0; i < n; ++i) {
    const float stored = std::fmin(std::fmax(src[i] + 1024.f, 0.f), 4095.f);
    pixels[i] = static_cast<Uint16>(stored + 0.5f);
  }
  w.put_pixels(pixels);
  if (w.status().bad()) {
    return internal_error(path.string() + ": building the DICOM dataset failed: " + w.status().text());
  }
  const OFCondition saved =
      file.saveFile(path.c_str(), EXS_LittleEndianExplicit, EET_ExplicitLength, EGL_withoutGL);
  if (saved.bad()) return bad_input(path.string() + ": cannot write: " + saved.text());
  return Status::Ok();
}

// Removes the staging folder (and the output folder when this call created
// it and nothing else is in it) unless committed.
class StagingGuard {
 public:
  // `created` lists the folders this call created, innermost first.
  StagingGuard(fs::path staging, std::vector<fs::path> created)
      : staging_(std::move(staging)), created_(std::move(created)) {}
  ~StagingGuard() {
    if (committed_) return;
    std::error_code ec;
    fs::remove_all(staging_, ec);
    for (const fs::path& d : created_) {
      if (!fs::remove(d, ec)) break;  // only empty folders go
    }
  }
  void commit() { committed_ = true; }

 private:
  fs::path staging_;
  std::vector<fs::path> created_;
  bool committed_ = false;
};

Status move_into_place(const fs::path& staging, const fs::path& dir) {
  // Set the previous study's entries aside (into the staging folder, which is
  // removed afterwards), then move the new ones in.
  const fs::path old = staging / ".previous";
  std::error_code ec;
  fs::create_directory(old, ec);
  if (ec) return internal_error(old.string() + ": cannot create: " + ec.message());
  std::vector<std::string> set_aside, moved_in;
  for (const char* name : kStudyEntries) {
    if (!fs::exists(dir / name, ec)) continue;
    fs::rename(dir / name, old / name, ec);
    if (ec) return bad_input((dir / name).string() + ": cannot replace: " + ec.message());
    set_aside.push_back(name);
  }
  for (const char* name : kStudyEntries) {
    if (!fs::exists(staging / name, ec)) continue;
    fs::rename(staging / name, dir / name, ec);
    if (ec) {
      const Error err = internal_error((dir / name).string() + ": cannot move into place: " + ec.message());
      // Put the previous study back as it was.
      std::error_code ignore;
      for (const std::string& n : moved_in) fs::remove_all(dir / n, ignore);
      for (const std::string& n : set_aside) fs::rename(old / n, dir / n, ignore);
      return err;
    }
    moved_in.push_back(name);
  }
  return Status::Ok();
}

}  // namespace

Status check_phantom_output_dir(const fs::path& dir) {
  std::error_code ec;
  fs::path p = fs::absolute(dir, ec).lexically_normal();
  if (ec) return bad_input(dir.string() + ": not a usable path: " + ec.message());
  if (fs::exists(p, ec) && !fs::is_directory(p, ec)) return bad_input(dir.string() + ": exists and is not a folder");
  while (!p.empty() && !fs::exists(p, ec)) {
    if (p == p.parent_path()) break;
    p = p.parent_path();
  }
  if (!fs::is_directory(p, ec)) {
    return bad_input(dir.string() + ": cannot create the output folder: " + p.string() + " is not a folder");
  }
  if (::access(p.c_str(), W_OK | X_OK) != 0) {
    return bad_input(dir.string() + ": cannot create the output folder: " + p.string() + " is not writable");
  }
  return Status::Ok();
}

Status write_phantom_study(const Phantom& ph, const fs::path& dir, Progress& progress, const PhantomWriteOptions& options) {
  if (!ph.volume.hu.defined() || ph.info.sop_instance_uids.size() != static_cast<size_t>(ph.volume.nz())) {
    return internal_error("write_phantom_study: the phantom has no volume or no instance UIDs");
  }
  if (!dcmDataDict.isDictionaryLoaded()) {
    return internal_error("DCMTK data dictionary not loaded (is DCMDICTPATH set to a missing file?)");
  }
  std::error_code ec;
  std::vector<fs::path> created;
  if (fs::exists(dir, ec)) {
    if (!fs::is_directory(dir, ec)) return bad_input(dir.string() + ": exists and is not a folder");
  } else {
    // Missing parents are created too; remember them all for clean-up.
    for (fs::path d = fs::absolute(dir, ec).lexically_normal(); !d.empty() && d != d.root_path();
         d = d.parent_path()) {
      if (fs::exists(d, ec)) break;
      if (d.filename().empty()) continue;  // trailing separator
      created.push_back(d);
    }
    fs::create_directories(dir, ec);
    if (ec) {
      for (const fs::path& d : created) {
        std::error_code ignore;
        if (!fs::remove(d, ignore)) break;
      }
      return bad_input(dir.string() + ": cannot create the output folder: " + ec.message());
    }
  }
  const fs::path staging = dir / (".hilum-phantom-tmp-" + std::to_string(::getpid()));
  StagingGuard guard(staging, created);
  fs::remove_all(staging, ec);
  fs::create_directory(staging, ec);
  if (ec) return bad_input(dir.string() + ": cannot write into the output folder: " + ec.message());
  fs::create_directory(staging / "dicom", ec);
  if (ec) return bad_input(staging.string() + ": cannot create: " + ec.message());

  const int nz = static_cast<int>(ph.volume.nz());
  {
    ProgressRange sub(progress, 0, 0.95);
    HILUM_RETURN_IF_ERROR(phantom::parallel_for_status(nz, sub, "writing DICOM", [&](int i) {
      // File i holds instance i + 1, the (i+1)-th slice from the top.
      char name[32];
      std::snprintf(name, sizeof name, "IM%05d.dcm", i + 1);
      return write_slice(ph, nz - 1 - i, staging / "dicom" / name);
    }));
  }
  HILUM_RETURN_IF_ERROR(write_file_atomic(staging / "truth.csv", phantom_truth_csv(ph)));
  HILUM_RETURN_IF_ERROR(write_file_atomic(staging / "clinical.txt", ph.clinical_text));
  if (options.labels) HILUM_RETURN_IF_ERROR(write_npy(staging / "labels.npy", ph.labels));
  if (progress.cancelled()) return cancelled_error();
  HILUM_RETURN_IF_ERROR(move_into_place(staging, dir));
  fs::remove_all(staging, ec);
  guard.commit();
  progress.report(1, "written");
  return Status::Ok();
}

}  // namespace hilum
