// Text-model commands: `hilum lm-logits` (logits of every position for given
// token ids) and `hilum generate` (streams a continuation of a prompt).
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "app/cli/cli.h"
#include "app/cli/terminal_progress.h"
#include "cuda/device.h"
#include "model/log.h"
#include "model/moe/cuda_engine.h"
#include "model/moe/generate.h"
#include "model/moe/lora.h"
#include "model/moe/text_model.h"
#include "model/npy.h"

#if __has_include("model/tokenizer.h")
#include "model/tokenizer.h"
#define HILUM_TEXT_HAS_TOKENIZER 1
#else
#define HILUM_TEXT_HAS_TOKENIZER 0
#endif

namespace hilum::cli {
namespace {

namespace fs = std::filesystem;
using moe::LoraAdapter;
using moe::TextModel;

Result<std::vector<int32_t>> parse_ids(const std::string& text) {
  std::vector<int32_t> ids;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    const size_t b = item.find_first_not_of(" \t"), e = item.find_last_not_of(" \t");
    if (b == std::string::npos) return bad_input("--ids: empty entry in '" + text + "'");
    item = item.substr(b, e - b + 1);
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != item.size() || v < INT32_MIN || v > INT32_MAX) {
      return bad_input("--ids: '" + item + "' is not a token id (expected comma-separated integers)");
    }
    ids.push_back(static_cast<int32_t>(v));
  }
  if (ids.empty()) return bad_input("--ids: no token ids given");
  return ids;
}

// Resolves --device: cpu, cuda, or auto (cuda when a GPU is usable).
Result<bool> use_cuda(const std::string& device) {
  if (device == "cpu") return false;
  if (device == "auto") return cuda::device_count() > 0;
  if (device == "cuda") {
    if (cuda::device_count() == 0) return unsupported("--device cuda: " + cuda::unavailable_reason());
    return true;
  }
  return bad_input("--device: '" + device + "' is not one of cpu, cuda, auto");
}

struct LoadedModel {
  std::shared_ptr<const TextModel> model;
  std::shared_ptr<const LoraAdapter> adapter;  // null when merged or absent
};

Result<LoadedModel> load_model(const std::string& model_dir, const std::string& lora_dir, bool merge) {
  LoadedModel out;
  HILUM_ASSIGN_OR_RETURN(out.model, TextModel::load(model_dir, &process_progress()));
  if (!lora_dir.empty()) {
    HILUM_ASSIGN_OR_RETURN(out.adapter, LoraAdapter::load(lora_dir, *out.model));
    log_info("LoRA adapter " + lora_dir + ": " + std::to_string(out.adapter->adapted_slots()) +
             " adapted projections");
    if (merge) {
      HILUM_ASSIGN_OR_RETURN(out.model, out.model->merged(*out.adapter));
      out.adapter.reset();
    }
  } else if (merge) {
    return bad_input("--merge needs --lora");
  }
  return out;
}

// Forwards cancellation to the process progress but draws nothing, so the bar
// does not interleave with streamed text.
class QuietCancellation final : public Progress {
 public:
  void report(double, std::string_view) override {}
  bool cancelled() const override { return process_progress().cancelled(); }
};

