// Components of a build without CUDA: the GPU path reports that it is not there.
#include "cuda/components.h"

namespace hilum::cuda {

Status label_components(const std::vector<uint8_t>&, const detector::Dims&, std::vector<uint32_t>&,
                        std::vector<int64_t>&, bool) {
  return unsupported("this Hilum build has no CUDA support (HILUM_WITH_CUDA=OFF)");
}

Status components_touching_side_faces(const std::vector<uint8_t>&, const detector::Dims&,
                                      std::vector<uint8_t>&) {
  return unsupported("this Hilum build has no CUDA support (HILUM_WITH_CUDA=OFF)");
}

}  // namespace hilum::cuda
