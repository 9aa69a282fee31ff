// Test support: tiny Hugging Face checkpoints of every text family written
// with random weights (config.json + safetensors, transformers 5 names), and an
// independent, naive double-precision reference forward pass over the same
// tensors (no KV cache, no engine code), to check the engine against.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "model/file_io.h"
#include "model/safetensors.h"
#include "model/tensor.h"

namespace hilum::moe::testing {

namespace fs = std::filesystem;

struct FixtureOptions {
  std::string model_type = "llama";
  int64_t vocab = 61, hidden = 32, layers = 2, heads = 4, kv_heads = 2, head_dim = 8;
  int64_t inter = 40, moe_inter = 24, experts = 8, top_k = 2;
  bool norm_topk = false;      // olmoe / qwen2_moe
  bool fused_experts = false;  // transformers 5 fused tensors instead of per-expert ones
  bool mixtral_legacy = true;  // mixtral: block_sparse_moe.* names (as save_pretrained writes)
  int shards = 1;
  bool tie = false;
  int64_t sliding_window = 0;  // mixtral: every layer; qwen2: layers >= max_window_layers
  int64_t max_window_layers = 1;
  bool attention_bias = false;  // llama
  double clip_qkv = 0;          // olmoe
  // qwen2_moe
  int64_t shared_inter = 20;
  std::vector<int64_t> mlp_only_layers;
  // deepseek
  int64_t q_lora_rank = 12, kv_lora_rank = 10, nope = 6, rope_dim = 4, v_head = 7;
  int64_t n_group = 4, topk_group = 2, first_dense = 1, n_shared = 1;
  std::string topk_method = "greedy";  // v2: greedy | group_limited_greedy
  double routed_scaling = 1.0;
  bool rope_interleave = true;  // v3
  // rope
  double theta = 10000.0;
  bool yarn = false;
  double yarn_factor = 4.0, mscale = 0.0, mscale_all_dim = 0.0;
  int64_t yarn_original = 16, max_pos = 64;
  float weight_std = 0.15f;
  uint64_t seed = 1;
};

using TensorMap = std::map<std::string, std::pair<Shape, std::vector<float>>>;

struct Fixture {
  FixtureOptions o;
  TensorMap tensors;  // as written (per-expert names unless fused)
  nlohmann::json config;
};

inline bool is_moe_family(const std::string& t) {
  return t == "mixtral" || t == "olmoe" || t == "qwen2_moe" || t == "deepseek_v2" || t == "deepseek_v3";
}
inline bool is_deepseek(const std::string& t) { return t == "deepseek_v2" || t == "deepseek_v3"; }

inline bool layer_is_moe(const FixtureOptions& o, int64_t i) {
  if (!is_moe_family(o.model_type)) return false;
  if (is_deepseek(o.model_type)) return i >= o.first_dense;
  if (o.model_type == "qwen2_moe") {
    return std::find(o.mlp_only_layers.begin(), o.mlp_only_layers.end(), i) == o.mlp_only_layers.end();
  }
  return true;
}

inline std::string moe_prefix(const FixtureOptions& o, int64_t i) {
  const std::string p = "model.layers." + std::to_string(i);
  if (o.model_type == "mixtral" && o.mixtral_legacy && !o.fused_experts) return p + ".block_sparse_moe";
  return p + ".mlp";
}

inline nlohmann::json make_config(const FixtureOptions& o) {
  nlohmann::json c;
  c["model_type"] = o.model_type;
  c["architectures"] = {"ForCausalLM"};
  c["vocab_size"] = o.vocab;
  c["hidden_size"] = o.hidden;
  c["num_hidden_layers"] = o.layers;
  c["num_attention_heads"] = o.heads;
  c["num_key_value_heads"] = is_deepseek(o.model_type) ? o.heads : o.kv_heads;
  c["rms_norm_eps"] = 1e-5;
  c["hidden_act"] = "silu";
  c["tie_word_embeddings"] = o.tie;
  c["max_position_embeddings"] = o.max_pos;
  c["eos_token_id"] = 2;
  c["bos_token_id"] = 1;
  c["dtype"] = "float32";
  c["transformers_version"] = "5.17.0";
  c["initializer_range"] = 0.02;
  c["use_cache"] = true;
  c["attention_dropout"] = 0.0;
  nlohmann::json rope = {{"rope_theta", o.theta}, {"rope_type", "default"}};
  if (o.yarn) {
    rope = {{"rope_theta", o.theta},   {"rope_type", "yarn"},
            {"factor", o.yarn_factor}, {"original_max_position_embeddings", o.yarn_original},
            {"beta_fast", 32},         {"beta_slow", 1}};
    if (o.mscale != 0) rope["mscale"] = o.mscale;
    if (o.mscale_all_dim != 0) rope["mscale_all_dim"] = o.mscale_all_dim;
  }
  c["rope_parameters"] = rope;
  const std::string& t = o.model_type;
  if (t == "llama") {
    c["head_dim"] = o.head_dim;
    c["intermediate_size"] = o.inter;
    c["attention_bias"] = o.attention_bias;
    c["mlp_bias"] = false;
    c["pretraining_tp"] = 1;
  } else if (t == "qwen2") {
    c["intermediate_size"] = o.inter;
    c["use_sliding_window"] = o.sliding_window > 0;
    c["sliding_window"] = o.sliding_window > 0 ? nlohmann::json(o.sliding_window) : nlohmann::json(nullptr);
    c["max_window_layers"] = o.max_window_layers;
  } else if (t == "mixtral") {
    c["head_dim"] = o.head_dim;
    c["intermediate_size"] = o.moe_inter;
    c["num_local_experts"] = o.experts;
    c["num_experts_per_tok"] = o.top_k;
    c["sliding_window"] = o.sliding_window > 0 ? nlohmann::json(o.sliding_window) : nlohmann::json(nullptr);
    c["router_jitter_noise"] = 0.0;
    c["output_router_logits"] = false;
    c["router_aux_loss_coef"] = 0.001;
  } else if (t == "olmoe") {
    c["intermediate_size"] = o.moe_inter;
    c["num_experts"] = o.experts;
    c["num_experts_per_tok"] = o.top_k;
    c["norm_topk_prob"] = o.norm_topk;
    c["clip_qkv"] = o.clip_qkv > 0 ? nlohmann::json(o.clip_qkv) : nlohmann::json(nullptr);
    c["attention_bias"] = false;
    c["output_router_logits"] = false;
    c["router_aux_loss_coef"] = 0.01;
  } else if (t == "qwen2_moe") {
    c["intermediate_size"] = o.inter;
    c["moe_intermediate_size"] = o.moe_inter;
    c["shared_expert_intermediate_size"] = o.shared_inter;
    c["num_experts"] = o.experts;
    c["num_experts_per_tok"] = o.top_k;
    c["norm_topk_prob"] = o.norm_topk;
    c["decoder_sparse_step"] = 1;
    c["mlp_only_layers"] = o.mlp_only_layers;
    c["use_sliding_window"] = false;
    c["sliding_window"] = nullptr;
    c["max_window_layers"] = o.layers;
  } else if (is_deepseek(t)) {
    c["intermediate_size"] = o.inter;
    c["moe_intermediate_size"] = o.moe_inter;
    c["q_lora_rank"] = o.q_lora_rank > 0 ? nlohmann::json(o.q_lora_rank) : nlohmann::json(nullptr);
    c["kv_lora_rank"] = o.kv_lora_rank;
    c["qk_nope_head_dim"] = o.nope;
    c["qk_rope_head_dim"] = o.rope_dim;
    c["v_head_dim"] = o.v_head;
    c["head_dim"] = o.rope_dim;
    c["n_routed_experts"] = o.experts;
    c["n_shared_experts"] = o.n_shared;
    c["num_experts_per_tok"] = o.top_k;
    c["first_k_dense_replace"] = o.first_dense;
    c["routed_scaling_factor"] = o.routed_scaling;
    c["n_group"] = o.n_group;
    c["topk_group"] = o.topk_group;
    c["attention_bias"] = false;
    if (t == "deepseek_v2") {
      c["topk_method"] = o.topk_method;
      c["norm_topk_prob"] = false;
      c["mlp_bias"] = false;
    } else {
      c["topk_method"] = "noaux_tc";
      c["norm_topk_prob"] = o.norm_topk;
      c["rope_interleave"] = o.rope_interleave;
    }
  }
  return c;
}

class FixtureBuilder {
 public:
  explicit FixtureBuilder(const FixtureOptions& o) : o_(o), rng_(o.seed) {}

