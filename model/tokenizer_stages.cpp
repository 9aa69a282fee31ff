// Normalizers, pre-tokenizers, decoders and post-processors of tokenizer.json,
// each behaving as its namesake in the Hugging Face tokenizers library.
#include <nlohmann/json.hpp>

#include "model/tokenizer.h"
#include "model/tokenizer_parts.h"

namespace hilum::tok {
namespace {

// ---- JSON helpers ------------------------------------------------------------

std::string type_of(const json& j) {
  if (j.is_object() && j.contains("type") && j["type"].is_string()) return j["type"].get<std::string>();
  return {};
}

Result<bool> get_bool(const json& j, const std::string& key, const std::string& field, bool fallback) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  if (!j[key].is_boolean()) return bad_input(field + "." + key + ": expected true or false");
  return j[key].get<bool>();
}

Result<std::string> get_string(const json& j, const std::string& key, const std::string& field,
                               std::optional<std::string> fallback = std::nullopt) {
  if (!j.contains(key) || j[key].is_null()) {
    if (fallback) return *fallback;
    return bad_input(field + "." + key + ": missing");
  }
  if (!j[key].is_string()) return bad_input(field + "." + key + ": expected a string");
  return j[key].get<std::string>();
}

Result<size_t> get_count(const json& j, const std::string& key, const std::string& field, size_t fallback) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  if (!j[key].is_number_unsigned()) return bad_input(field + "." + key + ": expected a non-negative integer");
  return j[key].get<size_t>();
}

Result<char32_t> get_char(const json& j, const std::string& key, const std::string& field, const std::string& fallback) {
  HILUM_ASSIGN_OR_RETURN(std::string s, get_string(j, key, field, fallback));
  if (s.empty() || code_point_count(s) != 1) return bad_input(field + "." + key + ": expected a single character");
  size_t pos = 0;
  return next_code_point(s, pos);
}

Result<const json*> get_array(const json& j, const std::string& key, const std::string& field) {
  if (!j.contains(key) || !j[key].is_array()) return bad_input(field + "." + key + ": expected an array");
  return &j[key];
}

std::string item(const std::string& field, size_t i) { return field + "[" + std::to_string(i) + "]"; }

// ---- Normalizers ------------------------------------------------------------

class SequenceNormalizer final : public Normalizer {
 public:
  std::vector<std::unique_ptr<Normalizer>> parts;
  void normalize(std::string& s) const override {
    for (const auto& p : parts) p->normalize(s);
  }
};

class UnicodeNormalizer final : public Normalizer {
 public:
  explicit UnicodeNormalizer(UnicodeForm f) : form(f) {}
  UnicodeForm form;
  void normalize(std::string& s) const override { normalize_unicode(s, form); }
};

class LowercaseNormalizer final : public Normalizer {
 public:
  void normalize(std::string& s) const override { lowercase(s); }
};

class ReplaceNormalizer final : public Normalizer {
 public:
  ReplaceNormalizer(Pattern p, std::string c) : pattern(std::move(p)), content(std::move(c)) {}
  Pattern pattern;
  std::string content;
  void normalize(std::string& s) const override {
    std::vector<Range> found;
    pattern.find_all(s, found);
    if (found.empty()) return;
    std::string out;
    out.reserve(s.size());
    size_t prev = 0;
    for (const auto& [b, e] : found) {
      out.append(s, prev, b - prev);
      out += content;
      prev = e;
    }
    out.append(s, prev);
    s.swap(out);
  }
};

class PrependNormalizer final : public Normalizer {
 public:
  explicit PrependNormalizer(std::string p) : prepend(std::move(p)) {}
  std::string prepend;
  void normalize(std::string& s) const override {
    if (!s.empty()) s.insert(0, prepend);
  }
};

class StripNormalizer final : public Normalizer {
 public:
  bool left = true, right = true;
  void normalize(std::string& s) const override {
    size_t begin = 0, end = s.size();
    if (left) {
      while (begin < end) {
        size_t pos = begin;
        if (!is_whitespace(next_code_point(s, pos))) break;
        begin = pos;
      }
    }
    if (right) {
      while (end > begin) {
        size_t start = end - 1;
        while (start > begin && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
        size_t pos = start;
        if (!is_whitespace(next_code_point(s, pos))) break;
        end = start;
      }
    }
    s = s.substr(begin, end - begin);
  }
};

}  // namespace

