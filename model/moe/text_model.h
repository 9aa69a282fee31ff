// A Hugging Face causal language model (dense or Mixture-of-Experts) on the
// CPU in fp32: the reference engine, and the one the workstation uses where
// no GPU is present.
//
//   auto model = TextModel::load(dir);                 // config.json + safetensors
//   KvCache cache;
//   auto out = model->forward(prompt_ids, cache);      // logits [T, vocab]
//   auto next = model->forward({id}, cache, adapter);  // one more token, with LoRA
//
// Thread safety: a loaded model is immutable; forward() is safe to call
// concurrently with different caches. A KvCache belongs to one sequence and
// one caller at a time.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <vector>

#include "model/moe/config.h"
#include "model/moe/weights.h"
#include "model/progress.h"
#include "model/result.h"
#include "model/tensor.h"

namespace hilum::moe {

class LoraAdapter;

// Keys and values of the tokens seen so far in one sequence, per layer.
class KvCache {
 public:
  int64_t length() const { return length_; }
  void clear() { length_ = 0; }

 private:
  friend class TextModel;
  struct LayerKv {
    std::vector<float> k, v;  // [capacity, kv_heads, head dim]
  };
  std::vector<LayerKv> layers_;
  int64_t capacity_ = 0;
  int64_t length_ = 0;
  const void* owner_ = nullptr;  // the model that filled it
};

struct ForwardOptions {
  enum class Logits { kAll, kLast, kNone };
  Logits logits = Logits::kAll;
  // Also return the final hidden states (after the last norm): [T, hidden].
  bool hidden_states = false;
  // Long inputs run in chunks of this many tokens (bounds scratch memory).
  int64_t chunk_size = 256;
};

struct ForwardOutput {
  Tensor logits;         // f32 [T, vocab], or [1, vocab] for kLast; undefined for kNone
  Tensor hidden_states;  // f32 [T, hidden] when asked for
};

class TextModel {
 public:
  // Reads config.json, generation_config.json and the safetensors weights of a
  // Hugging Face directory. Errors name the file, the field or the tensor.
  static Result<std::shared_ptr<const TextModel>> load(const std::filesystem::path& dir,
                                                       Progress* progress = nullptr);

  const TextConfig& config() const { return config_; }
  const Weights& weights() const { return weights_; }
  const std::filesystem::path& dir() const { return dir_; }

  // Appends `ids` to the sequence in `cache` and returns what `options` asks
  // for. `adapter` (or null for the base model) must have been loaded for this
  // model. Token ids outside the vocabulary are an error and leave the cache
  // unchanged.
  Result<ForwardOutput> forward(std::span<const int32_t> ids, KvCache& cache,
                                const LoraAdapter* adapter = nullptr,
                                const ForwardOptions& options = {}) const;
  // A fresh sequence without keeping the cache.
  Result<ForwardOutput> forward(std::span<const int32_t> ids, const LoraAdapter* adapter = nullptr,
                                const ForwardOptions& options = {}) const;

  // A copy whose weights include `adapter` (W += scale * B A); tensors the
  // adapter does not touch are shared with this model.
  Result<std::shared_ptr<const TextModel>> merged(const LoraAdapter& adapter) const;

  // Builds a model from weights already in memory (tests, the merge above).
  static std::shared_ptr<const TextModel> from_weights(TextConfig config, Weights weights,
                                                       std::filesystem::path dir = {});

 private:
  TextModel() = default;
  Status run_chunk(std::span<const int32_t> ids, KvCache& cache, const LoraAdapter* adapter, float* x) const;

  TextConfig config_;
  Weights weights_;
  std::filesystem::path dir_;
};

}  // namespace hilum::moe
