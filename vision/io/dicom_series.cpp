// From headers to a Volume: series and stacks, geometry checks, selection,
// parallel decoding and (when needed) resampling onto a regular grid.
// The rules are documented in docs/dicom.md; keep the two in step.
#include <sys/mman.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <mutex>
#include <numeric>
#include <sstream>

#include "model/log.h"
#include "model/stopwatch.h"
#include "vision/io/dicom.h"
#include "vision/io/dicom_internal.h"

namespace hilum {

using namespace dicom;

namespace {

constexpr double kOrientationTolerance = 1e-3;  // per direction-cosine component
constexpr double kDuplicateTolerance = 0.01;    // mm along the normal
constexpr int kScoutMaxSlices = 3;

std::string fmt(double v, int decimals = 2) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

Vec3 cross(const Vec3& a, const Vec3& b) {
  return {a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]};
}
double dot(const Vec3& a, const Vec3& b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }
double norm(const Vec3& a) { return std::sqrt(dot(a, a)); }
Vec3 sub(const Vec3& a, const Vec3& b) { return {a[0] - b[0], a[1] - b[1], a[2] - b[2]}; }

struct Slice {
  int instance;
  int frame;
};

struct Stack {
  std::string series_uid;
  int index = 0;
  std::vector<Slice> slices;
  bool localizer = false;
  std::string localizer_reason;
  std::string problem;
  ErrorKind problem_kind = ErrorKind::kBadInput;  // kUnsupported for valid but unhandled pixel formats
  bool conflict = false;                          // the problem is only that the series holds rival stacks
  std::vector<std::string> notes;                 // split explanations
};

const FrameInfo& frame_of(const std::vector<InstanceHeader>& hs, const Slice& s) {
  return hs[static_cast<size_t>(s.instance)].frame_info[static_cast<size_t>(s.frame)];
}

bool same_orientation(const FrameInfo& a, const FrameInfo& b) {
  if (a.has_orientation != b.has_orientation) return false;
  if (!a.has_orientation) return true;
  for (int i = 0; i < 6; ++i) {
    if (std::fabs(a.orientation[i] - b.orientation[i]) > kOrientationTolerance) return false;
  }
  return true;
}

// ---- scanning -------------------------------------------------------------

struct ScanResult {
  std::vector<InstanceHeader> images;
  int files = 0;
  std::vector<std::string> warnings;
};

std::string join_inputs(const std::vector<fs::path>& inputs) {
  std::string s;
  for (size_t i = 0; i < inputs.size() && i < 3; ++i) s += (i ? ", " : "") + inputs[i].string();
  if (inputs.size() > 3) s += ", ...";
  return s;
}

Result<ScanResult> scan_headers(const std::vector<fs::path>& inputs, int threads, Progress& progress) {
  HILUM_ASSIGN_OR_RETURN(CollectedInputs collected, collect_inputs(inputs));
  ScanResult out;
  out.warnings = std::move(collected.warnings);
  out.files = static_cast<int>(collected.files.size());
  std::vector<HeaderRead> reads(collected.files.size());
  const bool finished = parallel_for(reads.size(), threads, progress, "reading DICOM headers", [&](size_t i) {
    try {
      reads[i] = read_header(collected.files[i].path);
    } catch (const std::exception& e) {
      reads[i].kind = HeaderRead::Kind::kUnreadable;
      reads[i].problem = std::string("cannot parse DICOM (") + e.what() + ")";
    }
  });
  if (!finished) return cancelled_error();

  int not_dicom = 0, unreadable = 0, no_pixels = 0;
  std::string first_unreadable;
  std::map<std::string, int> seen_sop;
  int repeated = 0;
  for (size_t i = 0; i < reads.size(); ++i) {
    HeaderRead& r = reads[i];
    const InputFile& file = collected.files[i];
    switch (r.kind) {
      case HeaderRead::Kind::kImage: {
        if (!r.header.sop_instance_uid.empty()) {
          if (!seen_sop.emplace(r.header.sop_instance_uid, 1).second) {
            ++repeated;
            continue;
          }
        }
        out.images.push_back(std::move(r.header));
        break;
      }
      case HeaderRead::Kind::kNotDicom:
        if (file.explicit_input) return bad_input(file.path.string() + ": " + r.problem);
        ++not_dicom;
        break;
      case HeaderRead::Kind::kUnreadable:
        if (file.explicit_input) return bad_input(file.path.string() + ": " + r.problem);
        if (unreadable++ == 0) first_unreadable = file.path.string() + ": " + r.problem;
        break;
      case HeaderRead::Kind::kNoPixels:
        if (file.explicit_input) return bad_input(file.path.string() + ": " + r.problem + "; not an image");
        ++no_pixels;
        break;
      case HeaderRead::Kind::kDicomDir:
        break;  // a DICOMDIR met inside a folder: the folder walk finds its files anyway
    }
  }
  if (not_dicom) out.warnings.push_back("skipped " + std::to_string(not_dicom) + " non-DICOM file(s)");
  if (no_pixels)
    out.warnings.push_back("skipped " + std::to_string(no_pixels) + " DICOM file(s) without pixel data");
  if (unreadable) {
    out.warnings.push_back("skipped " + std::to_string(unreadable) +
                           " unreadable DICOM file(s) (first: " + first_unreadable + ")");
  }
  if (repeated) {
    out.warnings.push_back("ignored " + std::to_string(repeated) +
                           " file(s) repeating an SOPInstanceUID already read (copies)");
  }
  if (out.images.empty()) {
    std::string why =
        out.files == 0 ? "no files" : std::to_string(out.files) + " file(s), none a DICOM image";
    if (unreadable) why += "; " + first_unreadable;
    return bad_input("no DICOM images found in " + join_inputs(inputs) + " (" + why + ")");
  }
  return out;
}

// ---- stacks ---------------------------------------------------------------

std::vector<Stack> build_stacks(const std::vector<InstanceHeader>& hs) {
  std::map<std::string, std::vector<Slice>> by_series;
  for (size_t i = 0; i < hs.size(); ++i) {
    for (int f = 0; f < hs[i].frames; ++f) by_series[hs[i].series_uid].push_back({static_cast<int>(i), f});
  }
  std::vector<Stack> all;
  for (auto& [uid, slices] : by_series) {
    // 1. Clusters of one matrix size, orientation, localizer flag and enhanced StackID.
    std::vector<Stack> clusters;
    for (const Slice& s : slices) {
      const InstanceHeader& h = hs[static_cast<size_t>(s.instance)];
      const FrameInfo& fi = frame_of(hs, s);
      Stack* target = nullptr;
      for (auto& c : clusters) {
        const Slice& r = c.slices.front();
        const InstanceHeader& rh = hs[static_cast<size_t>(r.instance)];
        const FrameInfo& rf = frame_of(hs, r);
        if (rh.rows == h.rows && rh.columns == h.columns && rf.localizer == fi.localizer &&
            rf.stack_id == fi.stack_id && same_orientation(rf, fi)) {
          target = &c;
          break;
        }
      }
      if (!target) {
        Stack c;
        c.series_uid = uid;
        c.localizer = fi.localizer;
        if (fi.localizer) c.localizer_reason = "LOCALIZER image type";
        clusters.push_back(std::move(c));
        target = &clusters.back();
      }
      target->slices.push_back(s);
    }
    // 2. Scouts and conflicts among the non-localizer clusters.
    std::stable_sort(clusters.begin(), clusters.end(),
                     [](const Stack& a, const Stack& b) { return a.slices.size() > b.slices.size(); });
    const Stack* main = nullptr;
    for (auto& c : clusters) {
      if (!c.localizer) {
        main = &c;
        break;
      }
    }
    std::vector<Stack*> rivals;
    for (auto& c : clusters) {
      if (c.localizer || &c == main) continue;
      const size_t n = c.slices.size();
      if (main && n <= kScoutMaxSlices && n * 4 <= main->slices.size()) {
        c.localizer = true;
        c.localizer_reason =
            "scout: " + std::to_string(n) + " slice(s) with another orientation or matrix size";
      } else {
        rivals.push_back(&c);
      }
    }
    if (!rivals.empty()) {
      rivals.insert(rivals.begin(), const_cast<Stack*>(main));
      std::string list;
      for (size_t i = 0; i < rivals.size(); ++i)
        list += (i ? ", " : "") + std::to_string(rivals[i]->slices.size());
      for (Stack* r : rivals) {
        r->conflict = true;
        r->problem = "series has " + std::to_string(rivals.size()) +
                     " stacks with different orientation or matrix size (" + list +
                     " slices); choose one with --series UID#k";
      }
    }
    // 3. Duplicate positions that AcquisitionNumber separates: one stack per acquisition.
    std::vector<Stack> split;
    for (auto& c : clusters) {
      std::map<long, std::vector<Slice>> by_acq;
      bool all_have_acq = true;
      for (const Slice& s : c.slices) {
        const auto& acq = hs[static_cast<size_t>(s.instance)].acquisition_number;
        if (!acq) all_have_acq = false;
        by_acq[acq.value_or(0)].push_back(s);
      }
      auto has_duplicates = [&](const std::vector<Slice>& v) {
        std::vector<double> d;
        for (const Slice& s : v) {
          const FrameInfo& fi = frame_of(hs, s);
          if (!fi.has_position || !fi.has_orientation) return false;
          Vec3 x{fi.orientation[0], fi.orientation[1], fi.orientation[2]};
          Vec3 y{fi.orientation[3], fi.orientation[4], fi.orientation[5]};
          d.push_back(dot(fi.position, cross(x, y)));
        }
        std::sort(d.begin(), d.end());
        for (size_t i = 1; i < d.size(); ++i) {
          if (d[i] - d[i - 1] < kDuplicateTolerance) return true;
        }
        return false;
      };
      bool separated = false;
      if (!c.localizer && all_have_acq && by_acq.size() > 1 && has_duplicates(c.slices)) {
        separated =
            std::none_of(by_acq.begin(), by_acq.end(), [&](auto& kv) { return has_duplicates(kv.second); });
      }
      if (separated) {
        for (auto& [acq, v] : by_acq) {
          Stack s = c;
          s.slices = v;
          s.notes.push_back("AcquisitionNumber " + std::to_string(acq) + " of " +
                            std::to_string(by_acq.size()) + " acquisitions at the same positions (split)");
          split.push_back(std::move(s));
        }
      } else {
        split.push_back(std::move(c));
      }
    }
    // 4. Index: the largest loadable stack first, localizers last.
    std::stable_sort(split.begin(), split.end(), [](const Stack& a, const Stack& b) {
      if (a.localizer != b.localizer) return !a.localizer;
      return a.slices.size() > b.slices.size();
    });
    for (size_t i = 0; i < split.size(); ++i) {
      split[i].index = static_cast<int>(i);
      // Pixel formats that cannot become a volume.
      for (const Slice& s : split[i].slices) {
        std::string p = pixel_format_problem(hs[static_cast<size_t>(s.instance)]);
        if (!p.empty()) {
          split[i].problem = p;
          split[i].problem_kind = ErrorKind::kUnsupported;
          break;
        }
      }
      all.push_back(std::move(split[i]));
    }
  }
  return all;
}

std::string selector_of(const Stack& s, const std::vector<Stack>& all) {
  const bool alone = std::count_if(all.begin(), all.end(),
                                   [&](const Stack& o) { return o.series_uid == s.series_uid; }) == 1;
  return alone || s.index == 0 ? s.series_uid : s.series_uid + "#" + std::to_string(s.index);
}

// ---- geometry -------------------------------------------------------------

struct Geometry {
  std::string error;                          // cannot be a volume whatever the options
  std::string refusal;                        // could be resampled, but the options say no
  std::vector<int> order;                     // indices into stack.slices, sorted along the normal
  std::vector<double> dist;                   // per sorted slice, mm along the normal
  std::vector<std::array<double, 2>> offset;  // per sorted slice, in-plane shift vs the first (mm along x, y)
  std::vector<std::vector<int>> duplicates;   // groups of sorted indices sharing a position
  std::vector<int> unique;                    // first sorted index of each distinct position
  Vec3 x{1, 0, 0}, y{0, 1, 0}, n{0, 0, 1};
  double sx = 1, sy = 1;  // mm between columns (x) and rows (y)
  double spacing_z = 1;
  bool uniform = true;
  bool sheared = false;
  double tilt_deg = 0;
  int nz_out = 1;  // slices after resampling (== unique.size() when no resampling)
  double step_out = 1;
  std::vector<std::string> warnings;
  bool needs_resample() const { return sheared || !uniform; }
};

Geometry analyze(const Stack& stack, const std::vector<InstanceHeader>& hs, const LoadOptions& options) {
  Geometry g;
  const size_t n = stack.slices.size();
  const InstanceHeader& h0 = hs[static_cast<size_t>(stack.slices.front().instance)];
  const FrameInfo& f0 = frame_of(hs, stack.slices.front());

  // In-plane geometry.
  if (f0.has_pixel_spacing) {
    if (!(f0.row_spacing > 0) || !(f0.column_spacing > 0)) {
      g.error = "PixelSpacing " + fmt(f0.row_spacing, 4) + "\\" + fmt(f0.column_spacing, 4) +
                " is not positive (" + h0.path.string() + ")";
      return g;
    }
    g.sy = f0.row_spacing;
    g.sx = f0.column_spacing;
    for (const Slice& s : stack.slices) {
      const FrameInfo& fi = frame_of(hs, s);
      if (!fi.has_pixel_spacing || std::fabs(fi.row_spacing - g.sy) > 1e-3 * g.sy ||
          std::fabs(fi.column_spacing - g.sx) > 1e-3 * g.sx) {
        g.error =
            "PixelSpacing differs between slices (" + hs[static_cast<size_t>(s.instance)].path.string() + ")";
        return g;
      }
    }
  } else {
    g.warnings.push_back("no PixelSpacing: assumed 1 mm");
  }
  if (f0.has_orientation) {
    Vec3 x{f0.orientation[0], f0.orientation[1], f0.orientation[2]};
    Vec3 y{f0.orientation[3], f0.orientation[4], f0.orientation[5]};
    const double nx = norm(x), ny = norm(y);
    if (nx < 0.5 || ny < 0.5 || std::fabs(dot(x, y)) > 0.1 * nx * ny) {
      std::string o;
      for (int i = 0; i < 6; ++i) o += (i ? "\\" : "") + fmt(f0.orientation[i], 4);
      g.error =
          "ImageOrientationPatient " + o + " is not two orthogonal unit vectors (" + h0.path.string() + ")";
      return g;
    }
    for (auto& v : x) v /= nx;
    const double xy = dot(x, y);
    for (int i = 0; i < 3; ++i) y[i] -= xy * x[i];
    const double ny2 = norm(y);
    for (auto& v : y) v /= ny2;
    if (std::fabs(nx - 1) > 1e-2 || std::fabs(ny - 1) > 1e-2 || std::fabs(xy) > 1e-2) {
      g.warnings.push_back("ImageOrientationPatient was not orthonormal: normalised");
    }
    g.x = x;
    g.y = y;
    g.n = cross(x, y);
  } else if (n == 1) {
    g.warnings.push_back("no ImageOrientationPatient: assumed axial (identity)");
  }

  const bool have_positions = std::all_of(stack.slices.begin(), stack.slices.end(), [&](const Slice& s) {
    const FrameInfo& fi = frame_of(hs, s);
    return fi.has_position && fi.has_orientation;
  });
  if (!have_positions && n > 1) {
    g.error = "slices lack ImagePositionPatient/ImageOrientationPatient, so they cannot be ordered";
    return g;
  }
  if (!have_positions) {
    g.warnings.push_back("no ImagePositionPatient: origin assumed at 0,0,0");
  }
  if (have_positions && std::any_of(stack.slices.begin(), stack.slices.end(),
                                    [&](const Slice& s) { return frame_of(hs, s).position_synthesized; })) {
    g.warnings.push_back("multi-frame image without per-frame positions: frames stacked along the normal");
  }

  // Order along the normal (never InstanceNumber).
  std::vector<double> d(n, 0.0);
  for (size_t i = 0; i < n; ++i)
    d[i] = have_positions ? dot(frame_of(hs, stack.slices[i]).position, g.n) : 0.0;
  g.order.resize(n);
  std::iota(g.order.begin(), g.order.end(), 0);
  std::stable_sort(g.order.begin(), g.order.end(), [&](int a, int b) { return d[a] < d[b]; });
  const Vec3 p0 =
      have_positions ? frame_of(hs, stack.slices[static_cast<size_t>(g.order[0])]).position : Vec3{};
  for (int idx : g.order) {
    g.dist.push_back(d[static_cast<size_t>(idx)]);
    const Vec3 p = have_positions ? frame_of(hs, stack.slices[static_cast<size_t>(idx)]).position : Vec3{};
    const Vec3 delta = sub(p, p0);
    g.offset.push_back({dot(delta, g.x), dot(delta, g.y)});
  }

  // Duplicates.
  for (size_t i = 0; i < n;) {
    size_t j = i + 1;
    while (j < n && g.dist[j] - g.dist[i] < kDuplicateTolerance) ++j;
    g.unique.push_back(static_cast<int>(i));
    if (j - i > 1) {
      std::vector<int> group;
      for (size_t k = i; k < j; ++k) group.push_back(static_cast<int>(k));
      g.duplicates.push_back(std::move(group));
    }
    i = j;
  }
  if (!g.duplicates.empty()) {
    size_t extra = 0;
    for (auto& grp : g.duplicates) extra += grp.size() - 1;
    g.warnings.push_back(std::to_string(extra) +
                         " slice(s) repeat a position already present (duplicates at " +
                         std::to_string(g.duplicates.size()) + " position(s))");
  }

  const size_t nu = g.unique.size();
  if (nu == 1) {
    if (h0.spacing_between_slices > 0) {
      g.spacing_z = h0.spacing_between_slices;
    } else if (h0.slice_thickness > 0) {
      g.spacing_z = h0.slice_thickness;
    } else {
      g.spacing_z = 1;
      g.warnings.push_back("single slice without SliceThickness: z spacing assumed 1 mm");
    }
    g.nz_out = 1;
    g.step_out = g.spacing_z;
    return g;
  }

  // Steps between distinct positions.
  std::vector<double> steps;
  for (size_t i = 1; i < nu; ++i) steps.push_back(g.dist[g.unique[i]] - g.dist[g.unique[i - 1]]);
  std::vector<double> sorted = steps;
  std::nth_element(sorted.begin(), sorted.begin() + sorted.size() / 2, sorted.end());
  double median = sorted[sorted.size() / 2];
  if (sorted.size() % 2 == 0) {
    median = (median + *std::max_element(sorted.begin(), sorted.begin() + sorted.size() / 2)) / 2;
  }
  const double first = g.dist[g.unique.front()], last = g.dist[g.unique.back()];
  int missing = 0, worst_gap = 0;
  for (size_t i = 0; i < steps.size(); ++i) {
    const int k = static_cast<int>(std::lround(steps[i] / median));
    if (k >= 2 && steps[i] > 1.5 * median) {
      missing += k - 1;
      worst_gap = std::max(worst_gap, k - 1);
      g.warnings.push_back("gap: " + std::to_string(k - 1) + " slice(s) missing between z=" +
                           fmt(g.dist[g.unique[i]]) + " and z=" + fmt(g.dist[g.unique[i + 1]]) + " mm");
    }
  }
  const double mean_step = (last - first) / static_cast<double>(nu - 1);
  double worst_residual = 0;
  for (size_t i = 0; i < nu; ++i) {
    worst_residual = std::max(worst_residual, std::fabs(g.dist[g.unique[i]] - first - i * mean_step));
  }
  const double tolerance = std::max(0.02, 0.05 * mean_step);
  g.uniform = missing == 0 && worst_residual <= tolerance;
  if (g.uniform) {
    g.spacing_z = mean_step;
    g.nz_out = static_cast<int>(nu);
    g.step_out = mean_step;
  } else {
    g.spacing_z = median;
    g.nz_out = static_cast<int>(std::lround((last - first) / median)) + 1;
    g.step_out = (last - first) / (g.nz_out - 1);
    if (missing == 0) {
      const auto [mn, mx] = std::minmax_element(steps.begin(), steps.end());
      g.warnings.push_back("non-uniform slice spacing: steps " + fmt(*mn, 3) + "-" + fmt(*mx, 3) +
                           " mm (median " + fmt(median, 3) + " mm)");
    }
  }

  // Gantry tilt (or any in-plane drift of the slice origins).
  double max_shift = 0;
  for (size_t i = 0; i < nu; ++i) {
    const auto& o = g.offset[static_cast<size_t>(g.unique[i])];
    max_shift = std::max(max_shift, std::hypot(o[0], o[1]));
  }
  if (max_shift > std::max(0.01, 0.1 * std::min(g.sx, g.sy))) {
    g.sheared = true;
    const auto& o = g.offset[static_cast<size_t>(g.unique.back())];
    g.tilt_deg = std::atan2(std::hypot(o[0], o[1]), last - first) * 180.0 / M_PI;
    std::string tag = h0.gantry_tilt != 0 ? " (GantryDetectorTilt " + fmt(h0.gantry_tilt, 1) + ")" : "";
    g.warnings.push_back("gantry tilt " + fmt(g.tilt_deg, 1) + " deg: slice origins shift " + fmt(max_shift) +
                         " mm in-plane" + tag);
  }

  if (worst_gap > options.max_gap_slices) {
    g.refusal = "gap of " + std::to_string(worst_gap) + " missing slice(s) (more than " +
                std::to_string(options.max_gap_slices) + "); refusing to interpolate across it";
  } else if (!g.uniform && !options.resample_spacing) {
    g.refusal = missing ? "slices missing (" + std::to_string(missing) + "); resampling is turned off"
                        : "non-uniform slice spacing; resampling is turned off";
  } else if (g.sheared && !options.resample_tilt) {
    g.refusal =
        "gantry tilt of " + fmt(g.tilt_deg, 1) + " deg; resampling onto an orthogonal grid is turned off";
  } else if (g.needs_resample()) {
    g.warnings.push_back("resampled onto a regular orthogonal grid: " + std::to_string(g.nz_out) +
                         " slices of " + fmt(g.step_out, 3) + " mm (linear interpolation)");
  }
  return g;
}

// ---- selection ------------------------------------------------------------

struct Analysed {
  std::vector<Stack> stacks;
  std::vector<Geometry> geometry;
};

Analysed analyse_all(const std::vector<InstanceHeader>& hs, const LoadOptions& options) {
  Analysed a;
  a.stacks = build_stacks(hs);
  for (auto& s : a.stacks) a.geometry.push_back(analyze(s, hs, options));
  return a;
}

// Why stack i cannot be loaded; a rival-stack conflict does not count when the
// stack was named explicitly (UID#k).
std::string stack_problem(const Analysed& a, size_t i, bool named = false) {
  if (!a.stacks[i].problem.empty() && !(named && a.stacks[i].conflict)) return a.stacks[i].problem;
  if (!a.geometry[i].error.empty()) return a.geometry[i].error;
  return a.geometry[i].refusal;
}

Error stack_error(const Analysed& a, size_t i, bool named = false) {
  const std::string problem = stack_problem(a, i, named);
  const ErrorKind kind = problem == a.stacks[i].problem ? a.stacks[i].problem_kind : ErrorKind::kBadInput;
  return Error(kind, "series " + selector_of(a.stacks[i], a.stacks) + ": " + problem);
}

struct Choice {
  size_t stack = 0;
  std::string note;
};

Result<Choice> choose(const Analysed& a, const std::vector<InstanceHeader>& hs, const LoadOptions& options) {
  auto modality = [&](size_t i) {
    return hs[static_cast<size_t>(a.stacks[i].slices.front().instance)].modality;
  };
  auto describe = [&](size_t i) {
    return modality(i) + " series " + selector_of(a.stacks[i], a.stacks) + " (" +
           std::to_string(a.stacks[i].slices.size()) + " slices)";
  };
  auto available = [&]() {
    std::string s;
    for (size_t i = 0; i < a.stacks.size() && i < 8; ++i)
      s += (i ? ", " : "") + selector_of(a.stacks[i], a.stacks);
    if (a.stacks.size() > 8) s += ", ...";
    return s;
  };
  if (options.series_uid) {
    std::string uid = *options.series_uid;
    std::optional<int> index;
    if (size_t hash = uid.find('#'); hash != std::string::npos) {
      char* end = nullptr;
      long k = std::strtol(uid.c_str() + hash + 1, &end, 10);
      if (end == uid.c_str() + hash + 1 || *end != '\0' || k < 0) {
        return bad_input("--series " + uid + ": expected UID or UID#k");
      }
      index = static_cast<int>(k);
      uid = uid.substr(0, hash);
    }
    std::vector<size_t> in_series;
    for (size_t i = 0; i < a.stacks.size(); ++i) {
      if (a.stacks[i].series_uid == uid) in_series.push_back(i);
    }
    if (in_series.empty())
      return bad_input("no series " + uid + " in the input (found: " + available() + ")");
    size_t pick = in_series.front();
    if (index) {
      auto it = std::find_if(in_series.begin(), in_series.end(),
                             [&](size_t i) { return a.stacks[i].index == *index; });
      if (it == in_series.end()) {
        return bad_input("series " + uid + " has no stack #" + std::to_string(*index) + " (it has " +
                         std::to_string(in_series.size()) + ")");
      }
      pick = *it;
    }
    if (!stack_problem(a, pick, index.has_value()).empty()) return stack_error(a, pick, index.has_value());
    Choice c{pick, ""};
    if (a.stacks[pick].localizer) c.note = "loading a localizer/scout stack as asked";
    if (!index && in_series.size() > 1) {
      c.note = "series " + uid + " holds " + std::to_string(in_series.size()) + " stacks; loaded " +
               describe(pick) + " (pick another with --series " + uid + "#k)";
    }
    return c;
  }

  std::optional<size_t> best;
  bool best_ct = false;
  size_t candidates = 0;
  for (size_t i = 0; i < a.stacks.size(); ++i) {
    if (a.stacks[i].localizer || !stack_problem(a, i).empty()) continue;
    ++candidates;
    const bool ct = modality(i) == "CT";
    if (!best || (ct && !best_ct) ||
        (ct == best_ct && a.stacks[i].slices.size() > a.stacks[*best].slices.size())) {
      best = i;
      best_ct = ct;
    }
  }
  if (!best) {
    for (size_t i = 0; i < a.stacks.size(); ++i) {
      if (!a.stacks[i].localizer) return stack_error(a, i);
    }
    return bad_input("only localizer/scout images found (" + available() +
                     "); choose one explicitly with --series UID#k");
  }
  Choice c{*best, ""};
  if (a.stacks.size() > 1) {
    c.note = std::to_string(a.stacks.size()) + " series/stacks found (" + std::to_string(candidates) +
             " loadable); loaded " + describe(*best) + ", " +
             (best_ct ? "the CT series with the most slices" : "no CT series, the one with the most slices") +
             "; choose another with --series UID";
  }
  return c;
}

// ---- decoding and resampling -----------------------------------------------

// A CT volume is hundreds of MB written once: ask for transparent huge pages so
// that filling it costs a few hundred page faults instead of ~100k.
void advise_huge_pages(const Tensor& t) {
#ifdef MADV_HUGEPAGE
  constexpr uintptr_t kHuge = 2u << 20;
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(t.raw()) + kHuge - 1) & ~(kHuge - 1);
  const uintptr_t end = (reinterpret_cast<uintptr_t>(t.raw()) + t.nbytes()) & ~(kHuge - 1);
  if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
#endif
}