  void add(const std::string& name, Shape shape, float std, float mean = 0.0f) {
    std::normal_distribution<float> d(mean, std);
    std::vector<float> v(static_cast<size_t>(shape_numel(shape)));
    for (float& x : v) x = d(rng_);
    tensors_[name] = {std::move(shape), std::move(v)};
  }
  void linear(const std::string& name, int64_t out, int64_t in, bool bias = false) {
    add(name + ".weight", {out, in}, o_.weight_std);
    if (bias) add(name + ".bias", {out}, o_.weight_std);
  }
  void norm(const std::string& name, int64_t dim) { add(name + ".weight", {dim}, 0.1f, 1.0f); }
  void mlp(const std::string& p, int64_t inter) {
    linear(p + ".gate_proj", inter, o_.hidden);
    linear(p + ".up_proj", inter, o_.hidden);
    linear(p + ".down_proj", o_.hidden, inter);
  }

  Fixture build() {
    const FixtureOptions& o = o_;
    const std::string& t = o.model_type;
    const int64_t H = o.hidden;
    add("model.embed_tokens.weight", {o.vocab, H}, 0.5f);
    for (int64_t i = 0; i < o.layers; ++i) {
      const std::string p = "model.layers." + std::to_string(i);
      norm(p + ".input_layernorm", H);
      norm(p + ".post_attention_layernorm", H);
      const std::string a = p + ".self_attn";
      if (is_deepseek(t)) {
        const int64_t qk = o.nope + o.rope_dim;
        if (o.q_lora_rank > 0) {
          linear(a + ".q_a_proj", o.q_lora_rank, H);
          norm(a + ".q_a_layernorm", o.q_lora_rank);
          linear(a + ".q_b_proj", o.heads * qk, o.q_lora_rank);
        } else {
          linear(a + ".q_proj", o.heads * qk, H);
        }
        linear(a + ".kv_a_proj_with_mqa", o.kv_lora_rank + o.rope_dim, H);
        norm(a + ".kv_a_layernorm", o.kv_lora_rank);
        linear(a + ".kv_b_proj", o.heads * (o.nope + o.v_head), o.kv_lora_rank);
        linear(a + ".o_proj", H, o.heads * o.v_head);
      } else {
        const bool qkv_bias = t == "qwen2" || t == "qwen2_moe" || o.attention_bias;
        linear(a + ".q_proj", o.heads * o.head_dim, H, qkv_bias);
        linear(a + ".k_proj", o.kv_heads * o.head_dim, H, qkv_bias);
        linear(a + ".v_proj", o.kv_heads * o.head_dim, H, qkv_bias);
        linear(a + ".o_proj", H, o.heads * o.head_dim, o.attention_bias);
        if (t == "olmoe") {
          norm(a + ".q_norm", o.heads * o.head_dim);
          norm(a + ".k_norm", o.kv_heads * o.head_dim);
        }
      }
      if (!layer_is_moe(o, i)) {
        mlp(p + ".mlp", o.inter);
        continue;
      }
      const std::string m = moe_prefix(o, i);
      add(m + ".gate.weight", {o.experts, H}, 0.5f);
      if (t == "deepseek_v3") add(m + ".gate.e_score_correction_bias", {o.experts}, 0.05f);
      for (int64_t e = 0; e < o.experts; ++e) {
        const std::string x = m + ".experts." + std::to_string(e);
        if (t == "mixtral" && m.find("block_sparse_moe") != std::string::npos) {
          linear(x + ".w1", o.moe_inter, H);
          linear(x + ".w3", o.moe_inter, H);
          linear(x + ".w2", H, o.moe_inter);
        } else {
          mlp(x, o.moe_inter);
        }
      }
      if (t == "qwen2_moe") {
        mlp(m + ".shared_expert", o.shared_inter);
        linear(m + ".shared_expert_gate", 1, H);
      }
      if (is_deepseek(t) && o.n_shared > 0) mlp(m + ".shared_experts", o.moe_inter * o.n_shared);
    }
    norm("model.norm", H);
    if (!o.tie) linear("lm_head", o.vocab, H);
    Fixture f;
    f.o = o;
    f.tensors = tensors_;
    f.config = make_config(o);
    return f;
  }

