// The CPU text engine against an independent naive implementation, for every
// family and the features that change the maths; cache/chunking invariants;
// checkpoint layouts; and the error paths of loading and running.
#include <gtest/gtest.h>

#include "model/moe/text_model.h"
#include "tests/model/moe_fixture.h"
#include "tests/support/test_support.h"

namespace hilum::moe {
namespace {

namespace fs = std::filesystem;
using testing::Fixture;
using testing::FixtureBuilder;
using testing::FixtureOptions;
using TempDir = test::ScratchDir;  // one per test; a tag where a test needs several

const std::vector<int32_t> kIds = {1, 5, 17, 33, 2, 40, 8, 60, 11};

struct Case {
  const char* name;
  FixtureOptions o;
};

std::vector<Case> family_cases() {
  std::vector<Case> cases;
  auto add = [&](const char* name, auto edit) {
    FixtureOptions o;
    edit(o);
    cases.push_back({name, o});
  };
  add("llama", [](FixtureOptions& o) { o.model_type = "llama"; });
  add("llama_tied_bias_mha", [](FixtureOptions& o) {
    o.model_type = "llama";
    o.tie = true;
    o.attention_bias = true;
    o.kv_heads = 4;
  });
  add("llama_yarn", [](FixtureOptions& o) {
    o.model_type = "llama";
    o.yarn = true;
  });
  add("qwen2", [](FixtureOptions& o) { o.model_type = "qwen2"; });
  add("qwen2_sliding", [](FixtureOptions& o) {
    o.model_type = "qwen2";
    o.sliding_window = 3;
    o.max_window_layers = 1;
  });
  add("mixtral", [](FixtureOptions& o) { o.model_type = "mixtral"; });
  add("mixtral_sliding", [](FixtureOptions& o) {
    o.model_type = "mixtral";
    o.sliding_window = 4;
  });
  add("olmoe", [](FixtureOptions& o) {
    o.model_type = "olmoe";
    o.experts = 16;
    o.top_k = 4;
  });
  add("olmoe_clip_norm", [](FixtureOptions& o) {
    o.model_type = "olmoe";
    o.norm_topk = true;
    o.clip_qkv = 0.4;
  });
  add("qwen2_moe", [](FixtureOptions& o) {
    o.model_type = "qwen2_moe";
    o.layers = 3;
    o.mlp_only_layers = {1};
  });
  add("deepseek_v2", [](FixtureOptions& o) { o.model_type = "deepseek_v2"; });
  add("deepseek_v2_plain_q_grouped", [](FixtureOptions& o) {
    o.model_type = "deepseek_v2";
    o.q_lora_rank = 0;
    o.topk_method = "group_limited_greedy";
    o.routed_scaling = 1.5;
    o.n_shared = 2;
  });
  add("deepseek_v2_yarn", [](FixtureOptions& o) {
    o.model_type = "deepseek_v2";
    o.yarn = true;
    o.mscale = 0.707;
    o.mscale_all_dim = 0.707;
  });
  add("deepseek_v3", [](FixtureOptions& o) {
    o.model_type = "deepseek_v3";
    o.norm_topk = true;
    o.routed_scaling = 2.5;
    o.yarn = true;
    o.mscale = 1.0;
    o.mscale_all_dim = 1.0;
    o.layers = 3;
  });
  add("deepseek_v3_half_rope", [](FixtureOptions& o) {
    o.model_type = "deepseek_v3";
    o.rope_interleave = false;
    o.q_lora_rank = 0;
    o.norm_topk = false;
    o.topk_group = 3;
  });
  return cases;
}

class FamilyTest : public ::testing::TestWithParam<Case> {};

TEST_P(FamilyTest, MatchesNaiveReference) {
  const Case& c = GetParam();
  Fixture f = FixtureBuilder(c.o).build();
  TempDir dir;
  testing::write_fixture(f, dir.path());
  auto model = TextModel::load(dir.path());
  ASSERT_TRUE(model.ok()) << model.error().message();
  auto out = (*model)->forward(kIds);
  ASSERT_TRUE(out.ok()) << out.error().message();
  ASSERT_EQ(out->logits.shape(), (Shape{static_cast<int64_t>(kIds.size()), c.o.vocab}));
  const auto want = testing::Reference(f).logits(kIds);
  EXPECT_LT(testing::max_rel_error(out->logits.data<float>(), want), 1e-4) << c.name;
}

INSTANTIATE_TEST_SUITE_P(Families, FamilyTest, ::testing::ValuesIn(family_cases()),
                         [](const ::testing::TestParamInfo<Case>& i) { return std::string(i.param.name); });

// Loads one fixture per test body.
std::shared_ptr<const TextModel> load_fixture(const FixtureOptions& o, const fs::path& dir) {
  testing::write_fixture(FixtureBuilder(o).build(), dir);
  auto m = TextModel::load(dir);
  EXPECT_TRUE(m.ok()) << (m.ok() ? "" : m.error().message());
  return m.ok() ? *m : nullptr;
}

double max_abs_diff(const float* a, const float* b, int64_t n) {
  double d = 0;
  for (int64_t i = 0; i < n; ++i) d = std::max(d, static_cast<double>(std::fabs(a[i] - b[i])));
  return d;
}

TEST(TextModel, KvCacheDecodeMatchesFullRecompute) {
  for (const char* type : {"olmoe", "deepseek_v3", "qwen2"}) {
    FixtureOptions o;
    o.model_type = type;
    o.sliding_window = std::string(type) == "qwen2" ? 3 : 0;
    TempDir dir;
    auto model = load_fixture(o, dir.path());
    ASSERT_TRUE(model);
    auto full = model->forward(kIds);
    ASSERT_TRUE(full.ok());
    KvCache cache;
    auto first = model->forward(std::span(kIds).first(4), cache);
    ASSERT_TRUE(first.ok());
    EXPECT_EQ(cache.length(), 4);
    const int64_t V = o.vocab;
    EXPECT_LT(max_abs_diff(first->logits.data<float>(), full->logits.data<float>(), 4 * V), 1e-4) << type;
    for (size_t t = 4; t < kIds.size(); ++t) {
      ForwardOptions opt;
      opt.logits = ForwardOptions::Logits::kLast;
      auto step = model->forward(std::span(kIds).subspan(t, 1), cache, nullptr, opt);
      ASSERT_TRUE(step.ok());
      EXPECT_LT(max_abs_diff(step->logits.data<float>(), full->logits.data<float>() + t * V, V), 1e-4)
          << type << " token " << t;
    }
    EXPECT_EQ(cache.length(), static_cast<int64_t>(kIds.size()));
  }
}

TEST(TextModel, ChunkedPrefillMatchesSinglePass) {
  FixtureOptions o;
  o.model_type = "mixtral";
  o.sliding_window = 4;
  TempDir dir;
  auto model = load_fixture(o, dir.path());
  ASSERT_TRUE(model);
  ForwardOptions whole, chunked;
  chunked.chunk_size = 2;
  whole.hidden_states = chunked.hidden_states = true;
  auto a = model->forward(kIds, nullptr, whole);
  auto b = model->forward(kIds, nullptr, chunked);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_LT(max_abs_diff(a->logits.data<float>(), b->logits.data<float>(), a->logits.numel()), 1e-5);
  EXPECT_LT(
      max_abs_diff(a->hidden_states.data<float>(), b->hidden_states.data<float>(), a->hidden_states.numel()),
      1e-5);
}

TEST(TextModel, HiddenStatesAreTheFinalNormOutput) {
  FixtureOptions o;
  o.model_type = "olmoe";
  TempDir dir;
  auto model = load_fixture(o, dir.path());
  ASSERT_TRUE(model);
  ForwardOptions opt;
  opt.hidden_states = true;
  auto out = model->forward(kIds, nullptr, opt);
  ASSERT_TRUE(out.ok());
  ASSERT_EQ(out->hidden_states.shape(), (Shape{static_cast<int64_t>(kIds.size()), o.hidden}));
  // logits = hidden . lm_head^T
  const float* h = out->hidden_states.data<float>();
  const float* w = model->weights().lm_head.weight.data<float>();
  for (int64_t t = 0; t < 3; ++t) {
    for (int64_t v = 0; v < o.vocab; v += 7) {
      double s = 0;
      for (int64_t j = 0; j < o.hidden; ++j) s += h[t * o.hidden + j] * w[v * o.hidden + j];
      EXPECT_NEAR(out->logits.data<float>()[t * o.vocab + v], s, 1e-4);
    }
  }
  ForwardOptions none;
  none.logits = ForwardOptions::Logits::kNone;
  none.hidden_states = true;
  auto only = model->forward(kIds, nullptr, none);
  ASSERT_TRUE(only.ok());
  EXPECT_FALSE(only->logits.defined());
  EXPECT_LT(max_abs_diff(only->hidden_states.data<float>(), h, only->hidden_states.numel()), 1e-6);
}

TEST(TextModel, FusedPerExpertAndShardedCheckpointsAgree) {
  for (const char* type : {"mixtral", "qwen2_moe", "deepseek_v3"}) {
    FixtureOptions o;
    o.model_type = type;
    Fixture f = FixtureBuilder(o).build();
    TempDir a("a"), b("b"), c("c");
    testing::write_fixture(f, a.path());
    Fixture fused = f;
    fused.o.fused_experts = true;
    testing::write_fixture(fused, b.path());
    Fixture sharded = f;
    sharded.o.shards = 3;
    testing::write_fixture(sharded, c.path());
    auto ma = TextModel::load(a.path()), mb = TextModel::load(b.path()), mc = TextModel::load(c.path());
    ASSERT_TRUE(ma.ok()) << ma.error().message();
    ASSERT_TRUE(mb.ok()) << mb.error().message();
    ASSERT_TRUE(mc.ok()) << mc.error().message();
    auto la = (*ma)->forward(kIds), lb = (*mb)->forward(kIds), lc = (*mc)->forward(kIds);
    ASSERT_TRUE(la.ok() && lb.ok() && lc.ok());
    const int64_t n = la->logits.numel();
    EXPECT_EQ(max_abs_diff(la->logits.data<float>(), lb->logits.data<float>(), n), 0.0) << type;
    EXPECT_EQ(max_abs_diff(la->logits.data<float>(), lc->logits.data<float>(), n), 0.0) << type;
  }
}

TEST(TextModel, Bf16CheckpointLoadsAsF32) {
  FixtureOptions o;
  o.model_type = "llama";
  Fixture f = FixtureBuilder(o).build();
  TempDir a("a"), b("b");
  testing::write_fixture(f, a.path());
  // Same weights rounded to bf16 and written as bf16.
  std::vector<std::pair<std::string, Tensor>> list;
  Fixture rounded = f;
  for (auto& [name, t] : rounded.tensors) {
    Tensor bf = *testing::to_tensor(t).to_dtype(DType::kBF16);
    list.emplace_back(name, bf);
    Tensor back = *bf.to_dtype(DType::kF32);
    std::copy(back.data<float>(), back.data<float>() + back.numel(), t.second.begin());
  }
  testing::write_fixture(rounded, a.path());
  fs::create_directories(b.path());
  fs::copy_file(a.path() / "config.json", b.path() / "config.json");
  ASSERT_TRUE(write_safetensors(b.path() / "model.safetensors", list).ok());
  auto ma = TextModel::load(a.path()), mb = TextModel::load(b.path());
  ASSERT_TRUE(ma.ok() && mb.ok());
  auto la = (*ma)->forward(kIds), lb = (*mb)->forward(kIds);
  ASSERT_TRUE(la.ok() && lb.ok());
  EXPECT_EQ(max_abs_diff(la->logits.data<float>(), lb->logits.data<float>(), la->logits.numel()), 0.0);
}

// ---- errors ------------------------------------------------------------------------

struct ErrorCase {
  const char* name;
  std::function<void(const fs::path&)> corrupt;
  std::vector<std::string> message_parts;
};

void edit_config(const fs::path& dir, const std::function<void(nlohmann::json&)>& fn) {
  nlohmann::json j = nlohmann::json::parse(*read_file(dir / "config.json"));
  fn(j);
  ASSERT_TRUE(write_file_atomic(dir / "config.json", j.dump()).ok());
}

TEST(TextModel, BadCheckpointsFailWithAMessageNamingTheProblem) {
  const std::vector<ErrorCase> cases = {
      {"missing config",
       [](const fs::path& d) { fs::remove(d / "config.json"); },
       {"config.json", "missing"}},
      {"unknown model_type",
       [](const fs::path& d) { edit_config(d, [](auto& j) { j["model_type"] = "gpt_neox"; }); },
       {"model_type", "gpt_neox"}},
      {"unknown field",
       [](const fs::path& d) { edit_config(d, [](auto& j) { j["attn_logit_softcapping"] = 30.0; }); },
       {"attn_logit_softcapping"}},
      {"quantized",
       [](const fs::path& d) { edit_config(d, [](auto& j) {
                                 j["quantization_config"] = {{"bits", 4}};
                               }); },
       {"quantization_config"}},
      {"rope type",
       [](const fs::path& d) {
         edit_config(d, [](auto& j) {
           j["rope_parameters"] = {{"rope_type", "longrope"}, {"rope_theta", 1e4}};
         });
       },
       {"rope_type", "longrope"}},
      {"rope field",
       [](const fs::path& d) { edit_config(d, [](auto& j) { j["rope_parameters"]["mystery"] = 1; }); },
       {"rope_parameters.mystery"}},
      {"activation",
       [](const fs::path& d) { edit_config(d, [](auto& j) { j["hidden_act"] = "swiglu_oai"; }); },
       {"hidden_act", "swiglu_oai"}},
      {"bad type",
       [](const fs::path& d) { edit_config(d, [](auto& j) { j["hidden_size"] = "big"; }); },
       {"hidden_size", "integer"}},
      {"shape",
       [](const fs::path& d) { edit_config(d, [](auto& j) { j["intermediate_size"] = 48; }); },
       {"gate_proj.weight", "shape", "[48, 32]"}},
      {"no weights", [](const fs::path& d) { fs::remove(d / "model.safetensors"); }, {"model.safetensors"}},
      {"extra tensor",
       [](const fs::path& d) {
         std::vector<std::pair<std::string, Tensor>> list;
         auto f = *SafetensorsFile::open(d / "model.safetensors");
         for (const auto& n : f.names()) list.emplace_back(n, *f.get(n));
         list.emplace_back("model.layers.0.self_attn.q_norm.weight", Tensor::zeros({8}, DType::kF32));
         ASSERT_TRUE(write_safetensors(d / "model.safetensors", list).ok());
       },
       {"q_norm.weight", "not part of"}},
      {"truncated safetensors",
       [](const fs::path& d) {
         std::string bytes = *read_file(d / "model.safetensors");
         ASSERT_TRUE(write_file_atomic(d / "model.safetensors", bytes.substr(0, bytes.size() / 2)).ok());
       },
       {"model.safetensors"}},
  };
  for (const ErrorCase& c : cases) {
    FixtureOptions o;
    o.model_type = "llama";
    TempDir dir;
    testing::write_fixture(FixtureBuilder(o).build(), dir.path());
    c.corrupt(dir.path());
    auto m = TextModel::load(dir.path());
    ASSERT_FALSE(m.ok()) << c.name;
    EXPECT_TRUE(m.error().kind() == ErrorKind::kBadInput || m.error().kind() == ErrorKind::kUnsupported)
        << c.name;
    for (const std::string& part : c.message_parts) {
      EXPECT_NE(m.error().message().find(part), std::string::npos) << c.name << ": " << m.error().message();
    }
  }
}

TEST(TextModel, MissingShardIsNamed) {
  FixtureOptions o;
  o.model_type = "olmoe";
  o.shards = 2;
  TempDir dir;
  testing::write_fixture(FixtureBuilder(o).build(), dir.path());
  fs::remove(dir.path() / "model-00002-of-00002.safetensors");
  auto m = TextModel::load(dir.path());
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.error().message().find("model-00002-of-00002.safetensors"), std::string::npos)
      << m.error().message();
  EXPECT_NE(m.error().message().find("missing"), std::string::npos);
}

TEST(TextModel, DeepseekConfigValuesThatChangeTheMathsAreRefused) {
  for (auto [field, value] : std::vector<std::pair<std::string, nlohmann::json>>{
           {"moe_layer_freq", 2}, {"topk_method", "noaux_tc"}, {"scoring_func", "sigmoid"}}) {
    FixtureOptions o;
    o.model_type = "deepseek_v2";
    TempDir dir;
    testing::write_fixture(FixtureBuilder(o).build(), dir.path());
    edit_config(dir.path(), [&](auto& j) { j[field] = value; });
    auto m = TextModel::load(dir.path());
    ASSERT_FALSE(m.ok()) << field;
    EXPECT_NE(m.error().message().find(field), std::string::npos) << m.error().message();
  }
}

TEST(TextModel, OutOfRangeIdsAreRejectedWithoutTouchingTheCache) {
  FixtureOptions o;
  o.model_type = "llama";
  TempDir dir;
  auto model = load_fixture(o, dir.path());
  ASSERT_TRUE(model);
  KvCache cache;
  ASSERT_TRUE(model->forward(std::vector<int32_t>{1, 2, 3}, cache).ok());
  auto bad = model->forward(std::vector<int32_t>{4, static_cast<int32_t>(o.vocab)}, cache);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().kind(), ErrorKind::kBadInput);
  EXPECT_NE(bad.error().message().find(std::to_string(o.vocab)), std::string::npos);
  EXPECT_EQ(cache.length(), 3);
  EXPECT_FALSE(model->forward(std::vector<int32_t>{-1}).ok());
  EXPECT_FALSE(model->forward(std::vector<int32_t>{}).ok());
}

TEST(TextModel, EosTokensComeFromConfigAndGenerationConfig) {
  FixtureOptions o;
  o.model_type = "qwen2_moe";
  TempDir dir;
  auto model = load_fixture(o, dir.path());
  ASSERT_TRUE(model);
  EXPECT_EQ(model->config().eos_token_ids, (std::vector<int32_t>{2, 3}));
}

}  // namespace
}  // namespace hilum::moe
