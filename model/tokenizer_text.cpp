// Text helpers of the tokenizer: UTF-8, Unicode character classes (from
// Oniguruma's Unicode tables) and regex search with the semantics of the Hugging Face tokenizers library, which
// also uses Oniguruma: onig_new(pattern, ONIG_OPTION_NONE, UTF-8, default syntax)
// and a find-all loop that steps over an empty match right after a match.
#include <oniguruma.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <mutex>
#include <nlohmann/json.hpp>

#include "model/tokenizer.h"
#include "model/tokenizer_parts.h"


namespace hilum {

bool is_valid_utf8(std::string_view s, size_t* error_offset) {
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    const auto b = static_cast<unsigned char>(s[i]);
    size_t len = 0;
    char32_t min = 0;
    if (b < 0x80) {
      ++i;
      continue;
    } else if ((b & 0xE0) == 0xC0) {
      len = 2, min = 0x80;
    } else if ((b & 0xF0) == 0xE0) {
      len = 3, min = 0x800;
    } else if ((b & 0xF8) == 0xF0) {
      len = 4, min = 0x10000;
    } else {
      if (error_offset) *error_offset = i;
      return false;
    }
    if (i + len > n) {
      if (error_offset) *error_offset = i;
      return false;
    }
    char32_t cp = b & (0x7F >> len);
    for (size_t k = 1; k < len; ++k) {
      const auto c = static_cast<unsigned char>(s[i + k]);
      if ((c & 0xC0) != 0x80) {
        if (error_offset) *error_offset = i;
        return false;
      }
      cp = (cp << 6) | (c & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      if (error_offset) *error_offset = i;
      return false;
    }
    i += len;
  }
  return true;
}

}  // namespace hilum

namespace hilum::tok {

char32_t next_code_point(std::string_view s, size_t& pos) {
  const auto b = static_cast<unsigned char>(s[pos]);
  if (b < 0x80) {
    ++pos;
    return b;
  }
  size_t len = (b & 0xE0) == 0xC0 ? 2 : (b & 0xF0) == 0xE0 ? 3 : 4;
  len = std::min(len, s.size() - pos);
  char32_t cp = b & (0x7F >> len);
  for (size_t k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[pos + k]) & 0x3F);
  pos += len;
  return cp;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// Follows the Unicode "maximal subpart" practice (as Rust's from_utf8_lossy):
// a lead byte followed by valid continuation bytes that cannot complete is one
// replacement character; a stray byte is one replacement character.
std::string utf8_lossy(std::string_view s) {
  static constexpr char kReplacement[] = "\xEF\xBF\xBD";
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    const auto b = static_cast<unsigned char>(s[i]);
    if (b < 0x80) {
      out.push_back(static_cast<char>(b));
      ++i;
      continue;
    }
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (b >= 0xC2 && b <= 0xDF) {
      len = 2;
    } else if (b >= 0xE0 && b <= 0xEF) {
      len = 3;
      if (b == 0xE0) lo = 0xA0;
      if (b == 0xED) hi = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
      len = 4;
      if (b == 0xF0) lo = 0x90;
      if (b == 0xF4) hi = 0x8F;
    } else {
      out += kReplacement;
      ++i;
      continue;
    }
    size_t k = 1;
    for (; k < len && i + k < n; ++k) {
      const auto c = static_cast<unsigned char>(s[i + k]);
      const unsigned char l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
      if (c < l || c > h) break;
    }
    if (k == len) {
      out.append(s.substr(i, len));
    } else {
      out += kReplacement;
    }
    i += k;
  }
  return out;
}

size_t code_point_count(std::string_view s) {
  size_t count = 0;
  for (char c : s) count += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return count;
}

// ---- Character classes ------------------------------------------------------

