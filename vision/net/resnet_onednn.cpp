#include "vision/net/resnet_engine.h"

namespace hilum {
Result<std::unique_ptr<ResNetEngine>> make_onednn_engine(std::shared_ptr<const FoldedResNet>) {
  return unsupported("this build has no oneDNN");
}
}  // namespace hilum
