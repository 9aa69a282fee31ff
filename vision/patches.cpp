#include "vision/patches.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <utility>

#include "cuda/detector_math.h"
#include "model/parallel.h"

namespace hilum {

float sample_trilinear(const Volume& v, double x, double y, double z, float outside) {
  const int64_t nx = v.nx(), ny = v.ny(), nz = v.nz();
  if (!(x >= 0 && y >= 0 && z >= 0 && x <= nx - 1 && y <= ny - 1 && z <= nz - 1)) return outside;
  detector::Dims d;
  d.nx = nx, d.ny = ny, d.nz = nz;
  return detector::trilinear(v.data(), d, x, y, z);  // the candidate detector's sampler
}

std::vector<std::string> patch_channel_names(const PatchOptions& o) {
  std::vector<std::string> names;
  char offset[32];
  std::snprintf(offset, sizeof offset, "%gmm", o.slab_mm);
  char zoom[40];
  std::snprintf(zoom, sizeof zoom, "@%gmm", o.zoom_spacing_mm);
  for (const char* plane : {"axial", "coronal", "sagittal"}) {
    if (o.channels() == 3) {
      names.emplace_back(plane);
    } else if (o.channels() == 6) {
      names.emplace_back(plane);
      names.push_back(std::string(plane) + zoom);
    } else {
      names.push_back(std::string(plane) + "-" + offset);
      names.emplace_back(plane);
      names.push_back(std::string(plane) + "+" + offset);
    }
  }
  return names;
}

Result<Tensor> extract_patches_u8(const Volume& volume, const std::vector<Vec3>& centers,
                                  const PatchOptions& o, Progress& progress) {
  if (!volume.hu.defined() || volume.hu.dtype() != DType::kF32)
    return bad_input("patches: the volume has no HU data");
  if (o.size < 2 || o.size > 1024 || !(o.spacing_mm > 0) || !(o.window_width > 0)) {
    return bad_input("patches: size must be 2..1024, spacing and window width positive");
  }
  if (!(o.slab_mm >= 0 && o.slab_mm <= PatchOptions::kMaxSlabMm))
    return bad_input("patches: the slab must be between 0 and 20 mm");
  if (!(o.zoom_spacing_mm >= 0 && o.zoom_spacing_mm <= PatchOptions::kMaxZoomSpacingMm))
    return bad_input("patches: the zoom spacing must be between 0 and 5 mm");
  if (o.slab_mm > 0 && o.zoom_spacing_mm > 0) return bad_input("patches: a slab and a zoom do not combine");
  for (int a = 0; a < 3; ++a)
    for (int b = 0; b < 3; ++b) {
      const double dot = o.frame[a][0] * o.frame[b][0] + o.frame[a][1] * o.frame[b][1] + o.frame[a][2] * o.frame[b][2];
      if (!(std::abs(dot - (a == b ? 1.0 : 0.0)) < 1e-6)) return bad_input("patches: the frame is not orthonormal");
    }
  const int64_t n = static_cast<int64_t>(centers.size()), s = o.size;
  const int64_t channels = o.channels(), per_plane = channels / 3;
  Tensor out = Tensor::empty({n, channels, s, s}, DType::kU8);
  uint8_t* dst = out.data<uint8_t>();
  // World step vectors (u, v) per plane, and their images in voxel space.
  const Vec3 frame_uv[3][2] = {{{1, 0, 0}, {0, 1, 0}}, {{1, 0, 0}, {0, 0, -1}}, {{0, 1, 0}, {0, 0, -1}}};
  Vec3 world_uv[3][2];
  for (int c = 0; c < 3; ++c)
    for (int a = 0; a < 2; ++a)
      for (int k = 0; k < 3; ++k)
        world_uv[c][a][k] = frame_uv[c][a][0] * o.frame[0][k] + frame_uv[c][a][1] * o.frame[1][k] +
                            frame_uv[c][a][2] * o.frame[2][k];
  const Vec3 zero_voxel = volume.voxel_from_world({0, 0, 0});
  auto voxel_step = [&](const Vec3& w) {
    const Vec3 p = volume.voxel_from_world({w[0] * o.spacing_mm, w[1] * o.spacing_mm, w[2] * o.spacing_mm});
    return Vec3{p[0] - zero_voxel[0], p[1] - zero_voxel[1], p[2] - zero_voxel[2]};
  };
  Vec3 step[3][2];
  for (int c = 0; c < 3; ++c)
    for (int a = 0; a < 2; ++a) step[c][a] = voxel_step(world_uv[c][a]);
  // Each plane's normal (axial: the frame's z, coronal: y, sagittal: x), in
  // voxels per pixel spacing: a slab's neighbours sit slab_mm / spacing_mm of it away.
  Vec3 normal[3];
  for (int c = 0; c < 3; ++c) normal[c] = voxel_step(o.frame[2 - c]);
  const double slab_steps = o.slab_mm / o.spacing_mm;
  const bool zoomed = o.zoom_spacing_mm > 0;
  const double zoom = zoomed ? o.zoom_spacing_mm / o.spacing_mm : 1.0;  // the zoom's step, in pixel spacings
  const double low = o.window_level - o.window_width / 2;
  const double half = (s - 1) / 2.0;
  // Candidates in blocks of 64 (progress and cancellation between blocks), the
  // candidates of a block in parallel: each writes only its own planes.
  constexpr int64_t kBlock = 64;
  for (int64_t b0 = 0; b0 < n; b0 += kBlock) {
    if (progress.cancelled()) return cancelled_error();
    progress.report(static_cast<double>(b0) / std::max<int64_t>(n, 1), "patches");
    parallel_for(std::min(kBlock, n - b0), 4, [&](int64_t first, int64_t last) {
      for (int64_t i = b0 + first; i < b0 + last; ++i) {
        const Vec3 centre = volume.voxel_from_world(centers[i]);
        for (int64_t ch = 0; ch < channels; ++ch) {
          const int64_t p = ch / per_plane;
          // A zoom's second channel of a plane steps by the zoom spacing.
          const double f = zoomed && ch % 2 == 1 ? zoom : 1.0;
          const Vec3 su = {step[p][0][0] * f, step[p][0][1] * f, step[p][0][2] * f};
          const Vec3 sv = {step[p][1][0] * f, step[p][1][1] * f, step[p][1][2] * f};
          // The plane's offset along its normal: -1, 0, +1 slab for a slab's three, 0 otherwise.
          const double k = per_plane != 3 ? 0.0 : static_cast<double>(ch % per_plane - 1) * slab_steps;
          const Vec3 c = {centre[0] + k * normal[p][0], centre[1] + k * normal[p][1], centre[2] + k * normal[p][2]};
          uint8_t* plane = dst + (i * channels + ch) * s * s;
          for (int64_t r = 0; r < s; ++r) {
            const double dv = r - half;
            for (int64_t col = 0; col < s; ++col) {
              const double du = col - half;
              const float hu = sample_trilinear(volume, c[0] + du * su[0] + dv * sv[0],
                                                c[1] + du * su[1] + dv * sv[1], c[2] + du * su[2] + dv * sv[2]);
              const double value = std::clamp((hu - low) / o.window_width, 0.0, 1.0);
              plane[r * s + col] = static_cast<uint8_t>(std::lround(value * 255.0));
            }
          }
        }
      }
    });
  }
  progress.report(1.0, "patches");
  return out;
}

Result<Tensor> patches_to_input(const Tensor& u8, const PatchOptions& o) {
  if (!u8.defined() || u8.dtype() != DType::kU8 || u8.rank() != 4 ||
      (u8.dim(1) != 3 && u8.dim(1) != 6 && u8.dim(1) != 9)) {
    return bad_input("patches: expected uint8 [N, 3, 6 or 9, S, S]");
  }
  if (!(o.std > 0)) return bad_input("patches: normalisation std must be positive");
  Tensor out = Tensor::empty(u8.shape(), DType::kF32);
  const uint8_t* src = u8.data<uint8_t>();
  float* dst = out.data<float>();
  float lut[256];
  for (int v = 0; v < 256; ++v) lut[v] = (v / 255.0f - o.mean) / o.std;
  for (int64_t i = 0; i < u8.numel(); ++i) dst[i] = lut[src[i]];
  return out;
}

Result<Tensor> extract_patches(const Volume& volume, const std::vector<Vec3>& centers, const PatchOptions& o,
                               Progress& progress) {
  HILUM_ASSIGN_OR_RETURN(Tensor u8, extract_patches_u8(volume, centers, o, progress));
  return patches_to_input(u8, o);
}

Result<std::array<Vec3, 3>> patch_frame(std::string_view name) {
  const double h = std::sqrt(0.5);
  if (name == "axes") return std::array<Vec3, 3>{{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}};
  if (name == "rz45") return std::array<Vec3, 3>{{{h, h, 0}, {-h, h, 0}, {0, 0, 1}}};
  if (name == "rx45") return std::array<Vec3, 3>{{{1, 0, 0}, {0, h, h}, {0, -h, h}}};
  if (name == "ry45") return std::array<Vec3, 3>{{{h, 0, -h}, {0, 1, 0}, {h, 0, h}}};
  std::string known;
  for (const auto& n : patch_frame_names()) known += (known.empty() ? "" : ", ") + n;
  return bad_input("patch frame: unknown frame '" + std::string(name) + "' (known: " + known + ")");
}

const std::vector<std::string>& patch_frame_names() {
  static const std::vector<std::string> names = {"axes", "rz45", "rx45", "ry45"};
  return names;
}

Result<ViewSpec> parse_view_spec(std::string_view name) {
  ViewSpec spec;
  if (is_patch_view(name)) {
    spec.view = std::string(name);
    return spec;
  }
  if (name != "axes" && patch_frame(name).ok()) {
    spec.frame = std::string(name);
    return spec;
  }
  return bad_input("unknown view '" + std::string(name) + "' (known: " + view_spec_names() + ")");
}

std::string view_spec_names() {
  std::string out;
  for (const auto& n : patch_view_names()) out += (out.empty() ? "" : ", ") + n;
  for (const auto& n : patch_frame_names())
    if (n != "axes") out += ", " + n;
  return out;
}

const std::vector<std::string>& patch_view_names() {
  static const std::vector<std::string> names = {"identity", "flip_x", "flip_y", "transpose"};
  return names;
}

bool is_patch_view(std::string_view name) {
  const auto& names = patch_view_names();
  return std::find(names.begin(), names.end(), name) != names.end();
}

Result<Tensor> patch_view(const Tensor& p, std::string_view view) {
  if (!p.defined() || p.rank() != 4 || p.dim(2) != p.dim(3) || p.device() != Device::kCPU) {
    return bad_input("patch view: expected square CPU patches [N, C, S, S]");
  }
  const int64_t s = p.dim(2), planes = p.dim(0) * p.dim(1);
  // Source pixel (row, col) of output pixel (r, c).
  std::pair<int64_t, int64_t> (*src)(int64_t, int64_t, int64_t) = nullptr;
  if (view == "identity") return p;
  if (view == "flip_x") src = [](int64_t r, int64_t c, int64_t n) { return std::pair{r, n - 1 - c}; };
  if (view == "flip_y") src = [](int64_t r, int64_t c, int64_t n) { return std::pair{n - 1 - r, c}; };
  if (view == "transpose") src = [](int64_t r, int64_t c, int64_t) { return std::pair{c, r}; };
  if (src == nullptr) return bad_input("patch view: unknown view '" + std::string(view) + "'");
  const size_t es = p.numel() > 0 ? p.nbytes() / static_cast<size_t>(p.numel()) : 1;
  if (es != 1 && es != 2 && es != 4) return bad_input("patch view: unsupported element size");
  Tensor out = Tensor::empty(p.shape(), p.dtype());
  const auto* in = static_cast<const uint8_t*>(p.raw());
  auto* dst = static_cast<uint8_t*>(out.raw());
  for (int64_t k = 0; k < planes; ++k) {
    for (int64_t r = 0; r < s; ++r) {
      for (int64_t c = 0; c < s; ++c) {
        const auto [sr, sc] = src(r, c, s);
        std::memcpy(dst + ((k * s + r) * s + c) * es, in + ((k * s + sr) * s + sc) * es, es);
      }
    }
  }
  return out;
}

}  // namespace hilum
