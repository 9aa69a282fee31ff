// Hugging Face `tokenizer.json` BPE tokenizers: encode text to token ids and
// decode ids back to text, with the same ids as the Hugging Face tokenizers
// library (Rust) for the files that real checkpoints ship (GPT-2/GPT-NeoX/OLMoE
// byte-level BPE, Llama-3, Qwen2, DeepSeek-V2/V3, Mixtral/Llama-2 sentencepiece
// conversions). docs/tokenizer.md lists the supported components.
//
// Thread safety: a loaded Tokenizer is immutable apart from an internal,
// mutex-guarded word cache; any number of threads may call its const methods.
// Copies share the loaded tables (cheap). A StreamDecoder belongs to one thread.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "model/result.h"

namespace hilum {

class Tokenizer {
 public:
  // Loads `tokenizer.json`. When a `tokenizer_config.json` lies beside it, its
  // `bos_token`/`eos_token` are used for bos_id()/eos_id(). Errors (kBadInput,
  // kUnsupported for valid but unhandled components such as a WordPiece model)
  // name the file and the JSON field, e.g.
  //   "tok/tokenizer.json: pre_tokenizer.pretokenizers[1].type: unknown pre-tokenizer type 'Foo'".
  static Result<Tokenizer> from_file(const std::filesystem::path& tokenizer_json);
  // The same from the JSON text; `source_name` stands in for the file name in errors.
  static Result<Tokenizer> from_json(std::string_view json_text, const std::string& source_name);

  // Token ids of `text` (UTF-8; invalid bytes are read as U+FFFD). Added and
  // special tokens written in the text are recognised; `add_special_tokens`
  // applies the post-processor (e.g. a BOS token in front).
  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens = true) const;

  // Text of `ids` (valid UTF-8; incomplete byte sequences become U+FFFD). Ids
  // that are not in the vocabulary are skipped, as the reference library does.
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens = false) const;

  // Incremental decoding for streaming generation: step() takes one id at a
  // time and returns the text that became complete with it (often empty while
  // a multi-byte character is split across tokens). The concatenation of all
  // step() results and flush() equals decode() of all ids.
  class StreamDecoder {
   public:
    explicit StreamDecoder(const Tokenizer& tokenizer, bool skip_special_tokens = false);
    std::string step(int32_t id);
    // Text still held back (an unfinished character comes out as U+FFFD).
    std::string flush();

   private:
    const Tokenizer* tokenizer_;
    bool skip_special_;
    std::vector<int32_t> ids_;    // context kept for the decoders (window)
    std::string prefix_;          // decode of the ids that were already emitted
    size_t prefix_index_ = 0;     // number of ids in ids_ that prefix_ covers
  };

  // One past the largest token id (model vocabulary and added tokens): the
  // number of rows an embedding table needs.
  int32_t vocab_size() const;
  std::optional<int32_t> token_to_id(std::string_view token) const;
  // The token string of `id` (byte-level tokens as stored, e.g. "Ġthe"); empty
  // when the id is unknown.
  std::string id_to_token(int32_t id) const;
  bool is_special(int32_t id) const;

  // Beginning/end-of-sequence ids: from tokenizer_config.json when present, else
  // from the post-processor's template, else from well-known token names.
  std::optional<int32_t> bos_id() const;
  std::optional<int32_t> eos_id() const;

  struct Impl;

 private:
  explicit Tokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
};

// Whether `text` is valid UTF-8 (what the CLI checks before tokenizing a file).
// On false, `*error_offset` (when given) receives the byte offset of the first bad byte.
bool is_valid_utf8(std::string_view text, size_t* error_offset = nullptr);

}  // namespace hilum