Result<std::unique_ptr<Normalizer>> parse_normalizer(const json& j, const std::string& field) {
  if (j.is_null()) return std::unique_ptr<Normalizer>();
  const std::string type = type_of(j);
  if (type.empty()) return bad_input(field + ".type: missing");
  if (type == "Sequence") {
    auto seq = std::make_unique<SequenceNormalizer>();
    HILUM_ASSIGN_OR_RETURN(const json* list, get_array(j, "normalizers", field));
    for (size_t i = 0; i < list->size(); ++i) {
      HILUM_ASSIGN_OR_RETURN(auto part, parse_normalizer((*list)[i], item(field + ".normalizers", i)));
      if (part) seq->parts.push_back(std::move(part));
    }
    return std::unique_ptr<Normalizer>(std::move(seq));
  }
  if (type == "NFC" || type == "NFD" || type == "NFKC" || type == "NFKD" || type == "Lowercase") {
    if (!have_unicode_normalization())
      return unsupported(field + ".type: '" + type + "' needs ICU, which this build of hilum lacks");
    if (type == "Lowercase") return std::unique_ptr<Normalizer>(std::make_unique<LowercaseNormalizer>());
    const UnicodeForm form = type == "NFC"    ? UnicodeForm::kNFC
                             : type == "NFD"  ? UnicodeForm::kNFD
                             : type == "NFKC" ? UnicodeForm::kNFKC
                                              : UnicodeForm::kNFKD;
    return std::unique_ptr<Normalizer>(std::make_unique<UnicodeNormalizer>(form));
  }
  if (type == "Replace") {
    if (!j.contains("pattern")) return bad_input(field + ".pattern: missing");
    HILUM_ASSIGN_OR_RETURN(Pattern pattern, parse_pattern(j["pattern"], field + ".pattern"));
    HILUM_ASSIGN_OR_RETURN(std::string content, get_string(j, "content", field));
    return std::unique_ptr<Normalizer>(std::make_unique<ReplaceNormalizer>(std::move(pattern), std::move(content)));
  }
  if (type == "Prepend") {
    HILUM_ASSIGN_OR_RETURN(std::string prepend, get_string(j, "prepend", field));
    return std::unique_ptr<Normalizer>(std::make_unique<PrependNormalizer>(std::move(prepend)));
  }
  if (type == "Strip") {
    auto strip = std::make_unique<StripNormalizer>();
    HILUM_ASSIGN_OR_RETURN(strip->left, get_bool(j, "strip_left", field, true));
    HILUM_ASSIGN_OR_RETURN(strip->right, get_bool(j, "strip_right", field, true));
    return std::unique_ptr<Normalizer>(std::move(strip));
  }
  if (type == "BertNormalizer" || type == "StripAccents" || type == "NMT" || type == "Precompiled" ||
      type == "ByteLevel")
    return unsupported(field + ".type: normalizer '" + type + "' is not supported");
  return bad_input(field + ".type: unknown normalizer type '" + type + "'");
}

// ---- Pre-tokenizers ---------------------------------------------------------

namespace {

// Replaces every piece by the pieces `cut` makes of it (empty ones dropped).
template <typename Cut>
void split_each(std::vector<Piece>& pieces, Cut cut) {
  std::vector<Piece> out;
  out.reserve(pieces.size());
  std::vector<Range> ranges;
  for (auto& piece : pieces) {
    ranges.clear();
    cut(piece, ranges);
    for (const auto& [b, e] : ranges) {
      if (b == e) continue;
      out.push_back({piece.text.substr(b, e - b), piece.at_origin && b == 0});
    }
  }
  pieces.swap(out);
}

// Matches of a per-character predicate, one match per character.
template <typename Pred>
void char_matches(std::string_view text, Pred pred, std::vector<Range>& matches) {
  matches.clear();
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t start = pos;
    if (pred(next_code_point(text, pos))) matches.emplace_back(start, pos);
  }
}

class SequencePreTokenizer final : public PreTokenizer {
 public:
  std::vector<std::unique_ptr<PreTokenizer>> parts;
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    for (const auto& p : parts) p->pre_tokenize(pieces);
  }
};

