// Broken or unsupported tokenizer.json files: a clear error that names the file
// and the field, of the kind the CLI maps to exit code 2; never a crash.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "model/tokenizer.h"

namespace hilum {
namespace {

using nlohmann::json;

json valid() {
  return json::parse(R"({
    "version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
    "normalizer": null,
    "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
    "post_processor": null,
    "decoder": {"type": "ByteLevel"},
    "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]}
  })");
}

// Loads `j` and expects an error of `kind` whose message holds every fragment.
void expect_error(const std::string& text, ErrorKind kind, std::initializer_list<std::string> fragments) {
  auto t = Tokenizer::from_json(text, "models/x/tokenizer.json");
  ASSERT_FALSE(t.ok()) << "loaded: " << text.substr(0, 200);
  EXPECT_EQ(t.error().kind(), kind) << t.error().message();
  EXPECT_EQ(exit_code_for(t.error()), 2);
  EXPECT_EQ(t.error().message().find('\n'), std::string::npos) << "one line: " << t.error().message();
  EXPECT_EQ(t.error().message().rfind("models/x/tokenizer.json: ", 0), 0u) << t.error().message();
  for (const auto& f : fragments) EXPECT_NE(t.error().message().find(f), std::string::npos) << t.error().message();
}

TEST(TokenizerErrors, ValidFixtureLoads) {
  auto t = Tokenizer::from_json(valid().dump(), "x");
  ASSERT_TRUE(t.ok()) << t.error().message();
  EXPECT_EQ(t->encode("ab"), (std::vector<int32_t>{2}));
}

TEST(TokenizerErrors, NotJson) {
  expect_error("{\"model\": ", ErrorKind::kBadInput, {"not valid JSON"});
  expect_error("", ErrorKind::kBadInput, {"not valid JSON"});
  expect_error("[1, 2]", ErrorKind::kBadInput, {"JSON object"});
}

TEST(TokenizerErrors, MissingModel) {
  json j = valid();
  j.erase("model");
  expect_error(j.dump(), ErrorKind::kBadInput, {"model: missing"});
  j = valid();
  j["model"].erase("vocab");
  expect_error(j.dump(), ErrorKind::kBadInput, {"model.vocab"});
  j = valid();
  j["model"].erase("merges");
  expect_error(j.dump(), ErrorKind::kBadInput, {"model.merges"});
}

TEST(TokenizerErrors, UnsupportedModelTypes) {
  for (const char* type : {"WordPiece", "Unigram", "WordLevel"}) {
    json j = valid();
    j["model"]["type"] = type;
    expect_error(j.dump(), ErrorKind::kUnsupported, {"model.type", type});
  }
  json j = valid();
  j["model"]["type"] = "Magic";
  expect_error(j.dump(), ErrorKind::kBadInput, {"model.type", "unknown model type 'Magic'"});
  j = valid();
  j["model"]["dropout"] = 0.1;
  expect_error(j.dump(), ErrorKind::kUnsupported, {"model.dropout"});
}

TEST(TokenizerErrors, UnknownComponentTypesNameTheField) {
  json j = valid();
  j["pre_tokenizer"] = {{"type", "Sequence"},
                        {"pretokenizers", json::array({{{"type", "Digits"}}, {{"type", "Foo"}}})}};
  expect_error(j.dump(), ErrorKind::kBadInput, {"pre_tokenizer.pretokenizers[1].type", "unknown pre-tokenizer type 'Foo'"});
  j = valid();
  j["normalizer"] = {{"type", "Sequence"}, {"normalizers", json::array({{{"type", "Bar"}}})}};
  expect_error(j.dump(), ErrorKind::kBadInput, {"normalizer.normalizers[0].type", "unknown normalizer type 'Bar'"});
  j = valid();
  j["decoder"] = {{"type", "Baz"}};
  expect_error(j.dump(), ErrorKind::kBadInput, {"decoder.type", "unknown decoder type 'Baz'"});
  j = valid();
  j["post_processor"] = {{"type", "Qux"}};
  expect_error(j.dump(), ErrorKind::kBadInput, {"post_processor.type", "unknown post-processor type 'Qux'"});
  j = valid();
  j["normalizer"] = {{"type", "Precompiled"}, {"precompiled_charsmap", "AAAA"}};
  expect_error(j.dump(), ErrorKind::kUnsupported, {"normalizer.type", "Precompiled"});
  j = valid();
  j["pre_tokenizer"] = {{"no_type", 1}};
  expect_error(j.dump(), ErrorKind::kBadInput, {"pre_tokenizer.type: missing"});
}

TEST(TokenizerErrors, MergesReferencingUnknownTokens) {
  json j = valid();
  j["model"]["merges"] = json::array({"a b", "a c"});
  expect_error(j.dump(), ErrorKind::kBadInput, {"model.merges[1]", "token 'c' is not in model.vocab"});
  j = valid();
  j["model"]["merges"] = json::array({json::array({"b", "a"})});
  expect_error(j.dump(), ErrorKind::kBadInput, {"model.merges[0]", "merged token 'ba'"});
  j = valid();
  j["model"]["merges"] = json::array({"ab"});
  expect_error(j.dump(), ErrorKind::kBadInput, {"model.merges[0]", "left right"});
  j = valid();
  j["model"]["merges"] = json::array({42});
  expect_error(j.dump(), ErrorKind::kBadInput, {"model.merges[0]"});
}

TEST(TokenizerErrors, BadFieldValues) {
  json j = valid();
  j["model"]["vocab"]["c"] = "three";
  expect_error(j.dump(), ErrorKind::kBadInput, {"model.vocab[\"c\"]"});
  j = valid();
  j["model"]["unk_token"] = "<unk>";
  expect_error(j.dump(), ErrorKind::kBadInput, {"model.unk_token", "'<unk>' is not in model.vocab"});
  j = valid();
  j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "(unclosed"}}}, {"behavior", "Isolated"}};
  expect_error(j.dump(), ErrorKind::kBadInput, {"pre_tokenizer.pattern.Regex", "invalid regular expression"});
  j = valid();
  j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "a"}}}, {"behavior", "Sideways"}};
  expect_error(j.dump(), ErrorKind::kBadInput, {"pre_tokenizer.behavior", "Sideways"});
  j = valid();
  j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", "a"}, {"behavior", "Isolated"}};
  expect_error(j.dump(), ErrorKind::kBadInput, {"pre_tokenizer.pattern"});
  j = valid();
  j["pre_tokenizer"] = {{"type", "Metaspace"}, {"replacement", "ab"}};
  expect_error(j.dump(), ErrorKind::kBadInput, {"pre_tokenizer.replacement", "single character"});
  j = valid();
  j["pre_tokenizer"] = {{"type", "Metaspace"}, {"prepend_scheme", "sometimes"}};
  expect_error(j.dump(), ErrorKind::kBadInput, {"pre_tokenizer.prepend_scheme"});
  j = valid();
  j["added_tokens"] = json::array({{{"content", ""}, {"special", true}}});
  expect_error(j.dump(), ErrorKind::kBadInput, {"added_tokens[0].content"});
  j = valid();
  j["added_tokens"] = json::array({{{"content", "<s>"}, {"special", "yes"}}});
  expect_error(j.dump(), ErrorKind::kBadInput, {"added_tokens[0].special"});
  j = valid();
  j["post_processor"] = {{"type", "TemplateProcessing"},
                         {"single", json::array({{{"SpecialToken", {{"id", "<s>"}}}}, {{"Sequence", {{"id", "A"}}}}})},
                         {"special_tokens", json::object()}};
  expect_error(j.dump(), ErrorKind::kBadInput, {"post_processor.special_tokens", "<s>"});
  j = valid();
  j["decoder"] = {{"type", "Strip"}, {"content", " "}, {"start", -1}};
  expect_error(j.dump(), ErrorKind::kBadInput, {"decoder.start"});
}

TEST(TokenizerErrors, FileProblemsNameTheFile) {
  auto missing = Tokenizer::from_file("/nonexistent/dir/tokenizer.json");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(exit_code_for(missing.error()), 2);
  EXPECT_NE(missing.error().message().find("/nonexistent/dir/tokenizer.json"), std::string::npos);

  const auto dir = std::filesystem::path(testing::TempDir()) / "hilum_tokenizer_errors";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "tokenizer.json") << "{\"model\": {\"type\": \"BPE\", \"vocab\": {}, \"merges\": [\"x y\"]}}";
  auto bad = Tokenizer::from_file(dir / "tokenizer.json");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message().rfind((dir / "tokenizer.json").string() + ": model.merges[0]", 0), 0u)
      << bad.error().message();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace hilum