// Generation on the GPU engine (adapter folded in): prefill, then one decode
// step per token, sampling on the host.
Result<moe::GenerateResult> generate_on_gpu(const LoadedModel& m, const std::vector<int32_t>& prompt,
                                            const moe::GenerateOptions& gen,
                                            const moe::TokenCallback& on_token, Progress& cancel) {
  HILUM_RETURN_IF_ERROR(moe::validate(gen.sampling));
  moe::CudaEngineOptions opt;
  opt.max_seq = static_cast<int64_t>(prompt.size()) + std::max<int64_t>(gen.max_new_tokens, 1);
  HILUM_ASSIGN_OR_RETURN(auto gpu, moe::CudaTextModel::upload(*m.model, opt, m.adapter.get()));
  std::vector<int32_t> stops = gen.stop_tokens;
  if (stops.empty() && gen.use_model_stop_tokens) stops = m.model->config().eos_token_ids;
  moe::GenerateResult result;
  if (gen.max_new_tokens == 0) return result;
  moe::Sampler sampler(gen.sampling);
  HILUM_ASSIGN_OR_RETURN(Tensor logits, gpu->prefill(0, prompt, false));
  while (true) {
    if (cancel.cancelled()) return cancelled_error();
    const int32_t token = sampler.next(logits.span<const float>());
    result.tokens.push_back(token);
    if (on_token && !on_token(token)) {
      result.stop = moe::GenerateResult::Stop::kCallback;
      break;
    }
    if (std::find(stops.begin(), stops.end(), token) != stops.end()) {
      result.stop = moe::GenerateResult::Stop::kStopToken;
      break;
    }
    if (static_cast<int64_t>(result.tokens.size()) >= gen.max_new_tokens) break;
    const int slot[1] = {0};
    const int32_t id[1] = {token};
    HILUM_ASSIGN_OR_RETURN(logits, gpu->decode(slot, id));
  }
  return result;
}

}  // namespace

