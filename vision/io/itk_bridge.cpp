#include "vision/io/itk_bridge.h"

#include <itkConnectedComponentImageFilter.h>
#include <itkFlatStructuringElement.h>
#include <itkGrayscaleMorphologicalOpeningImageFilter.h>
#include <itkImage.h>
#include <itkImageRegionConstIterator.h>
#include <itkRelabelComponentImageFilter.h>
#include <itkSignedMaurerDistanceMapImageFilter.h>
#include <itkSmoothingRecursiveGaussianImageFilter.h>

#include <algorithm>
#include <cstring>
#include <string>

namespace hilum::itk_bridge {
namespace {

template <typename T>
using Image = itk::Image<T, 3>;

template <typename T>
typename Image<T>::Pointer make_image(const Grid& g) {
  auto img = Image<T>::New();
  typename Image<T>::RegionType region;
  region.SetSize({static_cast<itk::SizeValueType>(g.nx), static_cast<itk::SizeValueType>(g.ny),
                  static_cast<itk::SizeValueType>(g.nz)});
  img->SetRegions(region);
  const double spacing[3] = {g.spacing[0], g.spacing[1], g.spacing[2]};
  img->SetSpacing(spacing);
  img->Allocate();
  return img;
}

template <typename T, typename S>
typename Image<T>::Pointer to_image(const std::vector<S>& data, const Grid& g) {
  auto img = make_image<T>(g);
  T* dst = img->GetBufferPointer();
  if constexpr (std::is_same_v<T, S>) {
    std::memcpy(dst, data.data(), data.size() * sizeof(T));
  } else {
    for (size_t i = 0; i < data.size(); ++i) dst[i] = static_cast<T>(data[i]);
  }
  return img;
}

template <typename T>
std::vector<T> from_image(const Image<T>* img, const Grid& g) {
  const T* src = img->GetBufferPointer();
  return std::vector<T>(src, src + g.voxels());
}

itk::FlatStructuringElement<3> box(const std::array<int, 3>& radius) {
  itk::Size<3> r;
  for (int a = 0; a < 3; ++a) r[a] = static_cast<itk::SizeValueType>(std::max(0, radius[a]));
  return itk::FlatStructuringElement<3>::Box(r);
}

Error itk_error(const char* what, const std::exception& e) {
  std::string msg = e.what();
  if (auto nl = msg.find('\n'); nl != std::string::npos) msg.resize(nl);
  return internal_error(std::string(what) + " failed (ITK): " + msg);
}

}  // namespace

Result<std::vector<uint32_t>> label_components(const std::vector<uint8_t>& mask, const Grid& grid, bool full,
                                               std::vector<int64_t>& sizes, bool by_size) {
  try {
    auto img = to_image<uint8_t>(mask, grid);
    auto cc = itk::ConnectedComponentImageFilter<Image<uint8_t>, Image<uint32_t>>::New();
    cc->SetInput(img);
    cc->SetFullyConnected(full);
    if (!by_size) {
      cc->Update();
      std::vector<uint32_t> labels = from_image<uint32_t>(cc->GetOutput(), grid);
      sizes.assign(static_cast<size_t>(cc->GetObjectCount()) + 1, 0);
      for (uint32_t l : labels) ++sizes[l];
      sizes[0] = 0;
      return labels;
    }
    auto relabel = itk::RelabelComponentImageFilter<Image<uint32_t>, Image<uint32_t>>::New();
    relabel->SetInput(cc->GetOutput());
    relabel->Update();
    const auto& counts = relabel->GetSizeOfObjectsInPixels();
    sizes.assign(1, 0);
    for (auto c : counts) sizes.push_back(static_cast<int64_t>(c));
    return from_image<uint32_t>(relabel->GetOutput(), grid);
  } catch (const std::exception& e) {
    return itk_error("connected components", e);
  }
}

Result<std::vector<float>> signed_distance(const std::vector<uint8_t>& mask, const Grid& grid) {
  const bool any = std::any_of(mask.begin(), mask.end(), [](uint8_t v) { return v != 0; });
  const bool all = std::all_of(mask.begin(), mask.end(), [](uint8_t v) { return v != 0; });
  if (!any || all) return std::vector<float>(mask.size(), any ? -1e9f : 1e9f);
  try {
    auto img = to_image<uint8_t>(mask, grid);
    auto dm = itk::SignedMaurerDistanceMapImageFilter<Image<uint8_t>, Image<float>>::New();
    dm->SetInput(img);
    dm->SetBackgroundValue(0);
    dm->SetInsideIsPositive(false);
    dm->SetSquaredDistance(false);
    dm->SetUseImageSpacing(true);
    dm->Update();
    return from_image<float>(dm->GetOutput(), grid);
  } catch (const std::exception& e) {
    return itk_error("distance map", e);
  }
}

Result<std::vector<float>> smooth_gaussian(const std::vector<float>& image, const Grid& grid,
                                           double sigma_mm) {
  try {
    auto img = to_image<float>(image, grid);
    auto g = itk::SmoothingRecursiveGaussianImageFilter<Image<float>, Image<float>>::New();
    g->SetInput(img);
    g->SetSigma(sigma_mm);
    g->SetNormalizeAcrossScale(false);
    g->Update();
    return from_image<float>(g->GetOutput(), grid);
  } catch (const std::exception& e) {
    return itk_error("Gaussian smoothing", e);
  }
}

Result<std::vector<float>> grey_opening_box(const std::vector<float>& image, const Grid& grid,
                                            const std::array<int, 3>& radius) {
  try {
    auto img = to_image<float>(image, grid);
    using Opening =
        itk::GrayscaleMorphologicalOpeningImageFilter<Image<float>, Image<float>, itk::FlatStructuringElement<3>>;
    auto f = Opening::New();
    f->SetInput(img);
    f->SetKernel(box(radius));
    f->Update();
    return from_image<float>(f->GetOutput(), grid);
  } catch (const std::exception& e) {
    return itk_error("grey opening", e);
  }
}

}  // namespace hilum::itk_bridge
