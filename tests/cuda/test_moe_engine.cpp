// The CUDA text engine against the CPU engine (its fp32 reference) on tiny
// models of every family, for every kernel choice (first-generation kernels,
// fused decode + tensor-core prefill, and the same with programmatic dependent
// launch): prefill through the <= 16-row path (fp32 activations) and the
// > 16-row path (bf16 activations in the tensor-core products), decode steps
// with a KV cache, batched decode, greedy decoding with and without CUDA
// graphs, and the golden files of tests/golden/moe (top-1 agreement, relative
// error <= 2e-2). Skipped without a CUDA device.
//
// The fixtures' weights are rounded to bf16 before they are written, so the
// CPU engine and the GPU's bf16 copy hold the same numbers: on the fp32
// activation path the engines then agree to summation order (<= 2e-3), which
// catches real bugs, instead of differing by weight rounding, which can flip
// a router's near-tie and change a token's experts. On a failure the test
// re-runs growing prefixes of the model's layers (and each layer without its
// feed-forward block) to report the first layer and stage that departs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <sstream>

#include "cuda/device.h"
#include "model/file_io.h"
#include "model/half.h"
#include "model/moe/cuda_engine.h"
#include "model/moe/generate.h"
#include "model/moe/lora.h"
#include "model/moe/text_model.h"
#include "model/npy.h"
#include "tests/model/moe_fixture.h"
#include "tests/support/test_support.h"

