// PEFT LoRA adapters: every supported layout checked against the naive
// reference with W + scale * delta computed from PEFT's own formulas;
// merged == unmerged; the error paths.
#include <gtest/gtest.h>

#include "model/moe/lora.h"
#include "model/moe/text_model.h"
#include "tests/model/moe_fixture.h"
#include "tests/support/test_support.h"

namespace hilum::moe {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::Fixture;
using testing::FixtureBuilder;
using testing::FixtureOptions;
using TempDir = test::ScratchDir;  // one per test; a tag where a test needs several

const std::vector<int32_t> kIds = {1, 5, 17, 33, 2, 40, 8, 60, 11};

std::vector<float> randn(int64_t n, std::mt19937_64& rng, float std = 0.3f) {
  std::normal_distribution<float> d(0.0f, std);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = d(rng);
  return v;
}

// An adapter being written: config + tensors, with the deltas the reference
// should add to the base weights.
struct AdapterWriter {
  json config = {{"peft_type", "LORA"},      {"r", 4},
                 {"lora_alpha", 8},          {"use_rslora", false},
                 {"bias", "none"},           {"target_modules", json::array()},
                 {"task_type", "CAUSAL_LM"}, {"lora_dropout", 0.0},
                 {"fan_in_fan_out", false},  {"modules_to_save", nullptr},
                 {"use_dora", false},        {"peft_version", "0.19.1"},
                 {"inference_mode", true},   {"init_lora_weights", true}};
  std::vector<std::pair<std::string, Tensor>> tensors;
  std::mt19937_64 rng{7};

  int64_t r() const { return config["r"].get<int64_t>(); }
  double scale() const {
    const double a = config["lora_alpha"].get<double>();
    return config.value("use_rslora", false) ? a / std::sqrt(static_cast<double>(r())) : a / r();
  }

  // Plain module LoRA: A [r, in], B [out, r]; returns delta = scale * B A [out, in].
  std::vector<float> linear(const std::string& module, int64_t out, int64_t in) {
    const int64_t R = r();
    auto a = randn(R * in, rng), b = randn(out * R, rng);
    tensors.emplace_back("base_model.model." + module + ".lora_A.weight", Tensor::from_f32({R, in}, a));
    tensors.emplace_back("base_model.model." + module + ".lora_B.weight", Tensor::from_f32({out, R}, b));
    std::vector<float> delta(static_cast<size_t>(out * in), 0.0f);
    for (int64_t o = 0; o < out; ++o) {
      for (int64_t i = 0; i < in; ++i) {
        double s = 0;
        for (int64_t k = 0; k < R; ++k) s += static_cast<double>(b[o * R + k]) * a[k * in + i];
        delta[o * in + i] = static_cast<float>(scale() * s);
      }
    }
    return delta;
  }

  // PEFT ParamWrapper LoRA on a 3-D parameter [E, d1, d2] saved under
  // `key_module`; swapped: PEFT >= 0.19.1 (in = d2, out = d1), else (in = d1,
  // out = d2). Returns the delta [E, d1, d2] from PEFT's einsums.
  std::vector<float> fused(const std::string& key_module, int64_t E, int64_t d1, int64_t d2, bool swapped) {
    const int64_t R = r();
    const int64_t in = swapped ? d2 : d1, out = swapped ? d1 : d2;
    auto a = randn(R * E * in, rng), b = randn(out * R * E, rng);
    tensors.emplace_back("base_model.model." + key_module + ".lora_A.weight",
                         Tensor::from_f32({R * E, in}, a));
    tensors.emplace_back("base_model.model." + key_module + ".lora_B.weight",
                         Tensor::from_f32({out, R * E}, b));
    std::vector<float> delta(static_cast<size_t>(E * d1 * d2), 0.0f);
    // A.reshape(E, r, in)[e, k, i] = a[(e*R + k)*in + i]; B.reshape(out, r, E)[o, k, e] = b[o*R*E + k*E + e].
    for (int64_t e = 0; e < E; ++e) {
      for (int64_t i = 0; i < in; ++i) {
        for (int64_t o = 0; o < out; ++o) {
          double s = 0;
          for (int64_t k = 0; k < R; ++k)
            s += static_cast<double>(b[o * R * E + k * E + e]) * a[(e * R + k) * in + i];
          // unswapped: "o r e, e r i -> e i o"; swapped: "-> e o i".
          const int64_t j1 = swapped ? o : i, j2 = swapped ? i : o;
          delta[(e * d1 + j1) * d2 + j2] = static_cast<float>(scale() * s);
        }
      }
    }
    return delta;
  }

