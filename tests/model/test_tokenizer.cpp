// Tokenizer components on hand-written tokenizer.json fixtures with tiny
// vocabularies, expected tokens derived by hand from the Hugging Face
// tokenizers semantics. (test_tokenizer_golden.cpp checks parity with the
// library itself on trained tokenizers.)
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "model/tokenizer.h"

namespace hilum {
namespace {

using nlohmann::json;

// GPT-2's byte -> character table, written out independently of the library.
std::string byte_char(int b) {
  const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
  int cp = b;
  if (!printable) {
    int n = 0;
    for (int k = 0; k < b; ++k) n += !((k >= 33 && k <= 126) || (k >= 161 && k <= 172) || k >= 174);
    cp = 256 + n;
  }
  std::string s;
  if (cp < 0x80) {
    s.push_back(static_cast<char>(cp));
  } else {
    s.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
  return s;
}

json bpe(const std::vector<std::string>& vocab, const std::vector<std::pair<std::string, std::string>>& merges) {
  json v = json::object();
  for (const auto& t : vocab) v[t] = static_cast<int>(v.size());
  json m = json::array();
  for (const auto& [a, b] : merges) m.push_back(json::array({a, b}));
  return {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"continuing_subword_prefix", nullptr},
          {"end_of_word_suffix", nullptr}, {"fuse_unk", false}, {"byte_fallback", false}, {"ignore_merges", false},
          {"vocab", v}, {"merges", m}};
}

// A byte-level vocabulary where the id of each byte's character is the byte
// value, followed by the merge results in order.
json byte_level_bpe(const std::vector<std::pair<std::string, std::string>>& merges) {
  std::vector<std::string> vocab;
  for (int b = 0; b < 256; ++b) vocab.push_back(byte_char(b));
  for (const auto& [a, b] : merges) vocab.push_back(a + b);
  return bpe(vocab, merges);
}

json tokenizer_json(json model) {
  return {{"version", "1.0"}, {"truncation", nullptr}, {"padding", nullptr}, {"added_tokens", json::array()},
          {"normalizer", nullptr}, {"pre_tokenizer", nullptr}, {"post_processor", nullptr}, {"decoder", nullptr},
          {"model", std::move(model)}};
}

json byte_level(bool add_prefix_space = false, bool use_regex = true) {
  return {{"type", "ByteLevel"}, {"add_prefix_space", add_prefix_space}, {"trim_offsets", true}, {"use_regex", use_regex}};
}

Tokenizer load(const json& j) {
  auto t = Tokenizer::from_json(j.dump(), "fixture.json");
  EXPECT_TRUE(t.ok()) << t.error().message();
  if (!t.ok()) std::abort();
  return std::move(t).value();
}

// Ids of the given tokens (each must exist).
std::vector<int32_t> ids(const Tokenizer& t, const std::vector<std::string>& tokens) {
  std::vector<int32_t> out;
  for (const auto& s : tokens) {
    auto id = t.token_to_id(s);
    EXPECT_TRUE(id.has_value()) << "fixture lacks token " << s;
    out.push_back(id.value_or(-1));
  }
  return out;
}

std::vector<std::string> tokens(const Tokenizer& t, const std::vector<int32_t>& ids) {
  std::vector<std::string> out;
  for (int32_t id : ids) out.push_back(t.id_to_token(id));
  return out;
}

// ---- Byte-level BPE ------------------------------------------------------------

TEST(TokenizerByteLevel, BytesMapToTheirCharacters) {
  json j = tokenizer_json(byte_level_bpe({}));
  j["pre_tokenizer"] = byte_level();
  j["decoder"] = byte_level();
  const Tokenizer t = load(j);
  EXPECT_EQ(t.encode("Hi"), (std::vector<int32_t>{'H', 'i'}));
  EXPECT_EQ(t.encode(" a\n"), (std::vector<int32_t>{' ', 'a', '\n'}));
  EXPECT_EQ(t.id_to_token(' '), "\xC4\xA0");   // Ġ
  EXPECT_EQ(t.id_to_token('\n'), "\xC4\x8A");  // Ċ
  EXPECT_EQ(t.encode("\xF0\x9F\x98\x80"), (std::vector<int32_t>{0xF0, 0x9F, 0x98, 0x80}));  // 😀
  EXPECT_EQ(t.decode(std::vector<int32_t>{0xF0, 0x9F, 0x98, 0x80}), "\xF0\x9F\x98\x80");
  // An unfinished character decodes to one replacement character.
  EXPECT_EQ(t.decode(std::vector<int32_t>{'a', 0xF0, 0x9F}), "a\xEF\xBF\xBD");
  EXPECT_EQ(t.vocab_size(), 256);
}

TEST(TokenizerByteLevel, MergesApplyByRankNotPosition) {
  const std::string G = "\xC4\xA0";  // Ġ
  json j = tokenizer_json(byte_level_bpe({{G, "t"}, {"h", "e"}, {G + "t", "he"}, {"l", "l"}, {"b", "c"}, {"a", "b"}}));
  j["pre_tokenizer"] = byte_level();
  const Tokenizer t = load(j);
  EXPECT_EQ(tokens(t, t.encode(" the hello")),
            (std::vector<std::string>{G + "the", G, "he", "ll", "o"}));
  // (b, c) outranks (a, b): "abc" -> a + bc, not ab + c.
  EXPECT_EQ(tokens(t, t.encode("abc")), (std::vector<std::string>{"a", "bc"}));
  EXPECT_EQ(tokens(t, t.encode("ab")), (std::vector<std::string>{"ab"}));
}

TEST(TokenizerByteLevel, Gpt2PatternSplitsBeforeMerging) {
  const std::string G = "\xC4\xA0";
  // Merges that would join across the pattern's boundaries.
  auto model = byte_level_bpe({{"o", G}, {"I", "'"}, {"3", "a"}});
  json with_regex = tokenizer_json(model);
  with_regex["pre_tokenizer"] = byte_level(false, true);
  json without_regex = tokenizer_json(model);
  without_regex["pre_tokenizer"] = byte_level(false, false);
  const Tokenizer split = load(with_regex), whole = load(without_regex);
  // "go  now": "go", " ", " now" (\s+(?!\S) leaves the last space to the word).
  EXPECT_EQ(tokens(split, split.encode("go  now")), (std::vector<std::string>{"g", "o", G, G, "n", "o", "w"}));
  EXPECT_EQ(tokens(whole, whole.encode("go  now")), (std::vector<std::string>{"g", "o" + G, G, "n", "o", "w"}));
  // Contractions are pieces of their own: "I", "'m".
  EXPECT_EQ(tokens(split, split.encode("I'm")), (std::vector<std::string>{"I", "'", "m"}));
  EXPECT_EQ(tokens(whole, whole.encode("I'm")), (std::vector<std::string>{"I'", "m"}));
  // Letters and digits are separate pieces.
  EXPECT_EQ(tokens(split, split.encode("3a")), (std::vector<std::string>{"3", "a"}));
  EXPECT_EQ(tokens(whole, whole.encode("3a")), (std::vector<std::string>{"3a"}));
}

TEST(TokenizerByteLevel, AddPrefixSpace) {
  const std::string G = "\xC4\xA0";
  json j = tokenizer_json(byte_level_bpe({{G, "a"}}));
  j["pre_tokenizer"] = byte_level(true, true);
  const Tokenizer t = load(j);
  EXPECT_EQ(tokens(t, t.encode("a")), (std::vector<std::string>{G + "a"}));
  EXPECT_EQ(tokens(t, t.encode(" a")), (std::vector<std::string>{G + "a"}));  // no second space
  EXPECT_TRUE(t.encode("").empty());
}

// ---- Split, Digits, Metaspace (visible through ignore_merges: a piece that is
// a vocabulary entry becomes that one token) ------------------------------------

json piece_vocab_model(const std::vector<std::string>& extra) {
  std::vector<std::string> vocab = {"a", "b", "c", "-", "1", "2", "3", " ", "\xE2\x96\x81"};
  vocab.insert(vocab.end(), extra.begin(), extra.end());
  json m = bpe(vocab, {});
  m["ignore_merges"] = true;
  return m;
}

std::vector<std::string> split_with(const std::string& behavior, const std::string& text, bool invert = false,
                                    json pattern = {{"String", "-"}}) {
  json j = tokenizer_json(piece_vocab_model({"a-", "b-", "-b", "-c", "--", "a--", "--b", "a-b"}));
  j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", pattern}, {"behavior", behavior}, {"invert", invert}};
  const Tokenizer t = load(j);
  return tokens(t, t.encode(text));
}

TEST(TokenizerSplit, Behaviors) {
  using V = std::vector<std::string>;
  EXPECT_EQ(split_with("Removed", "a-b-c"), (V{"a", "b", "c"}));
  EXPECT_EQ(split_with("Isolated", "a-b-c"), (V{"a", "-", "b", "-", "c"}));
  EXPECT_EQ(split_with("MergedWithPrevious", "a-b-c"), (V{"a-", "b-", "c"}));
  EXPECT_EQ(split_with("MergedWithNext", "a-b-c"), (V{"a", "-b", "-c"}));
  // Each "-" is one match; Contiguous joins neighbouring matches.
  EXPECT_EQ(split_with("Contiguous", "a--b"), (V{"a", "--", "b"}));
  EXPECT_EQ(split_with("Isolated", "a--b"), (V{"a", "-", "-", "b"}));
  EXPECT_EQ(split_with("MergedWithPrevious", "a--b"), (V{"a-", "-", "b"}));
  EXPECT_EQ(split_with("MergedWithNext", "a--b"), (V{"a", "-", "-b"}));
}

TEST(TokenizerSplit, InvertAndRegex) {
  using V = std::vector<std::string>;
  // Inverted: the matches of [a-c]+ are the separators' complement.
  EXPECT_EQ(split_with("Removed", "a-b", true, {{"Regex", "-"}}), (V{"-"}));
  EXPECT_EQ(split_with("Isolated", "a-b", false, {{"Regex", "[a-c]+"}}), (V{"a", "-", "b"}));
  EXPECT_EQ(split_with("MergedWithPrevious", "a-b", true, {{"Regex", "[a-c]"}}), (V{"a-", "b"}));
  // A literal pattern is not a regex: "." matches only a dot.
  EXPECT_EQ(split_with("Removed", "a-b", false, {{"String", "."}}), (V{"a-b"}));
}

TEST(TokenizerSplit, OnigurumaUnicodeClasses) {
  using V = std::vector<std::string>;
  // \p{N} covers other digit scripts; \s covers NBSP and the ideographic space.
  json j = tokenizer_json(piece_vocab_model({"\xD9\xA3", "\xC2\xA0", "\xE3\x80\x80"}));
  j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "\\p{N}|\\s"}}}, {"behavior", "Removed"},
                        {"invert", false}};
  const Tokenizer t = load(j);
  EXPECT_EQ(tokens(t, t.encode("a\xD9\xA3" "b\xC2\xA0" "c\xE3\x80\x80" "1a")), (V{"a", "b", "c", "a"}));
}

