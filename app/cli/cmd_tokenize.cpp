// `hilum tokenize`: token ids of a text (or the text of ids) with a Hugging Face
// tokenizer.json, as a one-line JSON array on stdout.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "app/cli/cli.h"
#include "model/file_io.h"
#include "model/tokenizer.h"

namespace hilum::cli {
namespace {

struct TokenizeOptions {
  std::string tokenizer;
  std::string text;
  std::string text_file;
  bool no_special = false;
  bool decode = false;
};

// "[1, 2, 3]" or "1,2,3" (whitespace allowed).
Result<std::vector<int32_t>> parse_ids(const std::string& input, const std::string& source) {
  std::string s = input;
  const auto first = s.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && s[first] != '[') s = "[" + s + "]";
  try {
    const auto j = nlohmann::json::parse(s);
    std::vector<int32_t> ids;
    for (const auto& v : j) {
      if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > INT32_MAX)
        return bad_input(source + ": token ids must be non-negative integers, got " + v.dump());
      ids.push_back(v.get<int32_t>());
    }
    if (!j.is_array()) return bad_input(source + ": expected token ids like [1, 2, 3] or 1,2,3");
    return ids;
  } catch (const nlohmann::json::exception&) {
    return bad_input(source + ": expected token ids like [1, 2, 3] or 1,2,3");
  }
}

Status run_tokenize(const TokenizeOptions& o) {
  std::string input = o.text;
  std::string source = "--text";
  if (!o.text_file.empty()) {
    HILUM_ASSIGN_OR_RETURN(input, read_file(o.text_file));
    source = o.text_file;
  }
  size_t bad_at = 0;
  if (!is_valid_utf8(input, &bad_at))
    return bad_input(source + ": not valid UTF-8 (byte " + std::to_string(bad_at) + ")");
  HILUM_ASSIGN_OR_RETURN(Tokenizer tokenizer, Tokenizer::from_file(o.tokenizer));
  if (o.decode) {
    HILUM_ASSIGN_OR_RETURN(std::vector<int32_t> ids, parse_ids(input, source));
    const std::string text = tokenizer.decode(ids, o.no_special);
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fputc('\n', stdout);
  } else {
    const std::vector<int32_t> ids = tokenizer.encode(input, !o.no_special);
    std::string line = "[";
    for (size_t i = 0; i < ids.size(); ++i) {
      if (i) line += ',';
      line += std::to_string(ids[i]);
    }
    line += "]\n";
    std::fwrite(line.data(), 1, line.size(), stdout);
  }
  if (std::fflush(stdout) != 0) return internal_error("cannot write to standard output");
  return Status::Ok();
}

}  // namespace

void register_tokenize_command(CommandLine& cl) {
  auto o = std::make_shared<TokenizeOptions>();
  auto given = std::make_shared<std::pair<CLI::Option*, CLI::Option*>>();
  CLI::App* cmd = cl.add(nullptr, "tokenize",
                         "Token ids of a text with a Hugging Face tokenizer.json, printed as a JSON array "
                         "(or, with --decode, the text of ids)",
                         [o, given]() -> Status {
                           // An empty --text is a valid text: count the options, not their values.
                           if (given->first->count() + given->second->count() != 1)
                             return bad_input("tokenize: give the text with --text or --text-file");
                           return run_tokenize(*o);
                         });
  cmd->add_option("--tokenizer", o->tokenizer, "tokenizer.json of the model")->required();
  given->first = cmd->add_option("--text", o->text, "The text (with --decode: ids such as 1,2,3)");
  given->second = cmd->add_option("--text-file", o->text_file, "Read the text (or ids) from this file, as is");
  given->first->excludes(given->second);
  cmd->add_flag("--no-special", o->no_special,
                "Do not add special tokens (BOS/EOS); with --decode, leave special tokens out of the text");
  cmd->add_flag("--decode", o->decode, "Decode the ids given in --text/--text-file to text");
}

}  // namespace hilum::cli