 private:
  FixtureOptions o_;
  std::mt19937_64 rng_;
  TensorMap tensors_;
};

inline Tensor to_tensor(const std::pair<Shape, std::vector<float>>& t) {
  return Tensor::from_f32(t.first, t.second);
}

// The per-expert tensors of one MoE layer (read under `src`, gate/up/down or
// Mixtral's w1/w3/w2) fused the transformers 5 way under `dst`.
inline void fuse_experts(const FixtureOptions& o, const TensorMap& in, const std::string& src,
                         const std::string& dst, std::vector<std::pair<std::string, Tensor>>& out) {
  const int64_t E = o.experts, H = o.hidden, I = o.moe_inter;
  std::vector<float> gu(static_cast<size_t>(E * 2 * I * H)), dn(static_cast<size_t>(E * H * I));
  for (int64_t e = 0; e < E; ++e) {
    const std::string x = src + ".experts." + std::to_string(e);
    const bool w = in.count(x + ".w1.weight") > 0;
    const auto& g = in.at(x + (w ? ".w1.weight" : ".gate_proj.weight")).second;
    const auto& u = in.at(x + (w ? ".w3.weight" : ".up_proj.weight")).second;
    const auto& d = in.at(x + (w ? ".w2.weight" : ".down_proj.weight")).second;
    std::copy(g.begin(), g.end(), gu.begin() + e * 2 * I * H);
    std::copy(u.begin(), u.end(), gu.begin() + e * 2 * I * H + I * H);
    std::copy(d.begin(), d.end(), dn.begin() + e * H * I);
  }
  out.emplace_back(dst + ".experts.gate_up_proj", Tensor::from_f32({E, 2 * I, H}, gu));
  out.emplace_back(dst + ".experts.down_proj", Tensor::from_f32({E, H, I}, dn));
}

// Writes config.json, generation_config.json and the weights (one file or
// `o.shards` shards with an index) into `dir`.
inline void write_fixture(const Fixture& f, const fs::path& dir) {
  fs::create_directories(dir);
  const FixtureOptions& o = f.o;
  std::vector<std::pair<std::string, Tensor>> list;
  for (const auto& [name, t] : f.tensors) {
    if (o.fused_experts && name.find(".experts.") != std::string::npos) continue;
    std::string n = name;
    // transformers 5 renames Mixtral's block_sparse_moe.gate to mlp.gate.
    if (o.fused_experts && n.find(".block_sparse_moe.gate.") != std::string::npos) {
      n.replace(n.find(".block_sparse_moe."), 18, ".mlp.");
    }
    list.emplace_back(n, to_tensor(t));
  }
  if (o.fused_experts) {
    for (int64_t i = 0; i < o.layers; ++i) {
      if (!layer_is_moe(o, i)) continue;
      FixtureOptions unfused = o;
      unfused.fused_experts = false;
      const std::string src = f.tensors.count(moe_prefix(unfused, i) + ".gate.weight")
                                  ? moe_prefix(unfused, i)
                                  : moe_prefix(o, i);
      fuse_experts(o, f.tensors, src, "model.layers." + std::to_string(i) + ".mlp", list);
    }
  }
  (void)write_file_atomic(dir / "config.json", f.config.dump(2));
  nlohmann::json gen = {{"eos_token_id", {2, 3}}, {"bos_token_id", 1}, {"transformers_version", "5.17.0"}};
  (void)write_file_atomic(dir / "generation_config.json", gen.dump(2));
  if (o.shards <= 1) {
    (void)write_safetensors(dir / "model.safetensors", list);
    return;
  }
  nlohmann::json index;
  index["metadata"] = {{"total_size", 0}};
  std::vector<std::vector<std::pair<std::string, Tensor>>> parts(static_cast<size_t>(o.shards));
  for (size_t i = 0; i < list.size(); ++i) parts[i % parts.size()].push_back(list[i]);
  for (size_t s = 0; s < parts.size(); ++s) {
    char name[64];
    std::snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", s + 1, parts.size());
    (void)write_safetensors(dir / name, parts[s]);
    for (const auto& [n, t] : parts[s]) index["weight_map"][n] = name;
  }
  (void)write_file_atomic(dir / "model.safetensors.index.json", index.dump(2));
}

// ---- naive reference ---------------------------------------------------------

class Reference {
 public:
  explicit Reference(const Fixture& f) : f_(f), o_(f.o), w_(f.tensors) {}
  // Mutable weights (tests add LoRA deltas here).
  TensorMap& weights() { return w_; }

