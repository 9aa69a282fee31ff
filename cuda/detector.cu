// CUDA kernels of the candidate detector (cuda/detector.h). Compiled with
// --fmad=false (cuda/CMakeLists.txt) so that the shared per-voxel arithmetic of
// cuda/detector_math.h rounds as on the CPU.
#include <algorithm>
#include <string>

#include "cuda/common.cuh"
#include "cuda/detector.h"

namespace hilum::cuda {
namespace {

using detector::Dims;

constexpr int kThreads = 256;
constexpr int kMaxTaps = 511;
constexpr int kMaxShell = 64;

struct Taps {
  int r = 0;
  float w[kMaxTaps];
};

struct Shell {
  int n = 0;
  double off[kMaxShell][3];
};

__device__ __forceinline__ int64_t clamp_index(int64_t v, int64_t n) { return v < 0 ? 0 : v >= n ? n - 1 : v; }

// One axis of the separable filter: each output the weighted sum of its
// neighbours along `axis` (replicated at the ends), in tap order.
template <int kAxis>
__global__ void smooth_axis_kernel(const float* __restrict__ in, float* __restrict__ out, Dims g, Taps taps) {
  const int64_t n = g.voxels();
  const int64_t stride = kAxis == 0 ? 1 : kAxis == 1 ? g.nx : g.nx * g.ny;
  const int64_t extent = kAxis == 0 ? g.nx : kAxis == 1 ? g.ny : g.nz;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t p = (i / stride) % extent;
    const int64_t base = i - p * stride;
    float acc = 0.f;
    for (int j = -taps.r; j <= taps.r; ++j) acc += taps.w[j + taps.r] * in[base + clamp_index(p + j, extent) * stride];
    out[i] = acc;
  }
}

__global__ void ground_glass_kernel(const float* __restrict__ in, float* __restrict__ out, Dims g, float hi,
                                    float above, int reach) {
  const int64_t n = g.voxels();
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t x = i % g.nx, y = (i / g.nx) % g.ny, z = i / (g.nx * g.ny);
    out[i] = detector::ground_glass_value(in, g, x, y, z, hi, above, reach);
  }
}

__global__ void suppress_kernel(const float* __restrict__ image, const float* __restrict__ tube,
                                float* __restrict__ out, int64_t n, float fill, double low, double span) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    out[i] = detector::suppress_vessel(image[i], tube[i], fill, low, span);
}

// Interior voxel k of g (1 .. n - 2 along each axis), as (x, y, z).
__device__ __forceinline__ void interior_xyz(int64_t k, const Dims& g, int64_t& x, int64_t& y, int64_t& z) {
  const int64_t ix = g.nx - 2, iy = g.ny - 2;
  x = k % ix + 1;
  y = (k / ix) % iy + 1;
  z = k / (ix * iy) + 1;
}

__global__ void vesselness_kernel(const float* __restrict__ image, const float* __restrict__ s, Dims g,
                                  float bright, double scale, double a2, double b2, double c2, float* tube,
                                  float* axis) {
  const int64_t n = (g.nx - 2) * (g.ny - 2) * (g.nz - 2);
  for (int64_t k = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; k < n;
       k += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t x, y, z;
    interior_xyz(k, g, x, y, z);
    detector::vesselness_update(image, s, g, x, y, z, bright, scale, a2, b2, c2, tube, axis);
  }
}

