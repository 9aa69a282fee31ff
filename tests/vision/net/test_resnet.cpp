// ResNet on the CPU against PyTorch/torchvision golden files
// (tests/golden/resnet_golden.py), both CPU engines, and the loader's errors.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "model/npy.h"
#include "model/safetensors.h"
#include "model/tensor_util.h"
#include "vision/net/resnet.h"
#include "vision/net/resnet_random.h"

namespace hilum {
namespace {

namespace fs = std::filesystem;

const fs::path kGolden = fs::path(HILUM_TEST_DATA_DIR) / "golden" / "resnet";

// fp32 against the float64 PyTorch answer: the brief's bound for the CPU path.
constexpr double kF32Tolerance = 1e-4;

Tensor load_npy(const std::string& name) {
  auto t = read_npy(kGolden / name);
  EXPECT_TRUE(t.ok()) << t.error().message();
  return t.ok() ? *t : Tensor();
}

double rel_l2(const Tensor& got, const Tensor& want) {
  auto e = relative_l2_error(got, want);
  EXPECT_TRUE(e.ok()) << e.error().message();
  return e.ok() ? *e : 1e9;
}

struct GoldenCase {
  const char* name;
  bool with_config;
};

class ResNetGolden : public ::testing::TestWithParam<std::tuple<GoldenCase, CpuEngine>> {};

TEST_P(ResNetGolden, MatchesTorchvision) {
  const auto [golden, engine] = GetParam();
#if !HILUM_HAVE_ONEDNN
  if (engine == CpuEngine::kOneDnn) GTEST_SKIP() << "built without oneDNN";
#endif
  const std::string name = golden.name;
  std::optional<ResNetConfig> config;
  if (golden.with_config) {
    auto c = read_resnet_config(kGolden / (name + "_config.json"));
    ASSERT_TRUE(c.ok()) << c.error().message();
    config = *c;
  }
  ResNetOptions options;
  options.cpu_engine = engine;
  auto net = ResNet::load(kGolden / (name + "_weights.safetensors"), config, options);
  ASSERT_TRUE(net.ok()) << net.error().message();
  EXPECT_EQ((*net)->engine_name(), engine == CpuEngine::kOneDnn ? "cpu-onednn" : "cpu-reference");

  Tensor input = load_npy(name + "_input.npy");
  struct Want {
    ResNetOutput output;
    const char* file;
  };
  for (const Want& w :
       {Want{ResNetOutput::kLogits, "_logits.npy"}, Want{ResNetOutput::kFeatures, "_features.npy"},
        Want{ResNetOutput::kSpatialFeatures, "_spatial.npy"}}) {
    Tensor want = load_npy(name + w.file);
    auto got = (*net)->forward(input, w.output);
    ASSERT_TRUE(got.ok()) << got.error().message();
    EXPECT_EQ(got->shape(), want.shape()) << w.file;
    EXPECT_LE(rel_l2(*got, want), kF32Tolerance) << name << w.file;
  }
  // A second call with a different batch size reuses nothing stale.
  auto first = input.slice0(0, 1);
  ASSERT_TRUE(first.ok());
  auto one = (*net)->forward(*first, ResNetOutput::kLogits);
  ASSERT_TRUE(one.ok()) << one.error().message();
  Tensor want_logits = load_npy(name + "_logits.npy");
  EXPECT_LE(rel_l2(*one, *want_logits.slice0(0, 1)), kF32Tolerance);
}

INSTANTIATE_TEST_SUITE_P(CpuEngines, ResNetGolden,
                         ::testing::Combine(::testing::Values(GoldenCase{"basic", false},
                                                              GoldenCase{"bottleneck", true},
                                                              GoldenCase{"bottleneck", false},
                                                              GoldenCase{"slab", false}),
                                            ::testing::Values(CpuEngine::kReference, CpuEngine::kOneDnn)),
                         [](const auto& info) {
                           const GoldenCase& g = std::get<0>(info.param);
                           return std::string(g.name) + (g.with_config ? "_config_" : "_inferred_") +
                                  (std::get<1>(info.param) == CpuEngine::kOneDnn ? "onednn" : "reference");
                         });

TEST(ResNetConfig, InfersTheArchitectureFromTensorNames) {
  auto f = SafetensorsFile::open(kGolden / "bottleneck_weights.safetensors");
  ASSERT_TRUE(f.ok()) << f.error().message();
  auto c = infer_resnet_config(*f);
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(c->depth, 50);
  EXPECT_EQ(c->block, ResNetBlock::kBottleneck);
  EXPECT_EQ(c->layers, (std::array<int, 4>{3, 4, 6, 3}));
  EXPECT_EQ(c->width, 4);
  EXPECT_EQ(c->width_per_group, 64);
  EXPECT_EQ(c->num_classes, 7);
  EXPECT_EQ(c->in_channels, 3);

  auto b = SafetensorsFile::open(kGolden / "basic_weights.safetensors");
  ASSERT_TRUE(b.ok());
  auto cb = infer_resnet_config(*b);
  ASSERT_TRUE(cb.ok()) << cb.error().message();
  EXPECT_EQ(cb->depth, 18);
  EXPECT_EQ(cb->block, ResNetBlock::kBasic);
  EXPECT_EQ(cb->width, 8);
  EXPECT_EQ(cb->num_classes, 10);
}

TEST(ResNetConfig, StandardDepthsHaveTorchvisionTensorCounts) {
  // len(torchvision.models.resnetNN().state_dict()) minus the num_batches_tracked entries.
  const std::pair<int, size_t> counts[] = {{18, 102}, {34, 182}, {50, 267}, {101, 522}, {152, 777}};
  for (auto [depth, count] : counts) {
    auto c = resnet_config_for_depth(depth);
    ASSERT_TRUE(c.ok());
    EXPECT_EQ(resnet_tensor_shapes(*c).size(), count) << depth;
  }
  auto c = resnet_config_for_depth(152);
  EXPECT_EQ(c->feature_channels(), 2048);
  auto shapes = resnet_tensor_shapes(*c);
  EXPECT_EQ(shapes.back().first, "fc.bias");
  EXPECT_EQ(shapes[shapes.size() - 2].second, (Shape{1000, 2048}));
  EXPECT_FALSE(resnet_config_for_depth(42).ok());
}

TEST(ResNetConfig, ParsesAndRejectsJson) {
  auto ok = parse_resnet_config(R"({"depth": 152, "width_multiplier": 0.125, "num_classes": 2})", "c.json");
  ASSERT_TRUE(ok.ok()) << ok.error().message();
  EXPECT_EQ(ok->width, 8);
  EXPECT_EQ(ok->layers, (std::array<int, 4>{3, 8, 36, 3}));
  auto custom = parse_resnet_config(R"({"block": "basic", "layers": [1, 1, 2, 1], "width": 16})", "c.json");
  ASSERT_TRUE(custom.ok()) << custom.error().message();
  EXPECT_EQ(custom->depth, 0);
  // Round trip through resnet_config_json.
  auto again = parse_resnet_config(resnet_config_json(*ok), "again.json");
  ASSERT_TRUE(again.ok()) << again.error().message();
  EXPECT_EQ(again->width, 8);
  EXPECT_EQ(again->num_classes, 2);

  const std::pair<const char*, const char*> bad[] = {
      {R"({"depth": 50, "dropout": 0.1})", "unknown field 'dropout'"},
      {R"({"depth": "fifty"})", "field 'depth' must be an integer"},
      {R"({"depth": 51})", "unsupported ResNet depth 51"},
      {R"({"depth": 18, "block": "basic", "layers": [3, 4, 6, 3]})", "disagrees"},
      {R"({"block": "basic"})", "go together"},
      {R"({"block": "fancy", "layers": [1, 1, 1, 1]})", "field 'block'"},
      {R"({"depth": 50, "width": 0})", "field 'width'"},
      {R"({"depth": 50, "width_multiplier": 0.3})", "field 'width_multiplier'"},
      {R"({"depth": 50, "num_classes": -1})", "field 'num_classes'"},
      {R"({"width": 8})", "needs field 'depth'"},
      {R"([1, 2])", "expected a JSON object"},
      {R"({"depth": 50,)", "not valid JSON"},
  };
  for (auto [json, fragment] : bad) {
    auto r = parse_resnet_config(json, "bad.json");
    ASSERT_FALSE(r.ok()) << json;
    EXPECT_EQ(r.error().kind(), ErrorKind::kBadInput);
    EXPECT_NE(r.error().message().find(fragment), std::string::npos) << r.error().message();
    EXPECT_EQ(r.error().message().rfind("bad.json: ", 0), 0u) << r.error().message();
  }
}

class ResNetFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("hilum_resnet_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    auto f = SafetensorsFile::open(kGolden / "basic_weights.safetensors");
    ASSERT_TRUE(f.ok());
    for (const auto& name : f->names()) tensors_.emplace_back(name, *f->get(name));
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path write(const std::vector<std::pair<std::string, Tensor>>& tensors) {
    fs::path p = dir_ / "weights.safetensors";
    EXPECT_TRUE(write_safetensors(p, tensors).ok());
    return p;
  }
  void expect_load_error(const fs::path& p, const std::vector<std::string>& fragments) {
    auto r = ResNet::load(p, std::nullopt);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().kind(), ErrorKind::kBadInput);
    EXPECT_NE(r.error().message().find(p.string()), std::string::npos) << r.error().message();
    for (const auto& f : fragments)
      EXPECT_NE(r.error().message().find(f), std::string::npos) << r.error().message();
  }

