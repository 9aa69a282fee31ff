// On/off switches read from the environment, for side-by-side timing of a
// code path against its alternative (HILUM_KEEP_LARGE_BUFFERS=0,
// HILUM_CANDIDATES_ON_CPU=1, ...). Header-only: hilum_cuda uses it too.
#pragma once

#include <cstdlib>
#include <string_view>

namespace hilum {

// "0" is off, "1" is on; unset or anything else is `fallback`.
inline bool env_switch(const char* name, bool fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr) return fallback;
  const std::string_view s(v);
  return s == "1" ? true : s == "0" ? false : fallback;
}

}  // namespace hilum
