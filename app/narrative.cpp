#include "app/narrative.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <charconv>
#include <cmath>
#include <mutex>
#include <regex>
#include <set>

#include "model/log.h"
#include "model/moe/cuda_engine.h"
#include "model/moe/generate.h"
#include "model/moe/text_model.h"
#include "model/tokenizer.h"

namespace hilum {
namespace {

// The follow-up sentence of text_corpus.py's MANAGEMENT table (4X as 4B).
std::string corpus_management(LungRadsCategory c) {
  switch (c) {
    case LungRadsCategory::k1:
    case LungRadsCategory::k2:
      return "continue annual screening with low-dose CT in 12 months";
    case LungRadsCategory::k3:
      return "low-dose CT in 6 months";
    case LungRadsCategory::k4A:
      return "low-dose CT in 3 months; PET/CT may be considered if there is a solid component of 8 mm or "
             "more";
    case LungRadsCategory::k4B:
    case LungRadsCategory::k4X:
      return "diagnostic chest CT with or without contrast, PET/CT and/or tissue sampling";
  }
  return "";
}

std::string lobe_name(const std::string& code) {
  if (code == "RUL") return "right upper lobe";
  if (code == "RML") return "right middle lobe";
  if (code == "RLL") return "right lower lobe";
  if (code == "LUL") return "left upper lobe";
  if (code == "LLL") return "left lower lobe";
  return "";
}

LungSide side_of(const FindingLocation& loc) {
  if (loc.side != LungSide::kUnknown) return loc.side;
  if (!loc.lobe.empty()) return loc.lobe[0] == 'R' ? LungSide::kRight : LungSide::kLeft;
  return LungSide::kUnknown;
}

const Finding* most_suspicious(const std::vector<Finding>& findings) {
  const Finding* worst = nullptr;
  for (const Finding& f : findings) {
    if (!worst || lung_rads_rank(f.lung_rads.category) > lung_rads_rank(worst->lung_rads.category))
      worst = &f;
  }
  return worst;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool same_number(double a, double b) { return std::fabs(a - b) <= 1e-6 * std::max(1.0, std::fabs(b)); }

double round_to(double v, int decimals) {
  const double scale = std::pow(10.0, decimals);
  return std::round(v * scale) / scale;
}

// A number written in the draft with the word after it (its unit: "mm",
// "mm3", "%", "months", "x", ...), lower case.
struct WrittenNumber {
  double value = 0;
  std::string token, unit;
};

// Numbers written in the text (digits; "zero" .. "twenty" as words). Digits
// glued to letters ("mm3", "T2", "v2022") are units or names, not values.
std::vector<WrittenNumber> numbers_in(const std::string& text) {
  static const char* kWords[] = {"zero",     "one",      "two",      "three",   "four",    "five",
                                 "six",      "seven",    "eight",    "nine",    "ten",     "eleven",
                                 "twelve",   "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
                                 "eighteen", "nineteen", "twenty"};
  std::vector<WrittenNumber> out;
  const size_t n = text.size();
  auto unit_after = [&](size_t j) {
    while (j < n && (text[j] == ' ' || text[j] == '-')) ++j;
    if (j < n && text[j] == '%') return std::string("%");
    size_t k = j;
    while (k < n && !std::isspace(static_cast<unsigned char>(text[k])) &&
           std::string(",;:.()").find(text[k]) == std::string::npos) {
      ++k;
    }
    return lower(text.substr(j, k - j));
  };
  size_t i = 0;
  while (i < n) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (std::isalpha(c)) {
      size_t j = i;
      while (j < n && (std::isalnum(static_cast<unsigned char>(text[j])) || text[j] == '_')) ++j;
      const std::string word = lower(text.substr(i, j - i));
      for (int w = 0; w <= 20; ++w) {
        if (word == kWords[w]) out.push_back({double(w), word, unit_after(j)});
      }
      i = j;
      continue;
    }
    if (std::isdigit(c)) {
      size_t j = i;
      while (j < n && std::isdigit(static_cast<unsigned char>(text[j]))) ++j;
      if (j + 1 < n && text[j] == '.' && std::isdigit(static_cast<unsigned char>(text[j + 1]))) {
        ++j;
        while (j < n && std::isdigit(static_cast<unsigned char>(text[j]))) ++j;
      }
      const std::string token = text.substr(i, j - i);
      // A digit run that continues into letters ("3rd", "4A" outside a category) is read as its number.
      size_t k = j;
      while (k < n && std::isalnum(static_cast<unsigned char>(text[k]))) ++k;
      out.push_back(
          {std::strtod(token.c_str(), nullptr), token, k > j ? lower(text.substr(j, k - j)) : unit_after(j)});
      i = k;
      continue;
    }
    ++i;
  }
  return out;
}

bool any_same(const std::vector<double>& allowed, double v) {
  return std::any_of(allowed.begin(), allowed.end(), [&](double a) { return same_number(v, a); });
}

}  // namespace

std::string python_float(double value, int decimals) {
  double r = round_to(value, decimals);
  if (r == 0) r = 0;  // no "-0.0"
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, r);
  std::string s(buf, res.ptr);
  if (s.find_first_of(".en") == std::string::npos) s += ".0";
  return s;
}

