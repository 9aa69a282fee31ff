// Closings of a build without CUDA: the GPU path reports that it is not there.
#include "cuda/distance.h"

namespace hilum::cuda {

Result<std::vector<std::vector<uint8_t>>> closings(const std::vector<uint8_t>&, const detector::Dims&,
                                                   const std::vector<double>&, double) {
  return unsupported("this Hilum build has no CUDA support (HILUM_WITH_CUDA=OFF)");
}

}  // namespace hilum::cuda
