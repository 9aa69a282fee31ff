// The candidate detector's image work on the GPU (vision/io/candidates.cpp
// decides what runs; this holds the images and runs the kernels): Gaussian
// smoothing, clipping, Frangi's vesselness with the tubes' axes, the vessel
// suppression, the residue of the opening along the vessels and the scan for
// strict maxima. Each kernel runs the per-voxel arithmetic of
// cuda/detector_math.h, which the CPU loops share; tests/vision/io/
// test_candidates_cuda.cpp compares every one with the CPU on awkward grids.
//
// Images live on the device for the session and are named by handles. A
// session is one stream; it is not thread-safe (one per study). In a build
// without CUDA create() fails (kUnsupported).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <vector>

#include "cuda/detector_math.h"
#include "model/result.h"

namespace hilum::cuda {

struct BulgeParams {
  float bright = 0;      // voxels of s at most this keep nothing (fill)
  float fill = 0;        // parenchyma level
  float clear_tube = 0;  // vesselness of the voxels whose axes count
  int max_axes = 4;      // at most this many axes (1 .. detector::kMaxBulgeAxes)
  int steps = 3;         // steps of `step` mm each way
  double step = 1;
  int64_t per[3] = {1, 1, 1};  // voxels of the image along each axis under one voxel of the vessel grid
};

class GpuDetector {
 public:
  using Image = int;

  static Result<GpuDetector> create();
  GpuDetector();
  ~GpuDetector();
  GpuDetector(GpuDetector&&) noexcept;
  GpuDetector& operator=(GpuDetector&&) noexcept;

  // A float image (channels values per voxel) or a uint8 mask on grid g, copied to the device.
  Result<Image> upload(const float* data, const detector::Dims& g, int channels = 1);
  Result<Image> upload_mask(const uint8_t* data, const detector::Dims& g);
  // A float image of zeros with `channels` values per voxel.
  Result<Image> zeros(const detector::Dims& g, int channels);
  // The image convolved with kx, ky and kz (odd lengths, centred) along x, y and
  // z, borders replicated: gaussian_smooth's separable filter.
  Result<Image> smooth(Image in, const std::vector<float>& kx, const std::vector<float>& ky,
                       const std::vector<float>& kz);
  // The ground-glass pass's image: detector::ground_glass_value per voxel
  // (reach 0 and above == hi: the clip min(v, hi)).
  Result<Image> ground_glass_image(Image in, float hi, float above, int reach);
  // detector::vesselness_update at every interior voxel (one scale; `smoothed`
  // is the image at that scale; tube and axis, 1 and 3 channels, are updated).
  Status vesselness_update(Image image, Image smoothed, Image tube, Image axis, float bright, double scale,
                           double a2, double b2, double c2);
  // detector::suppress_vessel per voxel.
  Result<Image> suppress_vessels(Image image, Image tube, float fill, double low, double span);
  // The bulge residue of s (on mask's grid) against the tubes (tube, axis on the vessel grid).
  Result<Image> bulge_residue(Image s, Image mask, Image tube, Image axis, const BulgeParams& p);
  // detector::peak_at at every interior voxel, by increasing index.
  Result<std::vector<detector::Peak>> peaks(Image s, Image mask, float threshold, float fill,
                                            const std::vector<std::array<double, 3>>& shell);
  Result<std::vector<float>> download(Image image);
  void release(Image image);
  // Waits for the stream (a no-op for the calls above, which return results
  // that are already on the host or leave work queued in order).
  Status synchronize();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hilum::cuda
