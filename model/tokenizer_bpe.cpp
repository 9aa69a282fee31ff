// The BPE model of tokenizer.json: vocabulary, ranked merges, byte fallback,
// unknown-token handling, and a priority-queue merge per word (lowest rank
// first, leftmost on ties) as in the Hugging Face tokenizers library.
#include <nlohmann/json.hpp>
#include <queue>

#include "model/tokenizer_parts.h"

namespace hilum::tok {
namespace {

constexpr size_t kMaxCachedWordBytes = 256;
constexpr size_t kCacheCapacity = 100000;

uint64_t pair_key(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

std::string shorten(const std::string& s) { return s.size() <= 40 ? s : s.substr(0, 40) + "..."; }

}  // namespace

Result<std::unique_ptr<BpeModel>> BpeModel::parse(const json& j, const std::string& field) {
  if (!j.is_object()) return bad_input(field + ": expected an object");
  std::string type = j.contains("type") && j["type"].is_string() ? j["type"].get<std::string>() : "";
  if (type.empty() && j.contains("merges")) type = "BPE";  // old files leave the type out
  if (type.empty()) return bad_input(field + ".type: missing");
  if (type == "WordPiece" || type == "Unigram" || type == "WordLevel")
    return unsupported(field + ".type: model '" + type + "' is not supported (only BPE)");
  if (type != "BPE") return bad_input(field + ".type: unknown model type '" + type + "'");

  auto m = std::make_unique<BpeModel>();
  std::fill(std::begin(m->byte_ids_), std::end(m->byte_ids_), -1);

  if (j.contains("dropout") && !j["dropout"].is_null()) {
    if (!j["dropout"].is_number()) return bad_input(field + ".dropout: expected a number or null");
    if (j["dropout"].get<double>() != 0.0)
      return unsupported(field + ".dropout: BPE dropout (random segmentation) is not supported");
  }
  auto opt_string = [&](const char* key, std::string& out) -> Status {
    if (!j.contains(key) || j[key].is_null()) return Status::Ok();
    if (!j[key].is_string()) return bad_input(field + "." + key + ": expected a string or null");
    out = j[key].get<std::string>();
    return Status::Ok();
  };
  auto opt_bool = [&](const char* key, bool& out) -> Status {
    if (!j.contains(key) || j[key].is_null()) return Status::Ok();
    if (!j[key].is_boolean()) return bad_input(field + "." + key + ": expected true or false");
    out = j[key].get<bool>();
    return Status::Ok();
  };
  std::string unk_token;
  HILUM_RETURN_IF_ERROR(opt_string("unk_token", unk_token));
  HILUM_RETURN_IF_ERROR(opt_string("continuing_subword_prefix", m->continuing_subword_prefix_));
  HILUM_RETURN_IF_ERROR(opt_string("end_of_word_suffix", m->end_of_word_suffix_));
  HILUM_RETURN_IF_ERROR(opt_bool("fuse_unk", m->fuse_unk_));
  HILUM_RETURN_IF_ERROR(opt_bool("byte_fallback", m->byte_fallback_));
  HILUM_RETURN_IF_ERROR(opt_bool("ignore_merges", m->ignore_merges_));

  if (!j.contains("vocab") || !j["vocab"].is_object()) return bad_input(field + ".vocab: missing or not an object");
  const json& vocab = j["vocab"];
  m->vocab_.reserve(vocab.size());
  int32_t max_id = -1;
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0 || it.value().get<int64_t>() > INT32_MAX)
      return bad_input(field + ".vocab[\"" + shorten(it.key()) + "\"]: expected a non-negative integer id");
    const auto id = it.value().get<int32_t>();
    m->vocab_[it.key()] = id;
    max_id = std::max(max_id, id);
  }
  m->id_to_token_.resize(static_cast<size_t>(max_id + 1));
  m->id_present_.assign(static_cast<size_t>(max_id + 1), false);
  for (const auto& [token, id] : m->vocab_) {
    m->id_to_token_[id] = token;
    m->id_present_[id] = true;
  }
  if (!unk_token.empty()) {
    auto it = m->vocab_.find(unk_token);
    if (it == m->vocab_.end())
      return bad_input(field + ".unk_token: '" + shorten(unk_token) + "' is not in " + field + ".vocab");
    m->unk_id_ = it->second;
  }
  if (m->byte_fallback_) {
    static const char kHex[] = "0123456789ABCDEF";
    for (int b = 0; b < 256; ++b) {
      const std::string name = std::string("<0x") + kHex[b >> 4] + kHex[b & 15] + ">";
      auto it = m->vocab_.find(name);
      if (it != m->vocab_.end()) m->byte_ids_[b] = it->second;
    }
  }