// The axes of the clearly tubular voxels of the vessel grid around (vx, vy, vz),
// most tubular first (ties in scan order), each direction once: the 3 x 3 x 3
// block, else the 5 x 5 x 5 one, else its most tubular voxel alone. The CPU
// sorts the block's voxels; here each next one is selected by a scan, which
// gives the same order without a list.
__device__ int gather_axes(const float* __restrict__ tube, const float* __restrict__ axis, const Dims& vg,
                           int64_t vx, int64_t vy, int64_t vz, float clear, int max_axes,
                           float (*axes)[3]) {
  int n_axes = 0;
  for (int64_t r = 1; r <= 2 && n_axes == 0; ++r) {
    const int64_t z0 = vz - r < 0 ? 0 : vz - r, z1 = vz + r < vg.nz - 1 ? vz + r : vg.nz - 1;
    const int64_t y0 = vy - r < 0 ? 0 : vy - r, y1 = vy + r < vg.ny - 1 ? vy + r : vg.ny - 1;
    const int64_t x0 = vx - r < 0 ? 0 : vx - r, x1 = vx + r < vg.nx - 1 ? vx + r : vg.nx - 1;
    float prev_t = 0.f;
    int prev_ord = -1;
    bool first = true, any = false;
    float most = 0.f;
    int64_t most_at = -1;
    while (n_axes < max_axes) {
      float best_t = 0.f;
      int best_ord = -1;
      int64_t best_c = -1;
      int ord = 0;
      for (int64_t cz = z0; cz <= z1; ++cz)
        for (int64_t cy = y0; cy <= y1; ++cy)
          for (int64_t cx = x0; cx <= x1; ++cx, ++ord) {
            const int64_t c = vg.index(cx, cy, cz);
            const float t = tube[c];
            if (first && t > most) most = t, most_at = c;
            if (!(t >= clear)) continue;
            if (!first && !(t < prev_t || (t == prev_t && ord > prev_ord))) continue;
            if (best_ord < 0 || t > best_t) best_t = t, best_ord = ord, best_c = c;
          }
      first = false;
      if (best_ord < 0) break;
      any = true;
      const float* a = axis + 3 * best_c;
      bool seen = false;
      for (int k = 0; k < n_axes && !seen; ++k)
        seen = fabsf(a[0] * axes[k][0] + a[1] * axes[k][1] + a[2] * axes[k][2]) > 0.97f;
      if (!seen) {
        axes[n_axes][0] = a[0], axes[n_axes][1] = a[1], axes[n_axes][2] = a[2];
        ++n_axes;
      }
      prev_t = best_t, prev_ord = best_ord;
    }
    if (!any && r == 2 && most_at >= 0) {  // only faint tubes: the most tubular
      const float* a = axis + 3 * most_at;
      axes[0][0] = a[0], axes[0][1] = a[1], axes[0][2] = a[2];
      n_axes = 1;
    }
  }
  return n_axes;
}

__global__ void bulge_kernel(const float* __restrict__ s, const uint8_t* __restrict__ mask, Dims g,
                             const float* __restrict__ tube, const float* __restrict__ axis, Dims vg,
                             BulgeParams p, float* __restrict__ out) {
  const int64_t n = g.voxels();
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    if (s[i] <= p.bright || !mask[i]) {
      out[i] = p.fill;
      continue;
    }
    const int64_t x = i % g.nx, y = (i / g.nx) % g.ny, z = i / (g.nx * g.ny);
    const int64_t vx = min(x / p.per[0], vg.nx - 1), vy = min(y / p.per[1], vg.ny - 1),
                  vz = min(z / p.per[2], vg.nz - 1);
    float axes[detector::kMaxBulgeAxes][3];
    const int n_axes = gather_axes(tube, axis, vg, vx, vy, vz, p.clear_tube, p.max_axes, axes);
    if (n_axes == 0) {  // no tube around: a blob's voxel
      out[i] = s[i];
      continue;
    }
    const float opened = detector::opening_along(s, mask, g, x, y, z, axes, n_axes, p.steps, p.step, p.fill);
    out[i] = detector::bulge_left(s[i], opened, p.fill);
  }
}

__global__ void peaks_kernel(const float* __restrict__ s, const uint8_t* __restrict__ mask, Dims g,
                             float threshold, float fill, Shell shell, detector::Peak* out,
                             unsigned long long capacity, unsigned long long* count) {
  const int64_t n = (g.nx - 2) * (g.ny - 2) * (g.nz - 2);
  for (int64_t k = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; k < n;
       k += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t x, y, z;
    interior_xyz(k, g, x, y, z);
    const int64_t i = g.index(x, y, z);
    if (s[i] < threshold || !mask[i]) continue;  // most voxels: no block gathered
    detector::Peak p;
    if (!detector::peak_at(s, mask, g, x, y, z, threshold, fill, shell.off, shell.n, &p)) continue;
    const unsigned long long slot = atomicAdd(count, 1ULL);
    if (slot < capacity) out[slot] = p;
  }
}