std::string lobe_phrase(const FindingLocation& location) {
  const std::string name = lobe_name(location.lobe);
  if (!name.empty()) return name;
  switch (side_of(location)) {
    case LungSide::kRight:
      return "right lung";
    case LungSide::kLeft:
      return "left lung";
    default:
      return "lung";
  }
}

std::string findings_block(const std::vector<Finding>& findings) {
  if (findings.empty()) return "No nodule found.";
  std::string out;
  for (const Finding& f : findings) {
    if (!out.empty()) out += '\n';
    out += "Nodule " + std::to_string(f.id) + ": " + lobe_phrase(f.location) + ", " +
           std::string(nodule_type_name(f.type)) + ", " + python_float(f.long_axis_mm, 1) + " x " +
           python_float(f.short_axis_mm, 1) + " mm (mean " + python_float(f.mean_diameter_mm, 1) + " mm)";
    if (f.type == NoduleType::kPartSolid)
      out += ", solid component " + python_float(f.solid_component_mm, 1) + " mm";
    out += ", volume " + std::to_string(std::llround(f.volume_mm3)) + " mm3, probability " +
           python_float(f.probability, 2) + ", malignancy " + python_float(f.malignancy, 2) + ", Lung-RADS " +
           std::string(lung_rads_label(f.lung_rads.category)) + ".";
  }
  return out;
}

std::string impression_prompt(const std::vector<Finding>& findings) {
  return "<|findings|>\n" + findings_block(findings) + "\n<|impression|>\n";
}

std::string template_impression(const FindingsDocument& doc) {
  if (doc.findings.empty()) {
    return "No pulmonary nodule identified. Lung-RADS 1. Recommendation: " +
           corpus_management(LungRadsCategory::k1) + ".";
  }
  std::string out;
  for (const Finding& f : doc.findings) {
    std::string type(nodule_type_name(f.type));
    type[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(type[0])));
    out += std::to_string(f.id) + ". " + type + " nodule in the " + lobe_phrase(f.location) + " measuring " +
           python_float(f.long_axis_mm, 1) + " x " + python_float(f.short_axis_mm, 1) + " mm (Lung-RADS " +
           std::string(lung_rads_label(f.lung_rads.category)) + "). ";
  }
  const Finding* worst = most_suspicious(doc.findings);
  out += "Overall Lung-RADS " + std::string(lung_rads_label(worst->lung_rads.category)) +
         ". Recommendation: " + corpus_management(worst->lung_rads.category) + ".";
  return out;
}