  // Logits [T][vocab] of the whole sequence.
  std::vector<std::vector<double>> logits(const std::vector<int32_t>& ids) const {
    const int64_t T = static_cast<int64_t>(ids.size());
    std::vector<std::vector<double>> x(static_cast<size_t>(T));
    for (int64_t t = 0; t < T; ++t) x[t] = row("model.embed_tokens.weight", ids[t]);
    for (int64_t i = 0; i < o_.layers; ++i) {
      const std::string p = "model.layers." + std::to_string(i);
      std::vector<std::vector<double>> h(static_cast<size_t>(T));
      for (int64_t t = 0; t < T; ++t) h[t] = rms(x[t], p + ".input_layernorm.weight", 1e-5);
      auto a = is_deepseek(o_.model_type) ? mla(h, p + ".self_attn") : gqa(h, p + ".self_attn", i);
      for (int64_t t = 0; t < T; ++t) add_to(x[t], a[t]);
      for (int64_t t = 0; t < T; ++t) {
        auto n = rms(x[t], p + ".post_attention_layernorm.weight", 1e-5);
        add_to(x[t], layer_is_moe(o_, i) ? moe(n, moe_prefix(o_, i)) : mlp(n, p + ".mlp"));
      }
    }
    std::vector<std::vector<double>> out(static_cast<size_t>(T));
    for (int64_t t = 0; t < T; ++t) {
      auto n = rms(x[t], "model.norm.weight", 1e-5);
      out[t] = matvec(o_.tie ? "model.embed_tokens.weight" : "lm_head.weight", n);
    }
    return out;
  }

