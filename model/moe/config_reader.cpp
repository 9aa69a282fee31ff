#include "model/moe/config_reader.h"

namespace hilum::moe {

using json = nlohmann::json;

namespace {
std::string brief(const json& v) {
  std::string s = v.dump();
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}
}  // namespace

ConfigReader::ConfigReader(const json& object, std::string file, std::string prefix)
    : object_(object), file_(std::move(file)), prefix_(std::move(prefix)) {}

const json* ConfigReader::lookup(const std::string& key) {
  seen_.insert(key);
  if (!object_.is_object()) return nullptr;
  auto it = object_.find(key);
  if (it == object_.end() || it->is_null()) return nullptr;
  return &*it;
}

bool ConfigReader::has(const std::string& key) const {
  if (!object_.is_object()) return false;
  auto it = object_.find(key);
  return it != object_.end() && !it->is_null();
}

bool ConfigReader::present(const std::string& key) const {
  return object_.is_object() && object_.find(key) != object_.end();
}

Error ConfigReader::field_error(const std::string& key, const std::string& what, ErrorKind kind) const {
  return Error(kind, file_ + ": field '" + prefix_ + key + "' " + what);
}

void ConfigReader::fail(Error error) {
  if (!error_) error_ = std::move(error);
}

int64_t ConfigReader::integer(const std::string& key, std::optional<int64_t> def) {
  const json* v = lookup(key);
  if (!v) {
    if (!def) fail(field_error(key, "is missing"));
    return def.value_or(0);
  }
  if (v->is_number_integer()) return v->get<int64_t>();
  if (v->is_number_float()) {
    double d = v->get<double>();
    if (d == static_cast<double>(static_cast<int64_t>(d))) return static_cast<int64_t>(d);
  }
  fail(field_error(key, "must be an integer (got " + brief(*v) + ")"));
  return def.value_or(0);
}

double ConfigReader::number(const std::string& key, std::optional<double> def) {
  const json* v = lookup(key);
  if (!v) {
    if (!def) fail(field_error(key, "is missing"));
    return def.value_or(0.0);
  }
  if (v->is_number()) return v->get<double>();
  fail(field_error(key, "must be a number (got " + brief(*v) + ")"));
  return def.value_or(0.0);
}

bool ConfigReader::boolean(const std::string& key, std::optional<bool> def) {
  const json* v = lookup(key);
  if (!v) {
    if (!def) fail(field_error(key, "is missing"));
    return def.value_or(false);
  }
  if (v->is_boolean()) return v->get<bool>();
  fail(field_error(key, "must be true or false (got " + brief(*v) + ")"));
  return def.value_or(false);
}

std::string ConfigReader::string(const std::string& key, std::optional<std::string> def) {
  const json* v = lookup(key);
  if (!v) {
    if (!def) fail(field_error(key, "is missing"));
    return def.value_or("");
  }
  if (v->is_string()) return v->get<std::string>();
  fail(field_error(key, "must be a string (got " + brief(*v) + ")"));
  return def.value_or("");
}

std::optional<int64_t> ConfigReader::optional_integer(const std::string& key) {
  if (!has(key)) {
    seen_.insert(key);
    return std::nullopt;
  }
  return integer(key);
}

std::optional<double> ConfigReader::optional_number(const std::string& key) {
  if (!has(key)) {
    seen_.insert(key);
    return std::nullopt;
  }
  return number(key);
}

std::vector<int64_t> ConfigReader::integer_list(const std::string& key) {
  std::vector<int64_t> out;
  const json* v = lookup(key);
  if (!v) return out;
  if (!v->is_array()) {
    fail(field_error(key, "must be a list of integers (got " + brief(*v) + ")"));
    return out;
  }
  for (const json& e : *v) {
    if (!e.is_number_integer()) {
      fail(field_error(key, "must be a list of integers (got " + brief(*v) + ")"));
      return {};
    }
    out.push_back(e.get<int64_t>());
  }
  return out;
}

std::vector<std::string> ConfigReader::string_list(const std::string& key) {
  std::vector<std::string> out;
  const json* v = lookup(key);
  if (!v) return out;
  if (!v->is_array()) {
    fail(field_error(key, "must be a list of strings (got " + brief(*v) + ")"));
    return out;
  }
  for (const json& e : *v) {
    if (!e.is_string()) {
      fail(field_error(key, "must be a list of strings (got " + brief(*v) + ")"));
      return {};
    }
    out.push_back(e.get<std::string>());
  }
  return out;
}

std::vector<int64_t> ConfigReader::integer_or_list(const std::string& key) {
  const json* v = lookup(key);
  if (!v) return {};
  if (v->is_number_integer()) return {v->get<int64_t>()};
  return integer_list(key);
}

const json* ConfigReader::raw(const std::string& key) { return lookup(key); }

void ConfigReader::ignore(std::initializer_list<const char*> keys) {
  for (const char* k : keys) seen_.insert(k);
}

void ConfigReader::ignore_if_off(const std::string& key) {
  if (!object_.is_object()) return;
  auto it = object_.find(key);
  if (it == object_.end()) return;
  const json& v = *it;
  const bool off = v.is_null() || (v.is_boolean() && !v.get<bool>()) || (v.is_array() && v.empty()) ||
                   (v.is_object() && v.empty());
  if (off) seen_.insert(key);
}

void ConfigReader::require_absent(const std::string& key, const std::string& why) {
  const json* v = lookup(key);
  if (!v) return;
  const bool empty = (v->is_boolean() && !v->get<bool>()) || (v->is_object() && v->empty()) ||
                     (v->is_array() && v->empty()) || (v->is_string() && v->get<std::string>().empty());
  if (!empty) fail(field_error(key, why, ErrorKind::kUnsupported));
}

Status ConfigReader::finish(const std::string& context) {
  if (error_) return *error_;
  if (!object_.is_object()) return Status::Ok();
  for (auto it = object_.begin(); it != object_.end(); ++it) {
    if (seen_.count(it.key())) continue;
    return Error(ErrorKind::kUnsupported, file_ + ": field '" + prefix_ + it.key() + "' is not supported" +
                                              (context.empty() ? "" : " for " + context) +
                                              " (it may change the model's maths; remove it if it does not)");
  }
  return Status::Ok();
}

}  // namespace hilum::moe