float bilinear(const float* img, int rows, int cols, double x, double y, float fill) {
  if (x < -1e-6 || y < -1e-6 || x > cols - 1 + 1e-6 || y > rows - 1 + 1e-6) return fill;
  int x0 = static_cast<int>(std::floor(x)), y0 = static_cast<int>(std::floor(y));
  x0 = std::clamp(x0, 0, std::max(0, cols - 2));
  y0 = std::clamp(y0, 0, std::max(0, rows - 2));
  const double fx = cols > 1 ? std::clamp(x - x0, 0.0, 1.0) : 0.0;
  const double fy = rows > 1 ? std::clamp(y - y0, 0.0, 1.0) : 0.0;
  const int x1 = std::min(x0 + 1, cols - 1), y1 = std::min(y0 + 1, rows - 1);
  const double top = img[y0 * cols + x0] * (1 - fx) + img[y0 * cols + x1] * fx;
  const double bottom = img[y1 * cols + x0] * (1 - fx) + img[y1 * cols + x1] * fx;
  return static_cast<float>(top * (1 - fy) + bottom * fy);
}

// Samples the distinct slices (raw[unique[u]]) onto nz_out planes step_out apart
// along the normal, undoing in-plane shifts (gantry tilt).
void resample(const float* raw, const Geometry& g, int rows, int cols, float fill, float* out) {
  const size_t plane = static_cast<size_t>(rows) * cols;
  const double first = g.dist[static_cast<size_t>(g.unique.front())];
  size_t u = 0;
  std::vector<float> a(plane), b(plane);
  auto shifted = [&](size_t uidx, std::vector<float>& dst) {
    const size_t s = static_cast<size_t>(g.unique[uidx]);
    const float* img = raw + s * plane;
    const double dx = g.offset[s][0] / g.sx, dy = g.offset[s][1] / g.sy;
    if (std::fabs(dx) < 1e-9 && std::fabs(dy) < 1e-9) {
      std::memcpy(dst.data(), img, plane * sizeof(float));
      return;
    }
    for (int j = 0; j < rows; ++j) {
      for (int i = 0; i < cols; ++i)
        dst[static_cast<size_t>(j) * cols + i] = bilinear(img, rows, cols, i - dx, j - dy, fill);
    }
  };
  size_t loaded_a = SIZE_MAX, loaded_b = SIZE_MAX;
  for (int k = 0; k < g.nz_out; ++k) {
    const double z = first + k * g.step_out;
    while (u + 2 < g.unique.size() && g.dist[static_cast<size_t>(g.unique[u + 1])] <= z) ++u;
    const size_t v = std::min(u + 1, g.unique.size() - 1);
    const double du = g.dist[static_cast<size_t>(g.unique[u])], dv = g.dist[static_cast<size_t>(g.unique[v])];
    const double w = dv > du ? std::clamp((z - du) / (dv - du), 0.0, 1.0) : 0.0;
    if (loaded_a != u) {
      if (loaded_b == u) {
        std::swap(a, b);
        std::swap(loaded_a, loaded_b);
      } else {
        shifted(u, a);
        loaded_a = u;
      }
    }
    if (loaded_b != v) {
      shifted(v, b);
      loaded_b = v;
    }
    float* dst = out + static_cast<size_t>(k) * plane;
    const float wa = static_cast<float>(1 - w), wb = static_cast<float>(w);
    for (size_t p = 0; p < plane; ++p) dst[p] = wa * a[p] + wb * b[p];
  }
}

}  // namespace