ImpressionCheck check_impression(const std::string& draft, const FindingsDocument& doc) {
  auto fail = [](std::string why) { return ImpressionCheck{false, std::move(why)}; };
  std::string text = draft;
  if (text.find_first_not_of(" \t\r\n") == std::string::npos) return fail("the draft is empty");
  if (text.find("<|") != std::string::npos) return fail("the draft contains a control token");

  // Lung-RADS categories the study has.
  std::set<std::string> categories;
  categories.insert(
      doc.findings.empty()
          ? "1"
          : lower(std::string(lung_rads_label(most_suspicious(doc.findings)->lung_rads.category))));
  if (!doc.lung_rads_study.empty()) categories.insert(lower(doc.lung_rads_study));
  for (const Finding& f : doc.findings)
    categories.insert(lower(std::string(lung_rads_label(f.lung_rads.category))));

  // Categories named in the draft; their text is blanked so "4A" is not read as the number 4.
  static const std::regex kCategory(R"((lung[- ]?rads|category)\s*(category\s*)?:?\s*(\d[a-z]?)\b)",
                                    std::regex::icase);
  for (std::sregex_iterator it(text.begin(), text.end(), kCategory), end; it != end; ++it) {
    const std::string cat = lower((*it)[3].str());
    if (!categories.count(cat)) {
      return fail("Lung-RADS " + (*it)[3].str() + " is not a category of this study");
    }
  }
  text = std::regex_replace(text, kCategory, " ");
  const std::string low = lower(text);

  if (!doc.findings.empty()) {
    static const std::regex kNone(R"(\bno\s+(pulmonary\s+|lung\s+|suspicious\s+)?nodules?\b)");
    if (std::regex_search(low, kNone)) return fail("the draft says there is no nodule");
  }

  // Sides and lobes.
  std::set<std::string> sides, lobes;
  for (const Finding& f : doc.findings) {
    const LungSide s = side_of(f.location);
    if (s != LungSide::kUnknown) sides.insert(std::string(lung_side_name(s)));
    if (!f.location.lobe.empty()) lobes.insert(lower(f.location.lobe));
  }
  static const std::regex kLobe(R"(\b(right|left)\s+(upper|middle|lower)\s+lobe\b)");
  for (std::sregex_iterator it(low.begin(), low.end(), kLobe), end; it != end; ++it) {
    const std::string code = std::string(1, (*it)[1].str()[0]) + (*it)[2].str()[0] + "l";
    if (!lobes.count(code)) return fail("no finding lies in the " + (*it)[0].str());
  }
  static const std::regex kLobeCode(R"(\b(rul|rml|rll|lul|lll)\b)");
  for (std::sregex_iterator it(low.begin(), low.end(), kLobeCode), end; it != end; ++it) {
    if (!lobes.count((*it)[1].str())) return fail("no finding lies in the " + (*it)[1].str());
  }
  if (low.find("lingula") != std::string::npos && !lobes.count("lul")) {
    return fail("no finding lies in the lingula");
  }
  static const std::regex kSide(R"(\b(right|left)\b)");
  for (std::sregex_iterator it(low.begin(), low.end(), kSide), end; it != end; ++it) {
    if (!sides.count((*it)[1].str())) return fail("no finding lies on the " + (*it)[1].str());
  }

  // Numbers, by what they are written as: sizes before "mm" (and in "a x b"),
  // volumes before "mm3", percentages, follow-up intervals before "months";
  // any other number must be one of the findings' numbers.
  std::vector<double> sizes, volumes, percents, intervals, general;
  general.push_back(static_cast<double>(doc.findings.size()));
  std::set<LungRadsCategory> present;
  for (const Finding& f : doc.findings) {
    general.push_back(f.id);
    for (double mm : {f.long_axis_mm, f.short_axis_mm, f.mean_diameter_mm, f.solid_component_mm}) {
      sizes.push_back(mm);
      sizes.push_back(round_to(mm, 1));
    }
    volumes.push_back(f.volume_mm3);
    volumes.push_back(round_to(f.volume_mm3, 0));
    volumes.push_back(round_to(f.volume_mm3, 1));
    for (double p : {f.probability, f.malignancy}) {
      general.push_back(p);
      general.push_back(round_to(p, 2));
      percents.push_back(round_to(p * 100, 0));
      percents.push_back(round_to(p * 100, 1));
    }
    present.insert(f.lung_rads.category);
  }
  present.insert(doc.findings.empty() ? LungRadsCategory::k1
                                      : most_suspicious(doc.findings)->lung_rads.category);
  for (LungRadsCategory c : present) {
    for (const std::string& m : {corpus_management(c), std::string(lung_rads_management(c))}) {
      for (const WrittenNumber& w : numbers_in(m)) {
        (w.unit == "mm" ? sizes : intervals).push_back(w.value);
      }
    }
  }
  for (const std::vector<double>* v : {&sizes, &volumes, &percents, &intervals}) {
    general.insert(general.end(), v->begin(), v->end());
  }
  for (const WrittenNumber& w : numbers_in(text)) {
    const std::string& u = w.unit;
    const std::vector<double>& allowed = u == "mm" || u == "x" || u == "\xc3\x97"          ? sizes
                                         : u == "mm3" || u == "mm\xc2\xb3" || u == "cubic" ? volumes
                                         : u == "%" || u == "percent"                      ? percents
                                         : u == "month" || u == "months"                   ? intervals
                                                                                           : general;
    if (!any_same(allowed, w.value)) {
      return fail("the number " + w.token + (u.empty() ? "" : " " + u) + " is not in the findings");
    }
  }
  return ImpressionCheck{true, ""};
}