TEST(TokenizerDigits, IndividualOrContiguous) {
  using V = std::vector<std::string>;
  for (bool individual : {true, false}) {
    json j = tokenizer_json(piece_vocab_model({"ab", "123", "12"}));
    j["pre_tokenizer"] = {{"type", "Digits"}, {"individual_digits", individual}};
    const Tokenizer t = load(j);
    EXPECT_EQ(tokens(t, t.encode("ab123")), individual ? (V{"ab", "1", "2", "3"}) : (V{"ab", "123"}));
  }
}

TEST(TokenizerMetaspace, PrependSchemesAndSplit) {
  using V = std::vector<std::string>;
  const std::string M = "\xE2\x96\x81";  // ▁
  auto run = [&](const std::string& scheme, bool split, const std::string& text) {
    json j = tokenizer_json(piece_vocab_model({M + "a", M + "b", M + "a" + M + "b", "a" + M + "b", "<s>"}));
    j["added_tokens"] = json::array({{{"id", 13}, {"content", "<s>"}, {"special", true}, {"normalized", false},
                                      {"single_word", false}, {"lstrip", false}, {"rstrip", false}}});
    j["pre_tokenizer"] = {{"type", "Metaspace"}, {"replacement", M}, {"prepend_scheme", scheme}, {"split", split}};
    j["decoder"] = {{"type", "Metaspace"}, {"replacement", M}, {"prepend_scheme", scheme}, {"split", split}};
    const Tokenizer t = load(j);
    return tokens(t, t.encode(text));
  };
  EXPECT_EQ(run("always", true, "a b"), (V{M + "a", M + "b"}));
  EXPECT_EQ(run("always", false, "a b"), (V{M + "a" + M + "b"}));
  EXPECT_EQ(run("never", false, "a b"), (V{"a" + M + "b"}));
  // "first": only a segment at the very start of the input gets the prefix.
  EXPECT_EQ(run("first", false, "a b"), (V{M + "a" + M + "b"}));
  EXPECT_EQ(run("first", false, "<s>a b"), (V{"<s>", "a" + M + "b"}));
  EXPECT_EQ(run("always", false, "<s>a b"), (V{"<s>", M + "a" + M + "b"}));
}

