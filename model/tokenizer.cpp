// Tokenizer: loads tokenizer.json and runs the encode/decode pipelines of the
// Hugging Face tokenizers library (added tokens, normalizer, pre-tokenizer,
// BPE, post-processor; decoder chain).
#include "model/tokenizer.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "model/file_io.h"
#include "model/log.h"
#include "model/tokenizer_parts.h"

namespace hilum {

using tok::json;

namespace {

struct AddedToken {
  std::string content;
  std::string text;  // what the id decodes to: the content, normalized for a `normalized` token
  int32_t id = -1;
  bool special = false, single_word = false, lstrip = false, rstrip = false, normalized = true;
};

// Leftmost-longest matching of the added tokens (as the reference's
// Aho-Corasick automaton with MatchKind::LeftmostLongest).
class TokenTrie {
 public:
  void add(std::string_view text, size_t token_index) {
    if (text.empty()) return;
    size_t node = 0;
    for (char c : text) {
      const auto b = static_cast<uint8_t>(c);
      auto& kids = nodes_[node].children;
      auto it = std::lower_bound(kids.begin(), kids.end(), b,
                                 [](const std::pair<uint8_t, size_t>& e, uint8_t v) { return e.first < v; });
      if (it == kids.end() || it->first != b) {
        nodes_.push_back({});
        // Re-fetch: push_back may have moved the vector.
        auto& kids2 = nodes_[node].children;
        it = kids2.insert(std::lower_bound(kids2.begin(), kids2.end(), b,
                                           [](const std::pair<uint8_t, size_t>& e, uint8_t v) { return e.first < v; }),
                          {b, nodes_.size() - 1});
      }
      node = it->second;
    }
    if (nodes_[node].token < 0) nodes_[node].token = static_cast<int64_t>(token_index);
    first_bytes_[static_cast<uint8_t>(text[0])] = true;
  }
  bool empty() const { return nodes_.size() == 1; }
  // Longest token starting at `pos`: (token index, length), or index -1.
  std::pair<int64_t, size_t> longest_at(std::string_view s, size_t pos) const {
    if (!first_bytes_[static_cast<uint8_t>(s[pos])]) return {-1, 0};
    std::pair<int64_t, size_t> best{-1, 0};
    size_t node = 0;
    for (size_t k = pos; k < s.size(); ++k) {
      const auto b = static_cast<uint8_t>(s[k]);
      const auto& kids = nodes_[node].children;
      auto it = std::lower_bound(kids.begin(), kids.end(), b,
                                 [](const std::pair<uint8_t, size_t>& e, uint8_t v) { return e.first < v; });
      if (it == kids.end() || it->first != b) break;
      node = it->second;
      if (nodes_[node].token >= 0) best = {nodes_[node].token, k + 1 - pos};
    }
    return best;
  }

 private:
  struct Node {
    std::vector<std::pair<uint8_t, size_t>> children;
    int64_t token = -1;
  };
  std::vector<Node> nodes_{Node{}};
  std::array<bool, 256> first_bytes_{};
};

// A part of the text: an added token (id >= 0) or text to tokenize.
struct Segment {
  size_t begin, end;
  int32_t id;
};

struct Truncation {
  size_t max_length = 0;
  bool keep_left = false;  // direction "Left": drop tokens from the front
};

}  // namespace

struct Tokenizer::Impl {
  std::unique_ptr<tok::BpeModel> model;
  std::unique_ptr<tok::Normalizer> normalizer;
  std::unique_ptr<tok::PreTokenizer> pre_tokenizer;
  std::unique_ptr<tok::PostProcessor> post_processor;
  std::unique_ptr<tok::Decoder> decoder;
  std::optional<Truncation> truncation;

  std::vector<AddedToken> added;
  tok::Vocab added_by_content;
  std::unordered_map<int32_t, size_t> added_by_id;
  TokenTrie raw_trie, normalized_trie;
  std::optional<int32_t> bos, eos;
  int32_t vocab_size = 0;

  std::optional<int32_t> lookup(std::string_view token) const {
    auto it = added_by_content.find(token);
    if (it != added_by_content.end()) return it->second;
    return model->token_to_id(token);
  }

