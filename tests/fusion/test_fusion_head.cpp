#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>

#include "fusion/cross_attention.h"
#include "fusion/fusion_head.h"
#include "model/npy.h"
#include "model/safetensors.h"

namespace hilum {
namespace {

namespace fs = std::filesystem;
const fs::path kGolden = fs::path(HILUM_TEST_DATA_DIR) / "golden" / "fusion";

double relative_l2(const Tensor& got, const Tensor& want) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < want.numel(); ++i) {
    const double d = got.data<float>()[i] - want.data<float>()[i];
    num += d * d;
    den += static_cast<double>(want.data<float>()[i]) * want.data<float>()[i];
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

// Attention written the obvious way, in double: materialised scores, softmax, product.
std::vector<double> naive_attention(const std::vector<float>& q, const std::vector<float>& k,
                                    const std::vector<float>& v, const AttentionShape& s, double scale) {
  const int64_t w = s.width();
  std::vector<double> out(static_cast<size_t>(s.queries * w), 0.0);
  for (int64_t m = 0; m < s.queries; ++m) {
    for (int h = 0; h < s.heads; ++h) {
      std::vector<double> p(static_cast<size_t>(s.keys));
      double mx = -1e300, sum = 0;
      for (int64_t t = 0; t < s.keys; ++t) {
        double dot = 0;
        for (int i = 0; i < s.head_dim; ++i)
          dot += double(q[m * w + h * s.head_dim + i]) * k[t * w + h * s.head_dim + i];
        p[t] = dot * scale;
        mx = std::max(mx, p[t]);
      }
      for (auto& x : p) sum += (x = std::exp(x - mx));
      for (int64_t t = 0; t < s.keys; ++t)
        for (int i = 0; i < s.head_dim; ++i)
          out[m * w + h * s.head_dim + i] += p[t] / sum * v[t * w + h * s.head_dim + i];
    }
  }
  return out;
}

TEST(CrossAttentionReference, MatchesNaiveAttentionOnAwkwardSizes) {
  std::mt19937 rng(7);
  std::normal_distribution<float> dist(0.f, 1.5f);
  for (AttentionShape s : {AttentionShape{1, 1, 1, 64}, AttentionShape{3, 7, 2, 5},
                           AttentionShape{49, 511, 4, 16}, AttentionShape{13, 1000, 1, 8}}) {
    std::vector<float> q(s.queries * s.width()), k(s.keys * s.width()), v(s.keys * s.width()), out(q.size());
    for (auto* vec : {&q, &k, &v})
      for (float& x : *vec) x = dist(rng);
    const float scale = 1.0f / std::sqrt(static_cast<float>(s.head_dim));
    cross_attention_reference(q.data(), k.data(), v.data(), out.data(), s, scale);
    const auto want = naive_attention(q, k, v, s, scale);
    for (size_t i = 0; i < out.size(); ++i) {
      ASSERT_NEAR(out[i], want[i], 1e-5 + 1e-5 * std::abs(want[i]))
          << "shape " << s.queries << "x" << s.keys << " i=" << i;
    }
  }
}

TEST(CrossAttentionReference, NoKeysGivesZeros) {
  AttentionShape s{4, 0, 2, 8};
  std::vector<float> q(4 * 16, 1.f), out(4 * 16, 5.f);
  cross_attention_reference(q.data(), nullptr, nullptr, out.data(), s, 1.f);
  for (float x : out) EXPECT_EQ(x, 0.f);
}

TEST(CrossAttentionReference, LargeScoresStayFinite) {
  AttentionShape s{2, 3, 1, 4};
  std::vector<float> q = {100, 100, 100, 100, -100, 0, 0, 0};
  std::vector<float> k = {100, 100, 100, 100, 0, 0, 0, 0, -100, -100, -100, -100};
  std::vector<float> v = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  std::vector<float> out(8);
  cross_attention_reference(q.data(), k.data(), v.data(), out.data(), s, 1.f);
  EXPECT_FLOAT_EQ(out[0], 1.f);  // all weight on key 0
  EXPECT_FLOAT_EQ(out[4], 9.f);  // row 2 prefers key 2
}

TEST(FusionHead, MatchesPyTorchGolden) {
  auto head = FusionHead::load(kGolden / "weights.safetensors");
  ASSERT_TRUE(head.ok()) << head.error().message();
  auto image = read_npy(kGolden / "image_tokens.npy");
  auto text = read_npy(kGolden / "text_states.npy");
  auto want = read_npy(kGolden / "logits.npy");
  auto want_empty = read_npy(kGolden / "logits_no_text.npy");
  ASSERT_TRUE(image.ok() && text.ok() && want.ok() && want_empty.ok());
  auto got = head->forward(*image, *text);
  ASSERT_TRUE(got.ok()) << got.error().message();
  ASSERT_EQ(got->logits.shape(), want->shape());
  EXPECT_LE(relative_l2(got->logits, *want), 1e-5);
  // Empty note: the text term vanishes.
  auto empty = head->forward(*image, Tensor::zeros({0, head->config().text_dim}, DType::kF32));
  ASSERT_TRUE(empty.ok()) << empty.error().message();
  EXPECT_LE(relative_l2(empty->logits, *want_empty), 1e-5);
  EXPECT_GT(relative_l2(empty->logits, *want), 1e-3);  // the text does matter
  for (int64_t i = 0; i < got->probability.numel(); ++i) {
    const float l = got->logits.data<float>()[2 * i];
    EXPECT_NEAR(got->probability.data<float>()[i], 1.0 / (1.0 + std::exp(-l)), 1e-6);
  }
}

TEST(FusionHead, WithCandidateFeaturesMatchesPyTorchGolden) {
  const fs::path g = kGolden / "features";
  auto head = FusionHead::load(g / "weights.safetensors");
  ASSERT_TRUE(head.ok()) << head.error().message();
  EXPECT_EQ(head->config().candidate_features, (std::vector<std::string>{"log_score", "blobness", "contrast_hu"}));
  auto image = read_npy(kGolden / "image_tokens.npy");
  auto text = read_npy(kGolden / "text_states.npy");
  auto features = read_npy(g / "features.npy");
  auto want = read_npy(g / "logits.npy");
  auto want_empty = read_npy(g / "logits_no_text.npy");
  ASSERT_TRUE(image.ok() && text.ok() && features.ok() && want.ok() && want_empty.ok());
  auto got = head->forward(*image, *text, Device::kCPU, *features);
  ASSERT_TRUE(got.ok()) << got.error().message();
  EXPECT_LE(relative_l2(got->logits, *want), 1e-5);
  auto empty = head->forward(*image, Tensor::zeros({0, head->config().text_dim}, DType::kF32), Device::kCPU,
                             *features);
  ASSERT_TRUE(empty.ok()) << empty.error().message();
  EXPECT_LE(relative_l2(empty->logits, *want_empty), 1e-5);
  // The features matter: another value of one of them moves the logits.
  Tensor other = features->clone();
  other.data<float>()[1] += 0.5f;  // blobness of candidate 0
  auto moved = head->forward(*image, *text, Device::kCPU, other);
  ASSERT_TRUE(moved.ok());
  EXPECT_GT(std::abs(moved->logits.data<float>()[0] - got->logits.data<float>()[0]), 1e-4);
  // Without them, or mis-shaped, the head refuses.
  auto none = head->forward(*image, *text);
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.error().message().find("candidate features must be f32 [5, 3]"), std::string::npos)
      << none.error().message();
  auto wrong = head->forward(*image, *text, Device::kCPU, Tensor::zeros({5, 2}, DType::kF32));
  ASSERT_FALSE(wrong.ok());
}

class FusionWeightsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("hilum_fusion_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    auto f = SafetensorsFile::open(kGolden / "weights.safetensors");
    ASSERT_TRUE(f.ok());
    metadata_ = f->metadata();
    for (const auto& name : f->names()) tensors_.emplace_back(name, f->get(name)->clone());
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string load_error(const std::vector<std::pair<std::string, Tensor>>& tensors,
                         const std::map<std::string, std::string>& metadata) {
    fs::path p = dir_ / "w.safetensors";
    EXPECT_TRUE(write_safetensors(p, tensors, metadata).ok());
    auto r = FusionHead::load(p);
    if (r.ok()) return "";
    EXPECT_EQ(r.error().kind(), ErrorKind::kBadInput);
    EXPECT_NE(r.error().message().find(p.string()), std::string::npos);
    return r.error().message();
  }

  fs::path dir_;
  std::map<std::string, std::string> metadata_;
  std::vector<std::pair<std::string, Tensor>> tensors_;
};

TEST_F(FusionWeightsTest, MissingTensorIsNamed) {
  auto t = tensors_;
  t.erase(std::remove_if(t.begin(), t.end(), [](auto& e) { return e.first == "k_proj.weight"; }), t.end());
  EXPECT_NE(load_error(t, metadata_).find("missing tensor 'k_proj.weight'"), std::string::npos);
}

TEST_F(FusionWeightsTest, MisShapedTensorIsNamed) {
  auto t = tensors_;
  for (auto& [name, tensor] : t)
    if (name == "head.2.weight") tensor = Tensor::zeros({3, tensor.dim(1)}, DType::kF32);
  const std::string msg = load_error(t, metadata_);
  EXPECT_NE(msg.find("'head.2.weight'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("expected [2, 16]"), std::string::npos) << msg;
}

TEST_F(FusionWeightsTest, IntegerTensorAndMissingConfigAreRejected) {
  auto t = tensors_;
  for (auto& [name, tensor] : t)
    if (name == "image_pos") tensor = tensor.to_dtype(DType::kI32).value();
  EXPECT_NE(load_error(t, metadata_).find("'image_pos' has dtype"), std::string::npos);
  EXPECT_NE(load_error(tensors_, {}).find("hilum.fusion"), std::string::npos);
  auto meta = metadata_;
  meta["hilum.fusion"] = "{\"dim\": 32}";
  EXPECT_NE(load_error(tensors_, meta).find("image_channels"), std::string::npos);
}

TEST_F(FusionWeightsTest, UnknownOrMalformedConfigFieldsAreNamed) {
  auto meta = metadata_;
  auto config = nlohmann::json::parse(meta["hilum.fusion"]);
  config["dropout"] = 0.1;
  meta["hilum.fusion"] = config.dump();
  EXPECT_NE(load_error(tensors_, meta).find("unknown fusion config field \"dropout\""), std::string::npos);
  config.erase("dropout");
  config["candidate_features"] = "log_score";
  meta["hilum.fusion"] = config.dump();
  EXPECT_NE(load_error(tensors_, meta).find("\"candidate_features\" is not a list"), std::string::npos);
  config["candidate_features"] = nlohmann::json::array({"log_score", 3});
  meta["hilum.fusion"] = config.dump();
  EXPECT_NE(load_error(tensors_, meta).find("holds 3, not a feature name"), std::string::npos);
  // Features listed but the tensors of a head without them: the standardisation is missing.
  config["candidate_features"] = nlohmann::json::array({"log_score"});
  meta["hilum.fusion"] = config.dump();
  EXPECT_NE(load_error(tensors_, meta).find("missing tensor 'feature_"), std::string::npos);
}

TEST_F(FusionWeightsTest, ForwardRejectsWrongInputShapes) {
  auto head = FusionHead::load(kGolden / "weights.safetensors");
  ASSERT_TRUE(head.ok());
  auto r = head->forward(Tensor::zeros({2, 3, 4}, DType::kF32), Tensor::zeros({1, 20}, DType::kF32));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("image tokens"), std::string::npos);
  auto r2 = head->forward(Tensor::zeros({2, 9, 24}, DType::kF32), Tensor::zeros({1, 21}, DType::kF32));
  ASSERT_FALSE(r2.ok());
  EXPECT_NE(r2.error().message().find("text states"), std::string::npos);
}

TEST(ImageTokens, FeatureMapsBecomeRowMajorTokens) {
  Tensor maps = Tensor::zeros({1, 2, 2, 3}, DType::kF32);
  for (int i = 0; i < 12; ++i) maps.data<float>()[i] = static_cast<float>(i);
  auto tokens = image_tokens_from_feature_maps(maps);
  ASSERT_TRUE(tokens.ok());
  EXPECT_EQ(tokens->shape(), (Shape{1, 6, 2}));
  // token (y=1, x=2) = index 5: channel 0 value 5, channel 1 value 11
  EXPECT_EQ(tokens->data<float>()[10], 5.f);
  EXPECT_EQ(tokens->data<float>()[11], 11.f);
}

}  // namespace
}  // namespace hilum