  if (!j.contains("merges") || !j["merges"].is_array()) return bad_input(field + ".merges: missing or not an array");
  const json& merges = j["merges"];
  m->merges_.reserve(merges.size());
  const size_t prefix_len = m->continuing_subword_prefix_.size();
  for (size_t i = 0; i < merges.size(); ++i) {
    const json& entry = merges[i];
    const std::string at = field + ".merges[" + std::to_string(i) + "]";
    std::string a, b;
    if (entry.is_string()) {
      const std::string s = entry.get<std::string>();
      const size_t space = s.find(' ');
      if (space == std::string::npos) return bad_input(at + ": expected \"left right\", got '" + shorten(s) + "'");
      a = s.substr(0, space);
      b = s.substr(space + 1);
    } else if (entry.is_array() && entry.size() == 2 && entry[0].is_string() && entry[1].is_string()) {
      a = entry[0].get<std::string>();
      b = entry[1].get<std::string>();
    } else {
      return bad_input(at + ": expected \"left right\" or [left, right]");
    }
    auto ia = m->vocab_.find(a);
    if (ia == m->vocab_.end()) return bad_input(at + ": token '" + shorten(a) + "' is not in " + field + ".vocab");
    auto ib = m->vocab_.find(b);
    if (ib == m->vocab_.end()) return bad_input(at + ": token '" + shorten(b) + "' is not in " + field + ".vocab");
    const bool strip_prefix = prefix_len > 0 && b.compare(0, prefix_len, m->continuing_subword_prefix_) == 0;
    const std::string merged = a + (strip_prefix ? b.substr(prefix_len) : b);
    auto im = m->vocab_.find(merged);
    if (im == m->vocab_.end())
      return bad_input(at + ": merged token '" + shorten(merged) + "' is not in " + field + ".vocab");
    // A repeated pair keeps its later rank, as a map insert in the reference does.
    m->merges_[pair_key(ia->second, ib->second)] = {static_cast<int32_t>(i), im->second};
  }
  return m;
}

std::optional<int32_t> BpeModel::token_to_id(std::string_view token) const {
  auto it = vocab_.find(token);
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

const std::string* BpeModel::id_to_token(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= id_present_.size() || !id_present_[id]) return nullptr;
  return &id_to_token_[id];
}

void BpeModel::tokenize(std::string_view word, std::vector<int32_t>& ids) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    auto it = vocab_.find(word);
    if (it != vocab_.end()) {
      ids.push_back(it->second);
      return;
    }
  }
  const bool cacheable = word.size() <= kMaxCachedWordBytes;
  if (cacheable) {
    std::shared_lock lock(cache_mutex_);
    auto it = cache_.find(word);
    if (it != cache_.end()) {
      ids.insert(ids.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  const size_t mark = ids.size();
  merge_word(word, ids);
  if (cacheable) {
    std::unique_lock lock(cache_mutex_);
    if (cache_.size() < kCacheCapacity) cache_.emplace(std::string(word), std::vector<int32_t>(ids.begin() + mark, ids.end()));
  }
}

void BpeModel::merge_word(std::string_view word, std::vector<int32_t>& ids) const {
  // Initial symbols: one per character (with prefix/suffix decoration), byte
  // tokens for characters outside the vocabulary, or the unknown token.
  struct Symbol {
    int32_t id;
    int32_t prev, next;  // neighbours in the linked list, -1 at the ends
    bool alive;
  };
  std::vector<Symbol> symbols;
  symbols.reserve(word.size());
  auto push = [&](int32_t id) {
    const auto n = static_cast<int32_t>(symbols.size());
    symbols.push_back({id, n - 1, -1, true});
    if (n > 0) symbols[n - 1].next = n;
  };
  bool pending_unk = false;
  std::string decorated;
  size_t pos = 0;
  while (pos < word.size()) {
    const size_t start = pos;
    next_code_point(word, pos);
    std::string_view ch = word.substr(start, pos - start);
    const bool first = start == 0, last = pos == word.size();
    if ((!first && !continuing_subword_prefix_.empty()) || (last && !end_of_word_suffix_.empty())) {
      decorated.assign(first ? "" : continuing_subword_prefix_);
      decorated += ch;
      if (last) decorated += end_of_word_suffix_;
      ch = decorated;
    }
    auto it = vocab_.find(ch);
    if (it != vocab_.end()) {
      if (pending_unk) {
        push(*unk_id_);
        pending_unk = false;
      }
      push(it->second);
      continue;
    }
    if (byte_fallback_) {
      bool all = true;
      for (char c : ch) all = all && byte_ids_[static_cast<uint8_t>(c)] >= 0;
      if (all) {
        // As the reference: byte tokens go in without flushing a pending unknown.
        for (char c : ch) push(byte_ids_[static_cast<uint8_t>(c)]);
        continue;
      }
    }
    if (unk_id_) {
      if (pending_unk && !fuse_unk_) push(*unk_id_);
      pending_unk = true;
    }
  }
  if (pending_unk) push(*unk_id_);

  struct Candidate {
    int32_t rank, pos, new_id;
    bool operator<(const Candidate& o) const {  // max-heap: lowest rank, then leftmost, on top
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  std::priority_queue<Candidate> queue;
  auto consider = [&](int32_t left) {
    const int32_t right = symbols[left].next;
    if (right < 0) return;
    auto it = merges_.find(pair_key(symbols[left].id, symbols[right].id));
    if (it != merges_.end()) queue.push({it->second.rank, left, it->second.new_id});
  };
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(symbols.size()); ++i) consider(i);
  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    Symbol& left = symbols[top.pos];
    if (!left.alive || left.next < 0) continue;
    const int32_t right_pos = left.next;
    // Skip entries made stale by an earlier merge of either symbol.
    auto it = merges_.find(pair_key(left.id, symbols[right_pos].id));
    if (it == merges_.end() || it->second.new_id != top.new_id) continue;
    left.id = top.new_id;
    Symbol& right = symbols[right_pos];
    right.alive = false;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = top.pos;
    if (left.prev >= 0) consider(left.prev);
    consider(top.pos);
  }
  for (int32_t i = symbols.empty() ? -1 : 0; i >= 0; i = symbols[i].next) ids.push_back(symbols[i].id);
}

}  // namespace hilum::tok
