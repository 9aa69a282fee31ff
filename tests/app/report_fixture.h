// Test support for reports and batch runs: a tiny model bundle with random
// weights in the real formats (torchvision ResNet safetensors, a Hugging Face
// OLMoE folder with tokenizer.json, a fusion head with its "hilum.fusion"
// metadata), and hand-made findings documents.
#pragma once

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "fusion/findings.h"
#include "fusion/fusion_head.h"
#include "model/file_io.h"
#include "model/safetensors.h"
#include "tests/model/moe_fixture.h"
#include "vision/net/resnet_config.h"
#include "vision/net/resnet_random.h"

namespace hilum::test {

namespace fs = std::filesystem;

// A tiny OLMoE text model (vocab 2048) with the test tokenizer, extended by
// the special tokens of the report and note prompts.
inline void write_tiny_text_model(const fs::path& dir, uint64_t seed = 3) {
  moe::testing::FixtureOptions o;
  o.model_type = "olmoe";
  o.vocab = 2048;
  o.max_pos = 4096;
  o.weight_std = 0.3f;
  o.seed = seed;
  moe::testing::write_fixture(moe::testing::FixtureBuilder(o).build(), dir);
  auto tok = nlohmann::json::parse(
      *read_file(fs::path(HILUM_TEST_DATA_DIR) / "golden" / "tokenizers" / "olmoe" / "tokenizer.json"));
  int id = 1761;
  for (const char* t : {"<|findings|>", "<|impression|>", "<|note|>"}) {
    tok["added_tokens"].push_back({{"id", id++},
                                   {"content", t},
                                   {"single_word", false},
                                   {"lstrip", false},
                                   {"rstrip", false},
                                   {"normalized", false},
                                   {"special", true}});
  }
  (void)write_file_atomic(dir / "tokenizer.json", tok.dump());
}

struct TinyBundleOptions {
  float nodule_bias = -2.0f;  // head.2.bias[0]: how many candidates pass 0.5
  float head_std = 1.5f;      // spread of the nodule logit across candidates
  uint32_t seed = 7;
};

inline void write_tiny_bundle(const fs::path& dir, const TinyBundleOptions& opt = {}) {
  fs::create_directories(dir / "vision");
  fs::create_directories(dir / "fusion");
  nlohmann::json manifest = {
      {"name", "hilum-test-tiny"},
      {"version", "1"},
      {"licence", "test weights, random"},
      {"parts", {{"vision", "random ResNet"}, {"text", "random OLMoE"}, {"fusion", "random"}}}};
  (void)write_file_atomic(dir / "manifest.json", manifest.dump(2));
  ResNetConfig rc;
  rc.block = ResNetBlock::kBasic;
  rc.layers = {1, 1, 1, 1};
  rc.width = 8;
  rc.num_classes = 0;
  (void)write_safetensors(dir / "vision" / "resnet.safetensors", random_resnet_weights(rc, opt.seed));
  write_tiny_text_model(dir / "text");

  FusionConfig fc;
  fc.image_channels = rc.feature_channels();
  fc.image_tokens = 4;  // 64x64 patches, stride 32
  fc.text_dim = 32;
  fc.dim = 16;
  fc.heads = 2;
  fc.hidden = 16;
  std::mt19937 rng(opt.seed);
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const auto& [name, shape] : FusionHead::expected_shapes(fc)) {
    std::vector<float> v(static_cast<size_t>(shape_numel(shape)));
    const bool norm = name.find("norm") != std::string::npos;
    const float fan_in = shape.size() == 2 ? static_cast<float>(shape[1]) : 1.0f;
    const bool head = name.rfind("head.", 0) == 0;
    std::normal_distribution<float> d(0.0f, (head ? opt.head_std : 1.0f) / std::sqrt(fan_in));
    for (float& x : v) x = norm ? (name.find(".weight") != std::string::npos ? 1.0f : 0.0f) : d(rng);
    if (name == "head.2.bias") v[0] = opt.nodule_bias;
    tensors.emplace_back(name, Tensor::from_f32(shape, v));
  }
  nlohmann::json cfg = {{"image_channels", fc.image_channels},
                        {"image_tokens", fc.image_tokens},
                        {"text_dim", fc.text_dim},
                        {"dim", fc.dim},
                        {"heads", fc.heads},
                        {"hidden", fc.hidden}};
  (void)write_safetensors(dir / "fusion" / "fusion_head.safetensors", tensors,
                          {{"hilum.fusion", cfg.dump()}});
}

// A finding with the given geometry, assessed by the Lung-RADS table.
inline Finding make_finding(int id, NoduleType type, double long_mm, double short_mm, const std::string& lobe,
                            double probability, double malignancy, double solid_mm = 0) {
  Finding f;
  f.id = id;
  f.type = type;
  f.long_axis_mm = long_mm;
  f.short_axis_mm = short_mm;
  f.mean_diameter_mm = round_to_tenth((long_mm + short_mm) / 2);
  f.solid_component_mm = type == NoduleType::kSolid ? f.mean_diameter_mm : solid_mm;
  f.volume_mm3 = 3.14159 / 6 * long_mm * short_mm * short_mm;
  f.probability = probability;
  f.malignancy = malignancy;
  f.location.lobe = lobe;
  f.location.side = lobe.empty() ? LungSide::kUnknown : lobe[0] == 'R' ? LungSide::kRight : LungSide::kLeft;
  LungRadsInput in;
  in.type = type;
  in.mean_diameter_mm = f.mean_diameter_mm;
  in.solid_component_mm = f.solid_component_mm;
  f.lung_rads = *assess_lung_rads(in);
  return f;
}

inline FindingsDocument make_document(std::vector<Finding> findings) {
  FindingsDocument d;
  d.series_uid = "2.25.1234";
  d.generator = "hilum 0.1.0";
  d.findings = std::move(findings);
  d.lung_rads_study = study_lung_rads(d.findings);
  return d;
}

}  // namespace hilum::test