void register_text_commands(CommandLine& cl) {
  {
    struct Opts {
      std::string model, lora, ids, out, device = "cpu";
      bool merge = false;
    };
    auto o = std::make_shared<Opts>();
    CLI::App* sub = cl.add(
        nullptr, "lm-logits", "Logits of a Hugging Face causal LM for every position of --ids",
        [o]() -> Status {
          HILUM_ASSIGN_OR_RETURN(std::vector<int32_t> ids, parse_ids(o->ids));
          HILUM_ASSIGN_OR_RETURN(bool cuda, use_cuda(o->device));
          HILUM_ASSIGN_OR_RETURN(LoadedModel m, load_model(o->model, o->lora, o->merge));
          process_progress().finish();
          if (cuda) {
            // The GPU engine folds an adapter into its bf16 weights.
            moe::CudaEngineOptions opt;
            opt.max_seq = static_cast<int64_t>(ids.size());
            HILUM_ASSIGN_OR_RETURN(auto gpu, moe::CudaTextModel::upload(*m.model, opt, m.adapter.get()));
            HILUM_ASSIGN_OR_RETURN(Tensor logits, gpu->prefill(0, ids, true));
            return write_npy(o->out, logits);
          }
          HILUM_ASSIGN_OR_RETURN(moe::ForwardOutput out, m.model->forward(ids, m.adapter.get()));
          return write_npy(o->out, out.logits);
        });
    sub->add_option("--model", o->model, "Hugging Face model directory (config.json + safetensors)")
        ->required();
    sub->add_option("--lora", o->lora, "PEFT LoRA adapter directory, applied unmerged");
    sub->add_flag("--merge", o->merge, "Fold the adapter into the weights instead");
    sub->add_option("--ids", o->ids, "Token ids, comma-separated (e.g. 1,2,3)")->required();
    sub->add_option("--out", o->out, "Output .npy: float32 logits (T, vocab)")->required();
    sub->add_option("--device", o->device, "cpu, cuda or auto")->capture_default_str();
  }
  {
    struct Opts {
      std::string model, lora, prompt, ids, device = "cpu";
      int64_t max_tokens = 128;
      bool greedy = false;
      std::optional<float> temperature, top_p;
      std::optional<int> top_k;
      uint64_t seed = 0;
    };
    auto o = std::make_shared<Opts>();
    CLI::App* sub = cl.add(
        nullptr, "generate", "Stream a continuation of --prompt from a Hugging Face causal LM",
        [o]() -> Status {
          moe::GenerateOptions gen;
          gen.max_new_tokens = o->max_tokens;
          const bool sampling = o->temperature || o->top_p || o->top_k;
          if (o->greedy && sampling) return bad_input("--greedy excludes --temperature/--top-p/--top-k");
          gen.sampling.greedy = !sampling;
          gen.sampling.temperature = o->temperature.value_or(1.0f);
          gen.sampling.top_p = o->top_p.value_or(1.0f);
          gen.sampling.top_k = o->top_k.value_or(0);
          gen.sampling.seed = o->seed;
          HILUM_RETURN_IF_ERROR(moe::validate(gen.sampling));
          if (o->prompt.empty() == o->ids.empty()) return bad_input("give exactly one of --prompt and --ids");
          HILUM_ASSIGN_OR_RETURN(bool cuda, use_cuda(o->device));
          QuietCancellation quiet;
          if (!o->ids.empty()) {
            // Token ids in, token ids out (a JSON array), no tokenizer needed.
            HILUM_ASSIGN_OR_RETURN(std::vector<int32_t> ids, parse_ids(o->ids));
            HILUM_ASSIGN_OR_RETURN(LoadedModel m, load_model(o->model, o->lora, false));
            process_progress().finish();
            HILUM_ASSIGN_OR_RETURN(moe::GenerateResult r, cuda ? generate_on_gpu(m, ids, gen, nullptr, quiet)
                                                               : moe::generate(*m.model, ids, m.adapter.get(),
                                                                               gen, nullptr, &quiet));
            std::string s = "[";
            for (size_t i = 0; i < r.tokens.size(); ++i) s += (i ? ", " : "") + std::to_string(r.tokens[i]);
            std::printf("%s]\n", s.c_str());
            return Status::Ok();
          }
#if HILUM_TEXT_HAS_TOKENIZER
          const fs::path tok_path = fs::path(o->model) / "tokenizer.json";
          HILUM_ASSIGN_OR_RETURN(auto tok, Tokenizer::from_file(tok_path));
          HILUM_ASSIGN_OR_RETURN(LoadedModel m, load_model(o->model, o->lora, false));
          process_progress().finish();
          const std::vector<int32_t> ids = tok.encode(o->prompt, /*add_special_tokens=*/true);
          if (ids.empty()) return bad_input("--prompt: the tokenizer produced no tokens");
          Tokenizer::StreamDecoder stream(tok, /*skip_special_tokens=*/true);
          const moe::TokenCallback push = [&](int32_t t) {
            const std::string piece = stream.step(t);
            std::fwrite(piece.data(), 1, piece.size(), stdout);
            std::fflush(stdout);
            return true;
          };
          HILUM_ASSIGN_OR_RETURN(moe::GenerateResult r,
                                 cuda ? generate_on_gpu(m, ids, gen, push, quiet)
                                      : moe::generate(*m.model, ids, m.adapter.get(), gen, push, &quiet));
          (void)r;
          const std::string rest = stream.flush();
          std::printf("%s\n", rest.c_str());
          return Status::Ok();
#else
          return unsupported(
              "generate --prompt needs the tokenizer (model/tokenizer.h is not in this build); "
              "use --ids to generate token ids");
#endif
        });
    sub->add_option("--model", o->model,
                    "Hugging Face model directory (config.json, safetensors, tokenizer.json)")
        ->required();
    sub->add_option("--lora", o->lora, "PEFT LoRA adapter directory, applied unmerged");
    sub->add_option("--prompt", o->prompt, "Prompt text");
    sub->add_option("--ids", o->ids,
                    "Prompt as token ids (comma-separated); prints the new ids instead of text");
    sub->add_option("--max-tokens", o->max_tokens, "Most new tokens")->capture_default_str();
    sub->add_flag("--greedy", o->greedy, "Argmax decoding (the default without sampling options)");
    sub->add_option("--temperature", o->temperature, "Sampling temperature (> 0)");
    sub->add_option("--top-p", o->top_p, "Nucleus sampling mass in (0, 1]");
    sub->add_option("--top-k", o->top_k, "Sample among the k most likely tokens");
    sub->add_option("--seed", o->seed, "Sampling seed")->capture_default_str();
    sub->add_option("--device", o->device, "cpu, cuda or auto")->capture_default_str();
  }
}

}  // namespace hilum::cli
