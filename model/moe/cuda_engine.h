// The text engine on a CUDA GPU: bf16 weights, fp32 activations and KV caches,
// the kernels of cuda/moe_kernels.h, cuBLAS for prefill GEMMs, and CUDA graphs
// for decode steps. The CPU TextModel is its numerical reference.
//
//   auto gpu = CudaTextModel::upload(*model, {});           // or random(config)
//   auto logits = gpu->prefill(0, prompt_ids, false);        // [1, vocab]
//   auto next = gpu->decode(slots, ids);                      // [B, vocab]
//
// A LoRA adapter is folded into the uploaded weights (merge at upload); serve
// the base and a tuned model as two CudaTextModels, or use the CPU engine's
// unmerged path.
//
// In a build without CUDA every factory returns kUnsupported. Not thread-safe:
// one caller at a time per object.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "model/moe/config.h"
#include "model/result.h"
#include "model/tensor.h"

namespace hilum::moe {

class TextModel;
class LoraAdapter;

// Which kernels run. Every choice computes the same model (tests compare
// them with each other and with the CPU engine); the first-generation kernels
// stay as the reference and the fallback.
struct CudaKernels {
  // Steps of up to 16 rows (decode, short prefill chunks): one launch per
  // stage (norm-fused GEMVs with staged activations, fused q/k norm + RoPE +
  // cache append, split-K attention with an in-kernel combine, one-launch
  // router, experts read once per step with the combine fused into the down
  // projection). false: separate norm/GEMV/routing/grouping/combine kernels.
  bool fused_decode = true;
  // Steps of more than 16 rows (prefill): tensor-core flash attention, fused
  // q/k norm + RoPE + cache append, and (with grouped_experts) grouped expert
  // GEMMs over the routed pairs (no padding, no host sync). false: tiled fp32
  // attention and padded batched cuBLAS GEMMs for the experts.
  bool tensor_core_prefill = true;
  // With tensor_core_prefill: the experts as grouped GEMMs (true) or as padded
  // batched cuBLAS GEMMs with one host synchronisation per layer (false). The
  // padded cuBLAS path measured faster on the H200 (40.7k vs 37.1k tok/s at
  // 512 tokens, OLMoE-1B-7B geometry; bench/RESULTS.md), so it is the default.
  bool grouped_experts = false;
  // Programmatic dependent launch between the fused decode kernels (sm_90):
  // a kernel starts, and prefetches its weights, while the previous one
  // finishes. Falls back to plain launches when the device refuses it. On by
  // default: batch-1 decode 861 vs 819 tok/s on the H200 (OLMoE-1B-7B
  // geometry), batch 16 within 1 % (bench/RESULTS.md).
  bool programmatic_launch = true;
};

struct CudaEngineOptions {
  int max_slots = 1;            // sequences with their own KV cache (decode batch <= 16)
  int64_t max_seq = 2048;       // KV capacity of each sequence
  int64_t prefill_chunk = 512;  // rows per prefill pass
  bool graphs = true;           // replay decode steps from CUDA graphs
  CudaKernels kernels;
};

class CudaTextModel {
 public:
  // Uploads `model`'s weights as bf16; with `merge`, the adapter folded in.
  static Result<std::unique_ptr<CudaTextModel>> upload(const TextModel& model,
                                                       const CudaEngineOptions& options,
                                                       const LoraAdapter* merge = nullptr);
  // A model of `config`'s shape with deterministic random bf16 weights made on
  // the GPU (benchmarks: no checkpoint needed).
  static Result<std::unique_ptr<CudaTextModel>> random(const TextConfig& config,
                                                       const CudaEngineOptions& options, uint64_t seed);
  ~CudaTextModel();

  const TextConfig& config() const;
  int64_t length(int slot) const;
  void reset(int slot);

  // Appends `ids` to slot's sequence; logits of every position [T, vocab], or
  // of the last one [1, vocab], on the CPU.
  Result<Tensor> prefill(int slot, std::span<const int32_t> ids, bool all_logits);
  // One token for each of `slots` (distinct, at most 16): logits [B, vocab].
  Result<Tensor> decode(std::span<const int> slots, std::span<const int32_t> ids);
  // `steps` greedy tokens for each slot without leaving the device (a graph
  // replay per step). `first` are the tokens to feed first (the argmax of the
  // prefill logits). Returns the tokens fed after `first`: [steps][B].
  Result<std::vector<std::vector<int32_t>>> decode_greedy(std::span<const int> slots,
                                                          std::span<const int32_t> first, int64_t steps);
  // Waits for the device and times `body` in milliseconds (benchmarks).
  Result<double> time_ms(const std::function<Status()>& body);

  // Switches kernels on a live engine (captured graphs are dropped; buffers
  // the new choice needs are allocated). The KV caches are kept.
  Status set_kernels(const CudaKernels& kernels);
  const CudaKernels& kernels() const;

  struct Impl;

 private:
  CudaTextModel() = default;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hilum::moe