class SplitPreTokenizer final : public PreTokenizer {
 public:
  SplitPreTokenizer(Pattern p, SplitBehavior b, bool inv) : pattern(std::move(p)), behavior(b), invert(inv) {}
  Pattern pattern;
  SplitBehavior behavior;
  bool invert;
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    std::vector<Range> found;
    split_each(pieces, [&](const Piece& piece, std::vector<Range>& out) {
      pattern.find_all(piece.text, found);
      out = split_ranges(piece.text, found, behavior, invert);
    });
  }
};

const char kGpt2Pattern[] = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

class ByteLevelPreTokenizer final : public PreTokenizer {
 public:
  bool add_prefix_space = true, use_regex = true;
  Pattern gpt2;
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    if (add_prefix_space) {
      for (auto& p : pieces)
        if (p.text.empty() || p.text[0] != ' ') p.text = " " + p.text;
    }
    if (use_regex) {
      std::vector<Range> found;
      split_each(pieces, [&](const Piece& piece, std::vector<Range>& out) {
        gpt2.find_all(piece.text, found);
        out = split_ranges(piece.text, found, SplitBehavior::kIsolated, false);
      });
    }
    for (auto& p : pieces) {
      std::string mapped;
      mapped.reserve(p.text.size() * 2);
      for (char c : p.text) mapped += byte_to_char_utf8(static_cast<uint8_t>(c));
      p.text.swap(mapped);
    }
  }
};

class DigitsPreTokenizer final : public PreTokenizer {
 public:
  bool individual_digits = false;
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    std::vector<Range> found;
    split_each(pieces, [&](const Piece& piece, std::vector<Range>& out) {
      char_matches(piece.text, is_numeric, found);
      out = split_ranges(piece.text, found,
                         individual_digits ? SplitBehavior::kIsolated : SplitBehavior::kContiguous, false);
    });
  }
};

enum class PrependScheme { kAlways, kFirst, kNever };

class MetaspacePreTokenizer final : public PreTokenizer {
 public:
  std::string replacement;
  PrependScheme scheme = PrependScheme::kAlways;
  bool split = true;
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    const Pattern space = Pattern::literal(" ");
    const Pattern rep = Pattern::literal(replacement);
    std::vector<Range> found;
    for (auto& p : pieces) {
      std::string out;
      out.reserve(p.text.size() + replacement.size());
      for (char c : p.text) {
        if (c == ' ') {
          out += replacement;
        } else {
          out.push_back(c);
        }
      }
      const bool starts = out.compare(0, replacement.size(), replacement) == 0;
      if (!starts && (scheme == PrependScheme::kAlways || (scheme == PrependScheme::kFirst && p.at_origin)))
        out.insert(0, replacement);
      p.text.swap(out);
    }
    if (split) {
      split_each(pieces, [&](const Piece& piece, std::vector<Range>& out) {
        rep.find_all(piece.text, found);
        out = split_ranges(piece.text, found, SplitBehavior::kMergedWithNext, false);
      });
    }
  }
};

// Whitespace (\w+|[^\w\s]+), WhitespaceSplit (on whitespace) and Punctuation.
class PatternPreTokenizer final : public PreTokenizer {
 public:
  enum Kind { kWhitespace, kWhitespaceSplit, kPunctuation } kind = kWhitespace;
  Pattern words;
  SplitBehavior behavior = SplitBehavior::kIsolated;
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    std::vector<Range> found;
    split_each(pieces, [&](const Piece& piece, std::vector<Range>& out) {
      switch (kind) {
        case kWhitespace:
          words.find_all(piece.text, found);
          out = split_ranges(piece.text, found, SplitBehavior::kRemoved, true);
          break;
        case kWhitespaceSplit:
          char_matches(piece.text, is_whitespace, found);
          out = split_ranges(piece.text, found, SplitBehavior::kRemoved, false);
          break;
        case kPunctuation:
          char_matches(piece.text, is_punctuation, found);
          out = split_ranges(piece.text, found, behavior, false);
          break;
      }
    });
  }
};