TEST(TokenizerMetaspace, LegacyAddPrefixSpaceField) {
  const std::string M = "\xE2\x96\x81";
  json j = tokenizer_json(piece_vocab_model({M + "a"}));
  j["pre_tokenizer"] = {{"type", "Metaspace"}, {"replacement", M}, {"add_prefix_space", false}};
  const Tokenizer t = load(j);
  EXPECT_EQ(tokens(t, t.encode("a")), (std::vector<std::string>{"a"}));
}

// ---- Normalizers -----------------------------------------------------------------

std::vector<std::string> normalized_tokens(const json& normalizer, const std::vector<std::string>& vocab,
                                           const std::string& text) {
  json j = tokenizer_json(bpe(vocab, {}));
  j["normalizer"] = normalizer;
  auto t = Tokenizer::from_json(j.dump(), "fixture.json");
  EXPECT_TRUE(t.ok()) << t.error().message();
  return tokens(*t, t->encode(text));
}

TEST(TokenizerNormalizers, UnicodeForms) {
  if (!HILUM_HAVE_ICU) GTEST_SKIP() << "built without ICU";
  using V = std::vector<std::string>;
  const std::string e_acute = "\xC3\xA9", e_combining = "e\xCC\x81";
  const V vocab = {e_acute, "e", "\xCC\x81", "f", "i", "\xEF\xAC\x81" /* ﬁ */};
  EXPECT_EQ(normalized_tokens({{"type", "NFC"}}, vocab, e_combining), (V{e_acute}));
  EXPECT_EQ(normalized_tokens({{"type", "NFD"}}, vocab, e_acute), (V{"e", "\xCC\x81"}));
  EXPECT_EQ(normalized_tokens({{"type", "NFC"}}, vocab, "\xEF\xAC\x81"), (V{"\xEF\xAC\x81"}));  // NFC keeps ﬁ
  EXPECT_EQ(normalized_tokens({{"type", "NFKC"}}, vocab, "\xEF\xAC\x81"), (V{"f", "i"}));
  EXPECT_EQ(normalized_tokens({{"type", "NFKD"}}, vocab, e_acute), (V{"e", "\xCC\x81"}));
}

