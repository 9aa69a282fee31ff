// config.json parsing: RoPE tables against their formulas, fields that are
// accepted while switched off, and values that are refused by name.
#include <gtest/gtest.h>

#include <cmath>

#include "model/moe/config.h"

namespace hilum::moe {
namespace {

const char* kBase = R"({"model_type": "llama", "vocab_size": 32, "hidden_size": 16, "num_hidden_layers": 2,
  "num_attention_heads": 2, "num_key_value_heads": 1, "intermediate_size": 24, "max_position_embeddings": 64)";

Result<TextConfig> parse(const std::string& extra) {
  return parse_text_config(std::string(kBase) + extra + "}", "c.json");
}

TEST(MoeConfig, Llama3RopeFollowsItsFormula) {
  auto c = parse(R"(, "head_dim": 64, "rope_parameters": {"rope_type": "llama3", "rope_theta": 500000.0,
      "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192})");
  ASSERT_TRUE(c.ok()) << c.error().message();
  ASSERT_EQ(c->rope.inv_freq.size(), 32u);
  for (int i = 0; i < 32; ++i) {
    const double inv = 1.0 / std::pow(500000.0, 2.0 * i / 64);
    const double wavelen = 2 * M_PI / inv;
    double want = inv;
    if (wavelen > 8192.0) {
      want = inv / 8.0;
    } else if (wavelen >= 8192.0 / 4.0) {
      const double smooth = (8192.0 / wavelen - 1.0) / (4.0 - 1.0);
      want = (1 - smooth) * inv / 8.0 + smooth * inv;
    }
    EXPECT_NEAR(c->rope.inv_freq[i], want, 1e-6 * want) << i;
  }
  EXPECT_EQ(c->rope.attention_scaling, 1.0f);
}

TEST(MoeConfig, YarnAttentionFactorAndLegacyRopeScaling) {
  auto c = parse(R"(, "rope_theta": 10000.0, "rope_scaling": {"type": "yarn", "factor": 4.0,
      "original_max_position_embeddings": 16})");
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(c->rope.type, RopeConfig::Type::kYarn);
  EXPECT_NEAR(c->rope.attention_scaling, 0.1 * std::log(4.0) + 1.0, 1e-6);
  auto d = parse(R"(, "rope_parameters": {"rope_type": "yarn", "factor": 4.0, "rope_theta": 10000.0,
      "original_max_position_embeddings": 16, "mscale": 0.707, "mscale_all_dim": 0.707})");
  ASSERT_TRUE(d.ok()) << d.error().message();
  EXPECT_NEAR(d->rope.attention_scaling, 1.0, 1e-6);
  auto linear = parse(R"(, "rope_parameters": {"rope_type": "linear", "factor": 2.0, "rope_theta": 100.0})");
  ASSERT_TRUE(linear.ok());
  EXPECT_NEAR(linear->rope.inv_freq[1], 1.0 / std::pow(100.0, 2.0 / 8) / 2.0, 1e-6);
}

TEST(MoeConfig, SwitchedOffFeaturesAreAcceptedAndOnesThatAreOnAreNot) {
  EXPECT_TRUE(parse(R"(, "sliding_window": null, "use_sliding_window": false, "layer_types":
      ["full_attention", "full_attention"], "clip_qkv": null, "quantization_config": null)")
                  .ok());
  for (const char* bad : {R"(, "sliding_window": 4096)", R"(, "layer_types": ["full_attention",
      "sliding_attention"])",
                          R"(, "partial_rotary_factor": 0.5)", R"(, "pretraining_tp": 2)",
                          R"(, "quantization_config": {"quant_method": "fp8"})"}) {
    auto c = parse(bad);
    EXPECT_FALSE(c.ok()) << bad;
  }
  auto c = parse(R"(, "num_key_value_heads": 3)");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message().find("num_key_value_heads"), std::string::npos);
  c = parse(R"(, "rms_norm_eps": -1)");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message().find("rms_norm_eps"), std::string::npos);
}

TEST(MoeConfig, DeepseekDefaultsFollowTransformers) {
  auto v3 = parse_text_config(R"({"model_type": "deepseek_v3", "vocab_size": 32, "hidden_size": 16,
      "num_hidden_layers": 4, "num_attention_heads": 2, "n_routed_experts": 16, "moe_intermediate_size": 8,
      "intermediate_size": 24, "qk_nope_head_dim": 4, "qk_rope_head_dim": 4, "v_head_dim": 4, "kv_lora_rank": 8,
      "q_lora_rank": null})",
                              "v3.json");
  ASSERT_TRUE(v3.ok()) << v3.error().message();
  EXPECT_EQ(v3->q_lora_rank, 0);
  EXPECT_EQ(v3->router.top_k, 8);
  EXPECT_EQ(v3->router.n_group, 8);
  EXPECT_EQ(v3->router.topk_group, 4);
  EXPECT_TRUE(v3->router.norm_topk_prob);
  EXPECT_FLOAT_EQ(v3->router.routed_scaling_factor, 2.5f);
  EXPECT_EQ(v3->layer_is_moe, (std::vector<bool>{false, false, false, true}));
  EXPECT_EQ(v3->shared_intermediate_size, 8);
  EXPECT_EQ(v3->rope.layout, RopeLayout::kInterleaved);
}

}  // namespace
}  // namespace hilum::moe