bool same_grid(const Dims& a, const Dims& b) {
  return a.nx == b.nx && a.ny == b.ny && a.nz == b.nz && a.spacing[0] == b.spacing[0] &&
         a.spacing[1] == b.spacing[1] && a.spacing[2] == b.spacing[2];
}

}  // namespace

struct GpuDetector::Impl {
  cudaStream_t stream = nullptr;
  struct Slot {
    void* ptr = nullptr;
    Dims g;
    int channels = 1;
    bool mask = false;
  };
  std::vector<Slot> slots;

  ~Impl() {
    for (Slot& s : slots)
      if (s.ptr) cudaFreeAsync(s.ptr, stream);
    if (stream) {
      cudaStreamSynchronize(stream);
      cudaStreamDestroy(stream);
    }
  }

  Result<Image> add(const Dims& g, int channels, bool mask) {
    if (g.nx <= 0 || g.ny <= 0 || g.nz <= 0) return internal_error("GpuDetector: empty grid");
    Slot s;
    s.g = g, s.channels = channels, s.mask = mask;
    const size_t bytes = static_cast<size_t>(g.voxels()) * channels * (mask ? 1 : sizeof(float));
    HILUM_RETURN_IF_ERROR(cuda_check(cudaMallocAsync(&s.ptr, bytes, stream), "GpuDetector: cudaMallocAsync"));
    for (size_t k = 0; k < slots.size(); ++k)
      if (!slots[k].ptr) {
        slots[k] = s;
        return static_cast<Image>(k);
      }
    slots.push_back(s);
    return static_cast<Image>(slots.size() - 1);
  }

  // The image `id` of that kind (channels 0: any number).
  Result<const Slot*> get(Image id, bool mask, int channels = 1) const {
    if (id < 0 || static_cast<size_t>(id) >= slots.size() || !slots[id].ptr)
      return internal_error("GpuDetector: no such image");
    if (slots[id].mask != mask || (channels != 0 && slots[id].channels != channels))
      return internal_error("GpuDetector: the image is of another kind");
    return &slots[id];
  }

  static size_t bytes(const Slot& s) {
    return static_cast<size_t>(s.g.voxels()) * s.channels * (s.mask ? 1 : sizeof(float));
  }
};

GpuDetector::GpuDetector() = default;
GpuDetector::~GpuDetector() = default;
GpuDetector::GpuDetector(GpuDetector&&) noexcept = default;
GpuDetector& GpuDetector::operator=(GpuDetector&&) noexcept = default;

Result<GpuDetector> GpuDetector::create() {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    cudaGetLastError();
    return unsupported("no CUDA device");
  }
  // The images of a study come and go pass by pass: the stream-ordered pool
  // keeps their memory for the next ones instead of giving it back at each sync.
  cudaMemPool_t pool = nullptr;
  int device = 0;
  if (cudaGetDevice(&device) == cudaSuccess && cudaDeviceGetDefaultMemPool(&pool, device) == cudaSuccess) {
    uint64_t keep = ~0ULL;
    cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep);
  }
  cudaGetLastError();
  GpuDetector d;
  d.impl_ = std::make_unique<Impl>();
  HILUM_RETURN_IF_ERROR(cuda_check(cudaStreamCreateWithFlags(&d.impl_->stream, cudaStreamNonBlocking),
                                   "GpuDetector: cudaStreamCreate"));
  return std::move(d);
}

Result<GpuDetector::Image> GpuDetector::upload(const float* data, const Dims& g, int channels) {
  if (channels < 1 || channels > 3) return internal_error("GpuDetector: 1 to 3 channels");
  HILUM_ASSIGN_OR_RETURN(Image id, impl_->add(g, channels, false));
  HILUM_RETURN_IF_ERROR(cuda_check(cudaMemcpyAsync(impl_->slots[id].ptr, data, Impl::bytes(impl_->slots[id]),
                                                   cudaMemcpyHostToDevice, impl_->stream),
                                   "GpuDetector: upload"));
  return id;
}

Result<GpuDetector::Image> GpuDetector::upload_mask(const uint8_t* data, const Dims& g) {
  HILUM_ASSIGN_OR_RETURN(Image id, impl_->add(g, 1, true));
  HILUM_RETURN_IF_ERROR(cuda_check(cudaMemcpyAsync(impl_->slots[id].ptr, data, Impl::bytes(impl_->slots[id]),
                                                   cudaMemcpyHostToDevice, impl_->stream),
                                   "GpuDetector: upload"));
  return id;
}