namespace hilum::moe {
namespace {

namespace fs = std::filesystem;

#define SKIP_WITHOUT_GPU() \
  if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device: " << cuda::unavailable_reason()

// ---- comparisons ---------------------------------------------------------------------------

// max |a - b| / max |b| (rel), where the largest difference is, the median
// over rows of the per-row relative error, and the share of rows whose argmax
// agrees.
struct Compare {
  double rel = 0;
  double median_row_rel = 0;
  double top1 = 0;
  double max_abs = 0;
  double scale = 0;
  int64_t worst_row = 0, worst_col = 0;
};

Compare compare(const Tensor& got, const Tensor& want) {
  Compare c;
  const int64_t rows = want.dim(0), V = want.dim(1);
  double den = 1e-12;
  int agree = 0;
  std::vector<double> per_row;
  for (int64_t r = 0; r < rows; ++r) {
    const float* a = got.data<float>() + r * V;
    const float* b = want.data<float>() + r * V;
    double rn = 0, rd = 1e-12;
    for (int64_t v = 0; v < V; ++v) {
      double d = std::fabs(static_cast<double>(a[v]) - b[v]);
      if (std::isnan(d)) d = INFINITY;
      if (d > c.max_abs) {
        c.max_abs = d;
        c.worst_row = r;
        c.worst_col = v;
      }
      rn = std::max(rn, d);
      rd = std::max(rd, static_cast<double>(std::fabs(b[v])));
    }
    den = std::max(den, rd);
    per_row.push_back(rn / rd);
    agree += std::max_element(a, a + V) - a == std::max_element(b, b + V) - b;
  }
  std::sort(per_row.begin(), per_row.end());
  c.rel = c.max_abs / den;
  c.scale = den;
  c.median_row_rel = per_row[per_row.size() / 2];
  c.top1 = static_cast<double>(agree) / static_cast<double>(rows);
  return c;
}

std::string describe(const Compare& c) {
  std::ostringstream os;
  os.precision(3);
  os << "rel " << c.rel << " (max |diff| " << c.max_abs << " at position " << c.worst_row << ", vocab "
     << c.worst_col << "; |logits| up to " << c.scale << "), median row rel " << c.median_row_rel
     << ", top-1 " << 100.0 * c.top1 << "%";
  return os.str();
}

// ---- fixtures --------------------------------------------------------------------------------

// Weights rounded to bf16: the GPU's copy equals the CPU's.
testing::Fixture bf16_fixture(const testing::FixtureOptions& o) {
  testing::Fixture f = testing::FixtureBuilder(o).build();
  for (auto& [name, t] : f.tensors) {
    for (float& v : t.second) v = bf16_to_f32(f32_to_bf16(v));
  }
  return f;
}

std::vector<testing::FixtureOptions> families() {
  std::vector<testing::FixtureOptions> out;
  for (const char* t : {"llama", "qwen2", "mixtral", "olmoe", "qwen2_moe", "deepseek_v2", "deepseek_v3"}) {
    testing::FixtureOptions o;
    o.model_type = t;
    o.vocab = 97;
    if (std::string(t) == "qwen2") o.sliding_window = 5;
    if (std::string(t) == "olmoe") o.clip_qkv = 1.5;
    if (std::string(t) == "deepseek_v3") {
      o.yarn = true;
      o.mscale = o.mscale_all_dim = 1.0;
      o.norm_topk = true;
      o.routed_scaling = 2.5;
    }
    if (std::string(t) == "deepseek_v2") o.topk_method = "group_limited_greedy";
    out.push_back(o);
  }
  return out;
}

// Shapes where the 16-byte loads, the tensor-core attention (head sizes that
// are multiples of 16) and the grouped expert GEMMs all run.
std::vector<testing::FixtureOptions> realistic_families() {
  std::vector<testing::FixtureOptions> out;
  for (const char* t : {"olmoe", "qwen2_moe", "deepseek_v3", "llama"}) {
    testing::FixtureOptions o;
    o.model_type = t;
    o.vocab = 300;
    o.hidden = 128;
    o.heads = 4;
    o.kv_heads = std::string(t) == "qwen2_moe" ? 2 : 4;
    o.head_dim = 32;
    o.inter = 96;
    o.moe_inter = 64;
    o.shared_inter = 96;
    o.experts = 16;
    o.top_k = 4;
    o.max_pos = 512;
    o.weight_std = 0.08f;
    o.q_lora_rank = 32;
    o.kv_lora_rank = 32;
    o.nope = 32;
    o.rope_dim = 16;
    o.v_head = 32;
    if (std::string(t) == "deepseek_v3") {
      o.yarn = true;
      o.yarn_original = 128;
      o.mscale = o.mscale_all_dim = 1.0;
      o.norm_topk = true;
      o.routed_scaling = 2.5;
    }
    out.push_back(o);
  }
  return out;
}

std::vector<int32_t> prompt(int64_t n, int64_t vocab, int64_t salt = 0) {
  std::vector<int32_t> ids(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) ids[i] = static_cast<int32_t>((i * 37 + 11 + salt * 101) % vocab);
  return ids;
}

struct Variant {
  const char* name;
  CudaKernels kernels;
};

std::vector<Variant> variants() {
  CudaKernels first;
  first.fused_decode = false;
  first.tensor_core_prefill = false;
  CudaKernels fused;
  fused.programmatic_launch = false;
  CudaKernels pdl;
  pdl.programmatic_launch = true;
  CudaKernels padded;
  padded.grouped_experts = false;
  return {{"first-generation kernels", first},
          {"fused decode + tensor-core prefill, plain launches", fused},
          {"fused + PDL", pdl},
          {"tensor-core attention + padded expert GEMMs", padded}};
}

// ---- diagnostics -----------------------------------------------------------------------------

// `m` with only its first `layers` layers; without_ffn zeroes the output of
// the last kept layer's feed-forward block (its attention alone remains).
std::shared_ptr<const TextModel> truncated(const TextModel& m, int64_t layers, bool without_ffn) {
  TextConfig c = m.config();
  Weights w = m.weights();
  c.num_layers = layers;
  c.sliding_window.resize(static_cast<size_t>(layers));
  c.layer_is_moe.resize(static_cast<size_t>(layers));
  w.layers.resize(static_cast<size_t>(layers));
  if (without_ffn) {
    Layer& L = w.layers.back();
    for (Tensor* t : {&L.mlp.down.weight, &L.mlp.down.bias, &L.moe.experts.down, &L.moe.shared.down.weight,
                      &L.moe.shared.down.bias}) {
      if (t->defined()) *t = Tensor::zeros(t->shape(), DType::kF32);
    }
  }
  return TextModel::from_weights(c, w);
}

// Measures one model (CPU engine vs CUDA engine); returns the comparison.
using Measure = std::function<Result<Compare>(const TextModel&)>;

// Re-runs `measure` on growing layer prefixes to name the first layer and
// stage (attention, or the feed-forward block) that departs beyond `tol`.
std::string diagnose(const TextModel& cpu, const Measure& measure, double tol) {
  std::ostringstream os;
  os << "\n  layer prefixes (CPU engine vs CUDA engine, same kernels):\n";
  for (int64_t k = 1; k <= cpu.config().num_layers; ++k) {
    for (bool ffn : {false, true}) {
      auto c = measure(*truncated(cpu, k, !ffn));
      os << "    layers 0.." << k - 1 << (ffn ? "                 " : " (last: attention)") << ": ";
      if (!c.ok()) {
        os << "failed: " << c.error().message() << "\n";
        return os.str();
      }
      os << describe(*c) << "\n";
      if (c->rel > tol) {
        os << "  -> first departure: layer " << k - 1
           << (ffn ? ", feed-forward block (router / experts / shared expert / MLP)"
                   : ", attention block (norm, q/k/v, q/k norm, RoPE, cache append, attention, o_proj)")
           << "\n";
        return os.str();
      }
    }
  }
  os << "  -> every layer prefix agrees: the final norm or the lm_head departs\n";
  return os.str();
}

Result<Compare> measure_prefill(const TextModel& m, const CudaEngineOptions& opt,
                                std::span<const int32_t> ids) {
  HILUM_ASSIGN_OR_RETURN(ForwardOutput want, m.forward(ids));
  HILUM_ASSIGN_OR_RETURN(auto gpu, CudaTextModel::upload(m, opt));
  HILUM_ASSIGN_OR_RETURN(Tensor got, gpu->prefill(0, ids, true));
  return compare(got, want.logits);
}

// Prefill of a and b in slots 0 and 1, then one batched decode step of both.
Result<std::pair<Compare, Compare>> measure_decode(const TextModel& m, const CudaEngineOptions& opt,
                                                   std::span<const int32_t> a, std::span<const int32_t> b) {
  HILUM_ASSIGN_OR_RETURN(auto gpu, CudaTextModel::upload(m, opt));
  HILUM_RETURN_IF_ERROR(gpu->prefill(0, a, false));
  HILUM_RETURN_IF_ERROR(gpu->prefill(1, b, false));
  const std::vector<int> slots = {1, 0};
  const std::vector<int32_t> next = {5, 6};
  HILUM_ASSIGN_OR_RETURN(Tensor step, gpu->decode(slots, next));
  std::vector<int32_t> a2(a.begin(), a.end()), b2(b.begin(), b.end());
  a2.push_back(6);
  b2.push_back(5);
  ForwardOptions last;
  last.logits = ForwardOptions::Logits::kLast;
  HILUM_ASSIGN_OR_RETURN(ForwardOutput wa, m.forward(a2, nullptr, last));
  HILUM_ASSIGN_OR_RETURN(ForwardOutput wb, m.forward(b2, nullptr, last));
  HILUM_ASSIGN_OR_RETURN(Tensor row0, step.slice0(0, 1));
  HILUM_ASSIGN_OR_RETURN(Tensor row1, step.slice0(1, 2));
  if (gpu->length(0) != static_cast<int64_t>(a2.size()) ||
      gpu->length(1) != static_cast<int64_t>(b2.size())) {
    return internal_error("decode did not advance the sequence lengths");
  }
  return std::make_pair(compare(row0, wb.logits), compare(row1, wa.logits));
}

// ---- tests -------------------------------------------------------------------------------------

// fp32 activations (<= 16 rows per step) on bf16-exact weights.
constexpr double kExactRel = 2e-3;

TEST(MoeCudaEngine, PrefillAndDecodeMatchTheCpuEngine) {
  SKIP_WITHOUT_GPU();
  for (const auto& o : families()) {
    SCOPED_TRACE(o.model_type);
    test::ScratchDir dir(o.model_type);
    testing::write_fixture(bf16_fixture(o), dir.path());
    auto cpu = TextModel::load(dir.path());
    ASSERT_TRUE(cpu.ok()) << cpu.error().message();
    const TextModel& model = **cpu;
    const bool moe = testing::is_moe_family(o.model_type);
    for (const Variant& v : variants()) {
      SCOPED_TRACE(v.name);
      // Chunks of 16 rows run the <= 16-row path (fp32 activations); chunks of
      // 64 run the > 16-row path for the 40-token prompt, with bf16
      // activations in the tensor-core products, where a near-tie in a router
      // may pick another expert for a token (MoE families are held to the
      // per-row median there).
      for (int64_t chunk : {int64_t{16}, int64_t{64}}) {
        CudaEngineOptions opt;
        opt.max_slots = 2;
        opt.max_seq = 128;
        opt.prefill_chunk = chunk;
        opt.kernels = v.kernels;
        for (int64_t n : {int64_t{9}, int64_t{40}}) {
          const auto ids = prompt(n, o.vocab);
          auto c = measure_prefill(model, opt, ids);
          ASSERT_TRUE(c.ok()) << c.error().message();
          const std::string where = "prefill of " + std::to_string(n) + " tokens in chunks of " +
                                    std::to_string(chunk) + ": " + describe(*c);
          const bool fp32_path = chunk == 16 || n <= 16;
          if (fp32_path) {
            const bool ok = c->rel <= kExactRel && c->top1 >= 0.95;
            EXPECT_TRUE(ok) << where
                            << (ok ? ""
                                   : diagnose(
                                         model,
                                         [&](const TextModel& m) { return measure_prefill(m, opt, ids); },
                                         kExactRel));
          } else if (!moe) {
            // bf16 activations: a near-tie between the two largest logits may swap.
            EXPECT_LE(c->rel, 2e-2) << where;
            EXPECT_GE(c->top1, 0.85) << where;
          } else {
            EXPECT_LE(c->median_row_rel, 2e-2) << where;
            EXPECT_GE(c->top1, 0.8) << where;
          }
        }
      }
      // Decode after a prefill, two sequences in one batch (fp32 activations).
      CudaEngineOptions opt;
      opt.max_slots = 2;
      opt.max_seq = 128;
      opt.kernels = v.kernels;
      const auto a = prompt(7, o.vocab), b = prompt(12, o.vocab, 1);
      auto d = measure_decode(model, opt, a, b);
      ASSERT_TRUE(d.ok()) << d.error().message();
      for (const Compare& c : {d->first, d->second}) {
        const bool ok = c.rel <= kExactRel;
        EXPECT_TRUE(ok) << "batched decode step: " << describe(c)
                        << (ok ? ""
                               : diagnose(
                                     model,
                                     [&](const TextModel& m) -> Result<Compare> {
                                       HILUM_ASSIGN_OR_RETURN(auto r, measure_decode(m, opt, a, b));
                                       return r.first.rel > r.second.rel ? r.first : r.second;
                                     },
                                     kExactRel));
      }
    }
  }
}

TEST(MoeCudaEngine, TensorCorePrefillAndFusedDecodeAtRealisticShapes) {
  SKIP_WITHOUT_GPU();
  for (const auto& o : realistic_families()) {
    SCOPED_TRACE(o.model_type);
    test::ScratchDir dir(o.model_type);
    testing::write_fixture(bf16_fixture(o), dir.path());
    auto cpu = TextModel::load(dir.path());
    ASSERT_TRUE(cpu.ok()) << cpu.error().message();
    const TextModel& model = **cpu;
    const bool moe = testing::is_moe_family(o.model_type);
    CudaEngineOptions opt;
    opt.max_slots = 2;
    opt.max_seq = 256;
    opt.prefill_chunk = 64;  // 150 tokens: chunks of 64, 64, 22 rows at positions 0, 64, 128
    auto gpu = CudaTextModel::upload(model, opt);
    ASSERT_TRUE(gpu.ok()) << gpu.error().message();
    const auto ids = prompt(150, o.vocab);
    auto want = model.forward(ids);
    ASSERT_TRUE(want.ok());
    std::vector<Tensor> prefills;
    for (const Variant& v : variants()) {
      SCOPED_TRACE(v.name);
      ASSERT_TRUE((*gpu)->set_kernels(v.kernels).ok());
      (*gpu)->reset(0);
      auto got = (*gpu)->prefill(0, ids, true);
      ASSERT_TRUE(got.ok()) << got.error().message();
      const Compare c = compare(*got, want->logits);
      EXPECT_LE(moe ? c.median_row_rel : c.rel, 2e-2) << "prefill of 150 tokens: " << describe(c);
      EXPECT_GE(c.top1, 0.8) << "prefill of 150 tokens: " << describe(c);
      prefills.push_back(*got);
    }
    // The two prefill implementations agree with each other as well as with the CPU.
    const Compare pc = compare(prefills[1], prefills[0]);
    EXPECT_LE(pc.median_row_rel, 2e-2) << "tensor-core vs first-generation prefill: " << describe(pc);
    // Decode: the same KV cache (first-generation prefill), then one step with
    // each decode implementation; fp32 activations on both sides.
    std::vector<Tensor> steps;
    for (const Variant& v : variants()) {
      SCOPED_TRACE(v.name);
      CudaKernels k = v.kernels;
      k.tensor_core_prefill = false;
      ASSERT_TRUE((*gpu)->set_kernels(k).ok());
      (*gpu)->reset(0);
      (*gpu)->reset(1);
      ASSERT_TRUE((*gpu)->prefill(0, prompt(40, o.vocab, 2), false).ok());
      ASSERT_TRUE((*gpu)->prefill(1, prompt(33, o.vocab, 3), false).ok());
      auto step = (*gpu)->decode(std::vector<int>{0, 1}, std::vector<int32_t>{7, 8});
      ASSERT_TRUE(step.ok()) << step.error().message();
      steps.push_back(*step);
    }
    const Compare fused = compare(steps[1], steps[0]);
    EXPECT_LE(fused.rel, kExactRel) << "fused vs first-generation decode step: " << describe(fused);
    // PDL changes when kernels start, never what they compute.
    const Compare pdl = compare(steps[2], steps[1]);
    EXPECT_EQ(pdl.max_abs, 0.0) << "fused decode with vs without PDL: " << describe(pdl);
    // And the decode step against the CPU engine on the same history.
    std::vector<int32_t> h0 = prompt(40, o.vocab, 2), h1 = prompt(33, o.vocab, 3);
    h0.push_back(7);
    h1.push_back(8);
    ForwardOptions last;
    last.logits = ForwardOptions::Logits::kLast;
    auto w0 = model.forward(h0, nullptr, last), w1 = model.forward(h1, nullptr, last);
    ASSERT_TRUE(w0.ok() && w1.ok());
    const Compare c0 = compare(*steps[1].slice0(0, 1), w0->logits);
    const Compare c1 = compare(*steps[1].slice0(1, 2), w1->logits);
    // The cache came from a bf16-activation prefill: bf16 tolerance (for MoE
    // families one of the two rows, a router near-tie in the prefill may move
    // a token to another expert).
    EXPECT_LE(moe ? std::min(c0.rel, c1.rel) : std::max(c0.rel, c1.rel), 2e-2)
        << "decode step vs CPU: " << describe(c0) << "; " << describe(c1);
  }
}

TEST(MoeCudaEngine, GreedyDecodingWithGraphsEqualsWithout) {
  SKIP_WITHOUT_GPU();
  testing::FixtureOptions o;
  o.model_type = "olmoe";
  o.experts = 16;
  o.top_k = 4;
  test::ScratchDir dir;
  testing::write_fixture(bf16_fixture(o), dir.path());
  auto cpu = *TextModel::load(dir.path());
  GenerateOptions g;
  g.max_new_tokens = 3;
  g.use_model_stop_tokens = false;
  auto want = generate(*cpu, prompt(5, o.vocab), nullptr, g);
  ASSERT_TRUE(want.ok());
  for (const Variant& v : variants()) {
    SCOPED_TRACE(v.name);
    std::vector<std::vector<int32_t>> runs;
    for (bool graphs : {false, true}) {
      CudaEngineOptions opt;
      opt.max_slots = 3;
      opt.max_seq = 64;
      opt.graphs = graphs;
      opt.kernels = v.kernels;
      auto gpu = CudaTextModel::upload(*cpu, opt);
      ASSERT_TRUE(gpu.ok()) << gpu.error().message();
      std::vector<int32_t> first;
      for (int s = 0; s < 3; ++s) {
        auto l = (*gpu)->prefill(s, prompt(5 + s, o.vocab), false);
        ASSERT_TRUE(l.ok());
        const float* r = l->data<float>();
        first.push_back(static_cast<int32_t>(std::max_element(r, r + o.vocab) - r));
      }
      auto toks = (*gpu)->decode_greedy(std::vector<int>{0, 1, 2}, first, 10);
      ASSERT_TRUE(toks.ok()) << toks.error().message();
      std::vector<int32_t> flat;
      for (const auto& row : *toks) flat.insert(flat.end(), row.begin(), row.end());
      runs.push_back(flat);
      EXPECT_EQ((*gpu)->length(0), 5 + 10);
    }
    EXPECT_EQ(runs[0], runs[1]);
    // The first greedy tokens agree with the CPU engine.
    EXPECT_EQ(runs[0][0], want->tokens[1]);
  }
}

TEST(MoeCudaEngine, RandomWeightsRunAtOlmoeShape) {
  SKIP_WITHOUT_GPU();
  auto cfg = parse_text_config(R"({"model_type": "olmoe", "vocab_size": 1000, "hidden_size": 256,
      "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 4, "intermediate_size": 128,
      "num_experts": 64, "num_experts_per_tok": 8, "rms_norm_eps": 1e-5, "max_position_embeddings": 512})",
                               "olmoe");
  ASSERT_TRUE(cfg.ok()) << cfg.error().message();
  CudaEngineOptions opt;
  opt.max_slots = 16;
  opt.max_seq = 128;
  auto gpu = CudaTextModel::random(*cfg, opt, 1);
  ASSERT_TRUE(gpu.ok()) << gpu.error().message();
  std::vector<int> slots(16);
  std::vector<int32_t> first(16, 3);
  for (int s = 0; s < 16; ++s) slots[s] = s;
  std::vector<Tensor> steps;
  for (const Variant& v : variants()) {
    SCOPED_TRACE(v.name);
    CudaKernels k = v.kernels;
    k.tensor_core_prefill = true;  // the same cache for every decode variant
    ASSERT_TRUE((*gpu)->set_kernels(k).ok());
    for (int s = 0; s < 16; ++s) {
      (*gpu)->reset(s);
      auto l = (*gpu)->prefill(s, prompt(100 - s, 1000, s), false);
      ASSERT_TRUE(l.ok()) << l.error().message();
      for (float x : l->span<float>()) ASSERT_TRUE(std::isfinite(x));
    }
    auto step = (*gpu)->decode(slots, first);
    ASSERT_TRUE(step.ok()) << step.error().message();
    steps.push_back(*step);
    auto toks = (*gpu)->decode_greedy(slots, first, 4);
    ASSERT_TRUE(toks.ok()) << toks.error().message();
    for (const auto& row : *toks) {
      for (int32_t t : row) ASSERT_TRUE(t >= 0 && t < 1000);
    }
  }
  // 16 rows through 64 experts: the fused step equals the first-generation one.
  const Compare c = compare(steps[1], steps[0]);
  EXPECT_LE(c.rel, kExactRel) << "fused vs first-generation decode at batch 16: " << describe(c);
  const Compare p = compare(steps[2], steps[1]);
  EXPECT_EQ(p.max_abs, 0.0) << "with vs without PDL: " << describe(p);
}

