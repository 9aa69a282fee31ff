#include "vision/net/resnet_config.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "model/file_io.h"

namespace hilum {
namespace {

using json = nlohmann::json;

struct StandardDepth {
  int depth;
  ResNetBlock block;
  std::array<int, 4> layers;
};
constexpr StandardDepth kDepths[] = {
    {18, ResNetBlock::kBasic, {2, 2, 2, 2}},        {34, ResNetBlock::kBasic, {3, 4, 6, 3}},
    {50, ResNetBlock::kBottleneck, {3, 4, 6, 3}},   {101, ResNetBlock::kBottleneck, {3, 4, 23, 3}},
    {152, ResNetBlock::kBottleneck, {3, 8, 36, 3}},
};

const char* block_name(ResNetBlock b) { return b == ResNetBlock::kBasic ? "basic" : "bottleneck"; }

// The standard depth with this topology, or 0.
int depth_of(ResNetBlock block, const std::array<int, 4>& layers) {
  for (const auto& d : kDepths) {
    if (d.block == block && d.layers == layers) return d.depth;
  }
  return 0;
}

Status validate(const ResNetConfig& c, const std::string& source) {
  auto fail = [&](const std::string& field, const std::string& what) {
    return bad_input(source + ": field '" + field + "' " + what);
  };
  for (int n : c.layers) {
    if (n < 1 || n > 1000) return fail("layers", "needs 4 block counts between 1 and 1000");
  }
  if (c.width < 1 || c.width > 65536) return fail("width", "must be between 1 and 65536");
  if (c.width_per_group < 1 || c.width_per_group > 65536)
    return fail("width_per_group", "must be between 1 and 65536");
  if (c.block == ResNetBlock::kBottleneck && (c.width * c.width_per_group) % 64 != 0) {
    return fail("width_per_group", "times width must be a multiple of 64");
  }
  if (c.num_classes < 0 || c.num_classes > 10000000) return fail("num_classes", "must be between 0 and 10^7");
  if (c.in_channels < 1 || c.in_channels > 4096) return fail("in_channels", "must be between 1 and 4096");
  return Status::Ok();
}

void add_conv(std::vector<std::pair<std::string, Shape>>& out, const std::string& name, int64_t cout,
              int64_t cin, int64_t k) {
  out.emplace_back(name + ".weight", Shape{cout, cin, k, k});
}

void add_bn(std::vector<std::pair<std::string, Shape>>& out, const std::string& name, int64_t c) {
  for (const char* p : {".weight", ".bias", ".running_mean", ".running_var"})
    out.emplace_back(name + p, Shape{c});
}

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

std::string ResNetConfig::describe() const {
  std::ostringstream os;
  if (depth) {
    os << "ResNet-" << depth;
  } else {
    int convs = 2;  // stem + fc
    for (int n : layers) convs += n * (block == ResNetBlock::kBottleneck ? 3 : 2);
    os << "ResNet-" << convs << "-custom";
  }
  os << " (" << block_name(block) << ' ' << layers[0] << '-' << layers[1] << '-' << layers[2] << '-'
     << layers[3] << ", width " << width;
  if (block == ResNetBlock::kBottleneck && width_per_group != 64)
    os << ", width_per_group " << width_per_group;
  os << ", " << num_classes << " classes, " << in_channels << " input channels)";
  return os.str();
}

Result<ResNetConfig> resnet_config_for_depth(int depth) {
  for (const auto& d : kDepths) {
    if (d.depth == depth) {
      ResNetConfig c;
      c.depth = depth;
      c.block = d.block;
      c.layers = d.layers;
      return c;
    }
  }
  return bad_input("unsupported ResNet depth " + std::to_string(depth) +
                   " (expected 18, 34, 50, 101 or 152)");
}

Result<ResNetConfig> parse_resnet_config(std::string_view text, const std::string& source) {
  json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return bad_input(source + ": not valid JSON");
  if (!j.is_object()) return bad_input(source + ": expected a JSON object");
  static const std::set<std::string> kFields = {
      "depth",           "block",       "layers",     "width", "width_multiplier",
      "width_per_group", "num_classes", "in_channels"};
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (!kFields.count(it.key())) {
      return bad_input(
          source + ": unknown field '" + it.key() +
          "' (known: depth, block, layers, width, width_multiplier, width_per_group, num_classes, "
          "in_channels)");
    }
  }
  auto integer = [&](const char* field, int64_t& out) -> Status {
    if (!j.contains(field)) return Status::Ok();
    const json& v = j[field];
    if (!v.is_number_integer()) return bad_input(source + ": field '" + field + "' must be an integer");
    out = v.get<int64_t>();
    return Status::Ok();
  };

