// Closings by balls on the GPU (cuda/distance.h): the contour, three envelope
// passes (one thread per grid line) and the thresholds, each kernel calling
// the arithmetic of cuda/distance_math.h that the CPU reference calls too.
// Compiled without fused multiply-adds (cuda/CMakeLists.txt).
#include <algorithm>
#include <vector>

#include "cuda/common.cuh"
#include "cuda/distance.h"
#include "cuda/distance_math.h"

namespace hilum::cuda {
namespace {

using detector::Dims;

constexpr int kThreads = 256;

__global__ void contour_kernel(const uint8_t* mask, Dims g, double* out) {
  const long long n = g.voxels();
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    const int64_t x = i % g.nx, y = (i / g.nx) % g.ny, z = i / (g.nx * g.ny);
    out[i] = distance::is_contour(mask, g, x, y, z) ? 0.0 : distance::kFar;
  }
}

// One envelope pass along `axis` (0 x, 1 y, 2 z): thread l takes line l.
__global__ void envelope_kernel(const double* in, double* out, Dims g, int axis, int* site, double* edge) {
  const int64_t n = axis == 0 ? g.nx : axis == 1 ? g.ny : g.nz;
  const int64_t lines = g.voxels() / n;
  const int64_t l = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (l >= lines) return;
  int64_t base = 0, stride = 1;
  if (axis == 0) {
    base = l * g.nx;  // lines of x are contiguous rows: (y, z) = (l % ny, l / ny)
  } else if (axis == 1) {
    base = (l / g.nx) * g.nx * g.ny + l % g.nx, stride = g.nx;
  } else {
    base = l, stride = g.nx * g.ny;
  }
  distance::envelope_line(in + base, out + base, n, stride, g.spacing[axis], site + l, edge + l, lines);
}

// dilated = signed distance <= r; with `erode`, out = signed distance <= -(r - margin).
__global__ void threshold_kernel(const double* squared, const uint8_t* inside, long long n, double r,
                                 double margin, bool erode, uint8_t* out) {
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    const float d = distance::signed_from_squared(squared[i], inside[i] != 0);
    out[i] = erode ? d <= -(r - margin) : d <= r;
  }
}

}  // namespace

Result<std::vector<std::vector<uint8_t>>> closings(const std::vector<uint8_t>& mask, const Dims& g,
                                                   const std::vector<double>& radii_mm,
                                                   double inner_margin_mm) {
  const size_t n = static_cast<size_t>(g.voxels());
  if (n == 0 || mask.size() != n) return bad_input("closings: the mask does not fill its grid");
  std::vector<std::vector<uint8_t>> out(radii_mm.size(), std::vector<uint8_t>(n, 0));
  // Nothing to close: the reference's empty map (+1e9) keeps nothing either.
  if (std::none_of(mask.begin(), mask.end(), [](uint8_t v) { return v != 0; })) return out;
  CallStream s("closings");
  HILUM_RETURN_IF_ERROR(s.create());
  const int64_t longest = std::max({g.nx, g.ny, g.nz});
  const int64_t most_lines = static_cast<int64_t>(n) / std::min({g.nx, g.ny, g.nz});
  HILUM_ASSIGN_OR_RETURN(uint8_t * object, s.alloc<uint8_t>(n));
  HILUM_ASSIGN_OR_RETURN(uint8_t * dilated, s.alloc<uint8_t>(n));
  HILUM_ASSIGN_OR_RETURN(uint8_t * closed, s.alloc<uint8_t>(n));
  HILUM_ASSIGN_OR_RETURN(double* a, s.alloc<double>(n));
  HILUM_ASSIGN_OR_RETURN(double* b, s.alloc<double>(n));
  HILUM_ASSIGN_OR_RETURN(double* object_sq, s.alloc<double>(n));
  HILUM_ASSIGN_OR_RETURN(int* site, s.alloc<int>(static_cast<size_t>(longest * most_lines)));
  HILUM_ASSIGN_OR_RETURN(double* edge, s.alloc<double>(static_cast<size_t>((longest + 1) * most_lines)));
  HILUM_RETURN_IF_ERROR(cuda_check(cudaMemcpyAsync(object, mask.data(), n, cudaMemcpyHostToDevice, s.get()),
                                   "closings: upload"));

  // Squared distances to the contour of `m`, into `result` (via a).
  auto squared = [&](const uint8_t* m, double* result) -> Status {
    contour_kernel<<<grid_for(static_cast<long long>(n), kThreads), kThreads, 0, s.get()>>>(m, g, a);
    HILUM_RETURN_IF_ERROR(launch_check("closings: contour"));
    const double* in = a;
    double* passes[3] = {b, a, result};
    for (int axis = 0; axis < 3; ++axis) {
      const int64_t len = axis == 0 ? g.nx : axis == 1 ? g.ny : g.nz;
      const int64_t lines = static_cast<int64_t>(n) / len;
      const unsigned blocks = static_cast<unsigned>((lines + kThreads - 1) / kThreads);
      envelope_kernel<<<blocks, kThreads, 0, s.get()>>>(in, passes[axis], g, axis, site, edge);
      HILUM_RETURN_IF_ERROR(launch_check("closings: envelope"));
      in = passes[axis];
    }
    return Status::Ok();
  };
  HILUM_RETURN_IF_ERROR(squared(object, object_sq));
  const unsigned blocks = grid_for(static_cast<long long>(n), kThreads);
  for (size_t k = 0; k < radii_mm.size(); ++k) {
    const double r = radii_mm[k];
    threshold_kernel<<<blocks, kThreads, 0, s.get()>>>(object_sq, object, static_cast<long long>(n), r,
                                                       inner_margin_mm, false, dilated);
    HILUM_RETURN_IF_ERROR(launch_check("closings: dilation"));
    HILUM_RETURN_IF_ERROR(squared(dilated, b));
    threshold_kernel<<<blocks, kThreads, 0, s.get()>>>(b, dilated, static_cast<long long>(n), r,
                                                       inner_margin_mm, true, closed);
    HILUM_RETURN_IF_ERROR(launch_check("closings: erosion"));
    HILUM_RETURN_IF_ERROR(cuda_check(
        cudaMemcpyAsync(out[k].data(), closed, n, cudaMemcpyDeviceToHost, s.get()), "closings: download"));
    HILUM_RETURN_IF_ERROR(cuda_check(cudaStreamSynchronize(s.get()), "closings"));
  }
  return out;
}

}  // namespace hilum::cuda