Result<PrependScheme> parse_prepend_scheme(const json& j, const std::string& field) {
  if (j.contains("prepend_scheme") && !j["prepend_scheme"].is_null()) {
    HILUM_ASSIGN_OR_RETURN(std::string s, get_string(j, "prepend_scheme", field));
    if (s == "always") return PrependScheme::kAlways;
    if (s == "first") return PrependScheme::kFirst;
    if (s == "never") return PrependScheme::kNever;
    return bad_input(field + ".prepend_scheme: unknown value '" + s + "'");
  }
  // Files written before prepend_scheme existed carry add_prefix_space.
  HILUM_ASSIGN_OR_RETURN(bool add_prefix_space, get_bool(j, "add_prefix_space", field, true));
  return add_prefix_space ? PrependScheme::kAlways : PrependScheme::kNever;
}

}  // namespace

Result<std::unique_ptr<PreTokenizer>> parse_pre_tokenizer(const json& j, const std::string& field) {
  using Ptr = std::unique_ptr<PreTokenizer>;
  if (j.is_null()) return Ptr();
  const std::string type = type_of(j);
  if (type.empty()) return bad_input(field + ".type: missing");
  if (type == "Sequence") {
    auto seq = std::make_unique<SequencePreTokenizer>();
    HILUM_ASSIGN_OR_RETURN(const json* list, get_array(j, "pretokenizers", field));
    for (size_t i = 0; i < list->size(); ++i) {
      HILUM_ASSIGN_OR_RETURN(auto part, parse_pre_tokenizer((*list)[i], item(field + ".pretokenizers", i)));
      if (part) seq->parts.push_back(std::move(part));
    }
    return Ptr(std::move(seq));
  }
  if (type == "Split") {
    if (!j.contains("pattern")) return bad_input(field + ".pattern: missing");
    HILUM_ASSIGN_OR_RETURN(Pattern pattern, parse_pattern(j["pattern"], field + ".pattern"));
    if (!j.contains("behavior")) return bad_input(field + ".behavior: missing");
    HILUM_ASSIGN_OR_RETURN(SplitBehavior behavior, parse_split_behavior(j["behavior"], field + ".behavior"));
    HILUM_ASSIGN_OR_RETURN(bool invert, get_bool(j, "invert", field, false));
    return Ptr(std::make_unique<SplitPreTokenizer>(std::move(pattern), behavior, invert));
  }
  if (type == "ByteLevel") {
    auto bl = std::make_unique<ByteLevelPreTokenizer>();
    HILUM_ASSIGN_OR_RETURN(bl->add_prefix_space, get_bool(j, "add_prefix_space", field, true));
    HILUM_ASSIGN_OR_RETURN(bl->use_regex, get_bool(j, "use_regex", field, true));
    auto re = Pattern::regex(kGpt2Pattern);
    if (!re.ok()) return internal_error("GPT-2 pattern: " + re.error().message());
    bl->gpt2 = std::move(re).value();
    return Ptr(std::move(bl));
  }
  if (type == "Digits") {
    auto d = std::make_unique<DigitsPreTokenizer>();
    HILUM_ASSIGN_OR_RETURN(d->individual_digits, get_bool(j, "individual_digits", field, false));
    return Ptr(std::move(d));
  }
  if (type == "Metaspace") {
    auto m = std::make_unique<MetaspacePreTokenizer>();
    HILUM_ASSIGN_OR_RETURN(char32_t rep, get_char(j, "replacement", field, "\xE2\x96\x81"));
    append_utf8(m->replacement, rep);
    HILUM_ASSIGN_OR_RETURN(m->scheme, parse_prepend_scheme(j, field));
    HILUM_ASSIGN_OR_RETURN(m->split, get_bool(j, "split", field, true));
    return Ptr(std::move(m));
  }
  if (type == "Whitespace" || type == "WhitespaceSplit" || type == "Punctuation") {
    auto p = std::make_unique<PatternPreTokenizer>();
    if (type == "Whitespace") {
      p->kind = PatternPreTokenizer::kWhitespace;
      auto re = Pattern::regex(R"(\w+|[^\w\s]+)");
      if (!re.ok()) return internal_error("Whitespace pattern: " + re.error().message());
      p->words = std::move(re).value();
    } else if (type == "WhitespaceSplit") {
      p->kind = PatternPreTokenizer::kWhitespaceSplit;
    } else {
      p->kind = PatternPreTokenizer::kPunctuation;
      if (j.contains("behavior")) {
        HILUM_ASSIGN_OR_RETURN(p->behavior, parse_split_behavior(j["behavior"], field + ".behavior"));
      }
    }
    return Ptr(std::move(p));
  }
  if (type == "BertPreTokenizer" || type == "CharDelimiterSplit" || type == "UnicodeScripts" ||
      type == "FixedLength")
    return unsupported(field + ".type: pre-tokenizer '" + type + "' is not supported");
  return bad_input(field + ".type: unknown pre-tokenizer type '" + type + "'");
}