  fs::path dir_;
  std::vector<std::pair<std::string, Tensor>> tensors_;
};

TEST_F(ResNetFiles, MissingTensorIsNamedWithItsShape) {
  std::erase_if(tensors_, [](const auto& t) { return t.first == "layer3.1.bn2.running_var"; });
  expect_load_error(write(tensors_), {"missing tensor 'layer3.1.bn2.running_var'", "[32]"});
}

TEST_F(ResNetFiles, MisShapedTensorGivesExpectedAndActual) {
  for (auto& [name, t] : tensors_) {
    if (name == "layer2.0.conv2.weight") t = Tensor::zeros({16, 16, 1, 3}, DType::kF32);
  }
  expect_load_error(write(tensors_),
                    {"'layer2.0.conv2.weight'", "[16, 16, 1, 3]", "expected [16, 16, 3, 3]"});
}

TEST_F(ResNetFiles, UnexpectedTensorAndNonFloatDtypeAreErrors) {
  auto extra = tensors_;
  extra.emplace_back("layer5.0.conv1.weight", Tensor::zeros({2, 2, 1, 1}, DType::kF32));
  expect_load_error(write(extra), {"unexpected tensor 'layer5.0.conv1.weight'"});
  for (auto& [name, t] : tensors_) {
    if (name == "fc.bias") t = Tensor::zeros({10}, DType::kI32);
  }
  expect_load_error(write(tensors_), {"'fc.bias'", "floating-point"});
}

TEST_F(ResNetFiles, ConfigThatDisagreesWithTheFileNamesTheTensor) {
  fs::path p = write(tensors_);
  auto c = parse_resnet_config(R"({"depth": 34, "width": 8, "num_classes": 10})", "c.json");
  ASSERT_TRUE(c.ok());
  auto r = ResNet::load(p, *c);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("missing tensor 'layer1.2.conv1.weight'"), std::string::npos)
      << r.error().message();
}