TEST(TokenizerNormalizers, LowercaseIsPerCharacter) {
  if (!HILUM_HAVE_ICU) GTEST_SKIP() << "built without ICU";
  using V = std::vector<std::string>;
  // Σ lowercases to σ even at the end of a word (no final-sigma context),
  // İ to i + combining dot.
  const V vocab = {"\xCF\x83", "\xCF\x82", "\xCE\xB1", "i", "\xCC\x87", "a"};
  EXPECT_EQ(normalized_tokens({{"type", "Lowercase"}}, vocab, "\xCE\xA3\xCE\x91\xCE\xA3"),
            (V{"\xCF\x83", "\xCE\xB1", "\xCF\x83"}));
  EXPECT_EQ(normalized_tokens({{"type", "Lowercase"}}, vocab, "\xC4\xB0" "A"), (V{"i", "\xCC\x87", "a"}));
}

TEST(TokenizerNormalizers, ReplacePrependStripSequence) {
  using V = std::vector<std::string>;
  const std::string M = "\xE2\x96\x81";
  const V vocab = {"a", "b", M, "x", " "};
  const json prepend = {{"type", "Prepend"}, {"prepend", M}};
  const json replace = {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", M}};
  const json seq = {{"type", "Sequence"}, {"normalizers", json::array({prepend, replace})}};
  EXPECT_EQ(normalized_tokens(seq, vocab, "a b"), (V{M, "a", M, "b"}));
  EXPECT_TRUE(normalized_tokens(seq, vocab, "").empty());  // Prepend leaves empty text empty
  const json regex_replace = {{"type", "Replace"}, {"pattern", {{"Regex", "[ab]+"}}}, {"content", "x"}};
  EXPECT_EQ(normalized_tokens(regex_replace, vocab, "aab ba"), (V{"x", " ", "x"}));
  const json strip = {{"type", "Strip"}, {"strip_left", true}, {"strip_right", false}};
  EXPECT_EQ(normalized_tokens(strip, vocab, " \t a "), (V{"a", " "}));
}

// ---- BPE model options --------------------------------------------------------------

TEST(TokenizerBpe, IgnoreMergesTakesWholeWords) {
  json model = bpe({"a", "b", "c", "ab", "bc", "abc"}, {{"b", "c"}, {"a", "bc"}});
  // "abc" is in the vocabulary, but is also what the merges give; "ab" is only
  // reachable directly.
  const Tokenizer merged = load(tokenizer_json(model));
  EXPECT_EQ(tokens(merged, merged.encode("ab")), (std::vector<std::string>{"a", "b"}));
  model["ignore_merges"] = true;
  const Tokenizer direct = load(tokenizer_json(model));
  EXPECT_EQ(tokens(direct, direct.encode("ab")), (std::vector<std::string>{"ab"}));
}

TEST(TokenizerBpe, MergesAsStringsOrPairs) {
  json pairs = bpe({"a", "b", "ab"}, {{"a", "b"}});
  json strings = pairs;
  strings["merges"] = json::array({"a b"});
  EXPECT_EQ(load(tokenizer_json(pairs)).encode("ab"), load(tokenizer_json(strings)).encode("ab"));
  EXPECT_EQ(load(tokenizer_json(strings)).encode("ab"), (std::vector<int32_t>{2}));
}

TEST(TokenizerBpe, ByteFallbackAndUnknown) {
  std::vector<std::string> vocab = {"<unk>", "a"};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    vocab.push_back(name);
  }
  json model = bpe(vocab, {});
  model["byte_fallback"] = true;
  model["unk_token"] = "<unk>";
  json j = tokenizer_json(model);
  j["decoder"] = {{"type", "Sequence"},
                  {"decoders", json::array({{{"type", "ByteFallback"}}, {{"type", "Fuse"}}})}};
  const Tokenizer t = load(j);
  // é is not in the vocabulary: its two UTF-8 bytes are used.
  EXPECT_EQ(tokens(t, t.encode("a\xC3\xA9")), (std::vector<std::string>{"a", "<0xC3>", "<0xA9>"}));
  EXPECT_EQ(t.decode(t.encode("a\xC3\xA9")), "a\xC3\xA9");
  // Invalid byte sequences decode to one replacement character per byte.
  EXPECT_EQ(t.decode(ids(t, {"<0xC3>", "<0xC3>", "a"})), "\xEF\xBF\xBD\xEF\xBF\xBD" "a");

  // Without byte fallback: unknown characters become <unk>, fused or not.
  model["byte_fallback"] = false;
  model["fuse_unk"] = true;
  const Tokenizer fused = load(tokenizer_json(model));
  EXPECT_EQ(tokens(fused, fused.encode("\xC3\xA9\xC3\xA9" "a\xC3\xA9")), (std::vector<std::string>{"<unk>", "a", "<unk>"}));
  model["fuse_unk"] = false;
  const Tokenizer unfused = load(tokenizer_json(model));
  EXPECT_EQ(tokens(unfused, unfused.encode("\xC3\xA9\xC3\xA9" "a")), (std::vector<std::string>{"<unk>", "<unk>", "a"}));
  // No unk token at all: unknown characters are dropped (as the reference does).
  model["unk_token"] = nullptr;
  const Tokenizer dropping = load(tokenizer_json(model));
  EXPECT_EQ(tokens(dropping, dropping.encode("\xC3\xA9" "a")), (std::vector<std::string>{"a"}));
}

