#include "model/moe/lora.h"

#include <cmath>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <tuple>

#include "model/file_io.h"
#include "model/log.h"
#include "model/moe/config_reader.h"
#include "model/moe/text_model.h"
#include "model/safetensors.h"

namespace hilum::moe {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

const std::vector<LoraTerm> kNoTerms;

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

struct AdapterConfig {
  int64_t r = 0;
  float scale = 1.0f;
  // target_modules: a list of names, one regex, or "all-linear".
  std::vector<std::string> target_list;
  std::optional<std::string> target_regex;
  bool all_linear = false;
  std::vector<std::string> target_parameters;
  std::string peft_version;
};

Result<AdapterConfig> read_adapter_config(const fs::path& path) {
  HILUM_ASSIGN_OR_RETURN(std::string text, read_file(path));
  json j;
  try {
    j = json::parse(text);
  } catch (const std::exception& e) {
    return bad_input(path.string() + ": not valid JSON (" + e.what() + ")");
  }
  if (!j.is_object()) return bad_input(path.string() + ": expected a JSON object");
  ConfigReader r(j, path.string());
  AdapterConfig c;
  const std::string type = r.string("peft_type", "LORA");
  if (type != "LORA") {
    r.fail(
        r.field_error("peft_type", "value '" + type + "' is not supported (LORA)", ErrorKind::kUnsupported));
  }
  c.r = r.integer("r");
  if (r.ok() && c.r <= 0) r.fail(r.field_error("r", "must be positive"));
  const double alpha = r.number("lora_alpha", 8.0);
  const bool rslora = r.boolean("use_rslora", false);
  if (c.r > 0)
    c.scale = static_cast<float>(rslora ? alpha / std::sqrt(static_cast<double>(c.r)) : alpha / c.r);
  if (const json* t = r.raw("target_modules")) {
    if (t->is_string()) {
      const std::string s = t->get<std::string>();
      if (s == "all-linear") {
        c.all_linear = true;
      } else {
        c.target_regex = s;
      }
    } else {
      c.target_list = r.string_list("target_modules");
    }
  }
  c.target_parameters = r.string_list("target_parameters");
  const std::string bias = r.string("bias", "none");
  if (bias != "none") {
    r.fail(r.field_error("bias",
                         "value '" + bias +
                             "' is not supported (none): the adapter would carry trained "
                             "base biases",
                         ErrorKind::kUnsupported));
  }
  r.boolean("fan_in_fan_out", false);  // PEFT resets it to false for nn.Linear targets
  c.peft_version = r.string("peft_version", "");
  r.require_absent("modules_to_save", "lists modules trained in full, which is not supported");
  r.require_absent("use_dora", "is true: DoRA is not supported");
  r.require_absent("lora_bias", "is true: LoRA biases are not supported");
  r.require_absent("rank_pattern", "sets per-module ranks, which is not supported");
  r.require_absent("alpha_pattern", "sets per-module alphas, which is not supported");
  r.require_absent("use_qalora", "is true: QA-LoRA is not supported");
  r.require_absent("layer_replication", "is set: layer replication is not supported");
  r.require_absent("trainable_token_indices", "is set: trainable token embeddings are not supported");
  r.require_absent("alora_invocation_tokens", "is set: activated LoRA is not supported");
  r.require_absent("arrow_config", "is set: Arrow routing is not supported");
  r.require_absent("megatron_config", "is set: Megatron layers are not supported");
  r.require_absent("use_bdlora", "is true: not supported");
  r.require_absent("kasa_config", "is set: KaSA adapters are not supported");
  r.require_absent("monteclora_config", "is set: MonteCLoRA is not supported");
  r.require_absent("velora_config", "is set: VeLoRA is not supported");
  r.ignore({"task_type", "base_model_name_or_path", "revision", "inference_mode", "auto_mapping",
            "lora_dropout", "init_lora_weights", "layers_to_transform", "layers_pattern", "exclude_modules",
            "loftq_config", "eva_config", "corda_config", "megatron_core", "runtime_config",
            "ensure_weight_tying", "qalora_group_size", "lora_ga_config", "target_modules"});
  HILUM_RETURN_IF_ERROR(r.finish("LoRA adapters"));
  return c;
}

// PEFT's module matching: a list entry matches the module name or a dotted
// suffix of it; a string is a regex over the whole name.
bool targeted(const AdapterConfig& c, const std::string& module) {
  if (c.all_linear) return module != "lm_head";
  if (c.target_regex) {
    try {
      return std::regex_match(module, std::regex(*c.target_regex));
    } catch (const std::regex_error&) {
      return false;
    }
  }
  for (const std::string& t : c.target_list) {
    if (module == t || ends_with(module, "." + t)) return true;
  }
  return false;
}

// Versions as "0.19.1" (optionally with a suffix); true when >= 0.19.1.
bool peft_swaps_expert_axes(const std::string& version) {
  int a = 0, b = 0, c = 0;
  if (version.empty() || std::sscanf(version.c_str(), "%d.%d.%d", &a, &b, &c) < 2) return true;
  return std::make_tuple(a, b, c) >= std::make_tuple(0, 19, 1);
}

struct Pair {
  Tensor a, b;
  std::string a_name, b_name;
};

// Shape-level interpretations of a fused-expert LoRA pair (PEFT ParamWrapper).
// The base parameter is [E, d1, d2]; PEFT before 0.19.1 reads it as (experts,
// in=d1, out=d2), later versions (and transformers' patch) as (experts,
// out=d1, in=d2).
struct FusedReading {
  bool gate_up;  // else down_proj
  bool swapped;
};

}  // namespace

