// Text-engine throughput (tokens per second, counter "tok/s"):
//   Cpu/*   the CPU fp32 engine on a demo-sized OLMoE-style model (hidden 256,
//           4 layers, 64 experts top-8, vocab 8000): prefill of 128 tokens,
//           decode of 64 tokens after a 64-token prompt.
//   Cuda/*  the CUDA engine with random bf16 weights at the published
//           OLMoE-1B-7B geometry (prefill of 512 tokens; greedy decode at batch
//           1 and 16 with CUDA graphs) and at DeepSeek-V2-Lite's (decode,
//           batch 1), for each kernel choice on the same model:
//             fused      fused decode kernels / tensor-core prefill, plain launches
//             fused_pdl  the same with programmatic dependent launch (the default)
//             fused_padded  tensor-core attention, padded cuBLAS expert GEMMs
//             first_gen  the first-generation kernels (reference)
//           Skipped without a GPU.
// Side by side with transformers: bench/moe_torch.py (scripts/gpu/bench_moe.sh).
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <memory>

#include "cuda/device.h"
#include "model/moe/cuda_engine.h"
#include "model/moe/generate.h"
#include "model/moe/text_model.h"
#include "tests/model/moe_fixture.h"

namespace hilum::moe {
namespace {

namespace fs = std::filesystem;

std::vector<int32_t> tokens(int64_t n, int64_t vocab, int64_t salt = 0) {
  std::vector<int32_t> ids(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) ids[i] = static_cast<int32_t>((i * 7919 + salt * 104729 + 13) % vocab);
  return ids;
}

// ---- CPU -------------------------------------------------------------------------------

const TextModel& demo_model() {
  static std::shared_ptr<const TextModel> model = [] {
    testing::FixtureOptions o;
    o.model_type = "olmoe";
    o.vocab = 8000;
    o.hidden = 256;
    o.layers = 4;
    o.heads = 4;
    o.kv_heads = 4;
    o.head_dim = 64;
    o.moe_inter = 128;
    o.experts = 64;
    o.top_k = 8;
    o.max_pos = 4096;
    o.weight_std = 0.05f;
    const fs::path dir = fs::temp_directory_path() / ("hilum_bench_moe_" + std::to_string(::getpid()));
    testing::write_fixture(testing::FixtureBuilder(o).build(), dir);
    auto m = TextModel::load(dir);
    std::error_code ec;
    fs::remove_all(dir, ec);
    if (!m.ok()) {
      std::fprintf(stderr, "bench_moe: %s\n", m.error().message().c_str());
      std::exit(1);
    }
    return *m;
  }();
  return *model;
}

void BM_CpuPrefill(benchmark::State& state) {
  const TextModel& m = demo_model();
  const auto ids = tokens(state.range(0), m.config().vocab_size);
  ForwardOptions opt;
  opt.logits = ForwardOptions::Logits::kLast;
  for (auto _ : state) {
    auto out = m.forward(ids, nullptr, opt);
    if (!out.ok()) state.SkipWithError(out.error().message().c_str());
  }
  state.counters["tok/s"] = benchmark::Counter(static_cast<double>(state.range(0)) * state.iterations(),
                                               benchmark::Counter::kIsRate);
}
BENCHMARK(BM_CpuPrefill)->Name("Cpu/prefill")->Arg(128)->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_CpuDecode(benchmark::State& state) {
  const TextModel& m = demo_model();
  const auto prompt = tokens(64, m.config().vocab_size);
  GenerateOptions gen;
  gen.max_new_tokens = state.range(0);
  gen.use_model_stop_tokens = false;
  int64_t produced = 0;
  for (auto _ : state) {
    state.PauseTiming();
    KvCache cache;
    ForwardOptions opt;
    opt.logits = ForwardOptions::Logits::kLast;
    auto first = m.forward(prompt, cache, nullptr, opt);
    state.ResumeTiming();
    Sampler sampler(gen.sampling);
    int32_t t = sampler.next(first->logits.span<const float>());
    for (int64_t i = 0; i < gen.max_new_tokens; ++i) {
      const int32_t one[1] = {t};
      auto out = m.forward(one, cache, nullptr, opt);
      t = sampler.next(out->logits.span<const float>());
      ++produced;
    }
  }
  state.counters["tok/s"] = benchmark::Counter(static_cast<double>(produced), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_CpuDecode)->Name("Cpu/decode")->Arg(64)->UseRealTime()->Unit(benchmark::kMillisecond);

// ---- CUDA ------------------------------------------------------------------------------

TextConfig olmoe_1b_7b() {
  // allenai/OLMoE-1B-7B-0924's published config.json.
  return *parse_text_config(R"({"model_type": "olmoe", "vocab_size": 50304, "hidden_size": 2048,
      "intermediate_size": 1024, "num_hidden_layers": 16, "num_attention_heads": 16, "num_key_value_heads": 16,
      "num_experts": 64, "num_experts_per_tok": 8, "norm_topk_prob": false, "hidden_act": "silu",
      "max_position_embeddings": 4096, "rms_norm_eps": 1e-05, "rope_theta": 10000.0, "rope_scaling": null,
      "clip_qkv": null, "attention_bias": false, "tie_word_embeddings": false, "eos_token_id": 50279,
      "pad_token_id": 1, "bos_token_id": null})",
                            "OLMoE-1B-7B");
}

TextConfig deepseek_v2_lite() {
  // deepseek-ai/DeepSeek-V2-Lite's published config.json (architecture fields).
  return *parse_text_config(R"({"model_type": "deepseek_v2", "vocab_size": 102400, "hidden_size": 2048,
      "intermediate_size": 10944, "moe_intermediate_size": 1408, "num_hidden_layers": 27, "num_attention_heads": 16,
      "num_key_value_heads": 16, "n_shared_experts": 2, "n_routed_experts": 64, "num_experts_per_tok": 6,
      "routed_scaling_factor": 1.0, "kv_lora_rank": 512, "q_lora_rank": null, "qk_rope_head_dim": 64,
      "v_head_dim": 128, "qk_nope_head_dim": 128, "topk_method": "greedy", "n_group": 1, "topk_group": 1,
      "first_k_dense_replace": 1, "moe_layer_freq": 1, "norm_topk_prob": false, "scoring_func": "softmax",
      "hidden_act": "silu", "max_position_embeddings": 163840, "rms_norm_eps": 1e-06, "rope_theta": 10000,
      "rope_scaling": {"beta_fast": 32, "beta_slow": 1, "factor": 40, "mscale": 0.707, "mscale_all_dim": 0.707,
      "original_max_position_embeddings": 4096, "type": "yarn"}, "attention_bias": false,
      "tie_word_embeddings": false, "bos_token_id": 100000, "eos_token_id": 100001})",
                            "DeepSeek-V2-Lite");
}