namespace {

void init_oniguruma() {
  static std::once_flag once;
  std::call_once(once, [] {
    OnigEncoding encodings[] = {ONIG_ENCODING_UTF8};
    onig_initialize(encodings, 1);
  });
}

struct UnicodeClasses {
  int alphabetic, numeric, white_space, punctuation, mark, decimal, connector, join_control;
  UnicodeClasses() {
    init_oniguruma();
    alphabetic = ctype("Alphabetic");
    numeric = ctype("N");
    white_space = ctype("White_Space");
    punctuation = ctype("P");
    mark = ctype("M");
    decimal = ctype("Nd");
    connector = ctype("Pc");
    join_control = ctype("Join_Control");
  }
  static int ctype(const char* name) {
    auto* p = reinterpret_cast<OnigUChar*>(const_cast<char*>(name));
    int t = ONIGENC_PROPERTY_NAME_TO_CTYPE(ONIG_ENCODING_UTF8, p, p + std::strlen(name));
    assert(t >= 0);
    return t;
  }
  bool is(char32_t c, int type) const {
    return ONIGENC_IS_CODE_CTYPE(ONIG_ENCODING_UTF8, static_cast<OnigCodePoint>(c), static_cast<unsigned>(type));
  }
};

const UnicodeClasses& classes() {
  static const UnicodeClasses c;
  return c;
}

}  // namespace

bool is_whitespace(char32_t c) {
  if (c < 0x80) return c == ' ' || (c >= 0x09 && c <= 0x0D);
  return classes().is(c, classes().white_space);
}

bool is_numeric(char32_t c) {
  if (c < 0x80) return c >= '0' && c <= '9';
  return classes().is(c, classes().numeric);
}

bool is_word_char(char32_t c) {
  if (c < 0x80) return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') || c == '_';
  const auto& k = classes();
  return k.is(c, k.alphabetic) || k.is(c, k.mark) || k.is(c, k.decimal) || k.is(c, k.connector) ||
         k.is(c, k.join_control);
}

bool is_punctuation(char32_t c) {
  if (c < 0x80) return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) ||
                       (c >= 0x7B && c <= 0x7E);
  return classes().is(c, classes().punctuation);
}

// ---- Patterns ---------------------------------------------------------------

struct Pattern::Regex {
  OnigRegex reg = nullptr;
  ~Regex() {
    if (reg) onig_free(reg);
  }
};

Result<Pattern> Pattern::regex(std::string_view pattern) {
  init_oniguruma();
  auto r = std::make_shared<Regex>();
  OnigErrorInfo info;
  const auto* p = reinterpret_cast<const OnigUChar*>(pattern.data());
  const int rc = onig_new(&r->reg, p, p + pattern.size(), ONIG_OPTION_NONE, ONIG_ENCODING_UTF8, ONIG_SYNTAX_DEFAULT,
                          &info);
  if (rc != ONIG_NORMAL) {
    r->reg = nullptr;
    OnigUChar message[ONIG_MAX_ERROR_MESSAGE_LEN];
    onig_error_code_to_str(message, rc, &info);
    return bad_input("invalid regular expression: " + std::string(reinterpret_cast<char*>(message)));
  }
  Pattern result;
  result.regex_ = std::move(r);
  return result;
}

Pattern Pattern::literal(std::string_view text) {
  Pattern result;
  result.literal_ = std::string(text);
  return result;
}

void Pattern::find_all(std::string_view text, std::vector<Range>& matches) const {
  matches.clear();
  if (!regex_) {
    if (literal_.empty()) return;
    for (size_t at = text.find(literal_); at != std::string_view::npos; at = text.find(literal_, at + literal_.size()))
      matches.emplace_back(at, at + literal_.size());
    return;
  }
  const auto* begin = reinterpret_cast<const OnigUChar*>(text.data());
  const auto* end = begin + text.size();
  // One match region per thread, reused: a Split runs once per word.
  struct RegionHolder {
    OnigRegion* region = onig_region_new();
    ~RegionHolder() { onig_region_free(region, 1); }
  };
  thread_local RegionHolder holder;
  OnigRegion* region = holder.region;
  size_t search_from = 0;
  std::optional<size_t> last_match_end;
  while (search_from <= text.size()) {
    const int rc = onig_search(regex_->reg, begin, end, begin + search_from, end, region, ONIG_OPTION_NONE);
    if (rc < 0) break;  // ONIG_MISMATCH (or a matching error: treat as no further match)
    const auto b = static_cast<size_t>(region->beg[0]);
    const auto e = static_cast<size_t>(region->end[0]);
    if (b == e && last_match_end == e) {
      // An empty match right where the last match ended: step one character on.
      if (search_from >= text.size()) break;
      size_t next = search_from;
      next_code_point(text, next);
      search_from = next;
      continue;
    }
    matches.emplace_back(b, e);
    search_from = e;
    last_match_end = e;
  }
  onig_region_clear(region);
}