const std::vector<LoraTerm>& LoraAdapter::terms(int slot) const {
  if (slot < 0 || static_cast<size_t>(slot) >= by_slot_.size()) return kNoTerms;
  return by_slot_[slot];
}

size_t LoraAdapter::adapted_slots() const {
  size_t n = 0;
  for (const auto& t : by_slot_) n += t.empty() ? 0 : 1;
  return n;
}

std::shared_ptr<LoraAdapter> LoraAdapter::from_terms(const TextModel& model,
                                                     std::vector<std::pair<int, LoraTerm>> terms) {
  auto ad = std::make_shared<LoraAdapter>();
  ad->by_slot_.resize(model.weights().slots.size());
  for (auto& [slot, term] : terms) ad->by_slot_.at(static_cast<size_t>(slot)).push_back(std::move(term));
  ad->base_ = &model;
  ad->source_ = "(in memory)";
  return ad;
}

Result<std::shared_ptr<const LoraAdapter>> LoraAdapter::load(const fs::path& dir, const TextModel& model) {
  const fs::path cfg_path = dir / "adapter_config.json";
  const fs::path st_path = dir / "adapter_model.safetensors";
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return bad_input(dir.string() + ": not an adapter directory");
  if (!fs::exists(cfg_path, ec))
    return bad_input(cfg_path.string() + ": missing (not a PEFT adapter directory?)");
  if (!fs::exists(st_path, ec)) {
    if (fs::exists(dir / "adapter_model.bin", ec)) {
      return unsupported(dir.string() +
                         ": only adapter_model.safetensors is supported (found adapter_model.bin)");
    }
    return bad_input(st_path.string() + ": missing");
  }
  HILUM_ASSIGN_OR_RETURN(AdapterConfig cfg, read_adapter_config(cfg_path));
  HILUM_ASSIGN_OR_RETURN(SafetensorsFile file, SafetensorsFile::open(st_path));
  const std::string fname = st_path.string();
  const Weights& w = model.weights();
  const TextConfig& mc = model.config();

  // Collect lora_A / lora_B pairs by module.
  std::map<std::string, Pair> pairs;
  const std::string prefix = "base_model.model.";
  for (const std::string& name : file.names()) {
    if (name.rfind(prefix, 0) != 0) {
      return bad_input(fname + ": tensor '" + name + "' does not start with '" + prefix +
                       "' (not a PEFT adapter?)");
    }
    const std::string rest = name.substr(prefix.size());
    if (rest.find("lora_embedding_") != std::string::npos) {
      return unsupported(fname + ": tensor '" + name + "' is an embedding LoRA, which is not supported");
    }
    if (rest.find("lora_magnitude_vector") != std::string::npos) {
      return unsupported(fname + ": tensor '" + name + "' is a DoRA magnitude, which is not supported");
    }
    HILUM_ASSIGN_OR_RETURN(Tensor t, file.get(name));
    if (!dtype_is_float(t.dtype())) return bad_input(fname + ": tensor '" + name + "' is not a float tensor");
    HILUM_ASSIGN_OR_RETURN(t, t.to_dtype(DType::kF32));
    if (t.rank() != 2) {
      return bad_input(fname + ": tensor '" + name + "' has shape " + shape_string(t.shape()) +
                       ", expected a matrix");
    }
    if (ends_with(rest, ".lora_A.weight")) {
      Pair& p = pairs[rest.substr(0, rest.size() - 14)];
      p.a = t;
      p.a_name = name;
    } else if (ends_with(rest, ".lora_B.weight")) {
      Pair& p = pairs[rest.substr(0, rest.size() - 14)];
      p.b = t;
      p.b_name = name;
    } else {
      return unsupported(fname + ": tensor '" + name + "' is not a lora_A/lora_B weight (not supported)");
    }
  }
  if (pairs.empty()) return bad_input(fname + ": holds no LoRA weights");

  auto ad = std::make_shared<LoraAdapter>();
  ad->by_slot_.resize(w.slots.size());
  ad->base_ = &model;
  ad->source_ = dir.string();
  const int64_t r = cfg.r;

  auto check_rank = [&](const Pair& p, int64_t in, int64_t out) -> Status {
    if (p.a.dim(0) != r || p.a.dim(1) != in) {
      return bad_input(fname + ": tensor '" + p.a_name + "' has shape " + shape_string(p.a.shape()) +
                       ", expected " + shape_string({r, in}) +
                       " for this base model (adapter for another model?)");
    }
    if (p.b.dim(0) != out || p.b.dim(1) != r) {
      return bad_input(fname + ": tensor '" + p.b_name + "' has shape " + shape_string(p.b.shape()) +
                       ", expected " + shape_string({out, r}) +
                       " for this base model (adapter for another model?)");
    }
    return Status::Ok();
  };
  auto not_targeted = [&](const std::string& module) {
    return bad_input(fname + ": has LoRA weights for '" + module +
                     "', which adapter_config.json target_modules "
                     "does not name");
  };

  static const std::regex kPerExpert(
      R"(^model\.layers\.(\d+)\.(mlp|block_sparse_moe)\.experts\.(\d+)\.(gate_proj|up_proj|down_proj|w1|w2|w3)$)");
  static const std::regex kFused(R"(^model\.layers\.(\d+)\.mlp\.experts((\.base_layer)*)$)");

  // Fused experts: first pass to classify, then resolve ambiguous readings with
  // the adapter-wide orientation.
  struct FusedPair {
    std::string module;
    const Pair* pair;
    int layer;
    std::vector<FusedReading> readings;
  };
  std::vector<FusedPair> fused;
  std::optional<bool> orientation;  // swapped?

  for (const auto& [module, p] : pairs) {
    if (!p.a.defined() || !p.b.defined()) {
      return bad_input(fname + ": module '" + module + "' has only one of lora_A / lora_B");
    }
    std::smatch m;
    auto lin = w.slot_by_path.find(module);
    if (lin != w.slot_by_path.end()) {
      if (!targeted(cfg, module)) return not_targeted(module);
      const LoraSlot& s = w.slots[lin->second];
      HILUM_RETURN_IF_ERROR(check_rank(p, s.in, s.out));
      ad->by_slot_[lin->second].push_back(LoraTerm{p.a, p.b, 0, cfg.scale});
    } else if (std::regex_match(module, m, kPerExpert)) {
      if (!targeted(cfg, module)) return not_targeted(module);
      const int layer = std::stoi(m[1].str());
      const int64_t e = std::stoll(m[3].str());
      const std::string proj = m[4].str();
      if (layer >= static_cast<int>(w.layers.size()) || !w.layers[layer].is_moe ||
          e >= w.layers[layer].moe.experts.num) {
        return bad_input(fname + ": has LoRA weights for '" + module +
                         "', which the base model does not have");
      }
      const Experts& ex = w.layers[layer].moe.experts;
      if (proj == "down_proj" || proj == "w2") {
        HILUM_RETURN_IF_ERROR(check_rank(p, ex.inter, ex.hidden));
        ad->by_slot_[ex.down_slot0 + e].push_back(LoraTerm{p.a, p.b, 0, cfg.scale});
      } else {
        HILUM_RETURN_IF_ERROR(check_rank(p, ex.hidden, ex.inter));
        const int64_t offset = (proj == "gate_proj" || proj == "w1") ? 0 : ex.inter;
        ad->by_slot_[ex.gate_up_slot0 + e].push_back(LoraTerm{p.a, p.b, offset, cfg.scale});
      }
    } else if (std::regex_match(module, m, kFused)) {
      const int layer = std::stoi(m[1].str());
      if (layer >= static_cast<int>(w.layers.size()) || !w.layers[layer].is_moe) {
        return bad_input(fname + ": has LoRA weights for '" + module +
                         "', which the base model does not have");
      }
      const Experts& ex = w.layers[layer].moe.experts;
      const int64_t E = ex.num, H = ex.hidden, I = ex.inter;
      if (p.a.dim(0) != r * E || p.b.dim(1) != r * E) {
        return bad_input(fname + ": tensors '" + p.a_name + "' " + shape_string(p.a.shape()) + " and '" +
                         p.b_name + "' " + shape_string(p.b.shape()) + " do not fit " + std::to_string(E) +
                         " experts at rank " + std::to_string(r) + " (adapter for another model?)");
      }
      const int64_t pa = p.a.dim(1), qb = p.b.dim(0);
      FusedPair fp{module, &p, layer, {}};
      if (pa == 2 * I && qb == H) fp.readings.push_back({true, false});
      if (pa == H && qb == 2 * I) fp.readings.push_back({true, true});
      if (pa == H && qb == I) fp.readings.push_back({false, false});
      if (pa == I && qb == H) fp.readings.push_back({false, true});
      if (fp.readings.empty()) {
        return bad_input(fname + ": tensors '" + p.a_name + "' " + shape_string(p.a.shape()) + " and '" +
                         p.b_name + "' " + shape_string(p.b.shape()) + " fit neither experts.gate_up_proj [" +
                         std::to_string(E) + ", " + std::to_string(2 * I) + ", " + std::to_string(H) +
                         "] nor experts.down_proj [" + std::to_string(E) + ", " + std::to_string(H) + ", " +
                         std::to_string(I) + "] (adapter for another model?)");
      }
      bool all_same = true;
      for (const FusedReading& rd : fp.readings) all_same &= rd.swapped == fp.readings[0].swapped;
      if (all_same && !orientation) orientation = fp.readings[0].swapped;
      fused.push_back(std::move(fp));
    } else {
      return bad_input(fname + ": has LoRA weights for '" + module +
                       "', which is not an adaptable module of this " + mc.model_type +
                       " model (adapter for another model?)");
    }
  }

  if (!fused.empty()) {
    if (cfg.target_parameters.empty()) {
      return bad_input(fname +
                       ": has fused-expert LoRA weights but adapter_config.json has no target_parameters");
    }
    if (!orientation) {
      orientation = peft_swaps_expert_axes(cfg.peft_version);
      log_warning(cfg_path.string() +
                  ": expert LoRA shapes do not show PEFT's axis convention; assuming the " +
                  std::string(*orientation ? "PEFT >= 0.19.1" : "PEFT < 0.19.1") + " layout");
    }
    std::map<std::pair<int, bool>, std::string> seen;  // (layer, gate_up) -> module
    for (const FusedPair& fp : fused) {
      std::optional<FusedReading> pick;
      for (const FusedReading& rd : fp.readings) {
        if (rd.swapped != *orientation) continue;
        if (pick && pick->gate_up != rd.gate_up) {
          return bad_input(fname + ": cannot tell whether '" + fp.module +
                           "' adapts gate_up_proj or down_proj");
        }
        pick = rd;
      }
      if (!pick) {
        return bad_input(fname + ": '" + fp.module +
                         "' uses a different PEFT expert layout than the other expert "
                         "LoRA weights");
      }
      const std::string param = pick->gate_up ? "gate_up_proj" : "down_proj";
      bool named = false;
      for (const std::string& t : cfg.target_parameters) named |= ends_with(t, param) || t == param;
      if (!named) {
        return bad_input(fname + ": has LoRA weights for '" + fp.module + "." + param +
                         "', which adapter_config.json target_parameters does not name");
      }
      if (!seen.emplace(std::make_pair(fp.layer, pick->gate_up), fp.module).second) {
        return bad_input(fname + ": two LoRA weight pairs adapt layer " + std::to_string(fp.layer) + "'s " +
                         param);
      }
      const Experts& ex = w.layers[fp.layer].moe.experts;
      const int64_t E = ex.num;
      const int64_t d1 = pick->gate_up ? 2 * ex.inter : ex.hidden;  // output rows
      const int64_t d2 = pick->gate_up ? ex.hidden : ex.inter;      // input size
      const float* A = fp.pair->a.data<float>();                    // [r*E, pa]
      const float* B = fp.pair->b.data<float>();                    // [qb, r*E]
      for (int64_t e = 0; e < E; ++e) {
        Tensor ta = Tensor::empty({r, d2}, DType::kF32);  // input side
        Tensor tb = Tensor::empty({d1, r}, DType::kF32);  // output side
        float* a = ta.data<float>();
        float* b = tb.data<float>();
        for (int64_t k = 0; k < r; ++k) {
          for (int64_t i = 0; i < d2; ++i) {
            a[k * d2 + i] = pick->swapped ? A[(e * r + k) * d2 + i] : B[i * (r * E) + k * E + e];
          }
          for (int64_t j = 0; j < d1; ++j) {
            b[j * r + k] = pick->swapped ? B[j * (r * E) + k * E + e] : A[(e * r + k) * d1 + j];
          }
        }
        const int slot = (pick->gate_up ? ex.gate_up_slot0 : ex.down_slot0) + static_cast<int>(e);
        ad->by_slot_[slot].push_back(LoraTerm{ta, tb, 0, cfg.scale});
      }
    }
  }
  return std::shared_ptr<const LoraAdapter>(std::move(ad));
}

}  // namespace hilum::moe
