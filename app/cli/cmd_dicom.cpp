// `hilum info` and `hilum volume`: the DICOM loader on the command line.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "app/cli/cli.h"
#include "app/cli/terminal_progress.h"
#include "model/file_io.h"
#include "model/log.h"
#include "model/stopwatch.h"
#include "vision/io/dicom.h"

namespace hilum::cli {

namespace {

namespace fs = std::filesystem;

struct InfoArgs {
  std::vector<std::string> inputs;
  bool json = false;
  int threads = 0;
};

struct VolumeArgs {
  std::vector<std::string> inputs;
  std::string out, meta, series;
  int threads = 0;
  int max_gap = 2;
  bool no_resample_tilt = false;
  bool no_resample_spacing = false;
};

std::vector<fs::path> to_paths(const std::vector<std::string>& v) { return {v.begin(), v.end()}; }

std::string plane_name(const std::array<double, 6>& o) {
  const double nx = o[1] * o[5] - o[2] * o[4], ny = o[2] * o[3] - o[0] * o[5], nz = o[0] * o[4] - o[1] * o[3];
  const double ax = std::fabs(nx), ay = std::fabs(ny), az = std::fabs(nz);
  if (az > 0.9) return "axial";
  if (ay > 0.9) return "coronal";
  if (ax > 0.9) return "sagittal";
  return "oblique";
}

std::string num(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

nlohmann::json series_json(const SeriesSummary& s) {
  return {{"series_uid", s.series_uid},
          {"selector", s.selector},
          {"stack_index", s.stack_index},
          {"modality", s.modality},
          {"description", s.description},
          {"image_type", s.image_type},
          {"slices", s.num_slices},
          {"files", s.num_files},
          {"rows", s.rows},
          {"columns", s.columns},
          {"spacing", {s.spacing[0], s.spacing[1], s.spacing[2]}},
          {"orientation", s.orientation},
          {"plane", plane_name(s.orientation)},
          {"transfer_syntax", s.transfer_syntax},
          {"localizer", s.is_localizer},
          {"default", s.is_default},
          {"problem", s.problem},
          {"warnings", s.warnings}};
}

Status run_info(const InfoArgs& args) {
  HILUM_ASSIGN_OR_RETURN(DicomInventory inv,
                         scan_dicom(to_paths(args.inputs), process_progress(), args.threads));
  process_progress().finish();
  if (args.json) {
    nlohmann::json j = {{"files", inv.files}, {"dicom_images", inv.dicom_images}, {"warnings", inv.warnings}};
    j["series"] = nlohmann::json::array();
    for (const auto& s : inv.series) j["series"].push_back(series_json(s));
    std::printf("%s\n", j.dump(2).c_str());
    return Status::Ok();
  }
  std::printf("%zu series/stack(s) in %d DICOM image file(s) (%d file(s) looked at)\n", inv.series.size(),
              inv.dicom_images, inv.files);
  for (const auto& w : inv.warnings) std::printf("warning: %s\n", w.c_str());
  for (const auto& s : inv.series) {
    std::printf("\n%s %s  %s", s.is_default ? "*" : " ", s.selector.c_str(), s.modality.c_str());
    if (!s.description.empty()) std::printf("  \"%s\"", s.description.c_str());
    if (s.is_default) std::printf("  [loaded by default]");
    if (s.is_localizer) std::printf("  [localizer/scout]");
    std::printf("\n    %d slice(s) in %d file(s), matrix %d x %d (columns x rows), spacing %s x %s x %s mm\n",
                s.num_slices, s.num_files, s.columns, s.rows, num(s.spacing[0], 3).c_str(),
                num(s.spacing[1], 3).c_str(), num(s.spacing[2], 3).c_str());
    std::printf("    orientation %s %s %s %s %s %s (%s), %s\n", num(s.orientation[0], 4).c_str(),
                num(s.orientation[1], 4).c_str(), num(s.orientation[2], 4).c_str(),
                num(s.orientation[3], 4).c_str(), num(s.orientation[4], 4).c_str(),
                num(s.orientation[5], 4).c_str(), plane_name(s.orientation).c_str(),
                s.transfer_syntax.c_str());
    if (!s.image_type.empty()) std::printf("    image type %s\n", s.image_type.c_str());
    if (!s.problem.empty()) std::printf("    cannot load: %s\n", s.problem.c_str());
    for (const auto& w : s.warnings) std::printf("    warning: %s\n", w.c_str());
  }
  return Status::Ok();
}

// NPY v1.0 header for a little-endian float32 C-order array.
std::string npy_header(const Shape& shape) {
  std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (";
  for (size_t i = 0; i < shape.size(); ++i)
    dict += std::to_string(shape[i]) + (shape.size() == 1 || i + 1 < shape.size() ? "," : "") +
            (i + 1 < shape.size() ? " " : "");
  dict += "), }";
  const size_t unpadded = 10 + dict.size() + 1;
  dict.append((unpadded + 63) / 64 * 64 - unpadded, ' ');
  dict += '\n';
  std::string out("\x93NUMPY\x01\x00", 8);
  out += static_cast<char>(dict.size() & 0xff);
  out += static_cast<char>((dict.size() >> 8) & 0xff);
  return out + dict;
}

Status check_output_folder(const std::string& option, const fs::path& p) {
  const fs::path parent = p.parent_path();
  std::error_code ec;
  if (!parent.empty() && !fs::is_directory(parent, ec)) {
    return bad_input(option + " " + p.string() + ": folder " + parent.string() + " does not exist");
  }
  if (fs::is_directory(p, ec)) return bad_input(option + " " + p.string() + ": is a folder");
  return Status::Ok();
}

// Writes the NPY as slices arrive from the decode threads (pwrite at each
// slice's offset), so no volume-sized buffer is ever allocated. The file is an
// AtomicFile: its commit() fsyncs the inode (covering these writes) and
// renames it into place; without commit() the temporary file is removed.
class NpyVolumeWriter final : public VolumeWriter {
 public:
  explicit NpyVolumeWriter(fs::path path) : path_(std::move(path)) {}
  ~NpyVolumeWriter() override {
    if (fd_ >= 0) ::close(fd_);
  }

  Status begin(const Volume&, const Shape& shape) override {
    HILUM_ASSIGN_OR_RETURN(file_, AtomicFile::create(path_));
    fd_ = ::open(file_->temp_path().c_str(), O_WRONLY | O_CLOEXEC);
    if (fd_ < 0) return internal_error(path_.string() + ": cannot open for writing: " + std::strerror(errno));
    shape_ = shape;
    const std::string header = npy_header(shape);
    data_offset_ = header.size();
    slice_bytes_ = static_cast<size_t>(shape[1] * shape[2]) * sizeof(float);
    return write_at(0, header.data(), header.size());
  }

  Status write(int64_t z, const float* slice) override {
    const uint64_t offset = data_offset_ + static_cast<uint64_t>(z) * slice_bytes_;
    HILUM_RETURN_IF_ERROR(write_at(offset, slice, slice_bytes_));
#ifdef SYNC_FILE_RANGE_WRITE
    // Start writing this slice to disk now, so that the fsync in commit() finds
    // little left to do (a hint: errors surface in that fsync).
    ::sync_file_range(fd_, static_cast<off_t>(offset), static_cast<off_t>(slice_bytes_),
                      SYNC_FILE_RANGE_WRITE);
#endif
    return Status::Ok();
  }

  const Shape& shape() const { return shape_; }
  Status commit() {
    if (!file_) return internal_error(path_.string() + ": no volume was written");
    if (::close(fd_) != 0) return internal_error(path_.string() + ": write failed: " + std::strerror(errno));
    fd_ = -1;
    return file_->commit();
  }

 private:
  Status write_at(uint64_t offset, const void* data, size_t bytes) {
    const char* p = static_cast<const char*>(data);
    while (bytes > 0) {
      const ssize_t n = ::pwrite(fd_, p, bytes, static_cast<off_t>(offset));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return internal_error(path_.string() + ": write failed: " + std::strerror(errno));
      p += n;
      bytes -= static_cast<size_t>(n);
      offset += static_cast<uint64_t>(n);
    }
    return Status::Ok();
  }

  fs::path path_;
  std::unique_ptr<AtomicFile> file_;
  int fd_ = -1;
  Shape shape_;
  uint64_t data_offset_ = 0;
  size_t slice_bytes_ = 0;
};

Status run_volume(const VolumeArgs& args) {
  HILUM_RETURN_IF_ERROR(check_output_folder("--out", args.out));
  HILUM_RETURN_IF_ERROR(check_output_folder("--meta", args.meta));
  if (fs::path(args.out).lexically_normal() == fs::path(args.meta).lexically_normal()) {
    return bad_input("--out and --meta name the same file: " + args.out);
  }
  LoadOptions options;
  if (!args.series.empty()) options.series_uid = args.series;
  options.threads = args.threads;
  options.resample_tilt = !args.no_resample_tilt;
  options.resample_spacing = !args.no_resample_spacing;
  options.max_gap_slices = args.max_gap;
  // Slices go to the file while later ones still decode; both outputs appear
  // together at the end or not at all.
  NpyVolumeWriter npy(args.out);
  options.writer = &npy;
  const Stopwatch clock;
  HILUM_ASSIGN_OR_RETURN(LoadedStudy study,
                         load_dicom_volume(to_paths(args.inputs), options, process_progress()));
  process_progress().finish();
  const bool chatty = log_level() <= LogLevel::kWarning;
  if (!study.selection_note.empty() && chatty)
    std::fprintf(stderr, "hilum: note: %s\n", study.selection_note.c_str());
  for (const auto& w : study.warnings) log_warning(w);

  const Volume& v = study.volume;
  const std::string uid = study.series_selector.substr(0, study.series_selector.find('#'));
  nlohmann::json meta = {
      {"series_uid", uid},
      {"series", study.series_selector},
      {"modality", study.info.modality},
      {"units", study.info.modality == "CT" ? "HU" : "modality values"},
      {"shape", npy.shape()},
      {"spacing", {v.spacing[0], v.spacing[1], v.spacing[2]}},
      {"origin", {v.origin[0], v.origin[1], v.origin[2]}},
      {"direction", v.direction},
      {"transfer_syntax", study.transfer_syntax},
      {"warnings", study.warnings},
      {"selection_note", study.selection_note},
  };
  HILUM_ASSIGN_OR_RETURN(auto json, AtomicFile::create(args.meta));
  HILUM_RETURN_IF_ERROR(json->write(meta.dump(2) + "\n"));
  HILUM_RETURN_IF_ERROR(npy.commit());
  Status meta_status = json->commit();
  if (!meta_status.ok()) {
    std::error_code ec;
    fs::remove(args.out, ec);
    return meta_status;
  }
  log_info("dicom: load and write took " + std::to_string(static_cast<long long>(clock.milliseconds())) +
           " ms");
  if (chatty) {
    const Shape& sh = npy.shape();
    std::fprintf(stderr, "hilum: wrote %s (%lld x %lld x %lld, spacing %.3f x %.3f x %.3f mm) and %s\n",
                 args.out.c_str(), static_cast<long long>(sh[0]), static_cast<long long>(sh[1]),
                 static_cast<long long>(sh[2]), v.spacing[0], v.spacing[1], v.spacing[2], args.meta.c_str());
  }
  return Status::Ok();
}

}  // namespace

void register_dicom_commands(CommandLine& cl) {
  auto info = std::make_shared<InfoArgs>();
  CLI::App* ic = cl.add(nullptr, "info", "List the DICOM series found, their geometry and warnings (no PHI)",
                        [info] { return run_info(*info); });
  ic->footer(
      "Prints per series (or per stack, when one series holds several orientations or\n"
      "acquisitions): UID, modality, description, slices, matrix, spacing, orientation,\n"
      "transfer syntax, localizer/scout marks and warnings. Never patient identifiers.\n"
      "'*' marks what `hilum volume` loads by default. Exit code 2 on bad input.");
  ic->add_option("PATH", info->inputs, "Folders (searched recursively), DICOMDIR files or DICOM files")
      ->required();
  ic->add_flag("--json", info->json, "Print JSON instead of text");
  ic->add_option("--threads", info->threads, "Header-reading threads (0 = all cores)")
      ->check(CLI::NonNegativeNumber);

  auto vol = std::make_shared<VolumeArgs>();
  CLI::App* vc = cl.add(nullptr, "volume", "Load one DICOM series as a float32 HU volume (NPY + meta.json)",
                        [vol] { return run_volume(*vol); });
  vc->footer(
      "Writes the volume as NPY in (z, y, x) order, z following the slices sorted along\n"
      "the slice normal, and meta.json: spacing [x,y,z] mm, origin [x,y,z] (first slice's\n"
      "ImagePositionPatient), direction (9 numbers, row-major, columns = x,y,z axes),\n"
      "series_uid, warnings. Without --series the CT series with the most slices is loaded\n"
      "(said on stderr and in meta.json). Both files appear together or not at all.\n"
      "Exit code 2 on bad input (the message names the file or series). See docs/dicom.md.");
  vc->add_option("PATH", vol->inputs, "Folders (searched recursively), DICOMDIR files or DICOM files")
      ->required();
  vc->add_option("--out", vol->out, "Output volume (.npy, float32)")->required();
  vc->add_option("--meta", vol->meta, "Output geometry and warnings (.json)")->required();
  vc->add_option("--series", vol->series,
                 "SeriesInstanceUID to load (UID#k for split stacks; see `hilum info`)");
  vc->add_option("--threads", vol->threads, "Decode threads (0 = all cores)")->check(CLI::NonNegativeNumber);
  vc->add_option("--max-gap", vol->max_gap,
                 "Most missing slices in one gap that may be interpolated (default 2)")
      ->check(CLI::NonNegativeNumber);
  vc->add_flag("--no-resample-tilt", vol->no_resample_tilt,
               "Refuse gantry-tilted series instead of resampling them onto an orthogonal grid");
  vc->add_flag("--no-resample-spacing", vol->no_resample_spacing,
               "Refuse non-uniform slice spacing or missing slices instead of resampling");
}

}  // namespace hilum::cli