Result<DicomInventory> scan_dicom(const std::vector<fs::path>& inputs, Progress& progress, int threads) {
  HILUM_ASSIGN_OR_RETURN(ScanResult scan, scan_headers(inputs, threads, progress));
  const LoadOptions defaults;
  Analysed a = analyse_all(scan.images, defaults);
  auto chosen = choose(a, scan.images, defaults);
  DicomInventory inv;
  inv.files = scan.files;
  inv.dicom_images = static_cast<int>(scan.images.size());
  inv.warnings = std::move(scan.warnings);
  for (size_t i = 0; i < a.stacks.size(); ++i) {
    const Stack& s = a.stacks[i];
    const Geometry& g = a.geometry[i];
    const InstanceHeader& h = scan.images[static_cast<size_t>(s.slices.front().instance)];
    const FrameInfo& f = frame_of(scan.images, s.slices.front());
    SeriesSummary sum;
    sum.series_uid = s.series_uid;
    sum.selector = selector_of(s, a.stacks);
    sum.modality = h.modality;
    sum.description = h.series_description;
    sum.image_type = h.image_type;
    sum.stack_index = s.index;
    sum.num_slices = static_cast<int>(s.slices.size());
    std::vector<int> instances;
    for (const Slice& sl : s.slices) instances.push_back(sl.instance);
    std::sort(instances.begin(), instances.end());
    sum.num_files = static_cast<int>(std::unique(instances.begin(), instances.end()) - instances.begin());
    sum.rows = h.rows;
    sum.columns = h.columns;
    sum.spacing = {g.sx, g.sy, g.error.empty() ? g.spacing_z : 0.0};
    sum.orientation = f.has_orientation ? f.orientation : std::array<double, 6>{1, 0, 0, 0, 1, 0};
    sum.transfer_syntax = h.transfer_syntax_name;
    sum.is_localizer = s.localizer;
    sum.is_default = chosen.ok() && chosen->stack == i;
    sum.problem = stack_problem(a, i);
    for (const auto& note : s.notes) sum.warnings.push_back(note);
    if (s.localizer) sum.warnings.push_back("not loaded by default: " + s.localizer_reason);
    for (const auto& w : g.warnings) sum.warnings.push_back(w);
    if (h.photometric == "MONOCHROME1") sum.warnings.push_back("MONOCHROME1 photometric interpretation");
    inv.series.push_back(std::move(sum));
  }
  return inv;
}

