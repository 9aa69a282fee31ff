// DCMTK at the edge: codec set-up, finding the files of the inputs (folders,
// DICOMDIRs, single files) and reading the header facts the loader needs.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <set>
#include <thread>

#include "dcmtk/config/osconfig.h"  // must come first
#include "dcmtk/dcmdata/dcdeftag.h"
#include "dcmtk/dcmdata/dcdict.h"
#include "dcmtk/dcmdata/dcfilefo.h"
#include "dcmtk/dcmdata/dcmetinf.h"
#include "dcmtk/dcmdata/dcpixel.h"
#include "dcmtk/dcmdata/dcrledrg.h"
#include "dcmtk/dcmdata/dcuid.h"
#include "dcmtk/dcmdata/dcxfer.h"
#include "dcmtk/dcmjpeg/djdecode.h"
#include "dcmtk/dcmjpls/djdecode.h"
#include "dcmtk/oflog/oflog.h"
#include "vision/io/dicom_internal.h"

namespace hilum::dicom {

namespace {

// Owns DCMTK's global decoder registrations for the life of the process.
struct DcmtkCodecs {
  DcmtkCodecs() {
    // DCMTK logs element values on parse problems (PHI); Hilum reports errors itself.
    OFLog::configure(OFLogger::OFF_LOG_LEVEL);
    DJDecoderRegistration::registerCodecs();
    DJLSDecoderRegistration::registerCodecs();
    DcmRLEDecoderRegistration::registerCodecs();
  }
  ~DcmtkCodecs() {
    DcmRLEDecoderRegistration::cleanup();
    DJLSDecoderRegistration::cleanup();
    DJDecoderRegistration::cleanup();
  }
};

std::string trim(const OFString& s) {
  std::string out(s.c_str(), s.length());
  while (!out.empty() && (out.back() == ' ' || out.back() == '\0')) out.pop_back();
  size_t b = 0;
  while (b < out.size() && out[b] == ' ') ++b;
  return out.substr(b);
}

std::string get_string(DcmItem* item, const DcmTagKey& tag) {
  OFString s;
  if (item && item->findAndGetOFStringArray(tag, s).good()) return trim(s);
  return "";
}

// Reads `n` numbers of a DS/FD element; false when missing or short.
bool get_doubles(DcmItem* item, const DcmTagKey& tag, double* out, int n) {
  if (!item) return false;
  for (int i = 0; i < n; ++i) {
    Float64 v = 0;
    if (item->findAndGetFloat64(tag, v, static_cast<unsigned long>(i)).bad()) return false;
    if (!std::isfinite(v)) return false;
    out[i] = v;
  }
  return true;
}

bool get_long(DcmItem* item, const DcmTagKey& tag, long* out) {
  if (!item) return false;
  Sint32 s = 0;
  if (item->findAndGetSint32(tag, s).good()) {
    *out = s;
    return true;
  }
  Uint16 u = 0;
  if (item->findAndGetUint16(tag, u).good()) {
    *out = u;
    return true;
  }
  // IS is read as a string by some paths.
  std::string str = get_string(item, tag);
  if (str.empty()) return false;
  char* end = nullptr;
  long v = std::strtol(str.c_str(), &end, 10);
  if (end == str.c_str()) return false;
  *out = v;
  return true;
}

int get_int(DcmItem* item, const DcmTagKey& tag, int fallback) {
  Uint16 u = 0;
  if (item->findAndGetUint16(tag, u).good()) return u;
  long l = 0;
  if (get_long(item, tag, &l)) return static_cast<int>(l);
  return fallback;
}

// A US/SS (or xs) value as a 16-bit pattern interpreted with the pixel
// representation.
std::optional<int32_t> get_stored_value(DcmItem* item, const DcmTagKey& tag, int pixel_representation) {
  DcmElement* elem = nullptr;
  if (item->findAndGetElement(tag, elem).bad() || !elem || elem->getVM() < 1) return std::nullopt;
  uint16_t bits = 0;
  if (elem->ident() == EVR_SS) {
    Sint16 s = 0;
    if (elem->getSint16(s).bad()) return std::nullopt;
    bits = static_cast<uint16_t>(s);
  } else {
    Uint16 u = 0;
    if (elem->getUint16(u).bad()) return std::nullopt;
    bits = u;
  }
  if (pixel_representation == 1) return static_cast<int32_t>(static_cast<int16_t>(bits));
  return static_cast<int32_t>(bits);
}

DcmItem* sequence_item(DcmItem* item, const DcmTagKey& tag, int index = 0) {
  DcmItem* out = nullptr;
  if (item && item->findAndGetSequenceItem(tag, out, index).good()) return out;
  return nullptr;
}

bool image_type_is_localizer(const std::string& image_type) {
  // Value 3 of ImageType/FrameType; look at every value to be lenient.
  size_t start = 0;
  while (start <= image_type.size()) {
    size_t end = image_type.find('\\', start);
    if (end == std::string::npos) end = image_type.size();
    std::string v = image_type.substr(start, end - start);
    while (!v.empty() && v.back() == ' ') v.pop_back();
    if (v == "LOCALIZER") return true;
    start = end + 1;
  }
  return false;
}

// Fills the geometry/rescale of one functional-group item into `f` (values
// present there override what `f` holds).
void apply_functional_group(DcmItem* fg, FrameInfo& f) {
  if (!fg) return;
  if (DcmItem* pp = sequence_item(fg, DCM_PlanePositionSequence)) {
    double v[3];
    if (get_doubles(pp, DCM_ImagePositionPatient, v, 3)) {
      f.has_position = true;
      f.position = {v[0], v[1], v[2]};
    }
  }
  if (DcmItem* po = sequence_item(fg, DCM_PlaneOrientationSequence)) {
    double v[6];
    if (get_doubles(po, DCM_ImageOrientationPatient, v, 6)) {
      f.has_orientation = true;
      std::copy(v, v + 6, f.orientation.begin());
    }
  }
  if (DcmItem* pm = sequence_item(fg, DCM_PixelMeasuresSequence)) {
    double v[2];
    if (get_doubles(pm, DCM_PixelSpacing, v, 2)) {
      f.has_pixel_spacing = true;
      f.row_spacing = v[0];
      f.column_spacing = v[1];
    }
  }
  if (DcmItem* pv = sequence_item(fg, DCM_PixelValueTransformationSequence)) {
    double s = 1, i = 0;
    bool hs = get_doubles(pv, DCM_RescaleSlope, &s, 1), hi = get_doubles(pv, DCM_RescaleIntercept, &i, 1);
    if (hs || hi) {
      f.has_rescale = true;
      f.slope = hs ? s : 1.0;
      f.intercept = hi ? i : 0.0;
    }
  }
  for (const DcmTagKey& type_seq : {DCM_CTImageFrameTypeSequence, DCM_MRImageFrameTypeSequence}) {
    if (DcmItem* ft = sequence_item(fg, type_seq)) {
      std::string t = get_string(ft, DCM_FrameType);
      if (!t.empty()) f.localizer = image_type_is_localizer(t);
    }
  }
  if (DcmItem* fc = sequence_item(fg, DCM_FrameContentSequence)) {
    std::string id = get_string(fc, DCM_StackID);
    if (!id.empty()) f.stack_id = id;
  }
}

void read_study(DcmDataset* ds, InstanceHeader& h) {
  StudyInfo& s = h.study;
  s.patient.name = get_string(ds, DCM_PatientName);
  s.patient.id = get_string(ds, DCM_PatientID);
  s.patient.birth_date = get_string(ds, DCM_PatientBirthDate);
  s.patient.sex = get_string(ds, DCM_PatientSex);
  s.patient_age = get_string(ds, DCM_PatientAge);
  s.study_instance_uid = get_string(ds, DCM_StudyInstanceUID);
  s.series_instance_uid = h.series_uid;
  s.frame_of_reference_uid = get_string(ds, DCM_FrameOfReferenceUID);
  s.study_date = get_string(ds, DCM_StudyDate);
  s.study_time = get_string(ds, DCM_StudyTime);
  s.accession_number = get_string(ds, DCM_AccessionNumber);
  s.study_description = get_string(ds, DCM_StudyDescription);
  s.series_description = h.series_description;
  s.modality = h.modality;
  s.manufacturer = get_string(ds, DCM_Manufacturer);
  s.institution_name = get_string(ds, DCM_InstitutionName);
  s.body_part = get_string(ds, DCM_BodyPartExamined);
  s.convolution_kernel = get_string(ds, DCM_ConvolutionKernel);
  double v = 0;
  if (get_doubles(ds, DCM_SliceThickness, &v, 1)) s.slice_thickness_mm = v;
  if (get_doubles(ds, DCM_KVP, &v, 1)) s.kvp = v;
}

std::string condition_text(const OFCondition& c) { return c.text() ? c.text() : "unknown DCMTK error"; }

}  // namespace

void ensure_dcmtk_ready() {
  static DcmtkCodecs codecs;  // thread-safe one-time initialisation
  (void)codecs;
}

HeaderRead read_header(const fs::path& path) {
  ensure_dcmtk_ready();
  HeaderRead out;
  // Sniff: "DICM" after the 128-byte preamble, or a raw data set that starts with
  // a group 0002/0008 tag (old files without preamble).
  unsigned char head[132] = {};
  size_t n = 0;
  if (std::FILE* f = std::fopen(path.c_str(), "rb")) {
    n = std::fread(head, 1, sizeof head, f);
    std::fclose(f);
  } else {
    out.kind = HeaderRead::Kind::kUnreadable;
    out.problem = std::string("cannot open: ") + std::strerror(errno);
    return out;
  }
  const bool magic = n >= 132 && std::memcmp(head + 128, "DICM", 4) == 0;
  const bool raw_dataset = n >= 8 && ((head[1] == 0 && (head[0] == 0x08 || head[0] == 0x02)) ||
                                      (head[0] == 0 && (head[1] == 0x08 || head[1] == 0x02)));
  if (!magic && !raw_dataset) {
    out.kind = HeaderRead::Kind::kNotDicom;
    out.problem = "not a DICOM file (no DICM prefix)";
    return out;
  }

  DcmFileFormat ff;
  // Values longer than 4 KiB (pixel data) are not loaded here.
  OFCondition cond = ff.loadFile(OFFilename(path.c_str()), EXS_Unknown, EGL_noChange, 4096, ERM_autoDetect);
  if (cond.bad()) {
    out.kind = magic ? HeaderRead::Kind::kUnreadable : HeaderRead::Kind::kNotDicom;
    out.problem = magic ? "cannot parse DICOM (" + condition_text(cond) + ")" : "not a DICOM file";
    return out;
  }
  DcmDataset* ds = ff.getDataset();
  DcmMetaInfo* meta = ff.getMetaInfo();
  const std::string media_class = get_string(meta, DCM_MediaStorageSOPClassUID);
  if (media_class == UID_MediaStorageDirectoryStorage || ds->tagExists(DCM_DirectoryRecordSequence)) {
    out.kind = HeaderRead::Kind::kDicomDir;
    return out;
  }

  InstanceHeader& h = out.header;
  h.path = path;
  h.sop_class_uid = get_string(ds, DCM_SOPClassUID);
  if (h.sop_class_uid.empty()) h.sop_class_uid = media_class;
  h.sop_instance_uid = get_string(ds, DCM_SOPInstanceUID);
  h.series_uid = get_string(ds, DCM_SeriesInstanceUID);
  h.modality = get_string(ds, DCM_Modality);
  h.series_description = get_string(ds, DCM_SeriesDescription);
  h.image_type = get_string(ds, DCM_ImageType);
  h.photometric = get_string(ds, DCM_PhotometricInterpretation);
  if (!magic && h.sop_class_uid.empty() && h.series_uid.empty() && !ds->tagExists(DCM_PixelData)) {
    out.kind = HeaderRead::Kind::kNotDicom;
    out.problem = "not a DICOM file";
    return out;
  }
  const E_TransferSyntax xfer = ds->getOriginalXfer();
  DcmXfer xf(xfer);
  h.transfer_syntax_uid = xf.getXferID() ? xf.getXferID() : "";
  h.transfer_syntax_name = xf.getXferName() ? xf.getXferName() : "unknown";
  h.encapsulated = xf.isEncapsulated();
  long acq = 0;
  if (get_long(ds, DCM_AcquisitionNumber, &acq)) h.acquisition_number = acq;

  h.rows = get_int(ds, DCM_Rows, 0);
  h.columns = get_int(ds, DCM_Columns, 0);
  h.bits_allocated = get_int(ds, DCM_BitsAllocated, 0);
  h.bits_stored = get_int(ds, DCM_BitsStored, h.bits_allocated);
  h.high_bit = get_int(ds, DCM_HighBit, h.bits_stored - 1);
  h.pixel_representation = get_int(ds, DCM_PixelRepresentation, 0);
  h.samples_per_pixel = get_int(ds, DCM_SamplesPerPixel, 1);
  long frames = 1;
  if (get_long(ds, DCM_NumberOfFrames, &frames) && frames >= 1) {
    if (frames > 100000) {
      out.kind = HeaderRead::Kind::kUnreadable;
      out.problem = "NumberOfFrames " + std::to_string(frames) + " is implausible";
      return out;
    }
    h.frames = static_cast<int>(frames);
  }
  h.padding_value = get_stored_value(ds, DCM_PixelPaddingValue, h.pixel_representation);
  h.padding_limit = get_stored_value(ds, DCM_PixelPaddingRangeLimit, h.pixel_representation);
  get_doubles(ds, DCM_SpacingBetweenSlices, &h.spacing_between_slices, 1);
  get_doubles(ds, DCM_SliceThickness, &h.slice_thickness, 1);
  get_doubles(ds, DCM_GantryDetectorTilt, &h.gantry_tilt, 1);

  DcmElement* pixel = nullptr;
  if (ds->findAndGetElement(DCM_PixelData, pixel).good() && pixel) {
    h.has_pixel_data = true;
    h.pixel_data_bytes = pixel->getLengthField();
  } else if (ds->tagExists(DCM_FloatPixelData) || ds->tagExists(DCM_DoubleFloatPixelData)) {
    h.has_pixel_data = true;
    h.float_pixel_data = true;
  }
  read_study(ds, h);
  if (!h.has_pixel_data) {
    out.kind = HeaderRead::Kind::kNoPixels;
    out.problem = "no PixelData (SOP class " + h.sop_class_uid + ")";
    return out;
  }

  // Geometry: the top-level attributes, then (enhanced objects) the shared and
  // per-frame functional groups, per-frame values winning.
  FrameInfo base;
  double v[6];
  if (get_doubles(ds, DCM_ImagePositionPatient, v, 3)) {
    base.has_position = true;
    base.position = {v[0], v[1], v[2]};
  }
  if (get_doubles(ds, DCM_ImageOrientationPatient, v, 6)) {
    base.has_orientation = true;
    std::copy(v, v + 6, base.orientation.begin());
  }
  if (get_doubles(ds, DCM_PixelSpacing, v, 2)) {
    base.has_pixel_spacing = true;
    base.row_spacing = v[0];
    base.column_spacing = v[1];
  }
  {
    double s = 1, i = 0;
    bool hs = get_doubles(ds, DCM_RescaleSlope, &s, 1), hi = get_doubles(ds, DCM_RescaleIntercept, &i, 1);
    if (hs || hi) {
      base.has_rescale = true;
      base.slope = hs ? s : 1.0;
      base.intercept = hi ? i : 0.0;
    }
  }
  base.localizer = image_type_is_localizer(h.image_type);

  DcmSequenceOfItems* per_frame = nullptr;
  DcmItem* shared = sequence_item(ds, DCM_SharedFunctionalGroupsSequence);
  if (ds->findAndGetSequence(DCM_PerFrameFunctionalGroupsSequence, per_frame).good() && per_frame) {
    h.enhanced = true;
  }
  h.frame_info.assign(static_cast<size_t>(h.frames), base);
  if (h.enhanced || shared) {
    for (int f = 0; f < h.frames; ++f) {
      FrameInfo& fi = h.frame_info[static_cast<size_t>(f)];
      apply_functional_group(shared, fi);
      if (per_frame && static_cast<unsigned long>(f) < per_frame->card()) {
        apply_functional_group(per_frame->getItem(static_cast<unsigned long>(f)), fi);
      }
    }
  } else if (h.frames > 1 && base.has_position && base.has_orientation) {
    // Legacy multi-frame (NM, old MR): frames are stacked along the normal.
    const auto& o = base.orientation;
    Vec3 normal{o[1] * o[5] - o[2] * o[4], o[2] * o[3] - o[0] * o[5], o[0] * o[4] - o[1] * o[3]};
    double step = h.spacing_between_slices != 0 ? h.spacing_between_slices : h.slice_thickness;
    for (int f = 0; f < h.frames; ++f) {
      FrameInfo& fi = h.frame_info[static_cast<size_t>(f)];
      for (int a = 0; a < 3; ++a) fi.position[a] = base.position[a] + f * step * normal[a];
      fi.position_synthesized = true;
    }
  }
  out.kind = HeaderRead::Kind::kImage;
  return out;
}

namespace {

// Resolves one DICOMDIR file ID (components in upper case on the medium) under
// `root`, falling back to a case-insensitive match per component.
std::optional<fs::path> resolve_file_id(const fs::path& root, const std::vector<std::string>& parts) {
  fs::path exact = root;
  for (const auto& p : parts) exact /= p;
  std::error_code ec;
  if (fs::is_regular_file(exact, ec)) return exact;
  fs::path cur = root;
  for (const auto& p : parts) {
    bool found = false;
    for (const auto& entry : fs::directory_iterator(cur, ec)) {
      std::string name = entry.path().filename().string();
      if (name.size() == p.size() && std::equal(name.begin(), name.end(), p.begin(), [](char a, char b) {
            return std::toupper(static_cast<unsigned char>(a)) == std::toupper(static_cast<unsigned char>(b));
          })) {
        cur = entry.path();
        found = true;
        break;
      }
    }
    if (!found) return std::nullopt;
  }
  if (fs::is_regular_file(cur, ec)) return cur;
  return std::nullopt;
}

Status follow_dicomdir(const fs::path& dicomdir, std::vector<InputFile>& files,
                       std::vector<std::string>& warnings) {
  DcmFileFormat ff;
  OFCondition cond = ff.loadFile(OFFilename(dicomdir.c_str()));
  if (cond.bad()) {
    return bad_input(dicomdir.string() + ": cannot parse DICOMDIR (" + condition_text(cond) + ")");
  }
  DcmSequenceOfItems* records = nullptr;
  if (ff.getDataset()->findAndGetSequence(DCM_DirectoryRecordSequence, records).bad() || !records) {
    return bad_input(dicomdir.string() + ": DICOMDIR has no DirectoryRecordSequence");
  }
  const fs::path root = dicomdir.parent_path().empty() ? fs::path(".") : dicomdir.parent_path();
  int missing = 0, referenced = 0;
  std::string first_missing;
  for (unsigned long i = 0; i < records->card(); ++i) {
    DcmItem* rec = records->getItem(i);
    OFString id;
    if (!rec || rec->findAndGetOFStringArray(DCM_ReferencedFileID, id).bad() || id.empty()) continue;
    std::vector<std::string> parts;
    std::string s = trim(id);
    size_t start = 0;
    while (start <= s.size()) {
      size_t end = s.find('\\', start);
      if (end == std::string::npos) end = s.size();
      std::string part = s.substr(start, end - start);
      while (!part.empty() && part.back() == ' ') part.pop_back();
      if (!part.empty()) parts.push_back(part);
      start = end + 1;
    }
    if (parts.empty()) continue;
    ++referenced;
    if (auto p = resolve_file_id(root, parts)) {
      files.push_back({*p, false});
    } else {
      if (missing++ == 0) first_missing = s;
    }
  }
  if (missing > 0) {
    warnings.push_back(dicomdir.string() + ": " + std::to_string(missing) + " of " +
                       std::to_string(referenced) + " referenced files are missing (first: " + first_missing +
                       ")");
  }
  return Status::Ok();
}

bool is_dicomdir_file(const fs::path& p) {
  HeaderRead r = read_header(p);
  return r.kind == HeaderRead::Kind::kDicomDir;
}

}  // namespace

Result<CollectedInputs> collect_inputs(const std::vector<fs::path>& inputs) {
  ensure_dcmtk_ready();
  if (inputs.empty()) return bad_input("no input given (a folder, a DICOMDIR or DICOM files)");
  CollectedInputs out;
  for (const auto& input : inputs) {
    std::error_code ec;
    auto st = fs::status(input, ec);
    if (ec || !fs::exists(st)) return bad_input(input.string() + ": no such file or folder");
    if (fs::is_directory(st)) {
      std::vector<fs::path> found;
      fs::recursive_directory_iterator it(input, fs::directory_options::skip_permission_denied, ec), end;
      if (ec) return bad_input(input.string() + ": cannot read folder: " + ec.message());
      for (; it != end; it.increment(ec)) {
        if (ec) break;
        std::error_code fe;
        if (it->is_regular_file(fe)) found.push_back(it->path());
      }
      std::sort(found.begin(), found.end());
      for (auto& p : found) out.files.push_back({std::move(p), false});
    } else if (is_dicomdir_file(input)) {
      HILUM_RETURN_IF_ERROR(follow_dicomdir(input, out.files, out.warnings));
    } else {
      out.files.push_back({input, true});
    }
  }
  // The same file named twice (a folder and a file in it) is read once.
  std::set<std::string> seen;
  std::vector<InputFile> unique;
  for (auto& f : out.files) {
    std::error_code ec;
    fs::path canon = fs::weakly_canonical(f.path, ec);
    std::string key = ec ? f.path.string() : canon.string();
    if (seen.insert(key).second) {
      unique.push_back(std::move(f));
    } else if (f.explicit_input) {
      for (auto& u : unique) {
        std::error_code e2;
        if (fs::weakly_canonical(u.path, e2) == canon) u.explicit_input = true;
      }
    }
  }
  out.files = std::move(unique);
  return out;
}

bool parallel_for(size_t count, int threads, Progress& progress, std::string_view stage,
                  const std::function<void(size_t)>& fn) {
  if (progress.cancelled()) return false;
  if (count == 0) return true;
  size_t workers =
      threads > 0 ? static_cast<size_t>(threads) : std::max(1u, std::thread::hardware_concurrency());
  workers = std::min(workers, count);
  if (workers == 1) {
    // Single worker: run inline, polling between items.
    for (size_t i = 0; i < count; ++i) {
      if (progress.cancelled()) return false;
      fn(i);
      progress.report(static_cast<double>(i + 1) / count, stage);
    }
    return true;
  }
  std::atomic<size_t> next{0}, done{0};
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::condition_variable cv;
  auto work = [&] {
    while (!stop.load(std::memory_order_relaxed)) {
      size_t i = next.fetch_add(1);
      if (i >= count) break;
      fn(i);
      done.fetch_add(1);
      std::lock_guard<std::mutex> lock(mu);
      cv.notify_all();
    }
  };
  // The calling thread reports progress and watches for cancellation while
  // the workers run.
  std::vector<std::thread> pool;
  pool.reserve(workers);
  for (size_t t = 0; t < workers; ++t) pool.emplace_back(work);
  bool ok = true;
  {
    std::unique_lock<std::mutex> lock(mu);
    size_t seen = 0;
    while (true) {
      const size_t now = done.load();
      if (now == seen && now < count) cv.wait_for(lock, std::chrono::milliseconds(50));
      seen = done.load();
      lock.unlock();
      if (progress.cancelled()) {
        ok = false;
        stop.store(true);
      } else {
        progress.report(static_cast<double>(seen) / count, stage);
      }
      lock.lock();
      if (!ok || seen >= count) break;
    }
  }
  for (auto& t : pool) t.join();
  if (!ok) return false;
  progress.report(1.0, stage);
  return true;
}

}  // namespace hilum::dicom
