#include "vision/io/gaussian.h"

#include <algorithm>
#include <cmath>
#include <mutex>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <string>
#include <type_traits>

#include "model/parallel.h"

namespace hilum {

std::vector<float> gaussian_kernel(double sigma_voxels) {
  if (!(sigma_voxels >= 0.05)) return {1.0f};
  const int r = std::max(1, static_cast<int>(std::ceil(4.0 * sigma_voxels)));
  std::vector<double> k(static_cast<size_t>(2 * r + 1));
  double sum = 0;
  for (int j = -r; j <= r; ++j)
    sum += k[static_cast<size_t>(j + r)] = std::exp(-0.5 * j * j / (sigma_voxels * sigma_voxels));
  std::vector<float> out(k.size());
  for (size_t i = 0; i < k.size(); ++i) out[i] = static_cast<float>(k[i] / sum);
  return out;
}

Status gaussian_smooth_into(const float* image, const itk_bridge::Grid& g, double sigma_mm, float* out,
                            float* xy) {
  if (g.nx <= 0 || g.ny <= 0 || g.nz <= 0) return internal_error("gaussian_smooth: empty grid");
  if (!(sigma_mm > 0)) return internal_error("gaussian_smooth: sigma must be positive");
  const std::vector<float> kx = gaussian_kernel(sigma_mm / g.spacing[0]);
  const std::vector<float> ky = gaussian_kernel(sigma_mm / g.spacing[1]);
  const std::vector<float> kz = gaussian_kernel(sigma_mm / g.spacing[2]);
  const int64_t plane = g.nx * g.ny;
  std::string failure;
  std::mutex failure_mu;
  // x and y in each slice.
  parallel_for(g.nz, 1, [&](int64_t first, int64_t last) {
    const cv::Mat kxm(1, static_cast<int>(kx.size()), CV_32F, const_cast<float*>(kx.data()));
    const cv::Mat kym(static_cast<int>(ky.size()), 1, CV_32F, const_cast<float*>(ky.data()));
    for (int64_t z = first; z < last; ++z) {
      const cv::Mat src(static_cast<int>(g.ny), static_cast<int>(g.nx), CV_32F, const_cast<float*>(image + z * plane));
      cv::Mat dst(static_cast<int>(g.ny), static_cast<int>(g.nx), CV_32F, xy + z * plane);
      try {
        cv::sepFilter2D(src, dst, CV_32F, kxm, kym, cv::Point(-1, -1), 0, cv::BORDER_REPLICATE);
      } catch (const cv::Exception& e) {
        const std::lock_guard<std::mutex> lock(failure_mu);
        failure = e.what();  // any one message will do
      }
    }
  });
  if (!failure.empty()) return internal_error("gaussian_smooth: OpenCV: " + failure);
  // z: each output slice a weighted sum of its neighbours (replicated at the ends), in tap order.
  const int64_t rz = static_cast<int64_t>(kz.size() / 2);
  parallel_for(g.nz, 1, [&](int64_t first, int64_t last) {
    for (int64_t z = first; z < last; ++z) {
      float* o = out + z * plane;
      std::fill(o, o + plane, 0.0f);
      for (int64_t j = -rz; j <= rz; ++j) {
        const float w = kz[static_cast<size_t>(j + rz)];
        const float* s = xy + std::clamp<int64_t>(z + j, 0, g.nz - 1) * plane;
        for (int64_t i = 0; i < plane; ++i) o[i] += w * s[i];
      }
    }
  });
  return Status::Ok();
}

Result<std::vector<float>> gaussian_smooth(const std::vector<float>& image, const itk_bridge::Grid& g,
                                           double sigma_mm) {
  if (g.nx <= 0 || g.ny <= 0 || g.nz <= 0 || static_cast<int64_t>(image.size()) != g.voxels()) {
    return internal_error("gaussian_smooth: the buffer does not match the grid");
  }
  std::vector<float> xy(image.size()), out(image.size());
  HILUM_RETURN_IF_ERROR(gaussian_smooth_into(image.data(), g, sigma_mm, out.data(), xy.data()));
  return out;
}

template <typename T>
Status box_extremum_into(const T* image, const itk_bridge::Grid& g, const std::array<int, 3>& r, bool dilate, T* out,
                         T* xy) {
  if (g.nx <= 0 || g.ny <= 0 || g.nz <= 0) return internal_error("box_extremum: empty grid");
  if (r[0] < 0 || r[1] < 0 || r[2] < 0) return internal_error("box_extremum: negative half-width");
  constexpr int type = std::is_same_v<T, float> ? CV_32F : CV_8U;
  const int64_t plane = g.nx * g.ny;
  const cv::Mat kernel = cv::getStructuringElement(cv::MORPH_RECT, cv::Size(2 * r[0] + 1, 2 * r[1] + 1));
  std::string failure;
  std::mutex failure_mu;
  parallel_for(g.nz, 1, [&](int64_t first, int64_t last) {
    for (int64_t z = first; z < last; ++z) {
      const cv::Mat src(static_cast<int>(g.ny), static_cast<int>(g.nx), type, const_cast<T*>(image + z * plane));
      cv::Mat dst(static_cast<int>(g.ny), static_cast<int>(g.nx), type, xy + z * plane);
      try {
        // The default border value leaves the extremum to the voxels inside the grid.
        if (dilate) {
          cv::dilate(src, dst, kernel);
        } else {
          cv::erode(src, dst, kernel);
        }
      } catch (const cv::Exception& e) {
        const std::lock_guard<std::mutex> lock(failure_mu);
        failure = e.what();
      }
    }
  });
  if (!failure.empty()) return internal_error("box_extremum: OpenCV: " + failure);
  parallel_for(g.nz, 1, [&](int64_t first, int64_t last) {
    for (int64_t z = first; z < last; ++z) {
      T* o = out + z * plane;
      const int64_t z0 = std::max<int64_t>(0, z - r[2]), z1 = std::min<int64_t>(g.nz - 1, z + r[2]);
      std::copy_n(xy + z0 * plane, plane, o);
      for (int64_t k = z0 + 1; k <= z1; ++k) {
        const T* s = xy + k * plane;
        if (dilate) {
          for (int64_t i = 0; i < plane; ++i) o[i] = std::max(o[i], s[i]);
        } else {
          for (int64_t i = 0; i < plane; ++i) o[i] = std::min(o[i], s[i]);
        }
      }
    }
  });
  return Status::Ok();
}

template <typename T>
Result<std::vector<T>> box_extremum(const std::vector<T>& image, const itk_bridge::Grid& g,
                                    const std::array<int, 3>& r, bool dilate) {
  if (g.nx <= 0 || g.ny <= 0 || g.nz <= 0 || static_cast<int64_t>(image.size()) != g.voxels()) {
    return internal_error("box_extremum: the buffer does not match the grid");
  }
  std::vector<T> xy(image.size()), out(image.size());
  HILUM_RETURN_IF_ERROR(box_extremum_into(image.data(), g, r, dilate, out.data(), xy.data()));
  return out;
}

template Result<std::vector<float>> box_extremum(const std::vector<float>&, const itk_bridge::Grid&,
                                                 const std::array<int, 3>&, bool);
template Result<std::vector<uint8_t>> box_extremum(const std::vector<uint8_t>&, const itk_bridge::Grid&,
                                                   const std::array<int, 3>&, bool);
template Status box_extremum_into(const float*, const itk_bridge::Grid&, const std::array<int, 3>&, bool, float*,
                                  float*);

}  // namespace hilum