  void split_added(std::string_view s, const TokenTrie& trie, std::vector<Segment>& out) const;
  void encode_into(std::string_view text, std::vector<int32_t>& ids) const;
};

namespace {

// Byte offset where the whitespace at the end of `s` starts.
size_t trailing_space_start(std::string_view s) {
  size_t end = s.size();
  while (end > 0) {
    size_t start = end - 1;
    while (start > 0 && (static_cast<uint8_t>(s[start]) & 0xC0) == 0x80) --start;
    size_t pos = start;
    if (!tok::is_whitespace(tok::next_code_point(s, pos))) break;
    end = start;
  }
  return end;
}

// Length in bytes of the whitespace at the start of `s`.
size_t leading_space_length(std::string_view s) {
  size_t pos = 0;
  while (pos < s.size()) {
    size_t next = pos;
    if (!tok::is_whitespace(tok::next_code_point(s, next))) break;
    pos = next;
  }
  return pos;
}

bool ends_with_word_char(std::string_view s) {
  if (s.empty()) return false;
  size_t start = s.size() - 1;
  while (start > 0 && (static_cast<uint8_t>(s[start]) & 0xC0) == 0x80) --start;
  return tok::is_word_char(tok::next_code_point(s, start));
}

bool starts_with_word_char(std::string_view s) {
  if (s.empty()) return false;
  size_t pos = 0;
  return tok::is_word_char(tok::next_code_point(s, pos));
}

}  // namespace

void Tokenizer::Impl::split_added(std::string_view s, const TokenTrie& trie, std::vector<Segment>& out) const {
  out.clear();
  if (s.empty()) return;
  if (trie.empty()) {
    out.push_back({0, s.size(), -1});
    return;
  }
  size_t done = 0;  // end of the last emitted segment
  size_t pos = 0;
  while (pos < s.size()) {
    const auto [index, length] = trie.longest_at(s, pos);
    if (index < 0) {
      ++pos;
      continue;
    }
    const AddedToken& t = added[static_cast<size_t>(index)];
    size_t start = pos, stop = pos + length;
    pos = stop;
    if (t.single_word) {
      const bool space_before = start == 0 || !ends_with_word_char(s.substr(0, start));
      const bool space_after = stop == s.size() || !starts_with_word_char(s.substr(stop));
      if (!space_before || !space_after) continue;
    }
    if (t.lstrip) start = std::max(trailing_space_start(s.substr(0, start)), done);
    if (t.rstrip) stop += leading_space_length(s.substr(stop));
    if (done < start) out.push_back({done, start, -1});
    out.push_back({start, stop, t.id});
    done = stop;
    pos = std::max(pos, stop);
  }
  if (done < s.size()) out.push_back({done, s.size(), -1});
}

void Tokenizer::Impl::encode_into(std::string_view text, std::vector<int32_t>& ids) const {
  std::vector<Segment> raw, inner;
  std::vector<tok::Piece> pieces;
  split_added(text, raw_trie, raw);
  for (const Segment& seg : raw) {
    if (seg.id >= 0) {
      ids.push_back(seg.id);
      continue;
    }
    std::string normalized(text.substr(seg.begin, seg.end - seg.begin));
    if (normalizer) normalizer->normalize(normalized);
    split_added(normalized, normalized_trie, inner);
    for (const Segment& sub : inner) {
      if (sub.id >= 0) {
        ids.push_back(sub.id);
        continue;
      }
      pieces.clear();
      pieces.push_back({normalized.substr(sub.begin, sub.end - sub.begin), seg.begin == 0 && sub.begin == 0});
      if (pre_tokenizer) pre_tokenizer->pre_tokenize(pieces);
      for (const auto& p : pieces) model->tokenize(p.text, ids);
    }
  }
}

namespace {

Result<std::optional<Truncation>> parse_truncation(const json& j) {
  if (!j.contains("truncation") || j["truncation"].is_null()) return std::optional<Truncation>();
  const json& t = j["truncation"];
  if (!t.is_object() || !t.contains("max_length") || !t["max_length"].is_number_unsigned())
    return bad_input("truncation.max_length: expected a non-negative integer");
  Truncation out;
  out.max_length = t["max_length"].get<size_t>();
  if (t.contains("direction") && t["direction"].is_string()) {
    const std::string d = t["direction"].get<std::string>();
    if (d != "Left" && d != "Right") return bad_input("truncation.direction: unknown value '" + d + "'");
    out.keep_left = d == "Left";
  }
  return std::optional<Truncation>(out);
}

Result<AddedToken> parse_added_token(const json& j, const std::string& field) {
  if (!j.is_object() || !j.contains("content") || !j["content"].is_string() || j["content"].get<std::string>().empty())
    return bad_input(field + ".content: missing or empty");
  AddedToken t;
  t.content = j["content"].get<std::string>();
  auto flag = [&](const char* key, bool& out, bool fallback) -> Status {
    out = fallback;
    if (!j.contains(key) || j[key].is_null()) return Status::Ok();
    if (!j[key].is_boolean()) return bad_input(field + "." + key + ": expected true or false");
    out = j[key].get<bool>();
    return Status::Ok();
  };
  HILUM_RETURN_IF_ERROR(flag("special", t.special, false));
  HILUM_RETURN_IF_ERROR(flag("single_word", t.single_word, false));
  HILUM_RETURN_IF_ERROR(flag("lstrip", t.lstrip, false));
  HILUM_RETURN_IF_ERROR(flag("rstrip", t.rstrip, false));
  HILUM_RETURN_IF_ERROR(flag("normalized", t.normalized, !t.special));
  if (j.contains("id")) {
    if (!j["id"].is_number_integer() || j["id"].get<int64_t>() < 0) return bad_input(field + ".id: expected a non-negative integer");
    t.id = j["id"].get<int32_t>();
  }
  return t;
}

// bos_token / eos_token of tokenizer_config.json: a string or {"content": ...}.
std::optional<std::string> config_token(const json& config, const char* key) {
  if (!config.contains(key)) return std::nullopt;
  const json& v = config[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
  return std::nullopt;
}

Status build(const json& j, Tokenizer::Impl& m) {
  if (!j.is_object()) return bad_input("expected a JSON object at the top level");
  if (!j.contains("model")) return bad_input("model: missing");
  HILUM_ASSIGN_OR_RETURN(m.model, tok::BpeModel::parse(j["model"], "model"));
  const json null_json;
  auto part = [&](const char* key) -> const json& { return j.contains(key) ? j[key] : null_json; };
  HILUM_ASSIGN_OR_RETURN(m.normalizer, tok::parse_normalizer(part("normalizer"), "normalizer"));
  HILUM_ASSIGN_OR_RETURN(m.pre_tokenizer, tok::parse_pre_tokenizer(part("pre_tokenizer"), "pre_tokenizer"));
  HILUM_ASSIGN_OR_RETURN(m.post_processor, tok::parse_post_processor(part("post_processor"), "post_processor"));
  HILUM_ASSIGN_OR_RETURN(m.decoder, tok::parse_decoder(part("decoder"), "decoder"));
  HILUM_ASSIGN_OR_RETURN(m.truncation, parse_truncation(j));
  if (j.contains("padding") && !j["padding"].is_null())
    log_info("tokenizer.json: padding settings are ignored (they only matter for batches)");

  // Added tokens get their ids as the reference assigns them when it loads a
  // file: the model's id when the model has the token, else the next id after
  // the vocabulary and the tokens added so far.
  const auto model_entries = static_cast<int32_t>(m.model->vocab_entries());
  std::optional<int32_t> max_added;
  if (j.contains("added_tokens") && !j["added_tokens"].is_null()) {
    if (!j["added_tokens"].is_array()) return bad_input("added_tokens: expected an array");
    const json& list = j["added_tokens"];
    for (size_t i = 0; i < list.size(); ++i) {
      const std::string field = "added_tokens[" + std::to_string(i) + "]";
      HILUM_ASSIGN_OR_RETURN(AddedToken t, parse_added_token(list[i], field));
      if (m.added_by_content.count(t.content)) continue;
      int32_t id;
      if (auto known = m.model->token_to_id(t.content)) {
        id = *known;
      } else if (!max_added) {
        id = model_entries;
      } else {
        id = *max_added >= model_entries || model_entries == 0 ? *max_added + 1 : model_entries;
      }
      if (t.id >= 0 && t.id != id)
        log_warning("tokenizer.json: " + field + " '" + t.content + "' has id " + std::to_string(t.id) +
                    " in the file but takes id " + std::to_string(id) + " (as in the tokenizers library)");
      t.id = id;
      max_added = std::max(max_added.value_or(id), id);
      m.added_by_content[t.content] = id;
      m.added_by_id[id] = m.added.size();
      m.added.push_back(std::move(t));
    }
  }
  for (size_t i = 0; i < m.added.size(); ++i) {
    AddedToken& t = m.added[i];
    t.text = t.content;
    if (!t.normalized) {
      m.raw_trie.add(t.content, i);
    } else {
      // Matched in normalized text; the reference also decodes the id to this form.
      if (m.normalizer) m.normalizer->normalize(t.text);
      m.normalized_trie.add(t.text, i);
    }
  }

  m.vocab_size = m.model->max_id() + 1;
  for (const auto& t : m.added) m.vocab_size = std::max(m.vocab_size, t.id + 1);

  if (m.post_processor) {
    std::vector<int32_t> before, after;
    m.post_processor->surrounding_ids(before, after);
    if (!before.empty()) m.bos = before.front();
    if (!after.empty()) m.eos = after.back();
  }
  auto first_known = [&](std::initializer_list<const char*> names) -> std::optional<int32_t> {
    for (const char* n : names)
      if (auto id = m.lookup(n)) return id;
    return std::nullopt;
  };
  if (!m.bos)
    m.bos = first_known({"<s>", "<|begin_of_text|>", "<\xEF\xBD\x9C" "begin\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>",
                         "<bos>", "<|startoftext|>"});
  if (!m.eos)
    m.eos = first_known({"</s>", "<|end_of_text|>", "<|endoftext|>",
                         "<\xEF\xBD\x9C" "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>", "<eos>", "<|im_end|>"});
  return Status::Ok();
}

}  // namespace

Result<Tokenizer> Tokenizer::from_json(std::string_view json_text, const std::string& source_name) {
  json j;
  try {
    j = json::parse(json_text.begin(), json_text.end());
  } catch (const json::exception& e) {
    return bad_input(source_name + ": not valid JSON: " + e.what());
  }
  auto impl = std::make_shared<Impl>();
  try {
    Status built = build(j, *impl);
    if (!built.ok()) return built.error().with_context(source_name);
  } catch (const json::exception& e) {
    return bad_input(source_name + ": unexpected JSON content: " + e.what());
  }
  return Tokenizer(std::move(impl));
}

Result<Tokenizer> Tokenizer::from_file(const std::filesystem::path& tokenizer_json) {
  HILUM_ASSIGN_OR_RETURN(std::string text, read_file(tokenizer_json));
  HILUM_ASSIGN_OR_RETURN(Tokenizer t, from_json(text, tokenizer_json.string()));
  const auto config_path = tokenizer_json.parent_path() / "tokenizer_config.json";
  std::error_code ec;
  if (std::filesystem::is_regular_file(config_path, ec)) {
    auto config_text = read_file(config_path);
    json config;
    try {
      if (config_text.ok()) config = json::parse(*config_text);
    } catch (const json::exception& e) {
      return bad_input(config_path.string() + ": not valid JSON: " + e.what());
    }
    if (config.is_object()) {
      // Freshly built and not yet shared with anyone: safe to complete here.
      auto impl = std::const_pointer_cast<Impl>(t.impl_);
      for (const char* key : {"bos_token", "eos_token"}) {
        auto name = config_token(config, key);
        if (!name) continue;
        auto id = impl->lookup(*name);
        if (!id) return bad_input(config_path.string() + ": " + key + ": '" + *name + "' is not a token of " +
                                  tokenizer_json.string());
        (std::string_view(key) == "bos_token" ? impl->bos : impl->eos) = id;
      }
    }
  }
  return t;
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  std::string repaired;
  if (!is_valid_utf8(text)) {
    repaired = tok::utf8_lossy(text);
    text = repaired;
  }
  std::vector<int32_t> ids;
  impl_->encode_into(text, ids);
  if (impl_->truncation) {
    const size_t added = add_special_tokens && impl_->post_processor ? impl_->post_processor->added_count() : 0;
    const size_t keep = impl_->truncation->max_length > added ? impl_->truncation->max_length - added : 0;
    if (ids.size() > keep) {
      if (impl_->truncation->keep_left) {
        ids.erase(ids.begin(), ids.end() - static_cast<std::ptrdiff_t>(keep));
      } else {
        ids.resize(keep);
      }
    }
  }
  if (add_special_tokens && impl_->post_processor) impl_->post_processor->process(ids);
  return ids;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  const Impl& m = *impl_;
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int32_t id : ids) {
    auto it = m.added_by_id.find(id);
    if (it != m.added_by_id.end()) {
      const AddedToken& t = m.added[it->second];
      if (!(skip_special_tokens && t.special)) tokens.push_back(t.text);
      continue;
    }
    if (const std::string* s = m.model->id_to_token(id)) tokens.push_back(*s);
  }
  std::string out;
  if (m.decoder) {
    m.decoder->decode_chain(tokens);
    for (const auto& t : tokens) out += t;
  } else {
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (i) out.push_back(' ');
      out += tokens[i];
    }
  }
  return out;
}

