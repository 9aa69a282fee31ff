// Connected components on the GPU (cuda/components.h): union-find over the
// voxels, each root linked to the smaller index with atomicMin, so that every
// component's root ends at its first voxel in C order; the roots, sorted on
// the host, number the components in ITK's scan order.
#include <algorithm>
#include <vector>

#include "cuda/common.cuh"
#include "cuda/components.h"

namespace hilum::cuda {
namespace {

using detector::Dims;

constexpr int kThreads = 256;
constexpr uint32_t kNone = 0xffffffffu;

__device__ uint32_t find_root(const uint32_t* parent, uint32_t i) {
  while (true) {
    const uint32_t p = parent[i];
    if (p == i) return i;
    i = p;
  }
}

__device__ void unite(uint32_t* parent, uint32_t a, uint32_t b) {
  while (true) {
    a = find_root(parent, a);
    b = find_root(parent, b);
    if (a == b) return;
    if (a > b) {
      const uint32_t t = a;
      a = b, b = t;
    }
    // b is (or was) a root above a: link it under a unless another thread moved it first.
    const uint32_t old = atomicMin(&parent[b], a);
    if (old == b) return;
    b = old;
  }
}

__global__ void init_kernel(const uint8_t* mask, long long n, uint32_t* parent) {
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<long long>(gridDim.x) * blockDim.x)
    parent[i] = mask[i] ? static_cast<uint32_t>(i) : kNone;
}

__global__ void union_kernel(const uint8_t* mask, Dims g, uint32_t* parent) {
  const long long n = g.voxels();
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    if (!mask[i]) continue;
    const int64_t x = i % g.nx, y = (i / g.nx) % g.ny, z = i / (g.nx * g.ny);
    const uint32_t u = static_cast<uint32_t>(i);
    if (x > 0 && mask[i - 1]) unite(parent, u, u - 1);
    if (y > 0 && mask[i - g.nx]) unite(parent, u, static_cast<uint32_t>(i - g.nx));
    if (z > 0 && mask[i - g.nx * g.ny]) unite(parent, u, static_cast<uint32_t>(i - g.nx * g.ny));
  }
}

// Every voxel to its root; the roots listed (in any order).
__global__ void flatten_kernel(long long n, uint32_t* parent, uint32_t* roots, unsigned* count) {
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    if (parent[i] == kNone) continue;
    const uint32_t r = find_root(parent, static_cast<uint32_t>(i));
    if (r == static_cast<uint32_t>(i)) roots[atomicAdd(count, 1u)] = r;
  }
}

__global__ void flatten_write_kernel(long long n, uint32_t* parent) {
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<long long>(gridDim.x) * blockDim.x)
    if (parent[i] != kNone) parent[i] = find_root(parent, static_cast<uint32_t>(i));
}

// Root -> 1 + its rank among the sorted roots; sizes counted.
__global__ void label_kernel(long long n, const uint32_t* root_of, const uint32_t* sorted, unsigned k,
                             uint32_t* labels, unsigned long long* sizes) {
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    const uint32_t r = root_of[i];
    if (r == kNone) {
      labels[i] = 0;
      continue;
    }
    unsigned lo = 0, hi = k;  // first sorted[j] >= r
    while (lo < hi) {
      const unsigned mid = (lo + hi) / 2;
      if (sorted[mid] < r)
        lo = mid + 1;
      else
        hi = mid;
    }
    labels[i] = lo + 1;
    atomicAdd(&sizes[lo + 1], 1ull);
  }
}

// Roots of the components with a voxel on a side face (x or y at the grid's border) flagged.
__global__ void side_faces_kernel(Dims g, const uint32_t* parent, uint8_t* flag) {
  const long long per_plane = 2 * (g.nx + g.ny), n = per_plane * g.nz;
  for (long long t = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; t < n;
       t += static_cast<long long>(gridDim.x) * blockDim.x) {
    const int64_t z = t / per_plane, k = t % per_plane;
    int64_t x, y;
    if (k < 2 * g.nx) {
      x = k % g.nx, y = k < g.nx ? 0 : g.ny - 1;
    } else {
      y = (k - 2 * g.nx) % g.ny, x = k - 2 * g.nx < g.ny ? 0 : g.nx - 1;
    }
    const uint32_t r = parent[g.index(x, y, z)];
    if (r != kNone) flag[r] = 1;
  }
}

__global__ void touching_kernel(long long n, const uint32_t* parent, const uint8_t* flag, uint8_t* out) {
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<long long>(gridDim.x) * blockDim.x)
    out[i] = parent[i] != kNone && flag[parent[i]];
}

