#include "vision/nodule.h"

#include <string>

namespace hilum {

std::string_view nodule_type_name(NoduleType t) {
  switch (t) {
    case NoduleType::kSolid: return "solid";
    case NoduleType::kPartSolid: return "part-solid";
    case NoduleType::kGroundGlass: return "ground-glass";
  }
  return "solid";
}

Result<NoduleType> parse_nodule_type(std::string_view s) {
  if (s == "solid") return NoduleType::kSolid;
  if (s == "part-solid" || s == "part_solid" || s == "partsolid") return NoduleType::kPartSolid;
  if (s == "ground-glass" || s == "ground_glass" || s == "ggn" || s == "ggo") return NoduleType::kGroundGlass;
  return bad_input("unknown nodule type '" + std::string(s) + "' (solid, part-solid, ground-glass)");
}

}  // namespace hilum
