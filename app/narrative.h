// The narrative impression of a report: drafted by the general text model
// from the structured findings, checked against them, and replaced by a
// deterministic template impression when the draft disagrees.
//
// Prompt (the demo text model is trained on exactly this; see
// scripts/train/text_corpus.py, findings_block() and impression()):
//
//   <|findings|>\n
//   Nodule 1: right upper lobe, part-solid, 25.3 x 23.8 mm (mean 24.6 mm), solid component 15.6 mm,
//     volume 7154 mm3, probability 0.97, malignancy 0.41, Lung-RADS 4B.\n      (one line per nodule)
//   <|impression|>\n
//
// ("No nodule found." instead of the nodule lines), then greedy decoding
// until <|endoftext|>. The clinical note is never part of the prompt: it can
// reach the findings only through the fusion head's probabilities, and text in
// it cannot steer the draft.
//
// The check (check_impression) accepts a draft only when every number in it is
// one of the findings' numbers (ids, sizes, volume, probabilities, the count,
// the follow-up intervals of the categories present), every side and lobe it
// names is one where a finding lies, and every Lung-RADS category it names is
// the study's or a finding's. Anything else is a disagreement: the draft is
// discarded and template_impression() is used; Narrative says which.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "fusion/findings.h"
#include "model/progress.h"
#include "model/result.h"
#include "model/tensor.h"

namespace hilum {

// "right upper lobe", ... from a finding's location ("right lung" when only
// the side is known, "lung" when neither is).
std::string lobe_phrase(const FindingLocation& location);

// The lines between <|findings|> and <|impression|> (no trailing newline).
std::string findings_block(const std::vector<Finding>& findings);
// "<|findings|>\n" + findings_block + "\n<|impression|>\n".
std::string impression_prompt(const std::vector<Finding>& findings);

// The deterministic impression in the training corpus' style (always passes
// check_impression for the same findings).
std::string template_impression(const FindingsDocument& doc);

struct ImpressionCheck {
  bool ok = false;
  std::string reason;  // why the draft disagrees (empty when ok)
};
ImpressionCheck check_impression(const std::string& draft, const FindingsDocument& doc);

struct Narrative {
  // kRadiologist: the radiologist wrote or edited the text (the workstation).
  enum class Source { kModel, kTemplate, kRadiologist };
  Source source = Source::kTemplate;
  std::string text;
  std::string model;  // the text model's folder name when it drafted (or tried to)
  std::string note;   // one line for the report: what was used and why
};

// A general text model with its tokenizer (a Hugging Face folder holding
// tokenizer.json), loaded once and shared by threads (drafting is const).
class ImpressionDrafter {
 public:
  // Errors name the folder and what is missing or malformed. With `device`
  // kCUDA the model is also uploaded to the GPU engine (bf16) and drafts run
  // there, greedy steps without leaving the device; when the upload fails
  // (no GPU) a warning is logged and drafts run on the CPU.
  static Result<std::shared_ptr<const ImpressionDrafter>> load(const std::filesystem::path& model_dir,
                                                              Device device = Device::kCPU);
  ~ImpressionDrafter();

  // The raw greedy continuation of impression_prompt(findings), special
  // tokens removed, trimmed.
  Result<std::string> draft(const std::vector<Finding>& findings, Progress* progress = nullptr) const;
  const std::string& name() const { return name_; }
  Device device() const;  // where drafts run
  // On the GPU: runs a short dummy draft, so that the engine's first-use costs
  // (its CUDA graphs, the prefill path's libraries) are paid before the first
  // study's draft (analyze calls it beside the CPU stages). No-op on the CPU.
  Status warm_up() const;

  int64_t max_new_tokens = 256;

 private:
  ImpressionDrafter() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string name_;
};

// The impression for a report: the drafter's text when it passes the check,
// else the template (also when `drafter` is null or drafting fails).
Narrative write_impression(const FindingsDocument& doc, const ImpressionDrafter* drafter,
                           Progress* progress = nullptr);

// Python's str() of a float rounded to `decimals` places ("12.0", "0.93"),
// as text_corpus.py formats numbers.
std::string python_float(double value, int decimals);

}  // namespace hilum