TEST(TokenizerBpe, SubwordPrefixAndSuffix) {
  json model = bpe({"a", "##b", "##c", "##bc", "c</w>", "b", "ab"}, {{"##b", "##c"}});
  model["continuing_subword_prefix"] = "##";
  const Tokenizer t = load(tokenizer_json(model));
  EXPECT_EQ(tokens(t, t.encode("abc")), (std::vector<std::string>{"a", "##bc"}));

  json suffixed = bpe({"a", "b", "c</w>", "ab", "b</w>"}, {{"a", "b"}});
  suffixed["end_of_word_suffix"] = "</w>";
  json j = tokenizer_json(suffixed);
  j["pre_tokenizer"] = {{"type", "WhitespaceSplit"}};
  j["decoder"] = {{"type", "BPEDecoder"}, {"suffix", "</w>"}};
  const Tokenizer s = load(j);
  EXPECT_EQ(tokens(s, s.encode("abc ab")), (std::vector<std::string>{"ab", "c</w>", "a", "b</w>"}));
  EXPECT_EQ(s.decode(s.encode("abc ab")), "abc ab");
}

// ---- Added tokens ------------------------------------------------------------------

json added_token(int id, const std::string& content, bool special, bool normalized, bool single_word = false,
                 bool lstrip = false, bool rstrip = false) {
  return {{"id", id}, {"content", content}, {"single_word", single_word}, {"lstrip", lstrip},
          {"rstrip", rstrip}, {"normalized", normalized}, {"special", special}};
}

TEST(TokenizerAddedTokens, SplitBeforeTheModelLongestFirst) {
  json j = tokenizer_json(bpe({"a", "b", " ", "<", ">"}, {}));
  j["added_tokens"] = json::array({added_token(5, "<s>", true, false), added_token(6, "<s><s>", true, false),
                                   added_token(7, "ab", false, true)});
  const Tokenizer t = load(j);
  EXPECT_EQ(t.encode("a<s>b"), (std::vector<int32_t>{0, 5, 1}));
  EXPECT_EQ(t.encode("<s><s><s>"), (std::vector<int32_t>{6, 5}));  // leftmost-longest
  EXPECT_EQ(t.encode("aab"), (std::vector<int32_t>{0, 7}));
  EXPECT_EQ(t.encode("<>"), (std::vector<int32_t>{3, 4}));
  // No decoder: tokens are joined with spaces; only special tokens are skipped.
  EXPECT_EQ(t.decode(std::vector<int32_t>{0, 5, 7}, false), "a <s> ab");
  EXPECT_EQ(t.decode(std::vector<int32_t>{0, 5, 7}, true), "a ab");
  EXPECT_TRUE(t.is_special(5));
  EXPECT_FALSE(t.is_special(7));
  EXPECT_EQ(t.vocab_size(), 8);
}