// Scan-order label -> its rank by size (label_components' by_size).
__global__ void remap_kernel(long long n, const uint32_t* to, uint32_t* labels) {
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<long long>(gridDim.x) * blockDim.x)
    labels[i] = to[labels[i]];
}

Status check_grid(const std::vector<uint8_t>& mask, const Dims& g) {
  const long long n = g.voxels();
  if (n <= 0 || mask.size() != static_cast<size_t>(n))
    return bad_input("label_components: the mask does not fill its grid");
  if (n >= static_cast<long long>(kNone)) return bad_input("label_components: more than 2^32 - 1 voxels");
  return Status::Ok();
}

// After checking the grid and making b's stream: the mask uploaded, and every voxel of it to its
// component's root (its first voxel in C order) in `parent`; kNone outside the mask. Both live on
// b's stream.
struct Roots {
  uint8_t* mask = nullptr;
  uint32_t* parent = nullptr;
};
Result<Roots> find_roots(CallStream& b, const std::vector<uint8_t>& mask, const Dims& g) {
  HILUM_RETURN_IF_ERROR(check_grid(mask, g));
  HILUM_RETURN_IF_ERROR(b.create());
  const long long n = g.voxels();
  Roots r;
  HILUM_ASSIGN_OR_RETURN(r.mask, b.alloc<uint8_t>(static_cast<size_t>(n)));
  HILUM_ASSIGN_OR_RETURN(r.parent, b.alloc<uint32_t>(static_cast<size_t>(n)));
  HILUM_RETURN_IF_ERROR(cuda_check(
      cudaMemcpyAsync(r.mask, mask.data(), static_cast<size_t>(n), cudaMemcpyHostToDevice, b.get()),
      "label_components: upload"));
  const unsigned blocks = grid_for(n, kThreads);
  init_kernel<<<blocks, kThreads, 0, b.get()>>>(r.mask, n, r.parent);
  HILUM_RETURN_IF_ERROR(launch_check("label_components: init"));
  union_kernel<<<blocks, kThreads, 0, b.get()>>>(r.mask, g, r.parent);
  HILUM_RETURN_IF_ERROR(launch_check("label_components: union"));
  return r;
}

}  // namespace

Status components_touching_side_faces(const std::vector<uint8_t>& mask, const Dims& g,
                                      std::vector<uint8_t>& touching) {
  CallStream b("label_components");
  HILUM_ASSIGN_OR_RETURN(const Roots roots, find_roots(b, mask, g));
  const long long n = g.voxels();
  uint8_t* m = roots.mask;
  uint32_t* parent = roots.parent;
  HILUM_ASSIGN_OR_RETURN(uint8_t * flag, b.alloc<uint8_t>(static_cast<size_t>(n)));
  const unsigned blocks = grid_for(n, kThreads);
  flatten_write_kernel<<<blocks, kThreads, 0, b.get()>>>(n, parent);
  HILUM_RETURN_IF_ERROR(launch_check("label_components: flatten"));
  HILUM_RETURN_IF_ERROR(
      cuda_check(cudaMemsetAsync(flag, 0, static_cast<size_t>(n), b.get()), "label_components: flags"));
  side_faces_kernel<<<grid_for(2 * (g.nx + g.ny) * g.nz, kThreads), kThreads, 0, b.get()>>>(g, parent, flag);
  HILUM_RETURN_IF_ERROR(launch_check("label_components: side faces"));
  touching_kernel<<<blocks, kThreads, 0, b.get()>>>(n, parent, flag, m);  // over the uploaded mask
  HILUM_RETURN_IF_ERROR(launch_check("label_components: touching"));
  touching.resize(static_cast<size_t>(n));
  HILUM_RETURN_IF_ERROR(
      cuda_check(cudaMemcpyAsync(touching.data(), m, static_cast<size_t>(n), cudaMemcpyDeviceToHost, b.get()),
                 "label_components: download"));
  HILUM_RETURN_IF_ERROR(cuda_check(cudaStreamSynchronize(b.get()), "label_components"));
  return Status::Ok();
}