// ---- Decoders ---------------------------------------------------------------

namespace {

class SequenceDecoder final : public Decoder {
 public:
  std::vector<std::unique_ptr<Decoder>> parts;
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (const auto& p : parts) p->decode_chain(tokens);
  }
};

class ByteLevelDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string bytes;
    for (const auto& t : tokens) {
      const size_t mark = bytes.size();
      bool all_mapped = true;
      size_t pos = 0;
      while (pos < t.size()) {
        const int b = char_to_byte(next_code_point(t, pos));
        if (b < 0) {
          all_mapped = false;
          break;
        }
        bytes.push_back(static_cast<char>(b));
      }
      // A token with a character outside the byte alphabet passes as it is.
      if (!all_mapped) {
        bytes.resize(mark);
        bytes += t;
      }
    }
    tokens.assign(1, utf8_lossy(bytes));
  }
};

class MetaspaceDecoder final : public Decoder {
 public:
  char32_t replacement = 0x2581;
  PrependScheme scheme = PrependScheme::kAlways;
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string out;
      const std::string& t = tokens[i];
      size_t pos = 0;
      while (pos < t.size()) {
        const char32_t c = next_code_point(t, pos);
        if (c == replacement) {
          if (i == 0 && scheme != PrependScheme::kNever) continue;
          out.push_back(' ');
        } else {
          append_utf8(out, c);
        }
      }
      tokens[i].swap(out);
    }
  }
};

// "<0xNN>" -> NN, else -1.
int byte_token(const std::string& t) {
  if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>') return -1;
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  const int hi = hex(t[3]), lo = hex(t[4]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

class ByteFallbackDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    std::string pending;
    auto flush = [&] {
      if (pending.empty()) return;
      if (is_valid_utf8(pending)) {
        out.push_back(pending);
      } else {
        for (size_t k = 0; k < pending.size(); ++k) out.emplace_back("\xEF\xBF\xBD");
      }
      pending.clear();
    };
    for (auto& t : tokens) {
      const int b = byte_token(t);
      if (b >= 0) {
        pending.push_back(static_cast<char>(b));
      } else {
        flush();
        out.push_back(std::move(t));
      }
    }
    flush();
    tokens.swap(out);
  }
};

class FuseDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string all;
    for (const auto& t : tokens) all += t;
    tokens.assign(1, std::move(all));
  }
};

class StripDecoder final : public Decoder {
 public:
  char32_t content = ' ';
  size_t start = 0, stop = 0;
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (auto& t : tokens) {
      std::vector<char32_t> chars;
      size_t pos = 0;
      while (pos < t.size()) chars.push_back(next_code_point(t, pos));
      size_t begin = 0;
      while (begin < std::min(start, chars.size()) && chars[begin] == content) ++begin;
      size_t end = chars.size();
      for (size_t k = 0; k < stop && end > begin && chars[end - 1] == content; ++k) --end;
      std::string out;
      for (size_t k = begin; k < end; ++k) append_utf8(out, chars[k]);
      t.swap(out);
    }
  }
};

class ReplaceDecoder final : public Decoder {
 public:
  ReplaceDecoder(Pattern p, std::string c) : replace(std::move(p), std::move(c)) {}
  ReplaceNormalizer replace;
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (auto& t : tokens) replace.normalize(t);
  }
};

// The BPE decoder: the end-of-word suffix becomes a space, except on the last token.
class BpeSuffixDecoder final : public Decoder {
 public:
  std::string suffix;
  void decode_chain(std::vector<std::string>& tokens) const override {
    if (suffix.empty()) return;
    for (size_t i = 0; i < tokens.size(); ++i) {
      const std::string with = i + 1 == tokens.size() ? "" : " ";
      std::string out;
      const std::string& t = tokens[i];
      size_t prev = 0;
      for (size_t at = t.find(suffix); at != std::string::npos; at = t.find(suffix, at + suffix.size())) {
        out.append(t, prev, at - prev);
        out += with;
        prev = at + suffix.size();
      }
      out.append(t, prev);
      tokens[i].swap(out);
    }
  }
};

}  // namespace