TEST(TokenizerAddedTokens, IdsAreAssignedAsTheLibraryDoes) {
  // Ids in the file that disagree with the library's sequential assignment
  // (after the vocabulary, skipping tokens the vocabulary has) are overridden.
  json j = tokenizer_json(bpe({"a", "b", "<pad>"}, {}));
  j["added_tokens"] = json::array({added_token(40, "<x>", true, false), added_token(9, "<pad>", true, false),
                                   added_token(41, "<y>", true, false)});
  const Tokenizer t = load(j);
  EXPECT_EQ(t.token_to_id("<x>"), 3);
  EXPECT_EQ(t.token_to_id("<pad>"), 2);
  EXPECT_EQ(t.token_to_id("<y>"), 4);
}

TEST(TokenizerAddedTokens, NormalizedTokensMatchNormalizedText) {
  if (!HILUM_HAVE_ICU) GTEST_SKIP() << "built without ICU";
  json j = tokenizer_json(bpe({"a", "b", "[", "]", "x", "y", "<", ">", "X", "Y"}, {}));
  j["normalizer"] = {{"type", "Lowercase"}};
  j["added_tokens"] = json::array({added_token(10, "[XY]", false, true), added_token(11, "<XY>", true, false)});
  const Tokenizer t = load(j);
  EXPECT_EQ(t.encode("a[xy]"), (std::vector<int32_t>{0, 10}));
  EXPECT_EQ(t.encode("a[XY]"), (std::vector<int32_t>{0, 10}));
  EXPECT_EQ(t.encode("<XY>"), (std::vector<int32_t>{11}));
  EXPECT_EQ(t.encode("<xy>"), (std::vector<int32_t>{6, 4, 5, 7}));  // not normalized: exact text only
  EXPECT_EQ(t.id_to_token(10), "[xy]");  // the library reports the normalized form
  EXPECT_EQ(t.token_to_id("[XY]"), 10);
}

TEST(TokenizerAddedTokens, SingleWordLstripRstrip) {
  json j = tokenizer_json(bpe({"a", "b", " ", "_", "\xC2\xB2"}, {}));
  j["added_tokens"] = json::array({added_token(5, "ab", false, true, /*single_word=*/true),
                                   added_token(6, "<m>", true, false, false, /*lstrip=*/true),
                                   added_token(7, "<r>", true, false, false, false, /*rstrip=*/true)});
  const Tokenizer t = load(j);
  using V = std::vector<int32_t>;
  EXPECT_EQ(t.encode("ab"), (V{5}));
  EXPECT_EQ(t.encode("ab b"), (V{5, 2, 1}));
  EXPECT_EQ(t.encode("aab"), (V{0, 0, 1}));    // a word character before: not a single word
  EXPECT_EQ(t.encode("ab_"), (V{0, 1, 3}));    // '_' is a word character (\w)
  EXPECT_EQ(t.encode("ab\xC2\xB2"), (V{5, 4}));  // '²' (No) is not
  EXPECT_EQ(t.encode("a  <m> b"), (V{0, 6, 2, 1}));  // lstrip eats the spaces before
  EXPECT_EQ(t.encode("a <r>  b"), (V{0, 2, 7, 1}));  // rstrip eats the spaces after
}

TEST(TokenizerAddedTokens, EmptyAndInvalidText) {
  json j = tokenizer_json(byte_level_bpe({}));
  j["pre_tokenizer"] = byte_level();
  j["decoder"] = byte_level();
  const Tokenizer t = load(j);
  EXPECT_TRUE(t.encode("").empty());
  // Invalid UTF-8 input is read as U+FFFD (EF BF BD).
  EXPECT_EQ(t.encode(std::string("a\xFF", 2)), (std::vector<int32_t>{'a', 0xEF, 0xBF, 0xBD}));
  EXPECT_EQ(t.decode(std::vector<int32_t>{1000, 'a'}), "a");  // unknown ids are skipped
}

// ---- Post-processors, bos/eos ------------------------------------------------------------

json template_processor(const json& single, const json& specials) {
  return {{"type", "TemplateProcessing"}, {"single", single}, {"pair", single}, {"special_tokens", specials}};
}

TEST(TokenizerPostProcessor, TemplateBosAndEos) {
  json j = tokenizer_json(bpe({"<s>", "</s>", "a"}, {}));
  j["added_tokens"] = json::array({added_token(0, "<s>", true, false), added_token(1, "</s>", true, false)});
  j["post_processor"] = template_processor(
      json::array({{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}}, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
                   {{"SpecialToken", {{"id", "</s>"}, {"type_id", 0}}}}}),
      {{"<s>", {{"id", "<s>"}, {"ids", {0}}, {"tokens", {"<s>"}}}},
       {"</s>", {{"id", "</s>"}, {"ids", {1}}, {"tokens", {"</s>"}}}}});
  const Tokenizer t = load(j);
  EXPECT_EQ(t.encode("aa", true), (std::vector<int32_t>{0, 2, 2, 1}));
  EXPECT_EQ(t.encode("aa", false), (std::vector<int32_t>{2, 2}));
  EXPECT_EQ(t.encode("", true), (std::vector<int32_t>{0, 1}));
  EXPECT_EQ(t.bos_id(), 0);
  EXPECT_EQ(t.eos_id(), 1);
  EXPECT_EQ(t.decode(t.encode("a"), true), "a");
}