Status label_components(const std::vector<uint8_t>& mask, const Dims& g, std::vector<uint32_t>& labels,
                        std::vector<int64_t>& sizes, bool by_size) {
  CallStream b("label_components");
  HILUM_ASSIGN_OR_RETURN(const Roots found, find_roots(b, mask, g));
  const long long n = g.voxels();
  uint32_t* parent = found.parent;
  HILUM_ASSIGN_OR_RETURN(uint32_t * out, b.alloc<uint32_t>(static_cast<size_t>(n)));
  HILUM_ASSIGN_OR_RETURN(unsigned* count, b.alloc<unsigned>(1));
  HILUM_RETURN_IF_ERROR(
      cuda_check(cudaMemsetAsync(count, 0, sizeof(unsigned), b.get()), "label_components: count"));
  const unsigned blocks = grid_for(n, kThreads);
  // The roots go into `out` for now (it is overwritten by the labels after).
  flatten_kernel<<<blocks, kThreads, 0, b.get()>>>(n, parent, out, count);
  HILUM_RETURN_IF_ERROR(launch_check("label_components: roots"));
  flatten_write_kernel<<<blocks, kThreads, 0, b.get()>>>(n, parent);
  HILUM_RETURN_IF_ERROR(launch_check("label_components: flatten"));
  unsigned k = 0;
  HILUM_RETURN_IF_ERROR(cuda_check(cudaMemcpyAsync(&k, count, sizeof k, cudaMemcpyDeviceToHost, b.get()),
                                   "label_components: count"));
  HILUM_RETURN_IF_ERROR(cuda_check(cudaStreamSynchronize(b.get()), "label_components"));
  std::vector<uint32_t> roots(k);
  if (k) {
    HILUM_RETURN_IF_ERROR(
        cuda_check(cudaMemcpyAsync(roots.data(), out, k * sizeof(uint32_t), cudaMemcpyDeviceToHost, b.get()),
                   "label_components: roots"));
    HILUM_RETURN_IF_ERROR(cuda_check(cudaStreamSynchronize(b.get()), "label_components"));
  }
  std::sort(roots.begin(), roots.end());
  HILUM_ASSIGN_OR_RETURN(uint32_t * sorted, b.alloc<uint32_t>(k));
  HILUM_ASSIGN_OR_RETURN(unsigned long long* counts, b.alloc<unsigned long long>(k + 1));
  HILUM_RETURN_IF_ERROR(cuda_check(cudaMemsetAsync(counts, 0, (k + 1) * sizeof(unsigned long long), b.get()),
                                   "label_components: sizes"));
  if (k)
    HILUM_RETURN_IF_ERROR(cuda_check(
        cudaMemcpyAsync(sorted, roots.data(), k * sizeof(uint32_t), cudaMemcpyHostToDevice, b.get()),
        "label_components: sorted roots"));
  label_kernel<<<blocks, kThreads, 0, b.get()>>>(n, parent, sorted, k, out, counts);
  HILUM_RETURN_IF_ERROR(launch_check("label_components: labels"));
  std::vector<unsigned long long> c(k + 1);
  HILUM_RETURN_IF_ERROR(cuda_check(cudaMemcpyAsync(c.data(), counts, (k + 1) * sizeof(unsigned long long),
                                                   cudaMemcpyDeviceToHost, b.get()),
                                   "label_components: sizes"));
  HILUM_RETURN_IF_ERROR(cuda_check(cudaStreamSynchronize(b.get()), "label_components"));
  sizes.assign(c.begin(), c.end());
  sizes[0] = 0;
  if (by_size && k > 1) {
    // Larger first, ties in scan order (ITK's RelabelComponentImageFilter).
    std::vector<uint32_t> order(k);
    for (uint32_t l = 0; l < k; ++l) order[l] = l + 1;
    std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return sizes[a] > sizes[b]; });
    std::vector<uint32_t> to(k + 1, 0);
    std::vector<int64_t> sorted_sizes(k + 1, 0);
    for (uint32_t r = 0; r < k; ++r) to[order[r]] = r + 1, sorted_sizes[r + 1] = sizes[order[r]];
    HILUM_ASSIGN_OR_RETURN(uint32_t * to_device, b.alloc<uint32_t>(k + 1));
    HILUM_RETURN_IF_ERROR(cuda_check(
        cudaMemcpyAsync(to_device, to.data(), (k + 1) * sizeof(uint32_t), cudaMemcpyHostToDevice, b.get()),
        "label_components: order"));
    remap_kernel<<<blocks, kThreads, 0, b.get()>>>(n, to_device, out);
    HILUM_RETURN_IF_ERROR(launch_check("label_components: order"));
    sizes = std::move(sorted_sizes);
  }
  labels.resize(static_cast<size_t>(n));
  HILUM_RETURN_IF_ERROR(
      cuda_check(cudaMemcpyAsync(labels.data(), out, static_cast<size_t>(n) * sizeof(uint32_t),
                                 cudaMemcpyDeviceToHost, b.get()),
                 "label_components: download"));
  // `to` (host) must outlive the copy above: wait before leaving.
  HILUM_RETURN_IF_ERROR(cuda_check(cudaStreamSynchronize(b.get()), "label_components"));
  return Status::Ok();
}

}  // namespace hilum::cuda
