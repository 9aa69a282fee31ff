// What this binary was built with, for `hilum --version` and reports.
#pragma once

#include <string>

namespace hilum {

std::string hilum_version();      // "0.1.0"
std::string build_features();     // "cuda=on imaging=on onednn=on"

}  // namespace hilum