int32_t Tokenizer::vocab_size() const { return impl_->vocab_size; }

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const { return impl_->lookup(token); }

std::string Tokenizer::id_to_token(int32_t id) const {
  auto it = impl_->added_by_id.find(id);
  if (it != impl_->added_by_id.end()) return impl_->added[it->second].text;
  const std::string* s = impl_->model->id_to_token(id);
  return s ? *s : std::string();
}

bool Tokenizer::is_special(int32_t id) const {
  auto it = impl_->added_by_id.find(id);
  return it != impl_->added_by_id.end() && impl_->added[it->second].special;
}

std::optional<int32_t> Tokenizer::bos_id() const { return impl_->bos; }
std::optional<int32_t> Tokenizer::eos_id() const { return impl_->eos; }

// ---- Streaming --------------------------------------------------------------

Tokenizer::StreamDecoder::StreamDecoder(const Tokenizer& tokenizer, bool skip_special_tokens)
    : tokenizer_(&tokenizer), skip_special_(skip_special_tokens) {}

// Decodes a window of ids that starts with tokens already emitted, so that
// decoders which look at neighbours (a leading-space strip on the first token,
// byte tokens that form one character) see the context, and emits what lies
// beyond the already-emitted prefix once it no longer ends in an unfinished
// character.
std::string Tokenizer::StreamDecoder::step(int32_t id) {
  ids_.push_back(id);
  const std::string text = tokenizer_->decode(ids_, skip_special_);
  static constexpr std::string_view kReplacement = "\xEF\xBF\xBD";
  const bool unfinished = text.size() >= 3 && std::string_view(text).substr(text.size() - 3) == kReplacement;
  if (text.size() <= prefix_.size() || unfinished) return {};
  std::string fresh;
  if (text.compare(0, prefix_.size(), prefix_) == 0) {
    fresh = text.substr(prefix_.size());
  } else {
    // The decoders rewrote the context (should not happen with the supported
    // decoders); emit only what follows the common part.
    size_t common = 0;
    while (common < prefix_.size() && prefix_[common] == text[common]) ++common;
    fresh = text.substr(common);
  }
  const size_t new_prefix_index = ids_.size() - prefix_index_;
  ids_.erase(ids_.begin(), ids_.begin() + static_cast<std::ptrdiff_t>(prefix_index_));
  prefix_ = tokenizer_->decode(ids_, skip_special_);
  prefix_index_ = new_prefix_index;
  return fresh;
}

std::string Tokenizer::StreamDecoder::flush() {
  const std::string text = tokenizer_->decode(ids_, skip_special_);
  std::string rest = text.size() > prefix_.size() && text.compare(0, prefix_.size(), prefix_) == 0
                         ? text.substr(prefix_.size())
                         : std::string();
  ids_.clear();
  prefix_.clear();
  prefix_index_ = 0;
  return rest;
}

}  // namespace hilum