Result<std::unique_ptr<Decoder>> parse_decoder(const json& j, const std::string& field) {
  using Ptr = std::unique_ptr<Decoder>;
  if (j.is_null()) return Ptr();
  const std::string type = type_of(j);
  if (type.empty()) return bad_input(field + ".type: missing");
  if (type == "Sequence") {
    auto seq = std::make_unique<SequenceDecoder>();
    HILUM_ASSIGN_OR_RETURN(const json* list, get_array(j, "decoders", field));
    for (size_t i = 0; i < list->size(); ++i) {
      HILUM_ASSIGN_OR_RETURN(auto part, parse_decoder((*list)[i], item(field + ".decoders", i)));
      if (part) seq->parts.push_back(std::move(part));
    }
    return Ptr(std::move(seq));
  }
  if (type == "ByteLevel") return Ptr(std::make_unique<ByteLevelDecoder>());
  if (type == "Metaspace") {
    auto m = std::make_unique<MetaspaceDecoder>();
    HILUM_ASSIGN_OR_RETURN(m->replacement, get_char(j, "replacement", field, "\xE2\x96\x81"));
    HILUM_ASSIGN_OR_RETURN(m->scheme, parse_prepend_scheme(j, field));
    return Ptr(std::move(m));
  }
  if (type == "ByteFallback") return Ptr(std::make_unique<ByteFallbackDecoder>());
  if (type == "Fuse") return Ptr(std::make_unique<FuseDecoder>());
  if (type == "Strip") {
    auto s = std::make_unique<StripDecoder>();
    HILUM_ASSIGN_OR_RETURN(s->content, get_char(j, "content", field, " "));
    HILUM_ASSIGN_OR_RETURN(s->start, get_count(j, "start", field, 0));
    HILUM_ASSIGN_OR_RETURN(s->stop, get_count(j, "stop", field, 0));
    return Ptr(std::move(s));
  }
  if (type == "Replace") {
    if (!j.contains("pattern")) return bad_input(field + ".pattern: missing");
    HILUM_ASSIGN_OR_RETURN(Pattern pattern, parse_pattern(j["pattern"], field + ".pattern"));
    HILUM_ASSIGN_OR_RETURN(std::string content, get_string(j, "content", field));
    return Ptr(std::make_unique<ReplaceDecoder>(std::move(pattern), std::move(content)));
  }
  if (type == "BPEDecoder") {
    auto b = std::make_unique<BpeSuffixDecoder>();
    HILUM_ASSIGN_OR_RETURN(b->suffix, get_string(j, "suffix", field, std::string("</w>")));
    return Ptr(std::move(b));
  }
  if (type == "WordPiece" || type == "CTC")
    return unsupported(field + ".type: decoder '" + type + "' is not supported");
  return bad_input(field + ".type: unknown decoder type '" + type + "'");
}

// ---- Post-processors --------------------------------------------------------