TEST_F(ResNetFiles, BrokenFileIsAnError) {
  fs::path p = dir_ / "broken.safetensors";
  std::ofstream(p) << "not a safetensors file";
  auto r = ResNet::load(p, std::nullopt);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find(p.string()), std::string::npos) << r.error().message();
}

TEST(ResNet, RejectsBadInputsAndUnsupportedPairings) {
  auto net = ResNet::load(kGolden / "basic_weights.safetensors", std::nullopt);
  ASSERT_TRUE(net.ok()) << net.error().message();
  auto rank3 = (*net)->forward(Tensor::zeros({3, 8, 8}, DType::kF32));
  ASSERT_FALSE(rank3.ok());
  EXPECT_NE(rank3.error().message().find("(N, 3, H, W)"), std::string::npos) << rank3.error().message();
  auto channels = (*net)->forward(Tensor::zeros({1, 4, 8, 8}, DType::kF32));
  ASSERT_FALSE(channels.ok());
  EXPECT_NE(channels.error().message().find("4 channels"), std::string::npos) << channels.error().message();
  EXPECT_FALSE((*net)->forward(Tensor::zeros({1, 3, 8, 8}, DType::kI32)).ok());
  EXPECT_FALSE((*net)->forward(Tensor::zeros({0, 3, 8, 8}, DType::kF32)).ok());
  // Float64 input is converted; a tiny 1x1 image still runs.
  auto tiny = (*net)->forward(Tensor::zeros({1, 3, 1, 1}, DType::kF64));
  ASSERT_TRUE(tiny.ok()) << tiny.error().message();
  EXPECT_EQ(tiny->shape(), (Shape{1, 10}));

  ResNetOptions f16_cpu;
  f16_cpu.dtype = DType::kF16;
  auto r = ResNet::load(kGolden / "basic_weights.safetensors", std::nullopt, f16_cpu);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind(), ErrorKind::kUnsupported);
  EXPECT_NE(r.error().message().find("f32 only"), std::string::npos) << r.error().message();
}

