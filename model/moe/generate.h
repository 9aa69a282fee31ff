// Text generation on a TextModel: greedy decoding or sampling (temperature,
// top-k, top-p) with a seeded, platform-independent PRNG, stop tokens, a
// streaming callback and a token budget.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "model/moe/text_model.h"
#include "model/progress.h"
#include "model/random.h"
#include "model/result.h"

namespace hilum::moe {

struct SamplingOptions {
  bool greedy = true;        // argmax; the fields below are ignored
  float temperature = 1.0f;  // > 0
  int top_k = 0;             // 0: no top-k filter
  float top_p = 1.0f;        // (0, 1]; 1: no nucleus filter
  uint64_t seed = 0;
};

// Picks tokens from logits. Deterministic: the same options, seed and logits
// give the same tokens on every platform.
class Sampler {
 public:
  explicit Sampler(const SamplingOptions& options);
  int32_t next(std::span<const float> logits);
  double uniform();  // [0, 1), advances the PRNG

 private:
  SamplingOptions opt_;
  Xoshiro256 rng_;
};

Status validate(const SamplingOptions& options);

struct GenerateOptions {
  int64_t max_new_tokens = 128;
  SamplingOptions sampling;
  // Generation stops after emitting one of these (it is part of the output).
  // Empty: the model's eos tokens (config.json + generation_config.json).
  std::vector<int32_t> stop_tokens;
  bool use_model_stop_tokens = true;  // false with empty stop_tokens: never stop early
  int64_t chunk_size = 256;           // prefill chunk
};

struct GenerateResult {
  enum class Stop { kStopToken, kMaxTokens, kCallback };
  std::vector<int32_t> tokens;  // new tokens only
  Stop stop = Stop::kMaxTokens;
};

// Called with each new token as soon as it is chosen; return false to stop.
using TokenCallback = std::function<bool(int32_t token)>;

// Generates a continuation of `prompt` (not empty). `adapter` may be null.
// Polls progress->cancelled() between tokens.
Result<GenerateResult> generate(const TextModel& model, std::span<const int32_t> prompt,
                                const LoraAdapter* adapter, const GenerateOptions& options,
                                const TokenCallback& on_token = nullptr, Progress* progress = nullptr);

}  // namespace hilum::moe