  void write(const fs::path& dir) const {
    fs::create_directories(dir);
    ASSERT_TRUE(write_file_atomic(dir / "adapter_config.json", config.dump(2)).ok());
    ASSERT_TRUE(write_safetensors(dir / "adapter_model.safetensors", tensors).ok());
  }
};

void add_delta(testing::TensorMap& w, const std::string& name, const float* delta) {
  auto& v = w.at(name).second;
  for (size_t i = 0; i < v.size(); ++i) v[i] += delta[i];
}

// Adds a fused delta [E, 2I, H] (gate_up) or [E, H, I] (down) to per-expert weights.
void add_fused_delta(testing::TensorMap& w, const FixtureOptions& o, const std::string& mlp, bool gate_up,
                     const std::vector<float>& delta) {
  const int64_t H = o.hidden, I = o.moe_inter;
  for (int64_t e = 0; e < o.experts; ++e) {
    const std::string x = mlp + ".experts." + std::to_string(e);
    if (gate_up) {
      add_delta(w, x + ".gate_proj.weight", delta.data() + e * 2 * I * H);
      add_delta(w, x + ".up_proj.weight", delta.data() + e * 2 * I * H + I * H);
    } else {
      add_delta(w, x + ".down_proj.weight", delta.data() + e * H * I);
    }
  }
}

struct Loaded {
  std::shared_ptr<const TextModel> model;
  std::shared_ptr<const LoraAdapter> adapter;
};

// Loads base + adapter and checks: unmerged == reference(W + delta), merged ==
// unmerged, and the base without the adapter is unchanged.
void check_adapter(const Fixture& f, const testing::Reference& ref, const AdapterWriter& ad,
                   const char* what) {
  TempDir base("base"), adir("adapter");
  testing::write_fixture(f, base.path());
  ad.write(adir.path());
  auto model = TextModel::load(base.path());
  ASSERT_TRUE(model.ok()) << model.error().message();
  auto adapter = LoraAdapter::load(adir.path(), **model);
  ASSERT_TRUE(adapter.ok()) << what << ": " << adapter.error().message();
  auto with = (*model)->forward(kIds, adapter->get());
  ASSERT_TRUE(with.ok()) << with.error().message();
  const auto want = ref.logits(kIds);
  EXPECT_LT(testing::max_rel_error(with->logits.data<float>(), want), 1e-4) << what;
  auto merged = (*model)->merged(**adapter);
  ASSERT_TRUE(merged.ok()) << merged.error().message();
  auto m = (*merged)->forward(kIds);
  ASSERT_TRUE(m.ok());
  double d = 0;
  for (int64_t i = 0; i < m->logits.numel(); ++i) {
    d = std::max(d,
                 static_cast<double>(std::fabs(m->logits.data<float>()[i] - with->logits.data<float>()[i])));
  }
  EXPECT_LT(d, 2e-4) << what << ": merged differs from unmerged";
  auto plain = (*model)->forward(kIds);
  ASSERT_TRUE(plain.ok());
  EXPECT_LT(testing::max_rel_error(plain->logits.data<float>(), testing::Reference(f).logits(kIds)), 1e-4)
      << what << ": the base model changed";
}

TEST(Lora, LinearModulesIncludingSharedExpertsAndLmHead) {
  FixtureOptions o;
  o.model_type = "qwen2_moe";
  o.layers = 3;
  o.mlp_only_layers = {2};
  Fixture f = FixtureBuilder(o).build();
  testing::Reference ref(f);
  AdapterWriter ad;
  ad.config["target_modules"] = {"q_proj", "v_proj", "o_proj", "gate_proj", "down_proj", "shared_expert_gate",
                                 "lm_head"};
  const int64_t H = o.hidden, hd = o.head_dim;
  for (int L = 0; L < 3; ++L) {
    const std::string p = "model.layers." + std::to_string(L);
    add_delta(ref.weights(), p + ".self_attn.q_proj.weight",
              ad.linear(p + ".self_attn.q_proj", o.heads * hd, H).data());
    add_delta(ref.weights(), p + ".self_attn.v_proj.weight",
              ad.linear(p + ".self_attn.v_proj", o.kv_heads * hd, H).data());
    add_delta(ref.weights(), p + ".self_attn.o_proj.weight",
              ad.linear(p + ".self_attn.o_proj", H, o.heads * hd).data());
  }
  add_delta(ref.weights(), "model.layers.0.mlp.shared_expert.gate_proj.weight",
            ad.linear("model.layers.0.mlp.shared_expert.gate_proj", o.shared_inter, H).data());
  add_delta(ref.weights(), "model.layers.1.mlp.shared_expert.down_proj.weight",
            ad.linear("model.layers.1.mlp.shared_expert.down_proj", H, o.shared_inter).data());
  add_delta(ref.weights(), "model.layers.1.mlp.shared_expert_gate.weight",
            ad.linear("model.layers.1.mlp.shared_expert_gate", 1, H).data());
  add_delta(ref.weights(), "model.layers.2.mlp.gate_proj.weight",
            ad.linear("model.layers.2.mlp.gate_proj", o.inter, H).data());
  add_delta(ref.weights(), "lm_head.weight", ad.linear("lm_head", o.vocab, H).data());
  check_adapter(f, ref, ad, "linear modules");
}

TEST(Lora, RsloraAndRegexTargetsOnDeepseekAttention) {
  FixtureOptions o;
  o.model_type = "deepseek_v2";
  Fixture f = FixtureBuilder(o).build();
  testing::Reference ref(f);
  AdapterWriter ad;
  ad.config["use_rslora"] = true;
  ad.config["r"] = 3;
  ad.config["target_modules"] = R"(.*\.(q_a_proj|kv_b_proj|gate))";
  const int64_t H = o.hidden;
  for (int L = 0; L < 2; ++L) {
    const std::string a = "model.layers." + std::to_string(L) + ".self_attn";
    add_delta(ref.weights(), a + ".q_a_proj.weight", ad.linear(a + ".q_a_proj", o.q_lora_rank, H).data());
    add_delta(ref.weights(), a + ".kv_b_proj.weight",
              ad.linear(a + ".kv_b_proj", o.heads * (o.nope + o.v_head), o.kv_lora_rank).data());
  }
  // deepseek_v2's router is an nn.Linear.
  add_delta(ref.weights(), "model.layers.1.mlp.gate.weight",
            ad.linear("model.layers.1.mlp.gate", o.experts, H).data());
  check_adapter(f, ref, ad, "rslora + regex");
}

TEST(Lora, PerExpertModules) {
  for (const char* type : {"olmoe", "mixtral"}) {
    FixtureOptions o;
    o.model_type = type;
    Fixture f = FixtureBuilder(o).build();
    testing::Reference ref(f);
    AdapterWriter ad;
    const bool mixtral = std::string(type) == "mixtral";
    ad.config["target_modules"] =
        mixtral ? json{"w1", "w2", "w3"} : json{"gate_proj", "up_proj", "down_proj"};
    const int64_t H = o.hidden, I = o.moe_inter;
    for (int L = 0; L < 2; ++L) {
      const std::string m = testing::moe_prefix(o, L);
      for (int e : {0, 3, 7}) {
        const std::string x = m + ".experts." + std::to_string(e);
        add_delta(ref.weights(), x + (mixtral ? ".w1.weight" : ".gate_proj.weight"),
                  ad.linear(x + (mixtral ? ".w1" : ".gate_proj"), I, H).data());
        add_delta(ref.weights(), x + (mixtral ? ".w3.weight" : ".up_proj.weight"),
                  ad.linear(x + (mixtral ? ".w3" : ".up_proj"), I, H).data());
        add_delta(ref.weights(), x + (mixtral ? ".w2.weight" : ".down_proj.weight"),
                  ad.linear(x + (mixtral ? ".w2" : ".down_proj"), H, I).data());
      }
    }
    check_adapter(f, ref, ad, type);
  }
}

TEST(Lora, FusedExpertParametersInBothPeftLayouts) {
  for (bool swapped : {false, true}) {
    FixtureOptions o;
    o.model_type = "qwen2_moe";  // H = 32, I = 24: every shape reading is unambiguous
    Fixture f = FixtureBuilder(o).build();
    testing::Reference ref(f);
    AdapterWriter ad;
    ad.config["target_modules"] = {"q_proj"};
    ad.config["target_parameters"] = {"mlp.experts.gate_up_proj", "mlp.experts.down_proj"};
    ad.config["peft_version"] = swapped ? "0.18.0" : "0.19.1";  // deliberately misleading: shapes decide
    const int64_t E = o.experts, H = o.hidden, I = o.moe_inter;
    for (int L = 0; L < 2; ++L) {
      const std::string m = "model.layers." + std::to_string(L) + ".mlp";
      // PEFT nests the second wrapped parameter: experts.base_layer.lora_*.
      add_fused_delta(ref.weights(), o, m, true, ad.fused(m + ".experts.base_layer", E, 2 * I, H, swapped));
      add_fused_delta(ref.weights(), o, m, false, ad.fused(m + ".experts", E, H, I, swapped));
    }
    add_delta(ref.weights(), "model.layers.0.self_attn.q_proj.weight",
              ad.linear("model.layers.0.self_attn.q_proj", o.heads * o.head_dim, H).data());
    check_adapter(f, ref, ad, swapped ? "fused swapped" : "fused unswapped");
  }
}

TEST(Lora, AmbiguousFusedGateUpFollowsPeftVersion) {
  for (bool swapped : {false, true}) {
    FixtureOptions o;
    o.model_type = "olmoe";
    o.hidden = 32;
    o.moe_inter = 16;  // H == 2I: gate_up's two readings have the same shapes
    Fixture f = FixtureBuilder(o).build();
    testing::Reference ref(f);
    AdapterWriter ad;
    ad.config["target_modules"] = nullptr;
    ad.config["target_parameters"] = {"experts.gate_up_proj"};
    ad.config["peft_version"] = swapped ? "0.19.1" : "0.18.0";
    const std::string m = "model.layers.1.mlp";
    add_fused_delta(ref.weights(), o, m, true,
                    ad.fused(m + ".experts", o.experts, 2 * o.moe_inter, o.hidden, swapped));
    check_adapter(f, ref, ad, swapped ? "ambiguous, 0.19.1" : "ambiguous, 0.18.0");
  }
}

// ---- errors ----------------------------------------------------------------------

struct Setup {
  TempDir base{"base"}, adir{"adapter"};
  std::shared_ptr<const TextModel> model;
  AdapterWriter ad;
  FixtureOptions o;
};

std::unique_ptr<Setup> make_setup() {
  auto s = std::make_unique<Setup>();
  s->o.model_type = "olmoe";
  testing::write_fixture(FixtureBuilder(s->o).build(), s->base.path());
  s->model = *TextModel::load(s->base.path());
  s->ad.config["target_modules"] = {"q_proj", "v_proj"};
  s->ad.linear("model.layers.0.self_attn.q_proj", s->o.heads * s->o.head_dim, s->o.hidden);
  return s;
}

std::string load_error(Setup& s) {
  s.ad.write(s.adir.path());
  auto a = LoraAdapter::load(s.adir.path(), *s.model);
  if (a.ok()) return "";
  EXPECT_TRUE(a.error().kind() == ErrorKind::kBadInput || a.error().kind() == ErrorKind::kUnsupported);
  return a.error().message();
}

TEST(Lora, UnsupportedConfigFieldsAreNamed) {
  for (auto [field, value] : std::vector<std::pair<std::string, json>>{{"use_dora", true},
                                                                       {"modules_to_save", {"lm_head"}},
                                                                       {"bias", "all"},
                                                                       {"lora_bias", true},
                                                                       {"rank_pattern", {{"q_proj", 8}}},
                                                                       {"peft_type", "IA3"},
                                                                       {"mystery_knob", 1}}) {
    auto s = make_setup();
    s->ad.config[field] = value;
    const std::string msg = load_error(*s);
    EXPECT_NE(msg.find(field), std::string::npos) << field << ": " << msg;
  }
}

TEST(Lora, AdapterForAnotherBaseIsRefused) {
  {
    auto s = make_setup();
    s->ad.tensors.clear();
    s->ad.linear("model.layers.0.self_attn.q_proj", s->o.heads * s->o.head_dim, s->o.hidden + 8);
    const std::string msg = load_error(*s);
    EXPECT_NE(msg.find("q_proj.lora_A.weight"), std::string::npos) << msg;
    EXPECT_NE(msg.find("another model"), std::string::npos) << msg;
  }
  {
    auto s = make_setup();
    s->ad.linear("model.layers.7.self_attn.q_proj", 32, 32);
    const std::string msg = load_error(*s);
    EXPECT_NE(msg.find("model.layers.7.self_attn.q_proj"), std::string::npos) << msg;
  }
  {
    auto s = make_setup();
    s->ad.config["r"] = 8;
    EXPECT_NE(load_error(*s).find("shape"), std::string::npos);
  }
}

TEST(Lora, InconsistentAdaptersAreRefused) {
  {
    auto s = make_setup();
    s->ad.linear("model.layers.0.self_attn.k_proj", s->o.kv_heads * s->o.head_dim, s->o.hidden);
    EXPECT_NE(load_error(*s).find("target_modules"), std::string::npos);
  }
  {
    auto s = make_setup();
    s->ad.tensors.pop_back();  // lora_B gone
    EXPECT_NE(load_error(*s).find("only one of lora_A"), std::string::npos);
  }
  {
    auto s = make_setup();
    s->ad.tensors.emplace_back("base_model.model.model.embed_tokens.lora_embedding_A",
                               Tensor::zeros({4, 61}, DType::kF32));
    EXPECT_NE(load_error(*s).find("embedding"), std::string::npos);
  }
  {
    auto s = make_setup();
    s->ad.write(s->adir.path());
    fs::remove(s->adir.path() / "adapter_model.safetensors");
    auto a = LoraAdapter::load(s->adir.path(), *s->model);
    ASSERT_FALSE(a.ok());
    EXPECT_NE(a.error().message().find("adapter_model.safetensors"), std::string::npos);
  }
}

TEST(Lora, AdapterOfOneModelCannotRunOnAnother) {
  auto s = make_setup();
  s->ad.write(s->adir.path());
  auto a = LoraAdapter::load(s->adir.path(), *s->model);
  ASSERT_TRUE(a.ok()) << a.error().message();
  auto other = *TextModel::load(s->base.path());
  auto out = other->forward(kIds, a->get());
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.error().message().find("another model"), std::string::npos);
}

}  // namespace
}  // namespace hilum::moe