TEST(TokenizerPostProcessor, RobertaAndSequence) {
  json j = tokenizer_json(bpe({"<s>", "<pad>", "</s>", "a"}, {}));
  j["post_processor"] = {{"type", "Sequence"},
                         {"processors", json::array({byte_level(), {{"type", "RobertaProcessing"},
                                                                    {"sep", {"</s>", 2}},
                                                                    {"cls", {"<s>", 0}},
                                                                    {"trim_offsets", true},
                                                                    {"add_prefix_space", false}}})}};
  const Tokenizer t = load(j);
  EXPECT_EQ(t.encode("a"), (std::vector<int32_t>{0, 3, 2}));
  EXPECT_EQ(t.bos_id(), 0);
  EXPECT_EQ(t.eos_id(), 2);
}

TEST(TokenizerPostProcessor, TruncationLeavesRoomForSpecialTokens) {
  json j = tokenizer_json(bpe({"<s>", "a", "b"}, {}));
  j["post_processor"] = template_processor(
      json::array({{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}}, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}),
      {{"<s>", {{"id", "<s>"}, {"ids", {0}}, {"tokens", {"<s>"}}}}});
  j["truncation"] = {{"max_length", 3}, {"strategy", "LongestFirst"}, {"stride", 0}, {"direction", "Right"}};
  const Tokenizer right = load(j);
  EXPECT_EQ(right.encode("abab", true), (std::vector<int32_t>{0, 1, 2}));
  EXPECT_EQ(right.encode("abab", false), (std::vector<int32_t>{1, 2, 1}));
  j["truncation"]["direction"] = "Left";
  EXPECT_EQ(load(j).encode("abab", true), (std::vector<int32_t>{0, 1, 2}));
  EXPECT_EQ(load(j).encode("abbb", true), (std::vector<int32_t>{0, 2, 2}));
}

TEST(TokenizerPostProcessor, TokenizerConfigNamesBosAndEos) {
  const auto dir = std::filesystem::path(testing::TempDir()) / "hilum_tokenizer_config";
  std::filesystem::create_directories(dir);
  json j = tokenizer_json(bpe({"<s>", "</s>", "<|eot|>", "a"}, {}));
  std::ofstream(dir / "tokenizer.json") << j.dump();
  std::ofstream(dir / "tokenizer_config.json")
      << R"({"bos_token": {"content": "<s>", "lstrip": false}, "eos_token": "<|eot|>"})";
  auto t = Tokenizer::from_file(dir / "tokenizer.json");
  ASSERT_TRUE(t.ok()) << t.error().message();
  EXPECT_EQ(t->bos_id(), 0);
  EXPECT_EQ(t->eos_id(), 2);
  std::ofstream(dir / "tokenizer_config.json") << R"({"eos_token": "<nope>"})";
  auto bad = Tokenizer::from_file(dir / "tokenizer.json");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message().find("tokenizer_config.json: eos_token"), std::string::npos) << bad.error().message();
  std::filesystem::remove_all(dir);
}

// ---- Decoders ------------------------------------------------------------------------

std::string decode_tokens(const json& decoder, const std::vector<std::string>& toks) {
  json j = tokenizer_json(bpe({}, {}));
  json v = json::object();
  for (const auto& s : toks)
    if (!v.contains(s)) v[s] = static_cast<int>(v.size());
  j["model"]["vocab"] = v;
  j["decoder"] = decoder;
  const Tokenizer t = load(j);
  return t.decode(ids(t, toks));
}