Result<Pattern> parse_pattern(const json& j, const std::string& field) {
  if (j.is_object() && j.size() == 1) {
    if (j.contains("String") && j["String"].is_string()) return Pattern::literal(j["String"].get<std::string>());
    if (j.contains("Regex") && j["Regex"].is_string()) {
      auto r = Pattern::regex(j["Regex"].get<std::string>());
      if (!r.ok()) return r.error().with_context(field + ".Regex");
      return r;
    }
  }
  return bad_input(field + ": expected {\"String\": ...} or {\"Regex\": ...}");
}

Result<SplitBehavior> parse_split_behavior(const json& j, const std::string& field) {
  if (j.is_string()) {
    const std::string s = j.get<std::string>();
    if (s == "Removed") return SplitBehavior::kRemoved;
    if (s == "Isolated") return SplitBehavior::kIsolated;
    if (s == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
    if (s == "MergedWithNext") return SplitBehavior::kMergedWithNext;
    if (s == "Contiguous") return SplitBehavior::kContiguous;
    return bad_input(field + ": unknown split behavior '" + s + "'");
  }
  return bad_input(field + ": expected a split behavior name");
}

std::vector<Range> split_ranges(std::string_view text, const std::vector<Range>& found, SplitBehavior behavior,
                                bool invert) {
  // Every byte of the text lies in exactly one part, each flagged as a match or not.
  struct Part {
    Range r;
    bool match;
  };
  std::vector<Part> parts;
  if (text.empty()) return {};
  size_t prev = 0;
  for (const auto& [b, e] : found) {
    if (prev != b) parts.push_back({{prev, b}, invert});
    parts.push_back({{b, e}, !invert});
    prev = e;
  }
  if (prev != text.size()) parts.push_back({{prev, text.size()}, invert});

  std::vector<Range> out;
  switch (behavior) {
    case SplitBehavior::kRemoved:
      for (const auto& p : parts)
        if (!p.match) out.push_back(p.r);
      break;
    case SplitBehavior::kIsolated:
      for (const auto& p : parts) out.push_back(p.r);
      break;
    case SplitBehavior::kMergedWithPrevious: {
      bool previous_match = false;
      for (const auto& p : parts) {
        if (p.match && !previous_match && !out.empty()) {
          out.back().second = p.r.second;
        } else {
          out.push_back(p.r);
        }
        previous_match = p.match;
      }
      break;
    }
    case SplitBehavior::kMergedWithNext: {
      bool previous_match = false;
      for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
        if (it->match && !previous_match && !out.empty()) {
          out.back().first = it->r.first;
        } else {
          out.push_back(it->r);
        }
        previous_match = it->match;
      }
      std::reverse(out.begin(), out.end());
      break;
    }
    case SplitBehavior::kContiguous: {
      bool previous_match = false;
      for (const auto& p : parts) {
        if (p.match == previous_match && !out.empty()) {
          out.back().second = p.r.second;
        } else {
          out.push_back(p.r);
        }
        previous_match = p.match;
      }
      break;
    }
  }
  std::erase_if(out, [](const Range& r) { return r.first == r.second; });
  return out;
}

// ---- Byte-level alphabet ----------------------------------------------------

namespace {

struct ByteTable {
  std::array<std::string, 256> to_char;
  std::array<int16_t, 324> to_byte;
  ByteTable() {
    to_byte.fill(-1);
    int extra = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174);
      const char32_t c = printable ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + extra++);
      append_utf8(to_char[b], c);
      to_byte[c] = static_cast<int16_t>(b);
    }
  }
};

const ByteTable& byte_table() {
  static const ByteTable t;
  return t;
}

}  // namespace

const std::string& byte_to_char_utf8(uint8_t b) { return byte_table().to_char[b]; }

int char_to_byte(char32_t c) { return c < 324 ? byte_table().to_byte[c] : -1; }

}  // namespace hilum::tok