Result<LoadedStudy> load_dicom_volume(const std::vector<fs::path>& inputs, const LoadOptions& options,
                                      Progress& progress) {
  auto ms = [](const Stopwatch& clock) {
    return std::to_string(static_cast<long long>(clock.milliseconds())) + " ms";
  };
  const Stopwatch scan_clock;
  ProgressRange scan_progress(progress, 0.0, 0.2);
  HILUM_ASSIGN_OR_RETURN(ScanResult scan, scan_headers(inputs, options.threads, scan_progress));
  log_info("dicom: read " + std::to_string(scan.files) + " file header(s) in " + ms(scan_clock));
  const std::vector<InstanceHeader>& hs = scan.images;
  Analysed a = analyse_all(hs, options);
  HILUM_ASSIGN_OR_RETURN(Choice choice, choose(a, hs, options));
  const Stack& stack = a.stacks[choice.stack];
  const Geometry& g = a.geometry[choice.stack];
  const std::string selector = selector_of(stack, a.stacks);
  if (!g.error.empty()) return bad_input("series " + selector + ": " + g.error);
  if (!g.refusal.empty()) return bad_input("series " + selector + ": " + g.refusal);

  LoadedStudy out;
  out.series_selector = selector;
  out.selection_note = choice.note;
  out.warnings = scan.warnings;
  for (const auto& note : stack.notes) out.warnings.push_back(note);
  for (const auto& w : g.warnings) out.warnings.push_back(w);

  const InstanceHeader& h0 = hs[static_cast<size_t>(stack.slices.front().instance)];
  const int rows = h0.rows, cols = h0.columns;
  const size_t plane = static_cast<size_t>(rows) * cols;
  const size_t n = g.order.size();
  const bool is_ct = h0.modality == "CT";
  out.transfer_syntax = h0.transfer_syntax_name;

  // Value mapping: modality LUT decides; MONOCHROME1 only inverts images without one.
  ValueMapping mapping;
  mapping.padding_fill = is_ct ? -1024.0f : 0.0f;
  bool any_padding = false, any_mono1 = false, any_inverted = false;
  for (const Slice& s : stack.slices) {
    const InstanceHeader& h = hs[static_cast<size_t>(s.instance)];
    any_padding |= h.padding_value.has_value();
    if (h.photometric == "MONOCHROME1") {
      any_mono1 = true;
      if (!frame_of(hs, s).has_rescale && !is_ct) any_inverted = true;
    }
  }
  mapping.invert = any_inverted;
  if (any_mono1) {
    out.warnings.push_back(any_inverted
                               ? "MONOCHROME1 without a modality LUT: values inverted so that bright is high"
                               : "MONOCHROME1: values are modality values (rescale applied); MONOCHROME1 "
                                 "only affects display");
  }
  if (any_padding) {
    out.warnings.push_back(std::string("PixelPaddingValue pixels set to ") +
                           (is_ct ? "-1024 HU (air)" : "0"));
  }

  // Check sizes before allocating: a header may promise more than the file holds.
  for (const Slice& s : stack.slices) {
    const InstanceHeader& h = hs[static_cast<size_t>(s.instance)];
    const uint64_t need = static_cast<uint64_t>(h.rows) * h.columns * (h.bits_allocated / 8) * h.frames;
    if (!h.encapsulated && h.pixel_data_bytes != 0xffffffffu && h.pixel_data_bytes < need) {
      return bad_input(h.path.string() + ": PixelData holds " + std::to_string(h.pixel_data_bytes) +
                       " bytes but " + std::to_string(h.columns) + "x" + std::to_string(h.rows) + "x" +
                       std::to_string(h.frames) + " pixels need " + std::to_string(need) +
                       " (truncated file?)");
    }
  }

  constexpr uint64_t kMaxVoxels = uint64_t{1} << 31;
  if (static_cast<uint64_t>(n) * plane > kMaxVoxels) {
    return bad_input("series " + selector + ": " + std::to_string(n) + " slices of " + std::to_string(cols) +
                     "x" + std::to_string(rows) + " are too large a volume");
  }

  // The geometry is final before any pixel is decoded.
  Volume& vol = out.volume;
  const Slice& first = stack.slices[static_cast<size_t>(g.order[0])];
  const FrameInfo& ff = frame_of(hs, first);
  vol.spacing = {g.sx, g.sy, g.needs_resample() ? g.step_out : g.spacing_z};
  vol.origin = ff.has_position ? ff.position : Vec3{0, 0, 0};
  vol.direction = {g.x[0], g.y[0], g.n[0], g.x[1], g.y[1], g.n[1], g.x[2], g.y[2], g.n[2]};
  const size_t nu = g.unique.size();

  // Decode every sorted slice (duplicates included), one task per file, in z
  // order of each file's first slice. With a writer and nothing to rewrite
  // afterwards (resampling, duplicates), slices go straight to the writer
  // through a small per-thread buffer; otherwise into the raw volume.
  const bool streaming = options.writer && !g.needs_resample() && nu == n;
  Tensor raw;
  float* raw_data = nullptr;
  if (!streaming) {
    raw = Tensor::empty({static_cast<int64_t>(n), rows, cols}, DType::kF32);
    advise_huge_pages(raw);
    raw_data = raw.data<float>();
  } else {
    HILUM_RETURN_IF_ERROR(options.writer->begin(vol, {static_cast<int64_t>(n), rows, cols}));
  }
  struct Task {
    int instance;
    std::vector<int> frames, z;
  };
  std::vector<Task> tasks;
  std::map<int, size_t> task_of;
  for (size_t k = 0; k < n; ++k) {
    const Slice& s = stack.slices[static_cast<size_t>(g.order[k])];
    auto [it, inserted] = task_of.emplace(s.instance, tasks.size());
    if (inserted) tasks.push_back(Task{s.instance, {}, {}});
    tasks[it->second].frames.push_back(s.frame);
    tasks[it->second].z.push_back(static_cast<int>(k));
  }
  std::mutex error_mu;
  std::optional<Error> first_error;
  std::atomic<bool> failed{false};
  auto fail = [&](const Status& st) {
    std::lock_guard<std::mutex> lock(error_mu);
    if (!first_error) first_error = st.error();
    failed.store(true);
  };
  ProgressRange decode_progress(progress, 0.2, 0.95);
  const Stopwatch decode_clock;
  const bool finished =
      parallel_for(tasks.size(), options.threads, decode_progress, "decoding slices", [&](size_t i) {
        if (failed.load()) return;
        const Task& t = tasks[i];
        const InstanceHeader& h = hs[static_cast<size_t>(t.instance)];
        thread_local std::vector<float> slice_buffer;  // reused: one slice per thread
        std::vector<float> frames_buffer;              // multi-frame files: freed after the task
        std::vector<float*> dest(t.frames.size());
        if (streaming) {
          float* base = nullptr;
          if (dest.size() == 1) {
            slice_buffer.resize(plane);
            base = slice_buffer.data();
          } else {
            frames_buffer.resize(plane * dest.size());
            base = frames_buffer.data();
          }
          for (size_t f = 0; f < dest.size(); ++f) dest[f] = base + f * plane;
        } else {
          for (size_t f = 0; f < dest.size(); ++f) dest[f] = raw_data + static_cast<size_t>(t.z[f]) * plane;
        }
        Status st;
        try {
          st = decode_frames(h, t.frames, dest, mapping);
          for (size_t f = 0; st.ok() && streaming && f < dest.size(); ++f)
            st = options.writer->write(t.z[f], dest[f]);
        } catch (const std::exception& e) {
          st = internal_error(h.path.string() + ": decoding failed: " + e.what());
        }
        if (!st.ok()) fail(st);
      });
  if (first_error) return *first_error;
  if (!finished) return cancelled_error();
  log_info("dicom: decoded " + std::to_string(n) + " slice(s) of " + selector + " in " + ms(decode_clock));

  // Duplicates: identical pixels -> keep one; different pixels -> refuse.
  size_t dropped = 0;
  for (const auto& group : g.duplicates) {
    const float* ref = raw_data + static_cast<size_t>(group.front()) * plane;
    for (size_t m = 1; m < group.size(); ++m) {
      const float* other = raw_data + static_cast<size_t>(group[m]) * plane;
      if (std::memcmp(ref, other, plane * sizeof(float)) != 0) {
        const auto& ha =
            hs[static_cast<size_t>(stack.slices[static_cast<size_t>(g.order[group.front()])].instance)];
        const auto& hb =
            hs[static_cast<size_t>(stack.slices[static_cast<size_t>(g.order[group[m]])].instance)];
        return bad_input("series " + selector + ": two slices at the same position (z=" +
                         fmt(g.dist[static_cast<size_t>(group.front())]) + " mm) differ (" +
                         ha.path.string() + ", " + hb.path.string() +
                         "); two acquisitions mixed in one series?");
      }
      ++dropped;
    }
  }
  if (dropped) {
    out.warnings.push_back("dropped " + std::to_string(dropped) +
                           " duplicate slice(s) (same position, identical pixels)");
  }

  if (streaming) {
    // Already written; the volume keeps its geometry only.
  } else if (g.needs_resample()) {
    vol.hu = Tensor::empty({g.nz_out, rows, cols}, DType::kF32);
    advise_huge_pages(vol.hu);
    resample(raw_data, g, rows, cols, mapping.padding_fill, vol.hu.data<float>());
  } else if (nu == n) {
    vol.hu = raw;
  } else {
    vol.hu = Tensor::empty({static_cast<int64_t>(nu), rows, cols}, DType::kF32);
    for (size_t u = 0; u < nu; ++u) {
      std::memcpy(vol.hu.data<float>() + u * plane, raw_data + static_cast<size_t>(g.unique[u]) * plane,
                  plane * sizeof(float));
    }
  }
  if (options.writer && !streaming) {
    HILUM_RETURN_IF_ERROR(options.writer->begin(vol, vol.hu.shape()));
    for (int64_t z = 0; z < vol.nz(); ++z) {
      HILUM_RETURN_IF_ERROR(options.writer->write(z, vol.data() + static_cast<size_t>(z) * plane));
    }
    vol.hu = Tensor();
  }

  const InstanceHeader& hf = hs[static_cast<size_t>(first.instance)];
  out.info = hf.study;
  for (size_t u = 0; u < nu; ++u) {
    const auto& h = hs[static_cast<size_t>(
        stack.slices[static_cast<size_t>(g.order[static_cast<size_t>(g.unique[u])])].instance)];
    out.info.sop_class_uids.push_back(h.sop_class_uid);
    out.info.sop_instance_uids.push_back(h.sop_instance_uid);
  }
  progress.report(1.0, "volume ready");
  return out;
}

}  // namespace hilum
