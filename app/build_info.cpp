#include "app/build_info.h"

#ifndef HILUM_HAVE_IMAGING
#define HILUM_HAVE_IMAGING 0
#endif

namespace hilum {

std::string hilum_version() { return HILUM_VERSION_STRING; }

std::string build_features() {
  std::string s;
  s += HILUM_HAVE_CUDA ? "cuda=on" : "cuda=off";
  s += HILUM_HAVE_IMAGING ? " imaging=on" : " imaging=off";
  s += HILUM_HAVE_ONEDNN ? " onednn=on" : " onednn=off";
  return s;
}

}  // namespace hilum
