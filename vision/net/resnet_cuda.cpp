#include "vision/net/resnet_engine.h"

namespace hilum {
Result<std::unique_ptr<ResNetEngine>> make_cuda_engine(std::shared_ptr<const FoldedResNet>, DType) {
  return unsupported("todo");
}
}  // namespace hilum