// ---- drafting with the text model -------------------------------------------

struct ImpressionDrafter::Impl {
  std::shared_ptr<const moe::TextModel> model;
  std::optional<Tokenizer> tokenizer;
  std::vector<int32_t> stop_tokens;
  // The GPU engine drafts when set; one draft at a time (its KV cache is one slot).
  std::unique_ptr<moe::CudaTextModel> gpu;
  std::mutex gpu_mu;
  int64_t gpu_capacity = 0;  // tokens the GPU engine's cache holds
  std::atomic<bool> warmed{false};

  // Greedy tokens after `prompt` on the GPU: the first from the prefill's
  // logits, the rest by graph replays on the device, up to the first stop token.
  Result<std::vector<int32_t>> greedy_on_gpu(const std::vector<int32_t>& prompt, int64_t max_new) {
    const std::lock_guard<std::mutex> lock(gpu_mu);
    gpu->reset(0);
    HILUM_ASSIGN_OR_RETURN(Tensor logits, gpu->prefill(0, prompt, false));
    moe::SamplingOptions greedy;
    greedy.greedy = true;
    moe::Sampler sampler(greedy);
    std::vector<int32_t> tokens{sampler.next(logits.span<const float>())};
    auto is_stop = [&](int32_t t) {
      return std::find(stop_tokens.begin(), stop_tokens.end(), t) != stop_tokens.end();
    };
    // In chunks of 16 steps, so that a stop token ends the draft within 16
    // steps instead of running all max_new on the device.
    constexpr int64_t kChunk = 16;
    const int slot[1] = {0};
    while (!is_stop(tokens.back()) && static_cast<int64_t>(tokens.size()) < max_new) {
      const int32_t first[1] = {tokens.back()};
      const int64_t n = std::min<int64_t>(kChunk, max_new - static_cast<int64_t>(tokens.size()));
      HILUM_ASSIGN_OR_RETURN(auto steps, gpu->decode_greedy(slot, first, n));
      for (const std::vector<int32_t>& step : steps) {
        tokens.push_back(step.at(0));
        if (is_stop(tokens.back())) break;
      }
    }
    if (is_stop(tokens.back())) tokens.pop_back();  // the stop token (only ever the last) is not text
    return tokens;
  }
};

ImpressionDrafter::~ImpressionDrafter() = default;

Result<std::shared_ptr<const ImpressionDrafter>> ImpressionDrafter::load(
    const std::filesystem::path& model_dir, Device device) {
  const std::filesystem::path tok_path = model_dir / "tokenizer.json";
  std::error_code ec;
  if (!std::filesystem::is_regular_file(tok_path, ec)) {
    return bad_input(model_dir.string() + ": no tokenizer.json (the narrative model needs its tokenizer)");
  }
  auto impl = std::make_unique<Impl>();
  HILUM_ASSIGN_OR_RETURN(impl->model, moe::TextModel::load(model_dir));
  HILUM_ASSIGN_OR_RETURN(Tokenizer tok, Tokenizer::from_file(tok_path));
  impl->tokenizer.emplace(std::move(tok));
  if (auto eot = impl->tokenizer->token_to_id("<|endoftext|>")) impl->stop_tokens.push_back(*eot);
  for (int32_t id : impl->model->config().eos_token_ids) impl->stop_tokens.push_back(id);
  if (device == Device::kCUDA) {
    moe::CudaEngineOptions opt;
    const int64_t positions = impl->model->config().max_position_embeddings;
    opt.max_seq = positions > 0 ? std::min<int64_t>(positions, 4096) : 2048;
    auto gpu = moe::CudaTextModel::upload(*impl->model, opt);
    if (gpu.ok()) {
      impl->gpu = std::move(*gpu);
      impl->gpu_capacity = opt.max_seq;
    } else {
      log_warning("narrative model: drafts run on the CPU (" + gpu.error().message() + ")");
    }
  }
  std::shared_ptr<ImpressionDrafter> d(new ImpressionDrafter());
  d->impl_ = std::move(impl);
  d->name_ = model_dir.filename().string();
  if (d->name_.empty()) d->name_ = model_dir.parent_path().filename().string();
  return std::shared_ptr<const ImpressionDrafter>(std::move(d));
}