TEST(TokenizerDecoders, EachDecoder) {
  const std::string M = "\xE2\x96\x81";
  const json replace = {{"type", "Replace"}, {"pattern", {{"String", M}}}, {"content", " "}};
  const json strip = {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}};
  const json fuse = {{"type", "Fuse"}};
  const json byte_fallback = {{"type", "ByteFallback"}};
  const json mixtral = {{"type", "Sequence"}, {"decoders", json::array({replace, byte_fallback, fuse, strip})}};
  EXPECT_EQ(decode_tokens(mixtral, {M + "Hello", M + "world", "<0x21>"}), "Hello world!");
  EXPECT_EQ(decode_tokens(mixtral, {M, "<0xF0>", "<0x9F>", "<0x98>", "<0x80>"}), "\xF0\x9F\x98\x80");
  // Strip works per token: without Fuse first, every token loses a leading space.
  EXPECT_EQ(decode_tokens({{"type", "Sequence"}, {"decoders", json::array({replace, strip})}}, {M + "a", M + "b"}), "ab");
  // No decoder: tokens joined by spaces.
  EXPECT_EQ(decode_tokens(nullptr, {"a", "b"}), "a b");
  // Metaspace removes the prefix only on the first token.
  const json metaspace = {{"type", "Metaspace"}, {"replacement", M}, {"prepend_scheme", "always"}, {"split", true}};
  EXPECT_EQ(decode_tokens(metaspace, {M + "a", M + "b", M}), "a b ");
  const json never = {{"type", "Metaspace"}, {"replacement", M}, {"prepend_scheme", "never"}, {"split", true}};
  EXPECT_EQ(decode_tokens(never, {M + "a"}), " a");
  // ByteLevel: a token with a character outside the byte alphabet passes as is.
  EXPECT_EQ(decode_tokens(byte_level(), {"\xC4\xA0" "a", "\xE2\x80\x94"}), " a\xE2\x80\x94");
  EXPECT_EQ(decode_tokens({{"type", "Replace"}, {"pattern", {{"Regex", "[0-9]+"}}}, {"content", "#"}}, {"a12b3"}), "a#b#");
}

// ---- Streaming ---------------------------------------------------------------------------

TEST(TokenizerStream, EmitsCompleteCharactersOnly) {
  json j = tokenizer_json(byte_level_bpe({}));
  j["pre_tokenizer"] = byte_level();
  j["decoder"] = byte_level();
  const Tokenizer t = load(j);
  const std::string text = "a\xF0\x9F\x98\x80 \xE4\xBD\xA0!";  // a😀 你!
  const auto all = t.encode(text);
  Tokenizer::StreamDecoder stream(t);
  std::string joined;
  std::vector<std::string> parts;
  for (int32_t id : all) {
    parts.push_back(stream.step(id));
    joined += parts.back();
  }
  joined += stream.flush();
  EXPECT_EQ(joined, text);
  EXPECT_EQ(parts[0], "a");
  EXPECT_EQ(parts[1], "");  // first byte of 😀
  EXPECT_EQ(parts[4], "\xF0\x9F\x98\x80");
}

TEST(TokenizerStream, MetaspaceFirstTokenOnlyLosesItsSpace) {
  const std::string M = "\xE2\x96\x81";
  json j = tokenizer_json(bpe({M + "Hello", M + "world", "!", "<0xC3>", "<0xA9>"}, {}));
  j["model"]["byte_fallback"] = true;
  j["decoder"] = {{"type", "Sequence"},
                  {"decoders", json::array({{{"type", "Metaspace"}, {"replacement", M}, {"prepend_scheme", "first"}},
                                            {{"type", "ByteFallback"}}, {{"type", "Fuse"}}})}};
  const Tokenizer t = load(j);
  Tokenizer::StreamDecoder stream(t);
  std::vector<std::string> parts;
  for (const auto& tok : std::vector<std::string>{M + "Hello", M + "world", "<0xC3>", "<0xA9>", "!"})
    parts.push_back(stream.step(*t.token_to_id(tok)));
  EXPECT_EQ(parts, (std::vector<std::string>{"Hello", " world", "", "\xC3\xA9", "!"}));
  EXPECT_EQ(stream.flush(), "");
  // An unfinished character is held back and comes out of flush() as U+FFFD.
  Tokenizer::StreamDecoder partial(t);
  EXPECT_EQ(partial.step(*t.token_to_id("<0xC3>")), "");
  EXPECT_EQ(partial.flush(), "\xEF\xBF\xBD");
}

// ---- Concurrency ---------------------------------------------------------------------------

TEST(TokenizerThreads, ConcurrentEncodesAgree) {
  const std::string G = "\xC4\xA0";
  json j = tokenizer_json(byte_level_bpe({{G, "t"}, {"h", "e"}, {G + "t", "he"}}));
  j["pre_tokenizer"] = byte_level();
  const Tokenizer t = load(j);
  std::string text;
  for (int i = 0; i < 200; ++i) text += " the word" + std::to_string(i);
  const auto expected = t.encode(text);
  std::vector<std::thread> threads;
  std::vector<bool> same(4, false);
  for (int k = 0; k < 4; ++k)
    threads.emplace_back([&, k] {
      bool ok = true;
      for (int r = 0; r < 20; ++r) ok = ok && t.encode(text) == expected;
      same[k] = ok;
    });
  for (auto& th : threads) th.join();
  for (int k = 0; k < 4; ++k) EXPECT_TRUE(same[k]) << "thread " << k;
}

}  // namespace
}  // namespace hilum