struct GpuModels {
  std::unique_ptr<CudaTextModel> olmoe, olmoe16, v2lite;
};

GpuModels& gpu_models() {
  static GpuModels g;
  return g;
}

CudaTextModel* gpu_model(const std::string& which) {
  if (cuda::device_count() == 0) return nullptr;
  GpuModels& g = gpu_models();
  std::unique_ptr<CudaTextModel>* slot = which == "olmoe"     ? &g.olmoe
                                         : which == "olmoe16" ? &g.olmoe16
                                                              : &g.v2lite;
  if (!*slot) {
    // One large model on the device at a time.
    g.olmoe.reset();
    g.olmoe16.reset();
    g.v2lite.reset();
    CudaEngineOptions opt;
    opt.max_slots = which == "olmoe16" ? 16 : 1;
    opt.max_seq = 1024;
    opt.prefill_chunk = 512;
    auto m = CudaTextModel::random(which == "v2lite" ? deepseek_v2_lite() : olmoe_1b_7b(), opt, 1234);
    if (!m.ok()) {
      std::fprintf(stderr, "bench_moe: %s\n", m.error().message().c_str());
      return nullptr;
    }
    *slot = std::move(*m);
  }
  return slot->get();
}

// Kernel choices by benchmark argument: 0 first_gen, 1 fused, 2 fused_pdl,
// 3 fused with the padded cuBLAS expert GEMMs instead of the grouped ones.
CudaKernels kernels_of(int64_t choice) {
  CudaKernels k;
  if (choice == 0) {
    k.fused_decode = false;
    k.tensor_core_prefill = false;
  }
  k.programmatic_launch = choice == 2;
  k.grouped_experts = choice != 3;
  return k;
}

bool use_kernels(benchmark::State& state, CudaTextModel* m, int64_t choice) {
  if (!m) {
    state.SkipWithError("no CUDA device");
    return false;
  }
  Status s = m->set_kernels(kernels_of(choice));
  if (!s.ok()) {
    state.SkipWithError(s.error().message().c_str());
    return false;
  }
  return true;
}