// The demo bundle's image branch: ResNet-152 depth at width 8 on 64x64 patches.
TEST(ResNet, NarrowResNet152On64PixelPatches) {
  auto c = parse_resnet_config(R"({"depth": 152, "width": 8, "num_classes": 2})", "narrow.json");
  ASSERT_TRUE(c.ok());
  fs::path dir = fs::temp_directory_path() / ("hilum_resnet152_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  fs::path p = dir / "narrow152.safetensors";
  ASSERT_TRUE(write_safetensors(p, random_resnet_weights(*c, 99)).ok());

  Tensor x = Tensor::empty({4, 3, 64, 64}, DType::kF32);
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = std::sin(0.37f * static_cast<float>(i));
  ResNetOptions ref_options;
  ref_options.cpu_engine = CpuEngine::kReference;
  auto ref = ResNet::load(p, std::nullopt, ref_options);
  ASSERT_TRUE(ref.ok()) << ref.error().message();
  EXPECT_EQ((*ref)->config().depth, 152);
  auto spatial = (*ref)->forward(x, ResNetOutput::kSpatialFeatures);
  ASSERT_TRUE(spatial.ok()) << spatial.error().message();
  EXPECT_EQ(spatial->shape(), (Shape{4, 256, 2, 2}));
  auto logits = (*ref)->forward(x, ResNetOutput::kLogits);
  ASSERT_TRUE(logits.ok());
  for (float v : logits->span<float>()) ASSERT_TRUE(std::isfinite(v));
#if HILUM_HAVE_ONEDNN
  ResNetOptions dnn_options;
  dnn_options.cpu_engine = CpuEngine::kOneDnn;
  auto dnn = ResNet::load(p, std::nullopt, dnn_options);
  ASSERT_TRUE(dnn.ok()) << dnn.error().message();
  auto dnn_spatial = (*dnn)->forward(x, ResNetOutput::kSpatialFeatures);
  ASSERT_TRUE(dnn_spatial.ok()) << dnn_spatial.error().message();
  EXPECT_LE(rel_l2(*dnn_spatial, *spatial), kF32Tolerance);
  auto dnn_logits = (*dnn)->forward(x, ResNetOutput::kLogits);
  ASSERT_TRUE(dnn_logits.ok());
  EXPECT_LE(rel_l2(*dnn_logits, *logits), kF32Tolerance);
#endif
  fs::remove_all(dir);
}

TEST(ResNet, FeaturesOnlyNetworkWithoutFc) {
  auto c = parse_resnet_config(R"({"block": "basic", "layers": [1, 1, 1, 1], "width": 4, "num_classes": 0,
                                   "in_channels": 1})",
                               "nofc.json");
  ASSERT_TRUE(c.ok()) << c.error().message();
  auto weights = random_resnet_weights(*c, 5);
  fs::path p = fs::temp_directory_path() / ("hilum_nofc_" + std::to_string(::getpid()) + ".safetensors");
  ASSERT_TRUE(write_safetensors(p, weights).ok());
  auto net = ResNet::load(p, std::nullopt);
  fs::remove(p);
  ASSERT_TRUE(net.ok()) << net.error().message();
  EXPECT_EQ((*net)->config().num_classes, 0);
  EXPECT_EQ((*net)->config().in_channels, 1);
  auto f = (*net)->forward(Tensor::zeros({2, 1, 20, 20}, DType::kF32), ResNetOutput::kFeatures);
  ASSERT_TRUE(f.ok()) << f.error().message();
  EXPECT_EQ(f->shape(), (Shape{2, 32}));
  auto l = (*net)->forward(Tensor::zeros({2, 1, 20, 20}, DType::kF32), ResNetOutput::kLogits);
  ASSERT_FALSE(l.ok());
  EXPECT_NE(l.error().message().find("no fc layer"), std::string::npos);
}

}  // namespace
}  // namespace hilum