  ResNetConfig c;
  int64_t depth = 0;
  HILUM_RETURN_IF_ERROR(integer("depth", depth));
  const bool has_layers = j.contains("layers");
  const bool has_block = j.contains("block");
  if (has_block != has_layers) {
    return bad_input(source + ": fields 'block' and 'layers' go together (or give 'depth' alone)");
  }
  if (has_layers) {
    const json& b = j["block"];
    if (!b.is_string() || (b != "basic" && b != "bottleneck")) {
      return bad_input(source + ": field 'block' must be \"basic\" or \"bottleneck\"");
    }
    c.block = b == "basic" ? ResNetBlock::kBasic : ResNetBlock::kBottleneck;
    const json& l = j["layers"];
    if (!l.is_array() || l.size() != 4)
      return bad_input(source + ": field 'layers' must be an array of 4 integers");
    for (int i = 0; i < 4; ++i) {
      if (!l[i].is_number_integer())
        return bad_input(source + ": field 'layers' must be an array of 4 integers");
      int64_t n = l[i].get<int64_t>();
      c.layers[i] = static_cast<int>(std::clamp<int64_t>(n, -1, 1001));
    }
    c.depth = depth_of(c.block, c.layers);
    if (depth != 0 && depth != c.depth) {
      return bad_input(source + ": field 'depth' (" + std::to_string(depth) +
                       ") disagrees with 'block' and 'layers'");
    }
  } else if (depth != 0) {
    auto d = resnet_config_for_depth(static_cast<int>(depth));
    if (!d.ok()) return bad_input(source + ": field 'depth': " + d.error().message());
    c = *d;
  } else {
    return bad_input(source + ": needs field 'depth' (or 'block' and 'layers')");
  }

