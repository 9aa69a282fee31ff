// Detector API of a build without CUDA: no session can be made.
#include "cuda/detector.h"

namespace hilum::cuda {

struct GpuDetector::Impl {};

GpuDetector::GpuDetector() = default;
GpuDetector::~GpuDetector() = default;
GpuDetector::GpuDetector(GpuDetector&&) noexcept = default;
GpuDetector& GpuDetector::operator=(GpuDetector&&) noexcept = default;

namespace {
Error not_built() { return unsupported("this Hilum build has no CUDA support (HILUM_WITH_CUDA=OFF)"); }
}  // namespace

Result<GpuDetector> GpuDetector::create() { return not_built(); }
Result<GpuDetector::Image> GpuDetector::upload(const float*, const detector::Dims&, int) { return not_built(); }
Result<GpuDetector::Image> GpuDetector::upload_mask(const uint8_t*, const detector::Dims&) { return not_built(); }
Result<GpuDetector::Image> GpuDetector::zeros(const detector::Dims&, int) { return not_built(); }
Result<GpuDetector::Image> GpuDetector::smooth(Image, const std::vector<float>&, const std::vector<float>&,
                                              const std::vector<float>&) {
  return not_built();
}
Result<GpuDetector::Image> GpuDetector::ground_glass_image(Image, float, float, int) {
  return not_built();
}
Status GpuDetector::vesselness_update(Image, Image, Image, Image, float, double, double, double, double) {
  return not_built();
}
Result<GpuDetector::Image> GpuDetector::suppress_vessels(Image, Image, float, double, double) { return not_built(); }
Result<GpuDetector::Image> GpuDetector::bulge_residue(Image, Image, Image, Image, const BulgeParams&) {
  return not_built();
}
Result<std::vector<detector::Peak>> GpuDetector::peaks(Image, Image, float, float,
                                                       const std::vector<std::array<double, 3>>&) {
  return not_built();
}
Result<std::vector<float>> GpuDetector::download(Image) { return not_built(); }
void GpuDetector::release(Image) {}
Status GpuDetector::synchronize() { return not_built(); }

}  // namespace hilum::cuda