 private:
  const std::vector<float>& data(const std::string& name) const { return w_.at(name).second; }
  const Shape& shape(const std::string& name) const { return w_.at(name).first; }
  std::vector<double> row(const std::string& name, int64_t r) const {
    const int64_t n = shape(name)[1];
    const auto& d = data(name);
    return std::vector<double>(d.begin() + r * n, d.begin() + (r + 1) * n);
  }
  std::vector<double> matvec(const std::string& name, const std::vector<double>& x) const {
    const int64_t out = shape(name)[0], in = shape(name)[1];
    const auto& d = data(name);
    std::vector<double> y(static_cast<size_t>(out), 0.0);
    for (int64_t o = 0; o < out; ++o) {
      double s = 0;
      for (int64_t i = 0; i < in; ++i) s += d[o * in + i] * x[i];
      y[o] = s;
    }
    const std::string bias = name.substr(0, name.size() - 7) + ".bias";
    if (name.size() > 7 && w_.count(bias)) {
      const auto& b = data(bias);
      for (int64_t o = 0; o < out; ++o) y[o] += b[o];
    }
    return y;
  }
  std::vector<double> lin(const std::string& module, const std::vector<double>& x) const {
    return matvec(module + ".weight", x);
  }
  std::vector<double> rms(const std::vector<double>& x, const std::string& wname, double eps) const {
    double ss = 0;
    for (double v : x) ss += v * v;
    const double r = 1.0 / std::sqrt(ss / static_cast<double>(x.size()) + eps);
    const auto& w = data(wname);
    std::vector<double> y(x.size());
    for (size_t i = 0; i < x.size(); ++i) y[i] = w[i] * x[i] * r;
    return y;
  }
  static void add_to(std::vector<double>& a, const std::vector<double>& b) {
    for (size_t i = 0; i < a.size(); ++i) a[i] += b[i];
  }
  static double silu(double v) { return v / (1.0 + std::exp(-v)); }

  std::vector<double> mlp(const std::vector<double>& x, const std::string& p) const {
    auto g = lin(p + ".gate_proj", x), u = lin(p + ".up_proj", x);
    for (size_t i = 0; i < g.size(); ++i) g[i] = silu(g[i]) * u[i];
    return lin(p + ".down_proj", g);
  }