  if (j.contains("width") && j.contains("width_multiplier")) {
    return bad_input(source + ": give field 'width' or 'width_multiplier', not both");
  }
  HILUM_RETURN_IF_ERROR(integer("width", c.width));
  if (j.contains("width_multiplier")) {
    const json& m = j["width_multiplier"];
    if (!m.is_number()) return bad_input(source + ": field 'width_multiplier' must be a number");
    const double mult = m.get<double>();
    const double w = 64.0 * mult;
    if (!(w >= 1 && w <= 65536) || std::fabs(w - std::round(w)) > 1e-9) {
      return bad_input(source +
                       ": field 'width_multiplier' must make 64 x multiplier a whole number of channels");
    }
    c.width = static_cast<int64_t>(std::llround(w));
  }
  HILUM_RETURN_IF_ERROR(integer("width_per_group", c.width_per_group));
  HILUM_RETURN_IF_ERROR(integer("num_classes", c.num_classes));
  HILUM_RETURN_IF_ERROR(integer("in_channels", c.in_channels));
  HILUM_RETURN_IF_ERROR(validate(c, source));
  return c;
}

Result<ResNetConfig> read_resnet_config(const std::filesystem::path& path) {
  HILUM_ASSIGN_OR_RETURN(std::string text, read_file(path));
  return parse_resnet_config(text, path.string());
}

std::string resnet_config_json(const ResNetConfig& c) {
  json j;
  if (c.depth) j["depth"] = c.depth;
  j["block"] = block_name(c.block);
  j["layers"] = c.layers;
  j["width"] = c.width;
  j["width_per_group"] = c.width_per_group;
  j["num_classes"] = c.num_classes;
  j["in_channels"] = c.in_channels;
  return j.dump(2);
}

std::vector<std::pair<std::string, Shape>> resnet_tensor_shapes(const ResNetConfig& c) {
  std::vector<std::pair<std::string, Shape>> out;
  add_conv(out, "conv1", c.width, c.in_channels, 7);
  add_bn(out, "bn1", c.width);
  int64_t inplanes = c.width;
  for (int stage = 0; stage < 4; ++stage) {
    const int64_t planes = c.width << stage;
    const int64_t stride = stage == 0 ? 1 : 2;
    const int64_t out_channels = planes * c.expansion();
    for (int b = 0; b < c.layers[stage]; ++b) {
      const std::string p = "layer" + std::to_string(stage + 1) + "." + std::to_string(b) + ".";
      if (c.block == ResNetBlock::kBasic) {
        add_conv(out, p + "conv1", planes, inplanes, 3);
        add_bn(out, p + "bn1", planes);
        add_conv(out, p + "conv2", planes, planes, 3);
        add_bn(out, p + "bn2", planes);
      } else {
        const int64_t inner = c.inner_width(planes);
        add_conv(out, p + "conv1", inner, inplanes, 1);
        add_bn(out, p + "bn1", inner);
        add_conv(out, p + "conv2", inner, inner, 3);
        add_bn(out, p + "bn2", inner);
        add_conv(out, p + "conv3", out_channels, inner, 1);
        add_bn(out, p + "bn3", out_channels);
      }
      if (b == 0 && (stride != 1 || inplanes != out_channels)) {
        add_conv(out, p + "downsample.0", out_channels, inplanes, 1);
        add_bn(out, p + "downsample.1", out_channels);
      }
      inplanes = out_channels;
    }
  }
  if (c.num_classes > 0) {
    out.emplace_back("fc.weight", Shape{c.num_classes, inplanes});
    out.emplace_back("fc.bias", Shape{c.num_classes});
  }
  return out;
}

Result<ResNetConfig> infer_resnet_config(const SafetensorsFile& f) {
  const std::string file = f.path().string();
  auto shape_of = [&](const std::string& name, size_t rank) -> Result<Shape> {
    const auto* e = f.entry(name);
    if (!e) return bad_input(file + ": missing tensor '" + name + "' (cannot infer the ResNet architecture)");
    if (e->shape.size() != rank) {
      return bad_input(file + ": tensor '" + name + "' has shape " + shape_string(e->shape) +
                       ", expected rank " + std::to_string(rank));
    }
    return e->shape;
  };
  ResNetConfig c;
  HILUM_ASSIGN_OR_RETURN(Shape stem, shape_of("conv1.weight", 4));
  c.width = stem[0];
  c.in_channels = stem[1];
  c.block = f.contains("layer1.0.conv3.weight") ? ResNetBlock::kBottleneck : ResNetBlock::kBasic;
  for (int stage = 0; stage < 4; ++stage) {
    int n = 0;
    while (f.contains("layer" + std::to_string(stage + 1) + "." + std::to_string(n) + ".conv1.weight")) ++n;
    if (n == 0) {
      return bad_input(file + ": missing tensor 'layer" + std::to_string(stage + 1) +
                       ".0.conv1.weight' (cannot infer the ResNet architecture)");
    }
    c.layers[stage] = n;
  }
  if (c.block == ResNetBlock::kBottleneck) {
    HILUM_ASSIGN_OR_RETURN(Shape first, shape_of("layer1.0.conv1.weight", 4));
    if (c.width <= 0 || (first[0] * 64) % c.width != 0) {
      return bad_input(file + ": tensor 'layer1.0.conv1.weight' has shape " + shape_string(first) +
                       ", which fits no bottleneck width for a stem of " + std::to_string(c.width) +
                       " channels");
    }
    c.width_per_group = first[0] * 64 / c.width;
  }
  if (f.contains("fc.weight")) {
    HILUM_ASSIGN_OR_RETURN(Shape fc, shape_of("fc.weight", 2));
    c.num_classes = fc[0];
  } else {
    c.num_classes = 0;
  }
  c.depth = depth_of(c.block, c.layers);
  if (auto s = validate(c, file + " (inferred architecture)"); !s.ok()) return s.error();
  return c;
}

Status check_resnet_tensors(const ResNetConfig& config, const SafetensorsFile& f) {
  const std::string file = f.path().string();
  std::set<std::string> expected;
  for (const auto& [name, shape] : resnet_tensor_shapes(config)) {
    expected.insert(name);
    const auto* e = f.entry(name);
    if (!e)
      return bad_input(file + ": missing tensor '" + name + "' (expected shape " + shape_string(shape) + ")");
    if (e->shape != shape) {
      return bad_input(file + ": tensor '" + name + "' has shape " + shape_string(e->shape) + ", expected " +
                       shape_string(shape) + " for " + config.describe());
    }
    if (!dtype_is_float(e->dtype)) {
      return bad_input(file + ": tensor '" + name + "' has dtype " + std::string(dtype_name(e->dtype)) +
                       ", expected a floating-point type");
    }
  }
  if (config.num_classes == 0 && (f.contains("fc.weight") || f.contains("fc.bias"))) {
    return bad_input(file + ": holds an fc layer but the config says num_classes 0");
  }
  for (const std::string& name : f.names()) {
    if (expected.count(name) || ends_with(name, ".num_batches_tracked")) continue;
    return bad_input(file + ": unexpected tensor '" + name + "' (not part of " + config.describe() + ")");
  }
  return Status::Ok();
}

}  // namespace hilum