void BM_CudaPrefill(benchmark::State& state, int64_t choice) {
  CudaTextModel* m = gpu_model("olmoe");
  if (!use_kernels(state, m, choice)) return;
  const auto ids = tokens(state.range(0), m->config().vocab_size);
  for (auto _ : state) {
    m->reset(0);
    auto ms = m->time_ms([&]() -> Status {
      return m->prefill(0, ids, false).ok() ? Status::Ok() : internal_error("prefill");
    });
    if (!ms.ok()) {
      state.SkipWithError(ms.error().message().c_str());
      return;
    }
    state.SetIterationTime(*ms / 1000.0);
  }
  state.counters["tok/s"] = benchmark::Counter(static_cast<double>(state.range(0)) * state.iterations(),
                                               benchmark::Counter::kIsRate);
}
BENCHMARK_CAPTURE(BM_CudaPrefill, fused, 1)
    ->Name("Cuda/olmoe_1b_7b/prefill/fused")
    ->Arg(512)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_CudaPrefill, fused_padded, 3)
    ->Name("Cuda/olmoe_1b_7b/prefill/fused_padded")
    ->Arg(512)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_CudaPrefill, first_gen, 0)
    ->Name("Cuda/olmoe_1b_7b/prefill/first_gen")
    ->Arg(512)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

void decode_bench(benchmark::State& state, const std::string& which, int64_t choice) {
  const int B = static_cast<int>(state.range(0));
  CudaTextModel* m = gpu_model(which);
  if (!use_kernels(state, m, choice)) return;
  const int64_t prompt = 128, steps = 128;
  std::vector<int> slots(static_cast<size_t>(B));
  std::vector<int32_t> first(static_cast<size_t>(B));
  for (auto _ : state) {
    state.PauseTiming();
    for (int b = 0; b < B; ++b) {
      slots[b] = b;
      m->reset(b);
      auto l = m->prefill(b, tokens(prompt, m->config().vocab_size, b), false);
      if (!l.ok()) {
        state.SkipWithError(l.error().message().c_str());
        return;
      }
      const float* r = l->data<float>();
      first[b] = static_cast<int32_t>(std::max_element(r, r + m->config().vocab_size) - r);
    }
    // Warm-up captures the graph for this batch size.
    (void)m->decode_greedy(slots, first, 1);
    state.ResumeTiming();
    auto ms = m->time_ms([&]() -> Status {
      auto t = m->decode_greedy(slots, first, steps);
      return t.ok() ? Status::Ok() : t.error();
    });
    if (!ms.ok()) {
      state.SkipWithError(ms.error().message().c_str());
      return;
    }
    state.SetIterationTime(*ms / 1000.0);
  }
  state.counters["tok/s"] =
      benchmark::Counter(static_cast<double>(B) * steps * state.iterations(), benchmark::Counter::kIsRate);
  state.counters["batch"] = B;
  // 0 when programmatic dependent launch was asked for but the engine fell back to plain launches.
  state.counters["pdl"] = m->kernels().programmatic_launch ? 1 : 0;
}

void BM_CudaOlmoeDecode(benchmark::State& state, int64_t choice) {
  decode_bench(state, state.range(0) > 1 ? "olmoe16" : "olmoe", choice);
}
BENCHMARK_CAPTURE(BM_CudaOlmoeDecode, fused, 1)
    ->Name("Cuda/olmoe_1b_7b/decode/fused")
    ->Arg(1)
    ->UseManualTime()
    ->Iterations(3)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_CudaOlmoeDecode, fused_pdl, 2)
    ->Name("Cuda/olmoe_1b_7b/decode/fused_pdl")
    ->Arg(1)
    ->UseManualTime()
    ->Iterations(3)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_CudaOlmoeDecode, first_gen, 0)
    ->Name("Cuda/olmoe_1b_7b/decode/first_gen")
    ->Arg(1)
    ->UseManualTime()
    ->Iterations(3)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_CudaOlmoeDecode, fused16, 1)
    ->Name("Cuda/olmoe_1b_7b/decode/fused")
    ->Arg(16)
    ->UseManualTime()
    ->Iterations(3)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_CudaOlmoeDecode, fused_pdl16, 2)
    ->Name("Cuda/olmoe_1b_7b/decode/fused_pdl")
    ->Arg(16)
    ->UseManualTime()
    ->Iterations(3)
    ->Unit(benchmark::kMillisecond);

void BM_CudaV2LiteDecode(benchmark::State& state, int64_t choice) { decode_bench(state, "v2lite", choice); }
BENCHMARK_CAPTURE(BM_CudaV2LiteDecode, fused, 1)
    ->Name("Cuda/deepseek_v2_lite/decode/fused")
    ->Arg(1)
    ->UseManualTime()
    ->Iterations(3)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_CudaV2LiteDecode, fused_pdl, 2)
    ->Name("Cuda/deepseek_v2_lite/decode/fused_pdl")
    ->Arg(1)
    ->UseManualTime()
    ->Iterations(3)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_CudaV2LiteDecode, first_gen, 0)
    ->Name("Cuda/deepseek_v2_lite/decode/first_gen")
    ->Arg(1)
    ->UseManualTime()
    ->Iterations(3)
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace hilum::moe

BENCHMARK_MAIN();