Result<std::string> ImpressionDrafter::draft(const std::vector<Finding>& findings, Progress* progress) const {
  const std::vector<int32_t> prompt = impl_->tokenizer->encode(impression_prompt(findings), true);
  if (prompt.empty()) return internal_error("narrative: the prompt encodes to no tokens");
  std::vector<int32_t> tokens;
  if (impl_->gpu && max_new_tokens > 0 &&
      static_cast<int64_t>(prompt.size()) + max_new_tokens <= impl_->gpu_capacity) {
    if (progress && progress->cancelled()) return cancelled_error();
    HILUM_ASSIGN_OR_RETURN(tokens, impl_->greedy_on_gpu(prompt, max_new_tokens));
  } else {
    moe::GenerateOptions opt;
    opt.max_new_tokens = max_new_tokens;
    opt.sampling.greedy = true;
    opt.stop_tokens = impl_->stop_tokens;
    HILUM_ASSIGN_OR_RETURN(moe::GenerateResult out,
                           moe::generate(*impl_->model, prompt, nullptr, opt, nullptr, progress));
    tokens = out.tokens;
    if (!tokens.empty() && out.stop == moe::GenerateResult::Stop::kStopToken) tokens.pop_back();
  }
  std::string text = impl_->tokenizer->decode(tokens, /*skip_special_tokens=*/true);
  const size_t b = text.find_first_not_of(" \t\r\n");
  const size_t e = text.find_last_not_of(" \t\r\n");
  return b == std::string::npos ? std::string() : text.substr(b, e - b + 1);
}

Device ImpressionDrafter::device() const { return impl_->gpu ? Device::kCUDA : Device::kCPU; }

Status ImpressionDrafter::warm_up() const {
  if (!impl_->gpu || impl_->warmed.load()) return Status::Ok();
  const std::lock_guard<std::mutex> lock(impl_->gpu_mu);
  // A prompt longer than the decode path's 16 rows (the prefill path), then
  // two greedy steps on the device (the decode graph).
  const std::vector<int32_t> prompt(static_cast<size_t>(std::min<int64_t>(32, impl_->gpu_capacity - 3)), 0);
  impl_->gpu->reset(0);
  HILUM_ASSIGN_OR_RETURN(Tensor logits, impl_->gpu->prefill(0, prompt, false));
  (void)logits;
  const int slot[1] = {0};
  const int32_t first[1] = {0};
  HILUM_ASSIGN_OR_RETURN(auto steps, impl_->gpu->decode_greedy(slot, first, 2));
  (void)steps;
  impl_->gpu->reset(0);
  impl_->warmed.store(true);
  return Status::Ok();
}

Narrative write_impression(const FindingsDocument& doc, const ImpressionDrafter* drafter,
                           Progress* progress) {
  Narrative n;
  if (!drafter) {
    n.text = template_impression(doc);
    n.note = "Template impression (no text model was given).";
    return n;
  }
  n.model = drafter->name();
  auto draft = drafter->draft(doc.findings, progress);
  if (!draft.ok()) {
    n.text = template_impression(doc);
    n.note = "Template impression (the text model failed: " + draft.error().message() + ").";
    return n;
  }
  const ImpressionCheck check = check_impression(*draft, doc);
  if (!check.ok) {
    n.text = template_impression(doc);
    n.note = "Template impression: the text model's draft was discarded (" + check.reason + ").";
    return n;
  }
  n.source = Narrative::Source::kModel;
  n.text = *draft;
  n.note = "AI draft by the general text model (" + n.model + "), checked against the structured findings.";
  return n;
}

}  // namespace hilum