Result<GpuDetector::Image> GpuDetector::zeros(const Dims& g, int channels) {
  if (channels < 1 || channels > 3) return internal_error("GpuDetector: 1 to 3 channels");
  HILUM_ASSIGN_OR_RETURN(Image id, impl_->add(g, channels, false));
  HILUM_RETURN_IF_ERROR(cuda_check(cudaMemsetAsync(impl_->slots[id].ptr, 0, Impl::bytes(impl_->slots[id]),
                                                   impl_->stream),
                                   "GpuDetector: zeros"));
  return id;
}

Result<GpuDetector::Image> GpuDetector::smooth(Image in, const std::vector<float>& kx, const std::vector<float>& ky,
                                              const std::vector<float>& kz) {
  HILUM_ASSIGN_OR_RETURN(const Impl::Slot* src, impl_->get(in, false));
  const Dims g = src->g;
  for (const auto* k : {&kx, &ky, &kz})
    if (k->empty() || k->size() % 2 == 0 || k->size() > static_cast<size_t>(kMaxTaps))
      return internal_error("GpuDetector::smooth: kernels need an odd number of taps, at most 511");
  auto taps_of = [](const std::vector<float>& k) {
    Taps t;
    t.r = static_cast<int>(k.size() / 2);
    std::copy(k.begin(), k.end(), t.w);
    return t;
  };
  HILUM_ASSIGN_OR_RETURN(Image out, impl_->add(g, 1, false));
  HILUM_ASSIGN_OR_RETURN(Image tmp, impl_->add(g, 1, false));
  const float* a = static_cast<const float*>(impl_->slots[in].ptr);
  float* o = static_cast<float*>(impl_->slots[out].ptr);
  float* t = static_cast<float*>(impl_->slots[tmp].ptr);
  const unsigned blocks = grid_for(g.voxels(), kThreads);
  smooth_axis_kernel<0><<<blocks, kThreads, 0, impl_->stream>>>(a, o, g, taps_of(kx));
  smooth_axis_kernel<1><<<blocks, kThreads, 0, impl_->stream>>>(o, t, g, taps_of(ky));
  smooth_axis_kernel<2><<<blocks, kThreads, 0, impl_->stream>>>(t, o, g, taps_of(kz));
  const Status launched = launch_check("GpuDetector::smooth");
  release(tmp);
  if (!launched.ok()) {
    release(out);
    return launched.error();
  }
  return out;
}

Result<GpuDetector::Image> GpuDetector::ground_glass_image(Image in, float hi, float above, int reach) {
  HILUM_ASSIGN_OR_RETURN(const Impl::Slot* src, impl_->get(in, false));
  const Dims g = src->g;
  HILUM_ASSIGN_OR_RETURN(Image out, impl_->add(g, 1, false));
  ground_glass_kernel<<<grid_for(g.voxels(), kThreads), kThreads, 0, impl_->stream>>>(
      static_cast<const float*>(impl_->slots[in].ptr), static_cast<float*>(impl_->slots[out].ptr), g, hi, above, reach);
  HILUM_RETURN_IF_ERROR(launch_check("GpuDetector::ground_glass_image"));
  return out;
}

Status GpuDetector::vesselness_update(Image image, Image smoothed, Image tube, Image axis, float bright,
                                      double scale, double a2, double b2, double c2) {
  HILUM_ASSIGN_OR_RETURN(const Impl::Slot* im, impl_->get(image, false));
  HILUM_ASSIGN_OR_RETURN(const Impl::Slot* sm, impl_->get(smoothed, false));
  HILUM_ASSIGN_OR_RETURN(const Impl::Slot* tu, impl_->get(tube, false));
  HILUM_ASSIGN_OR_RETURN(const Impl::Slot* ax, impl_->get(axis, false, 3));
  const Dims g = im->g;
  if (!same_grid(g, sm->g) || !same_grid(g, tu->g) || !same_grid(g, ax->g))
    return internal_error("GpuDetector::vesselness_update: grids differ");
  if (g.nx < 3 || g.ny < 3 || g.nz < 3) return Status::Ok();  // no interior voxel
  const int64_t n = (g.nx - 2) * (g.ny - 2) * (g.nz - 2);
  vesselness_kernel<<<grid_for(n, kThreads), kThreads, 0, impl_->stream>>>(
      static_cast<const float*>(im->ptr), static_cast<const float*>(sm->ptr), g, bright, scale, a2, b2, c2,
      static_cast<float*>(tu->ptr), static_cast<float*>(ax->ptr));
  return launch_check("GpuDetector::vesselness_update");
}

