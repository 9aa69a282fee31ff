// Vocabulary shared by the phantom generator, sizing, findings and reports.
#pragma once

#include <string_view>

#include "model/result.h"

namespace hilum {

enum class NoduleType { kSolid, kPartSolid, kGroundGlass };

std::string_view nodule_type_name(NoduleType t);  // "solid", "part-solid", "ground-glass"
Result<NoduleType> parse_nodule_type(std::string_view s);

}  // namespace hilum
