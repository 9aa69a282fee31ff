// Internal: typed, strict reading of a JSON config object. Every getter marks
// its key as understood; finish() then reports any key that nobody read and
// that is not on the informational allow-list. The first error wins and is
// kept until finish().
#pragma once

#include <cstdint>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "model/result.h"

namespace hilum::moe {

class ConfigReader {
 public:
  // `file` names the file in messages ("…/config.json"); `prefix` names a
  // nested object ("rope_parameters.").
  ConfigReader(const nlohmann::json& object, std::string file, std::string prefix = "");

  bool has(const std::string& key) const;      // present and not null
  bool present(const std::string& key) const;  // present, possibly null
  // Missing or null keys take `def`; without a default they are an error.
  int64_t integer(const std::string& key, std::optional<int64_t> def = std::nullopt);
  double number(const std::string& key, std::optional<double> def = std::nullopt);
  bool boolean(const std::string& key, std::optional<bool> def = std::nullopt);
  std::string string(const std::string& key, std::optional<std::string> def = std::nullopt);
  std::optional<int64_t> optional_integer(const std::string& key);
  std::optional<double> optional_number(const std::string& key);
  std::vector<int64_t> integer_list(const std::string& key);  // missing/null: empty
  std::vector<std::string> string_list(const std::string& key);
  // Integer or list of integers or null (eos_token_id).
  std::vector<int64_t> integer_or_list(const std::string& key);
  // Marks the key understood and returns it (nullptr when absent).
  const nlohmann::json* raw(const std::string& key);

  void ignore(std::initializer_list<const char*> keys);  // informational keys
  // Marks the key understood when it is absent, null, false or empty (a feature
  // switched off); any other value stays for finish() to report.
  void ignore_if_off(const std::string& key);
  // A key whose presence with a non-null, non-empty/false value is unsupported.
  void require_absent(const std::string& key, const std::string& why);

  void fail(Error error);
  Error field_error(const std::string& key, const std::string& what,
                    ErrorKind kind = ErrorKind::kBadInput) const;
  bool ok() const { return !error_.has_value(); }
  // Reports the first error, or the first key nobody read.
  Status finish(const std::string& context);

  const std::string& file() const { return file_; }

 private:
  const nlohmann::json* lookup(const std::string& key);
  const nlohmann::json& object_;
  std::string file_, prefix_;
  std::set<std::string> seen_;
  std::optional<Error> error_;
};

}  // namespace hilum::moe