  // Expert e of a MoE block (names as written by the fixture).
  std::vector<double> expert(const std::vector<double>& x, const std::string& m, int64_t e) const {
    const std::string xp = m + ".experts." + std::to_string(e);
    if (w_.count(xp + ".w1.weight")) {
      auto g = lin(xp + ".w1", x), u = lin(xp + ".w3", x);
      for (size_t i = 0; i < g.size(); ++i) g[i] = silu(g[i]) * u[i];
      return lin(xp + ".w2", g);
    }
    return mlp(x, xp);
  }

  static std::vector<int64_t> top(const std::vector<double>& s, int64_t k) {
    std::vector<int64_t> idx(s.size());
    std::iota(idx.begin(), idx.end(), 0);
    std::stable_sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) { return s[a] > s[b]; });
    idx.resize(static_cast<size_t>(k));
    return idx;
  }

  std::vector<double> moe(const std::vector<double>& x, const std::string& m) const {
    const std::string& t = o_.model_type;
    const int64_t E = o_.experts, K = o_.top_k;
    auto logits = lin(m + ".gate", x);
    std::vector<int64_t> chosen;
    std::vector<double> weight;
    if (t == "deepseek_v3") {
      std::vector<double> s(E), c(E);
      const auto& bias = data(m + ".gate.e_score_correction_bias");
      for (int64_t e = 0; e < E; ++e) {
        s[e] = 1.0 / (1.0 + std::exp(-logits[e]));
        c[e] = s[e] + bias[e];
      }
      const int64_t per = E / o_.n_group;
      std::vector<double> gs(o_.n_group);
      for (int64_t g = 0; g < o_.n_group; ++g) {
        std::vector<double> v(c.begin() + g * per, c.begin() + (g + 1) * per);
        std::sort(v.rbegin(), v.rend());
        gs[g] = v[0] + v[1];
      }
      auto keep = top(gs, o_.topk_group);
      std::vector<double> masked(E, -INFINITY);
      for (int64_t g : keep) {
        for (int64_t e = g * per; e < (g + 1) * per; ++e) masked[e] = c[e];
      }
      chosen = top(masked, K);
      double sum = 0;
      for (int64_t e : chosen) sum += s[e];
      for (int64_t e : chosen)
        weight.push_back((o_.norm_topk ? s[e] / (sum + 1e-20) : s[e]) * o_.routed_scaling);
    } else {
      std::vector<double> p(E);
      double mx = *std::max_element(logits.begin(), logits.end()), sum = 0;
      for (int64_t e = 0; e < E; ++e) sum += (p[e] = std::exp(logits[e] - mx));
      for (double& v : p) v /= sum;
      std::vector<double> choice = p;
      if (t == "deepseek_v2" && o_.topk_method == "group_limited_greedy") {
        const int64_t per = E / o_.n_group;
        std::vector<double> gs(o_.n_group);
        for (int64_t g = 0; g < o_.n_group; ++g) {
          gs[g] = *std::max_element(p.begin() + g * per, p.begin() + (g + 1) * per);
        }
        auto keep = top(gs, o_.topk_group);
        std::vector<double> masked(E, 0.0);
        for (int64_t g : keep) {
          for (int64_t e = g * per; e < (g + 1) * per; ++e) masked[e] = p[e];
        }
        choice = masked;
      }
      chosen = top(choice, K);
      double ks = 0;
      for (int64_t e : chosen) ks += p[e];
      for (int64_t e : chosen) {
        if (is_deepseek(t)) {
          weight.push_back(p[e] * o_.routed_scaling);
        } else if (t == "mixtral" || o_.norm_topk) {
          weight.push_back(p[e] / ks);
        } else {
          weight.push_back(p[e]);
        }
      }
    }
    std::vector<double> out(x.size(), 0.0);
    for (size_t j = 0; j < chosen.size(); ++j) {
      auto y = expert(x, m, chosen[j]);
      for (size_t i = 0; i < out.size(); ++i) out[i] += weight[j] * y[i];
    }
    if (t == "qwen2_moe") {
      auto s = mlp(x, m + ".shared_expert");
      const double g = 1.0 / (1.0 + std::exp(-lin(m + ".shared_expert_gate", x)[0]));
      for (size_t i = 0; i < out.size(); ++i) out[i] += g * s[i];
    }
    if (is_deepseek(t) && o_.n_shared > 0) add_to(out, mlp(x, m + ".shared_experts"));
    return out;
  }

  // RoPE inverse frequencies and cos/sin factor, straight from the formulas.
  void rope_params(int64_t dim, std::vector<double>& inv, double& mscale) const {
    inv.assign(static_cast<size_t>(dim / 2), 0.0);
    mscale = 1.0;
    for (int64_t i = 0; i < dim / 2; ++i) inv[i] = 1.0 / std::pow(o_.theta, 2.0 * i / dim);
    if (!o_.yarn) return;
    const double f = o_.yarn_factor, orig = static_cast<double>(o_.yarn_original);
    auto corr = [&](double rot) {
      return dim * std::log(orig / (rot * 2 * M_PI)) / (2 * std::log(o_.theta));
    };
    double lo = std::max(std::floor(corr(32)), 0.0), hi = std::min(std::ceil(corr(1)), dim - 1.0);
    if (lo == hi) hi += 0.001;
    for (int64_t i = 0; i < dim / 2; ++i) {
      const double ramp = std::clamp((i - lo) / (hi - lo), 0.0, 1.0);
      const double extra = 1.0 - ramp;  // share of the unscaled frequency
      inv[i] = inv[i] / f * (1 - extra) + inv[i] * extra;
    }
    auto get = [&](double m) { return f <= 1 ? 1.0 : 0.1 * m * std::log(f) + 1.0; };
    mscale = (o_.mscale != 0 && o_.mscale_all_dim != 0) ? get(o_.mscale) / get(o_.mscale_all_dim) : get(1.0);
  }

  void rotate(std::vector<double>& v, size_t off, int64_t dim, int64_t pos, bool interleaved) const {
    std::vector<double> inv;
    double ms;
    rope_params(dim, inv, ms);
    const int64_t half = dim / 2;
    for (int64_t i = 0; i < half; ++i) {
      const double c = std::cos(pos * inv[i]) * ms, s = std::sin(pos * inv[i]) * ms;
      const size_t a = interleaved ? off + 2 * i : off + i,
                   b = interleaved ? off + 2 * i + 1 : off + i + half;
      const double x1 = v[a], x2 = v[b];
      v[a] = x1 * c - x2 * s;
      v[b] = x2 * c + x1 * s;
    }
  }

  static std::vector<double> attend(const std::vector<std::vector<double>>& q,
                                    const std::vector<std::vector<double>>& k,
                                    const std::vector<std::vector<double>>& v, int64_t nh, int64_t nkv,
                                    int64_t dk, int64_t dv, double scale, int64_t window, int64_t t) {
    std::vector<double> out(static_cast<size_t>(nh * dv), 0.0);
    for (int64_t h = 0; h < nh; ++h) {
      const int64_t kh = h / (nh / nkv);
      const int64_t lo = window > 0 ? std::max<int64_t>(0, t - window + 1) : 0;
      std::vector<double> s;
      for (int64_t j = lo; j <= t; ++j) {
        double d = 0;
        for (int64_t i = 0; i < dk; ++i) d += q[t][h * dk + i] * k[j][kh * dk + i];
        s.push_back(d * scale);
      }
      const double mx = *std::max_element(s.begin(), s.end());
      double sum = 0;
      for (double& x : s) sum += (x = std::exp(x - mx));
      for (int64_t j = lo; j <= t; ++j) {
        for (int64_t i = 0; i < dv; ++i) out[h * dv + i] += s[j - lo] / sum * v[j][kh * dv + i];
      }
    }
    return out;
  }

  std::vector<std::vector<double>> gqa(const std::vector<std::vector<double>>& h, const std::string& a,
                                       int64_t layer) const {
    const int64_t T = static_cast<int64_t>(h.size()), nh = o_.heads, nkv = o_.kv_heads, hd = o_.head_dim;
    std::vector<std::vector<double>> q(T), k(T), v(T), out(T);
    for (int64_t t = 0; t < T; ++t) {
      q[t] = lin(a + ".q_proj", h[t]);
      k[t] = lin(a + ".k_proj", h[t]);
      v[t] = lin(a + ".v_proj", h[t]);
      if (o_.model_type == "olmoe") {
        q[t] = rms(q[t], a + ".q_norm.weight", 1e-5);
        k[t] = rms(k[t], a + ".k_norm.weight", 1e-5);
        if (o_.clip_qkv > 0) {
          for (auto* b : {&q[t], &k[t], &v[t]}) {
            for (double& x : *b) x = std::clamp(x, -o_.clip_qkv, o_.clip_qkv);
          }
        }
      }
      for (int64_t hh = 0; hh < nh; ++hh) rotate(q[t], hh * hd, hd, t, false);
      for (int64_t hh = 0; hh < nkv; ++hh) rotate(k[t], hh * hd, hd, t, false);
    }
    int64_t window = 0;
    if (o_.model_type == "mixtral") window = o_.sliding_window;
    if (o_.model_type == "qwen2" && layer >= o_.max_window_layers) window = o_.sliding_window;
    for (int64_t t = 0; t < T; ++t) {
      out[t] = lin(a + ".o_proj", attend(q, k, v, nh, nkv, hd, hd, 1.0 / std::sqrt(double(hd)), window, t));
    }
    return out;
  }

  std::vector<std::vector<double>> mla(const std::vector<std::vector<double>>& h,
                                       const std::string& a) const {
    const int64_t T = static_cast<int64_t>(h.size()), nh = o_.heads, nope = o_.nope, rd = o_.rope_dim;
    const int64_t dk = nope + rd, dv = o_.v_head, kvr = o_.kv_lora_rank;
    const bool inter = o_.model_type == "deepseek_v2" || o_.rope_interleave;
    std::vector<std::vector<double>> q(T), k(T), v(T), out(T);
    for (int64_t t = 0; t < T; ++t) {
      q[t] = o_.q_lora_rank > 0
                 ? lin(a + ".q_b_proj", rms(lin(a + ".q_a_proj", h[t]), a + ".q_a_layernorm.weight", 1e-6))
                 : lin(a + ".q_proj", h[t]);
      auto ckv = lin(a + ".kv_a_proj_with_mqa", h[t]);
      std::vector<double> lat(ckv.begin(), ckv.begin() + kvr), pe(ckv.begin() + kvr, ckv.end());
      auto kvb = lin(a + ".kv_b_proj", rms(lat, a + ".kv_a_layernorm.weight", 1e-6));
      rotate(pe, 0, rd, t, inter);
      k[t].assign(static_cast<size_t>(nh * dk), 0.0);
      v[t].assign(static_cast<size_t>(nh * dv), 0.0);
      for (int64_t hh = 0; hh < nh; ++hh) {
        rotate(q[t], hh * dk + nope, rd, t, inter);
        for (int64_t i = 0; i < nope; ++i) k[t][hh * dk + i] = kvb[hh * (nope + dv) + i];
        for (int64_t i = 0; i < rd; ++i) k[t][hh * dk + nope + i] = pe[i];
        for (int64_t i = 0; i < dv; ++i) v[t][hh * dv + i] = kvb[hh * (nope + dv) + nope + i];
      }
    }
    double scale = 1.0 / std::sqrt(double(dk));
    if (o_.yarn && o_.mscale_all_dim != 0) {
      const double m = 0.1 * o_.mscale_all_dim * std::log(o_.yarn_factor) + 1.0;
      scale *= m * m;
    }
    for (int64_t t = 0; t < T; ++t) out[t] = lin(a + ".o_proj", attend(q, k, v, nh, nh, dk, dv, scale, 0, t));
    return out;
  }

  const Fixture& f_;
  const FixtureOptions& o_;
  TensorMap w_;
};

// Largest |a - b| / (max |b| over the row + tiny), over all rows.
inline double max_rel_error(const float* got, const std::vector<std::vector<double>>& want) {
  double worst = 0;
  size_t k = 0;
  for (const auto& row : want) {
    double scale = 1e-6;
    for (double v : row) scale = std::max(scale, std::fabs(v));
    for (double v : row) worst = std::max(worst, std::fabs(got[k++] - v) / scale);
  }
  return worst;
}

}  // namespace hilum::moe::testing
