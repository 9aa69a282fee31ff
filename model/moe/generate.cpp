#include "model/moe/generate.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace hilum::moe {

Status validate(const SamplingOptions& o) {
  if (o.greedy) return Status::Ok();
  if (!(o.temperature > 0.0f) || !std::isfinite(o.temperature)) {
    return bad_input("temperature must be positive (use --greedy for argmax decoding)");
  }
  if (o.top_k < 0) return bad_input("top-k must not be negative");
  if (!(o.top_p > 0.0f && o.top_p <= 1.0f)) return bad_input("top-p must be in (0, 1]");
  return Status::Ok();
}

Sampler::Sampler(const SamplingOptions& options) : opt_(options), rng_(options.seed) {}

double Sampler::uniform() { return rng_.uniform(); }

int32_t Sampler::next(std::span<const float> logits) {
  const int32_t n = static_cast<int32_t>(logits.size());
  if (opt_.greedy) {
    int32_t best = 0;
    for (int32_t i = 1; i < n; ++i) {
      if (logits[i] > logits[best]) best = i;
    }
    return best;
  }
  // Temperature, then top-k, then top-p (the order transformers applies them).
  std::vector<int32_t> idx(static_cast<size_t>(n));
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  size_t keep = idx.size();
  if (opt_.top_k > 0) keep = std::min(keep, static_cast<size_t>(opt_.top_k));
  std::vector<double> p(keep);
  const double mx = logits[idx[0]] / static_cast<double>(opt_.temperature);
  double sum = 0;
  for (size_t i = 0; i < keep; ++i) {
    p[i] = std::exp(logits[idx[i]] / static_cast<double>(opt_.temperature) - mx);
    sum += p[i];
  }
  if (opt_.top_p < 1.0f) {
    // Smallest prefix whose probability reaches top_p (at least one token).
    double cum = 0;
    size_t cut = keep;
    for (size_t i = 0; i < keep; ++i) {
      cum += p[i] / sum;
      if (cum >= opt_.top_p) {
        cut = i + 1;
        break;
      }
    }
    keep = cut;
    sum = 0;
    for (size_t i = 0; i < keep; ++i) sum += p[i];
  }
  const double u = uniform() * sum;
  double acc = 0;
  for (size_t i = 0; i < keep; ++i) {
    acc += p[i];
    if (u < acc) return idx[i];
  }
  return idx[keep - 1];
}

Result<GenerateResult> generate(const TextModel& model, std::span<const int32_t> prompt,
                                const LoraAdapter* adapter, const GenerateOptions& options,
                                const TokenCallback& on_token, Progress* progress) {
  HILUM_RETURN_IF_ERROR(validate(options.sampling));
  if (prompt.empty()) return bad_input("the prompt has no tokens");
  if (options.max_new_tokens < 0) return bad_input("max tokens must not be negative");
  std::vector<int32_t> stops = options.stop_tokens;
  if (stops.empty() && options.use_model_stop_tokens) stops = model.config().eos_token_ids;
  GenerateResult result;
  if (options.max_new_tokens == 0) return result;
  Sampler sampler(options.sampling);
  KvCache cache;
  ForwardOptions fo;
  fo.logits = ForwardOptions::Logits::kLast;
  fo.chunk_size = options.chunk_size;
  HILUM_ASSIGN_OR_RETURN(ForwardOutput out, model.forward(prompt, cache, adapter, fo));
  while (true) {
    if (progress && progress->cancelled()) return cancelled_error();
    const int32_t token = sampler.next(out.logits.span<const float>());
    result.tokens.push_back(token);
    if (on_token && !on_token(token)) {
      result.stop = GenerateResult::Stop::kCallback;
      break;
    }
    if (std::find(stops.begin(), stops.end(), token) != stops.end()) {
      result.stop = GenerateResult::Stop::kStopToken;
      break;
    }
    if (static_cast<int64_t>(result.tokens.size()) >= options.max_new_tokens) {
      result.stop = GenerateResult::Stop::kMaxTokens;
      break;
    }
    if (progress) {
      progress->report(
          static_cast<double>(result.tokens.size()) / static_cast<double>(options.max_new_tokens),
          "generating");
    }
    const int32_t one[1] = {token};
    HILUM_ASSIGN_OR_RETURN(out, model.forward(one, cache, adapter, fo));
  }
  return result;
}

}  // namespace hilum::moe