Result<GpuDetector::Image> GpuDetector::suppress_vessels(Image image, Image tube, float fill, double low,
                                                        double span) {
  HILUM_ASSIGN_OR_RETURN(const Impl::Slot* im, impl_->get(image, false));
  HILUM_ASSIGN_OR_RETURN(const Impl::Slot* tu, impl_->get(tube, false));
  const Dims g = im->g;
  if (!same_grid(g, tu->g)) return internal_error("GpuDetector::suppress_vessels: grids differ");
  HILUM_ASSIGN_OR_RETURN(Image out, impl_->add(g, 1, false));
  suppress_kernel<<<grid_for(g.voxels(), kThreads), kThreads, 0, impl_->stream>>>(
      static_cast<const float*>(impl_->slots[image].ptr), static_cast<const float*>(impl_->slots[tube].ptr),
      static_cast<float*>(impl_->slots[out].ptr), g.voxels(), fill, low, span);
  HILUM_RETURN_IF_ERROR(launch_check("GpuDetector::suppress_vessels"));
  return out;
}

Result<GpuDetector::Image> GpuDetector::bulge_residue(Image s, Image mask, Image tube, Image axis,
                                                     const BulgeParams& p) {
  HILUM_ASSIGN_OR_RETURN(const Impl::Slot* sm, impl_->get(s, false));
  HILUM_ASSIGN_OR_RETURN(const Impl::Slot* ma, impl_->get(mask, true));
  HILUM_ASSIGN_OR_RETURN(const Impl::Slot* tu, impl_->get(tube, false));
  HILUM_ASSIGN_OR_RETURN(const Impl::Slot* ax, impl_->get(axis, false, 3));
  const Dims g = sm->g, vg = tu->g;
  if (!same_grid(g, ma->g) || !same_grid(vg, ax->g))
    return internal_error("GpuDetector::bulge_residue: grids differ");
  if (p.max_axes < 1 || p.max_axes > detector::kMaxBulgeAxes || p.per[0] < 1 || p.per[1] < 1 || p.per[2] < 1)
    return internal_error("GpuDetector::bulge_residue: bad parameters");
  HILUM_ASSIGN_OR_RETURN(Image out, impl_->add(g, 1, false));
  bulge_kernel<<<grid_for(g.voxels(), kThreads), kThreads, 0, impl_->stream>>>(
      static_cast<const float*>(impl_->slots[s].ptr), static_cast<const uint8_t*>(impl_->slots[mask].ptr), g,
      static_cast<const float*>(impl_->slots[tube].ptr), static_cast<const float*>(impl_->slots[axis].ptr), vg, p,
      static_cast<float*>(impl_->slots[out].ptr));
  HILUM_RETURN_IF_ERROR(launch_check("GpuDetector::bulge_residue"));
  return out;
}

