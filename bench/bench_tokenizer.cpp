// Tokenizer throughput: encode and decode of about 1 MB of mixed clinical,
// multilingual, emoji and code text with the golden tokenizers of
// tests/golden/tokenizers (one per checkpoint style). The same text and files
// are timed with the Hugging Face tokenizers library by
// bench/bench_tokenizer_hf.mjs (Node) or bench_tokenizer_hf.py (Python).
//
//   build/bench/bench_tokenizer [--benchmark_filter=Encode]
#include <benchmark/benchmark.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "model/file_io.h"
#include "model/tokenizer.h"

namespace {

namespace fs = std::filesystem;
const fs::path kGolden = fs::path(HILUM_SOURCE_DIR) / "tests" / "golden";

// "Section k:\n" + the golden corpus, 200 times (the reference scripts build the same).
const std::string& bench_text() {
  static const std::string text = [] {
    auto spec = hilum::read_file(kGolden / "tokenizer_golden_spec.json");
    if (!spec.ok()) return std::string();
    const std::string corpus = nlohmann::json::parse(*spec)["long_text"].get<std::string>();
    std::string t;
    for (int k = 0; k < 200; ++k) t += "Section " + std::to_string(k) + ":\n" + corpus + "\n";
    return t;
  }();
  return text;
}

hilum::Tokenizer load(const std::string& style, benchmark::State& state) {
  auto t = hilum::Tokenizer::from_file(kGolden / "tokenizers" / style / "tokenizer.json");
  if (!t.ok()) {
    state.SkipWithError(t.error().message().c_str());
    return hilum::Tokenizer::from_json(R"({"model": {"type": "BPE", "vocab": {}, "merges": []}})", "empty").value();
  }
  return std::move(t).value();
}

void BM_Encode(benchmark::State& state, const std::string& style) {
  const hilum::Tokenizer tok = load(style, state);
  const std::string& text = bench_text();
  size_t tokens = 0;
  for (auto _ : state) {
    auto ids = tok.encode(text, false);
    tokens += ids.size();
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
  state.counters["tokens/s"] = benchmark::Counter(static_cast<double>(tokens), benchmark::Counter::kIsRate);
}

// The first encode of a tokenizer: nothing cached yet.
void BM_EncodeCold(benchmark::State& state, const std::string& style) {
  const std::string& text = bench_text();
  size_t tokens = 0;
  for (auto _ : state) {
    state.PauseTiming();
    const hilum::Tokenizer tok = load(style, state);
    state.ResumeTiming();
    auto ids = tok.encode(text, false);
    tokens += ids.size();
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
  state.counters["tokens/s"] = benchmark::Counter(static_cast<double>(tokens), benchmark::Counter::kIsRate);
}

void BM_Decode(benchmark::State& state, const std::string& style) {
  const hilum::Tokenizer tok = load(style, state);
  const auto ids = tok.encode(bench_text(), false);
  for (auto _ : state) {
    std::string text = tok.decode(ids);
    benchmark::DoNotOptimize(text.data());
  }
  state.counters["tokens/s"] =
      benchmark::Counter(static_cast<double>(state.iterations() * ids.size()), benchmark::Counter::kIsRate);
}

void BM_Load(benchmark::State& state, const std::string& style) {
  for (auto _ : state) {
    auto t = hilum::Tokenizer::from_file(kGolden / "tokenizers" / style / "tokenizer.json");
    benchmark::DoNotOptimize(t.ok());
  }
}

}  // namespace

BENCHMARK_CAPTURE(BM_Encode, olmoe, std::string("olmoe"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Encode, llama3, std::string("llama3"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Encode, qwen2, std::string("qwen2"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Encode, deepseek_v3, std::string("deepseek_v3"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Encode, mixtral, std::string("mixtral"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_EncodeCold, llama3, std::string("llama3"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Decode, llama3, std::string("llama3"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Decode, mixtral, std::string("mixtral"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Load, llama3, std::string("llama3"))->Unit(benchmark::kMillisecond);
BENCHMARK_MAIN();