namespace {

class SequenceProcessor final : public PostProcessor {
 public:
  std::vector<std::unique_ptr<PostProcessor>> parts;
  void process(std::vector<int32_t>& ids) const override {
    for (const auto& p : parts) p->process(ids);
  }
  size_t added_count() const override {
    size_t n = 0;
    for (const auto& p : parts) n += p->added_count();
    return n;
  }
  void surrounding_ids(std::vector<int32_t>& before, std::vector<int32_t>& after) const override {
    for (const auto& p : parts) p->surrounding_ids(before, after);
  }
};

// TemplateProcessing's single-sequence template, and RobertaProcessing /
// BertProcessing (cls + sequence + sep), which are that template too.
class TemplateProcessor final : public PostProcessor {
 public:
  std::vector<int32_t> before, after;
  void process(std::vector<int32_t>& ids) const override {
    ids.insert(ids.begin(), before.begin(), before.end());
    ids.insert(ids.end(), after.begin(), after.end());
  }
  size_t added_count() const override { return before.size() + after.size(); }
  void surrounding_ids(std::vector<int32_t>& b, std::vector<int32_t>& a) const override {
    b.insert(b.end(), before.begin(), before.end());
    a.insert(a.end(), after.begin(), after.end());
  }
};

// ByteLevel post-processing only trims offsets: ids are unchanged.
class NoOpProcessor final : public PostProcessor {
 public:
  void process(std::vector<int32_t>&) const override {}
  size_t added_count() const override { return 0; }
  void surrounding_ids(std::vector<int32_t>&, std::vector<int32_t>&) const override {}
};

Result<int32_t> parse_token_id_pair(const json& j, const std::string& key, const std::string& field) {
  // ["</s>", 2]
  if (!j.contains(key) || !j[key].is_array() || j[key].size() != 2 || !j[key][1].is_number_integer())
    return bad_input(field + "." + key + ": expected [token, id]");
  return j[key][1].get<int32_t>();
}

Result<std::unique_ptr<PostProcessor>> parse_template(const json& j, const std::string& field) {
  auto t = std::make_unique<TemplateProcessor>();
  HILUM_ASSIGN_OR_RETURN(const json* single, get_array(j, "single", field));
  const json empty = json::object();
  const json& specials = j.contains("special_tokens") && j["special_tokens"].is_object() ? j["special_tokens"] : empty;
  bool seen_sequence = false;
  for (size_t i = 0; i < single->size(); ++i) {
    const json& piece = (*single)[i];
    const std::string at = item(field + ".single", i);
    if (piece.is_object() && piece.contains("Sequence")) {
      if (seen_sequence) return bad_input(at + ": a single-sequence template has one sequence");
      seen_sequence = true;
      continue;
    }
    if (!piece.is_object() || !piece.contains("SpecialToken") || !piece["SpecialToken"].contains("id") ||
        !piece["SpecialToken"]["id"].is_string())
      return bad_input(at + ": expected {\"Sequence\": ...} or {\"SpecialToken\": {\"id\": ...}}");
    const std::string name = piece["SpecialToken"]["id"].get<std::string>();
    if (!specials.contains(name) || !specials[name].contains("ids") || !specials[name]["ids"].is_array())
      return bad_input(field + ".special_tokens: no ids for '" + name + "'");
    auto& dest = seen_sequence ? t->after : t->before;
    for (const auto& id : specials[name]["ids"]) {
      if (!id.is_number_integer()) return bad_input(field + ".special_tokens." + name + ".ids: expected integers");
      dest.push_back(id.get<int32_t>());
    }
  }
  if (!seen_sequence) return bad_input(field + ".single: the template has no $A sequence");
  return std::unique_ptr<PostProcessor>(std::move(t));
}

}  // namespace

Result<std::unique_ptr<PostProcessor>> parse_post_processor(const json& j, const std::string& field) {
  using Ptr = std::unique_ptr<PostProcessor>;
  if (j.is_null()) return Ptr();
  const std::string type = type_of(j);
  if (type.empty()) return bad_input(field + ".type: missing");
  if (type == "Sequence") {
    auto seq = std::make_unique<SequenceProcessor>();
    HILUM_ASSIGN_OR_RETURN(const json* list, get_array(j, "processors", field));
    for (size_t i = 0; i < list->size(); ++i) {
      HILUM_ASSIGN_OR_RETURN(auto part, parse_post_processor((*list)[i], item(field + ".processors", i)));
      if (part) seq->parts.push_back(std::move(part));
    }
    return Ptr(std::move(seq));
  }
  if (type == "TemplateProcessing") return parse_template(j, field);
  if (type == "RobertaProcessing" || type == "BertProcessing") {
    auto t = std::make_unique<TemplateProcessor>();
    HILUM_ASSIGN_OR_RETURN(int32_t cls, parse_token_id_pair(j, "cls", field));
    HILUM_ASSIGN_OR_RETURN(int32_t sep, parse_token_id_pair(j, "sep", field));
    t->before = {cls};
    t->after = {sep};
    return Ptr(std::move(t));
  }
  if (type == "ByteLevel") return Ptr(std::make_unique<NoOpProcessor>());
  return bad_input(field + ".type: unknown post-processor type '" + type + "'");
}

}  // namespace hilum::tok
