// Questions about one case, answered by the general text model (the model
// bundle's text/ without the medical adapter) with the case's findings as
// context. The workstation's assistant panel streams the answer.
//
// Prompt (the demo text model is trained on exactly this form; see
// scripts/train/text_corpus.py, report_examples()):
//
//   <|findings|>\n + findings_block(findings) + \n<|question|>\n + question + \n<|answer|>\n
//
// then greedy decoding until <|endoftext|> (or the model's eos tokens) or the
// token budget. Unlike the impression (app/narrative.h), nothing checks an
// answer against the findings: it is shown as the model wrote it, and the
// caller must say so. The clinical note is not part of the prompt.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "fusion/findings.h"
#include "model/progress.h"
#include "model/result.h"

namespace hilum {

namespace moe {
class TextModel;
}
class Tokenizer;

// The prompt above. The question is put on one line (newlines become spaces)
// and cannot open a special token ("<|" is written "< |"), so a question
// cannot end the question block early.
std::string assistant_prompt(const std::vector<Finding>& findings, std::string_view question);

// Receives the answer as it is generated: each call holds the text that became
// complete with the latest token (never half a UTF-8 character). Return false
// to stop generating.
using AnswerSink = std::function<bool(std::string_view text)>;

class CaseAssistant {
 public:
  // Shares `model` and `tokenizer` (no copy of the weights). `name` labels the
  // model in the GUI.
  static std::shared_ptr<const CaseAssistant> create(std::shared_ptr<const moe::TextModel> model,
                                                     const Tokenizer& tokenizer, std::string name);
  // Loads a Hugging Face folder holding tokenizer.json; errors name the folder.
  static Result<std::shared_ptr<const CaseAssistant>> load(const std::filesystem::path& model_dir);
  ~CaseAssistant();

  // Answers `question` about the case. Streams through `on_text` (may be null)
  // and returns the whole answer, whitespace-trimmed, without special tokens.
  // kBadInput: empty question, or longer than kMaxQuestionChars bytes.
  // kCancelled: progress->cancelled() turned true between tokens. Thread-safe.
  Result<std::string> answer(const std::vector<Finding>& findings, std::string_view question,
                             const AnswerSink& on_text = nullptr, Progress* progress = nullptr) const;

  const std::string& name() const { return name_; }

  static constexpr size_t kMaxQuestionChars = 2000;
  int64_t max_new_tokens = 160;

 private:
  CaseAssistant() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string name_;
};

}  // namespace hilum
