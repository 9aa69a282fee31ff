#include "app/assistant.h"

#include <algorithm>
#include <optional>

#include "app/narrative.h"
#include "model/moe/generate.h"
#include "model/moe/text_model.h"
#include "model/tokenizer.h"

namespace hilum {

namespace {

std::string one_line_question(std::string_view question) {
  std::string q;
  q.reserve(question.size());
  for (size_t i = 0; i < question.size(); ++i) {
    const char c = question[i];
    if (c == '\r' || c == '\n' || c == '\t') {
      q += ' ';
    } else if (c == '<' && i + 1 < question.size() && question[i + 1] == '|') {
      q += "< ";
    } else {
      q += c;
    }
  }
  const size_t b = q.find_first_not_of(' ');
  if (b == std::string::npos) return "";
  return q.substr(b, q.find_last_not_of(' ') - b + 1);
}

}  // namespace

std::string assistant_prompt(const std::vector<Finding>& findings, std::string_view question) {
  return "<|findings|>\n" + findings_block(findings) + "\n<|question|>\n" + one_line_question(question) +
         "\n<|answer|>\n";
}

struct CaseAssistant::Impl {
  std::shared_ptr<const moe::TextModel> model;
  std::optional<Tokenizer> tokenizer;
  std::vector<int32_t> stop_tokens;
};

CaseAssistant::~CaseAssistant() = default;

std::shared_ptr<const CaseAssistant> CaseAssistant::create(std::shared_ptr<const moe::TextModel> model,
                                                           const Tokenizer& tokenizer, std::string name) {
  auto impl = std::make_unique<Impl>();
  impl->model = std::move(model);
  impl->tokenizer.emplace(tokenizer);
  if (auto eot = impl->tokenizer->token_to_id("<|endoftext|>")) impl->stop_tokens.push_back(*eot);
  for (int32_t id : impl->model->config().eos_token_ids) impl->stop_tokens.push_back(id);
  std::shared_ptr<CaseAssistant> a(new CaseAssistant());
  a->impl_ = std::move(impl);
  a->name_ = std::move(name);
  return a;
}

Result<std::shared_ptr<const CaseAssistant>> CaseAssistant::load(const std::filesystem::path& model_dir) {
  const std::filesystem::path tok_path = model_dir / "tokenizer.json";
  std::error_code ec;
  if (!std::filesystem::is_regular_file(tok_path, ec)) {
    return bad_input(model_dir.string() + ": no tokenizer.json (the assistant needs the model's tokenizer)");
  }
  HILUM_ASSIGN_OR_RETURN(std::shared_ptr<const moe::TextModel> model, moe::TextModel::load(model_dir));
  HILUM_ASSIGN_OR_RETURN(Tokenizer tok, Tokenizer::from_file(tok_path));
  std::string name = model_dir.filename().string();
  if (name.empty()) name = model_dir.parent_path().filename().string();
  return create(std::move(model), tok, std::move(name));
}

Result<std::string> CaseAssistant::answer(const std::vector<Finding>& findings, std::string_view question,
                                          const AnswerSink& on_text, Progress* progress) const {
  if (one_line_question(question).empty()) return bad_input("the question is empty");
  if (question.size() > kMaxQuestionChars) {
    return bad_input("the question is longer than " + std::to_string(kMaxQuestionChars) + " bytes");
  }
  const Tokenizer& tok = *impl_->tokenizer;
  const std::vector<int32_t> prompt = tok.encode(assistant_prompt(findings, question), true);
  if (prompt.empty()) return internal_error("assistant: the prompt encodes to no tokens");
  moe::GenerateOptions opt;
  opt.max_new_tokens = max_new_tokens;
  opt.sampling.greedy = true;
  opt.stop_tokens = impl_->stop_tokens;

  Tokenizer::StreamDecoder decoder(tok, /*skip_special_tokens=*/true);
  std::string answer;
  bool started = false;  // leading whitespace of the answer is not streamed
  auto emit = [&](std::string piece) -> bool {
    if (!started) {
      const size_t b = piece.find_first_not_of(" \t\r\n");
      if (b == std::string::npos) return true;
      piece.erase(0, b);
      started = true;
    }
    answer += piece;
    return on_text ? on_text(piece) : true;
  };
  const std::vector<int32_t>& stops = impl_->stop_tokens;
  moe::TokenCallback on_token = [&](int32_t id) {
    if (std::find(stops.begin(), stops.end(), id) != stops.end()) return true;
    return emit(decoder.step(id));
  };
  HILUM_ASSIGN_OR_RETURN(moe::GenerateResult out,
                         moe::generate(*impl_->model, prompt, nullptr, opt, on_token, progress));
  (void)out;
  if (std::string rest = decoder.flush(); !rest.empty()) emit(std::move(rest));
  const size_t e = answer.find_last_not_of(" \t\r\n");
  answer.erase(e == std::string::npos ? 0 : e + 1);
  return answer;
}

}  // namespace hilum