Result<std::vector<detector::Peak>> GpuDetector::peaks(Image s, Image mask, float threshold, float fill,
                                                       const std::vector<std::array<double, 3>>& shell) {
  HILUM_ASSIGN_OR_RETURN(const Impl::Slot* sm, impl_->get(s, false));
  HILUM_ASSIGN_OR_RETURN(const Impl::Slot* ma, impl_->get(mask, true));
  const Dims g = sm->g;
  if (!same_grid(g, ma->g)) return internal_error("GpuDetector::peaks: grids differ");
  if (shell.size() > static_cast<size_t>(kMaxShell)) return internal_error("GpuDetector::peaks: shell too large");
  if (g.nx < 3 || g.ny < 3 || g.nz < 3) return std::vector<detector::Peak>{};
  Shell sh;
  sh.n = static_cast<int>(shell.size());
  for (int k = 0; k < sh.n; ++k)
    for (int a = 0; a < 3; ++a) sh.off[k][a] = shell[k][a];
  const int64_t n = (g.nx - 2) * (g.ny - 2) * (g.nz - 2);
  unsigned long long capacity = 1 << 14;
  for (;;) {
    void* buf = nullptr;
    constexpr size_t kHeader = 16;  // the counter, then the records
    const size_t bytes = kHeader + capacity * sizeof(detector::Peak);
    HILUM_RETURN_IF_ERROR(cuda_check(cudaMallocAsync(&buf, bytes, impl_->stream),
                                     ("GpuDetector::peaks: allocating room for " + std::to_string(capacity) +
                                      " peaks on a " + std::to_string(g.nx) + "x" + std::to_string(g.ny) + "x" +
                                      std::to_string(g.nz) + " grid")
                                         .c_str()));
    auto* count = static_cast<unsigned long long*>(buf);
    auto* out = reinterpret_cast<detector::Peak*>(static_cast<char*>(buf) + kHeader);
    unsigned long long found = 0;
    std::vector<detector::Peak> peaks;
    auto run = [&]() -> Status {
      HILUM_RETURN_IF_ERROR(
          cuda_check(cudaMemsetAsync(count, 0, sizeof *count, impl_->stream), "GpuDetector::peaks: counter"));
      peaks_kernel<<<grid_for(n, kThreads), kThreads, 0, impl_->stream>>>(
          static_cast<const float*>(sm->ptr), static_cast<const uint8_t*>(ma->ptr), g, threshold, fill, sh, out,
          capacity, count);
      HILUM_RETURN_IF_ERROR(launch_check("GpuDetector::peaks: kernel"));
      HILUM_RETURN_IF_ERROR(cuda_check(cudaMemcpyAsync(&found, count, sizeof found, cudaMemcpyDeviceToHost,
                                                       impl_->stream),
                                       "GpuDetector::peaks: count"));
      HILUM_RETURN_IF_ERROR(cuda_check(cudaStreamSynchronize(impl_->stream), "GpuDetector::peaks: scan"));
      if (found > capacity || found == 0) return Status::Ok();  // again with room for all, or none
      peaks.resize(static_cast<size_t>(found));
      HILUM_RETURN_IF_ERROR(cuda_check(cudaMemcpyAsync(peaks.data(), out, found * sizeof(detector::Peak),
                                                       cudaMemcpyDeviceToHost, impl_->stream),
                                       "GpuDetector::peaks: records"));
      return cuda_check(cudaStreamSynchronize(impl_->stream), "GpuDetector::peaks: copy");
    };
    const Status st = run();
    cudaFreeAsync(buf, impl_->stream);
    HILUM_RETURN_IF_ERROR(st);
    if (found > capacity) {
      capacity = found;
      continue;
    }
    std::sort(peaks.begin(), peaks.end(),
              [](const detector::Peak& a, const detector::Peak& b) { return a.index < b.index; });
    return peaks;
  }
}

Result<std::vector<float>> GpuDetector::download(Image image) {
  HILUM_ASSIGN_OR_RETURN(const Impl::Slot* slot, impl_->get(image, false, 0));
  const Impl::Slot& s = *slot;
  std::vector<float> out(static_cast<size_t>(s.g.voxels()) * s.channels);
  HILUM_RETURN_IF_ERROR(cuda_check(
      cudaMemcpyAsync(out.data(), s.ptr, out.size() * sizeof(float), cudaMemcpyDeviceToHost, impl_->stream),
      "GpuDetector::download"));
  HILUM_RETURN_IF_ERROR(cuda_check(cudaStreamSynchronize(impl_->stream), "GpuDetector::download"));
  return out;
}

void GpuDetector::release(Image image) {
  if (!impl_ || image < 0 || static_cast<size_t>(image) >= impl_->slots.size() || !impl_->slots[image].ptr) return;
  cudaFreeAsync(impl_->slots[image].ptr, impl_->stream);
  impl_->slots[image] = Impl::Slot{};
}

Status GpuDetector::synchronize() {
  return cuda_check(cudaStreamSynchronize(impl_->stream), "GpuDetector::synchronize");
}

}  // namespace hilum::cuda