TEST(MoeCudaEngine, GoldenFilesAgreeWithinBf16Tolerance) {
  SKIP_WITHOUT_GPU();
  const fs::path root = fs::path(HILUM_TEST_DATA_DIR) / "golden" / "moe";
  std::error_code ec;
  if (!fs::is_directory(root, ec))
    GTEST_SKIP() << root << " is absent (tests/golden/moe_golden.py writes it)";
  int cases = 0;
  for (const auto& e : fs::directory_iterator(root)) {
    if (!fs::exists(e.path() / "logits.npy")) continue;
    SCOPED_TRACE(e.path().filename().string());
    ++cases;
    const auto g = nlohmann::json::parse(*read_file(e.path() / "greedy.json"));
    std::vector<int32_t> ids;
    for (const auto& v : g["prompt"]) ids.push_back(v.get<int32_t>());
    auto cpu = TextModel::load(e.path());
    ASSERT_TRUE(cpu.ok()) << cpu.error().message();
    std::shared_ptr<const LoraAdapter> adapter;
    if (fs::exists(e.path() / "lora" / "adapter_config.json")) {
      auto a = LoraAdapter::load(e.path() / "lora", **cpu);
      ASSERT_TRUE(a.ok()) << a.error().message();
      adapter = *a;
    }
    for (const Variant& v : variants()) {
      SCOPED_TRACE(v.name);
      for (bool lora : {false, true}) {
        if (lora && !adapter) continue;
        CudaEngineOptions opt;
        opt.max_seq = 64;
        opt.kernels = v.kernels;
        auto gpu = CudaTextModel::upload(**cpu, opt, lora ? adapter.get() : nullptr);
        ASSERT_TRUE(gpu.ok()) << gpu.error().message();
        auto got = (*gpu)->prefill(0, ids, true);
        ASSERT_TRUE(got.ok()) << got.error().message();
        auto want = read_npy(e.path() / (lora ? "logits_lora.npy" : "logits.npy"));
        ASSERT_TRUE(want.ok());
        const Compare c = compare(*got, *want);
        EXPECT_LE(c.rel, 2e-2) << (lora ? "LoRA: " : "base: ") << describe(c);
        EXPECT_EQ(c.top1, 1.0) << (lora ? "LoRA: " : "base: ") << describe(c);
      }
    }
  }
  if (cases == 0) GTEST_SKIP() << "no golden cases in " << root;
}

}  // namespace
}  // namespace hilum::moe
