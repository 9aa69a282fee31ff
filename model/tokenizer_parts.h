// Internal to the tokenizer (model/tokenizer*.cpp): the pipeline stages of a
// Hugging Face tokenizer.json and the text helpers they share. Not a public API.
//
// Stages, in the order encode() runs them: added tokens are split out, the
// normalizer rewrites each remaining segment, the pre-tokenizer cuts it into
// words, the BPE model turns each word into ids, the post-processor adds
// special tokens. decode() maps ids to token strings and runs the decoder chain.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "model/result.h"

namespace hilum::tok {

using json = nlohmann::json;
using Range = std::pair<size_t, size_t>;  // [begin, end) byte offsets

// ---- UTF-8 and Unicode (tokenizer_text.cpp) --------------------------------

// Code point at `pos` of valid UTF-8 `s`; advances `pos` past it.
char32_t next_code_point(std::string_view s, size_t& pos);
void append_utf8(std::string& out, char32_t cp);
// Decodes bytes as UTF-8, replacing each maximal invalid subsequence with U+FFFD
// (Rust's String::from_utf8_lossy).
std::string utf8_lossy(std::string_view bytes);
size_t code_point_count(std::string_view s);

// Character classes (Unicode properties), as the reference defines them.
bool is_whitespace(char32_t c);    // White_Space
// A regex \w character (Unicode TR18: Alphabetic, M, Nd, Pc, Join_Control), as
// the reference's single_word check uses.
bool is_word_char(char32_t c);
bool is_numeric(char32_t c);       // Nd, Nl, No
bool is_punctuation(char32_t c);   // ASCII punctuation or Unicode P*

enum class UnicodeForm { kNFC, kNFD, kNFKC, kNFKD };
// False when this build has no ICU (then the Unicode normalizers are refused at load).
bool have_unicode_normalization();
void normalize_unicode(std::string& s, UnicodeForm form);
// Full lowercase mapping of each code point on its own (Rust's char::to_lowercase).
void lowercase(std::string& s);

// A search pattern: an Oniguruma regex compiled with the options the Hugging Face
// tokenizers library uses, or a literal string.
class Pattern {
 public:
  static Result<Pattern> regex(std::string_view pattern);
  static Pattern literal(std::string_view text);
  // Non-overlapping matches from left to right.
  void find_all(std::string_view text, std::vector<Range>& matches) const;

 private:
  struct Regex;
  std::shared_ptr<const Regex> regex_;
  std::string literal_;
};

// Parses {"String": s} or {"Regex": r} at `field`.
Result<Pattern> parse_pattern(const json& j, const std::string& field);

enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };
Result<SplitBehavior> parse_split_behavior(const json& j, const std::string& field);

// Cuts `text` into the ranges the tokenizers library's NormalizedString::split
// gives for these matches (sorted, non-overlapping); empty ranges are dropped.
std::vector<Range> split_ranges(std::string_view text, const std::vector<Range>& matches,
                                SplitBehavior behavior, bool invert);

// GPT-2's byte <-> printable character table of byte-level BPE.
const std::string& byte_to_char_utf8(uint8_t b);
// The byte a byte-level character stands for, or -1.
int char_to_byte(char32_t c);

// ---- Stages (tokenizer_stages.cpp) -----------------------------------------

// One word (or segment) on its way through the pre-tokenizer.
struct Piece {
  std::string text;
  bool at_origin = false;  // starts at the beginning of the input text
};

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual void normalize(std::string& text) const = 0;
};

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  virtual void pre_tokenize(std::vector<Piece>& pieces) const = 0;
};

class Decoder {
 public:
  virtual ~Decoder() = default;
  virtual void decode_chain(std::vector<std::string>& tokens) const = 0;
};

// Adds special tokens around the ids of one sequence (only called when the
// caller asks for special tokens).
class PostProcessor {
 public:
  virtual ~PostProcessor() = default;
  virtual void process(std::vector<int32_t>& ids) const = 0;
  virtual size_t added_count() const = 0;
  // The special ids put before and after the sequence (for bos/eos).
  virtual void surrounding_ids(std::vector<int32_t>& before, std::vector<int32_t>& after) const = 0;
};

// Each returns null for a JSON null; `field` is the JSON path for messages.
Result<std::unique_ptr<Normalizer>> parse_normalizer(const json& j, const std::string& field);
Result<std::unique_ptr<PreTokenizer>> parse_pre_tokenizer(const json& j, const std::string& field);
Result<std::unique_ptr<Decoder>> parse_decoder(const json& j, const std::string& field);
Result<std::unique_ptr<PostProcessor>> parse_post_processor(const json& j, const std::string& field);

// ---- BPE model (tokenizer_bpe.cpp) -----------------------------------------

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using Vocab = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

class BpeModel {
 public:
  static Result<std::unique_ptr<BpeModel>> parse(const json& model, const std::string& field);

  // Appends the ids of one pre-tokenized word.
  void tokenize(std::string_view word, std::vector<int32_t>& ids) const;

  std::optional<int32_t> token_to_id(std::string_view token) const;
  const std::string* id_to_token(int32_t id) const;
  size_t vocab_entries() const { return vocab_.size(); }
  int32_t max_id() const { return static_cast<int32_t>(id_to_token_.size()) - 1; }

 private:
  struct MergeResult {
    int32_t rank;
    int32_t new_id;
  };
  void merge_word(std::string_view word, std::vector<int32_t>& ids) const;

  Vocab vocab_;
  std::vector<std::string> id_to_token_;
  std::vector<bool> id_present_;
  std::unordered_map<uint64_t, MergeResult> merges_;
  std::optional<int32_t> unk_id_;
  std::string continuing_subword_prefix_, end_of_word_suffix_;
  bool fuse_unk_ = false, byte_fallback_ = false, ignore_merges_ = false;
  int32_t byte_ids_[256];  // <0xNN> ids for byte fallback, -1 where absent

  mutable std::shared_mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> cache_;
};

}  // namespace hilum::tok
