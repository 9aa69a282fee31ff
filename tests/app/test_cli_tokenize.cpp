// `hilum tokenize` run as a user runs it: the real binary, real files.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "model/tokenizer.h"
#include "tests/support/test_support.h"

namespace hilum {
namespace {

namespace fs = std::filesystem;
const fs::path kGolden = fs::path(HILUM_TEST_DATA_DIR) / "golden" / "tokenizers";

using CliRun = test::CommandResult;

CliRun run_cli(const std::vector<std::string>& args) { return test::run_hilum(args); }

class CliTokenize : public ::testing::Test {
 protected:
  void SetUp() override {
    scratch_ = std::make_unique<test::ScratchDir>();
    dir_ = scratch_->path();
  }
  void TearDown() override { scratch_.reset(); }
  fs::path write(const std::string& name, const std::string& content) {
    std::ofstream(dir_ / name, std::ios::binary) << content;
    return dir_ / name;
  }
  std::unique_ptr<test::ScratchDir> scratch_;
  fs::path dir_;
};

TEST_F(CliTokenize, PrintsTheIdsAsOneJsonLine) {
  const fs::path tok_path = kGolden / "llama3" / "tokenizer.json";
  auto tok = Tokenizer::from_file(tok_path);
  ASSERT_TRUE(tok.ok()) << tok.error().message();
  const std::string text = "The nodule's size: 12 mm. 结节 👍🏽\n";
  CliRun r = run_cli({"tokenize", "--tokenizer", tok_path.string(), "--text", text});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_FALSE(r.out.empty());
  EXPECT_EQ(r.out.back(), '\n');
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1);
  const auto printed = nlohmann::json::parse(r.out).get<std::vector<int32_t>>();
  EXPECT_EQ(printed, tok->encode(text, true));
  EXPECT_EQ(printed.front(), *tok->bos_id());

  CliRun plain = run_cli({"tokenize", "--tokenizer", tok_path.string(), "--text", text, "--no-special"});
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  EXPECT_EQ(nlohmann::json::parse(plain.out).get<std::vector<int32_t>>(), tok->encode(text, false));

  // The same text from a file (read as is, trailing newline included).
  CliRun file = run_cli({"tokenize", "--tokenizer", tok_path.string(), "--text-file", write("in.txt", text).string()});
  ASSERT_EQ(file.exit_code, 0) << file.err;
  EXPECT_EQ(file.out, r.out);

  CliRun empty = run_cli({"tokenize", "--tokenizer", tok_path.string(), "--text", "", "--no-special"});
  ASSERT_EQ(empty.exit_code, 0) << empty.err;
  EXPECT_EQ(empty.out, "[]\n");
}

TEST_F(CliTokenize, DecodeRoundTrip) {
  const fs::path tok_path = kGolden / "mixtral" / "tokenizer.json";
  const std::string text = "Lung-RADS 4A, 😀 ok";
  CliRun enc = run_cli({"tokenize", "--tokenizer", tok_path.string(), "--text", text});
  ASSERT_EQ(enc.exit_code, 0) << enc.err;
  std::string ids = enc.out.substr(0, enc.out.size() - 1);
  CliRun dec = run_cli({"tokenize", "--tokenizer", tok_path.string(), "--decode", "--no-special", "--text", ids});
  ASSERT_EQ(dec.exit_code, 0) << dec.err;
  EXPECT_EQ(dec.out, text + "\n");
  CliRun with_special = run_cli({"tokenize", "--tokenizer", tok_path.string(), "--decode", "--text", "1,2"});
  ASSERT_EQ(with_special.exit_code, 0) << with_special.err;
  EXPECT_EQ(with_special.out, "<s></s>\n");
  CliRun bad_ids = run_cli({"tokenize", "--tokenizer", tok_path.string(), "--decode", "--text", "1,-5"});
  EXPECT_EQ(bad_ids.exit_code, 2);
  EXPECT_NE(bad_ids.err.find("--text: token ids must be non-negative"), std::string::npos) << bad_ids.err;
}

// A broken tokenizer.json: exit code 2, one error line naming the file and the field.
void expect_bad_tokenizer(CliTokenize& t, const fs::path& path, const std::string& field) {
  CliRun r = run_cli({"tokenize", "--tokenizer", path.string(), "--text", "hello"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
  EXPECT_NE(r.err.find(path.string() + ": "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(field), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

TEST_F(CliTokenize, BadTokenizerFilesExitWithCode2) {
  const std::string head = R"({"version": "1.0", "added_tokens": [], "normalizer": null, )";
  const std::string model = R"("model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]})";
  expect_bad_tokenizer(*this, write("not_json.json", "{\"model\": [1, 2"), "not valid JSON");
  expect_bad_tokenizer(*this, write("no_model.json", head + R"("pre_tokenizer": null})"), "model: missing");
  expect_bad_tokenizer(*this, write("unknown_pre.json", head + R"("pre_tokenizer": {"type": "Sequence",
      "pretokenizers": [{"type": "ByteLevel"}, {"type": "Fancy"}]}, )" + model + "}"),
                       "pre_tokenizer.pretokenizers[1].type: unknown pre-tokenizer type 'Fancy'");
  expect_bad_tokenizer(*this, write("bad_merge.json", head + R"("model": {"type": "BPE", "vocab": {"a": 0},
      "merges": ["a a", "a q"]}})"), "model.merges[0]: merged token 'aa' is not in model.vocab");
  expect_bad_tokenizer(*this, write("bad_merge2.json", head + R"("model": {"type": "BPE", "vocab": {"a": 0, "aa": 1},
      "merges": ["a a", "a q"]}})"), "model.merges[1]: token 'q' is not in model.vocab");
  expect_bad_tokenizer(*this, write("wordpiece.json", head + R"("model": {"type": "WordPiece", "vocab": {}}})"),
                       "model.type: model 'WordPiece' is not supported");
  expect_bad_tokenizer(*this, dir_ / "missing.json", "cannot open");
}

TEST_F(CliTokenize, BadArgumentsExitWithCode2) {
  const std::string tok = (kGolden / "qwen2" / "tokenizer.json").string();
  CliRun no_text = run_cli({"tokenize", "--tokenizer", tok});
  EXPECT_EQ(no_text.exit_code, 2);
  EXPECT_NE(no_text.err.find("--text"), std::string::npos) << no_text.err;
  CliRun both = run_cli({"tokenize", "--tokenizer", tok, "--text", "a", "--text-file", "x.txt"});
  EXPECT_EQ(both.exit_code, 2);
  CliRun no_tokenizer = run_cli({"tokenize", "--text", "a"});
  EXPECT_EQ(no_tokenizer.exit_code, 2);
  const fs::path bad = write("latin1.txt", "caf\xE9");
  CliRun latin1 = run_cli({"tokenize", "--tokenizer", tok, "--text-file", bad.string()});
  EXPECT_EQ(latin1.exit_code, 2);
  EXPECT_NE(latin1.err.find(bad.string() + ": not valid UTF-8 (byte 3)"), std::string::npos) << latin1.err;
}

}  // namespace
}  // namespace hilum
