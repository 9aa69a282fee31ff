// Exact parity with the Hugging Face tokenizers library: tokenizers of the
// styles real MoE checkpoints use (OLMoE/GPT-NeoX, Llama-3, Qwen2, DeepSeek-V2/V3,
// Mixtral, ...) and the ids and decodes the library produced for tricky strings.
// tests/golden/tokenizer_golden.mjs (Node binding) or tokenizer_golden.py
// (Python, GPU machine) regenerate tests/golden/tokenizers/.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "model/file_io.h"
#include "model/tokenizer.h"

namespace hilum {
namespace {

namespace fs = std::filesystem;
const fs::path kGoldenDir = fs::path(HILUM_TEST_DATA_DIR) / "golden" / "tokenizers";

std::string printable(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c == '\n') {
      out += "\\n";
    } else if (c < 0x20 || c == 0x7F) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02X", c);
      out += buf;
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out.size() > 120 ? out.substr(0, 120) + "..." : out;
}

class TokenizerGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(TokenizerGolden, MatchesHuggingFaceTokenizers) {
  const fs::path expected_path = kGoldenDir / "expected.json";
  if (!fs::exists(expected_path))
    GTEST_SKIP() << expected_path << " is missing: run tests/golden/tokenizer_golden.mjs or tokenizer_golden.py";
  auto text = read_file(expected_path);
  ASSERT_TRUE(text.ok()) << text.error().message();
  const auto expected = nlohmann::json::parse(*text);
  const std::string style = GetParam();
  if (!expected["styles"].contains(style)) GTEST_SKIP() << "no golden data for style " << style;
  const auto& golden = expected["styles"][style];

  auto tok = Tokenizer::from_file(kGoldenDir / style / "tokenizer.json");
  ASSERT_TRUE(tok.ok()) << tok.error().message();
  EXPECT_EQ(tok->vocab_size(), golden["vocab_size"].get<int32_t>());

  int failures = 0;
  for (const auto& c : golden["cases"]) {
    const std::string input = c["text"].get<std::string>();
    const auto ids = c["ids"].get<std::vector<int32_t>>();
    const auto plain = c["ids_no_special"].get<std::vector<int32_t>>();
    const auto got = tok->encode(input, true);
    const auto got_plain = tok->encode(input, false);
    EXPECT_EQ(got, ids) << style << ": \"" << printable(input) << "\" (with special tokens)";
    EXPECT_EQ(got_plain, plain) << style << ": \"" << printable(input) << "\"";
    EXPECT_EQ(tok->decode(ids, false), c["decode"].get<std::string>()) << style << ": decode of \"" << printable(input) << "\"";
    EXPECT_EQ(tok->decode(ids, true), c["decode_skip_special"].get<std::string>())
        << style << ": decode (skip special) of \"" << printable(input) << "\"";
    if (got != ids) ++failures;
    if (failures > 10) FAIL() << "stopping after 10 failing strings";
  }
  // The long text (the training corpus) is compared through a hash of its ids.
  auto spec_text = read_file(fs::path(HILUM_TEST_DATA_DIR) / "golden" / "tokenizer_golden_spec.json");
  ASSERT_TRUE(spec_text.ok()) << spec_text.error().message();
  const std::string long_text = nlohmann::json::parse(*spec_text)["long_text"].get<std::string>();
  const auto long_ids = tok->encode(long_text, true);
  uint32_t hash = 0x811c9dc5u;
  for (int32_t id : long_ids) {
    for (int k = 0; k < 4; ++k) {
      hash ^= (static_cast<uint32_t>(id) >> (8 * k)) & 0xFFu;
      hash *= 0x01000193u;
    }
  }
  EXPECT_EQ(long_ids.size(), golden["long_text"]["count"].get<size_t>()) << style << ": long text";
  EXPECT_EQ(hash, golden["long_text"]["fnv1a"].get<uint32_t>()) << style << ": long text ids differ";
  if (golden["long_text"]["decode_equal"].get<bool>()) {
    EXPECT_EQ(tok->decode(long_ids, true), long_text);
  }

  for (const auto& c : golden["decode_cases"]) {
    const auto ids = c["ids"].get<std::vector<int32_t>>();
    EXPECT_EQ(tok->decode(ids, false), c["decode"].get<std::string>()) << style << ": decode of " << c["tokens"].dump();
    EXPECT_EQ(tok->decode(ids, true), c["decode_skip_special"].get<std::string>())
        << style << ": decode (skip special) of " << c["tokens"].dump();
  }
}

INSTANTIATE_TEST_SUITE_P(Styles, TokenizerGolden,
                         ::testing::Values("olmoe", "llama3", "qwen2", "deepseek_v3", "deepseek_v2", "mixtral",
                                           "mistral_metaspace", "metaspace_lower", "roberta"));

}  // namespace
}  // namespace hilum
