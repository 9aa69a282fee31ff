#include "app/pacs/pacs_config.h"

#include <cstdlib>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>

#include "model/file_io.h"

namespace hilum::pacs {

namespace {

using json = nlohmann::json;

// Reads one JSON object field by field; every field must be known.
class ObjectReader {
 public:
  ObjectReader(const json& object, std::string source, std::string path)
      : object_(object), source_(std::move(source)), path_(std::move(path)) {}

  Error error(const std::string& field, const std::string& problem) const {
    return bad_input(source_ + ": " + where(field) + ": " + problem);
  }
  std::string where(const std::string& field) const { return path_.empty() ? field : path_ + "." + field; }

  Status check_object() const {
    if (!object_.is_object()) {
      return bad_input(source_ + ": " + (path_.empty() ? std::string("top level") : path_) +
                       ": expected a JSON object");
    }
    return Status::Ok();
  }

  // Rejects fields outside `known`.
  Status check_fields(const std::set<std::string>& known) const {
    for (auto it = object_.begin(); it != object_.end(); ++it) {
      if (!known.count(it.key())) return error(it.key(), "unknown field");
    }
    return Status::Ok();
  }

  bool has(const std::string& field) const { return object_.contains(field); }
  const json& at(const std::string& field) const { return object_.at(field); }

  Status get_string(const std::string& field, std::string& out) const {
    if (!has(field)) return Status::Ok();
    const json& v = at(field);
    if (!v.is_string()) return error(field, "expected a string");
    out = v.get<std::string>();
    return Status::Ok();
  }

  Status get_int(const std::string& field, int64_t lo, int64_t hi, int64_t& out) const {
    if (!has(field)) return Status::Ok();
    const json& v = at(field);
    if (!v.is_number_integer()) return error(field, "expected an integer");
    const int64_t x = v.get<int64_t>();
    if (x < lo || x > hi) {
      return error(field,
                   std::to_string(x) + " is out of range " + std::to_string(lo) + ".." + std::to_string(hi));
    }
    out = x;
    return Status::Ok();
  }

  Status get_bool(const std::string& field, bool& out) const {
    if (!has(field)) return Status::Ok();
    const json& v = at(field);
    if (!v.is_boolean()) return error(field, "expected true or false");
    out = v.get<bool>();
    return Status::Ok();
  }

 private:
  const json& object_;
  std::string source_, path_;
};

std::filesystem::path resolve(const std::filesystem::path& base, const std::string& p) {
  if (p.empty()) return {};
  std::filesystem::path path(p);
  return path.is_absolute() || base.empty() ? path : base / path;
}

Status read_timeouts(const ObjectReader& parent, const std::string& field, const std::string& source,
                     Timeouts& t) {
  if (!parent.has(field)) return Status::Ok();
  ObjectReader r(parent.at(field), source, parent.where(field));
  HILUM_RETURN_IF_ERROR(r.check_object());
  HILUM_RETURN_IF_ERROR(r.check_fields({"connect", "acse", "dimse"}));
  int64_t v = t.connect_s;
  HILUM_RETURN_IF_ERROR(r.get_int("connect", 1, 3600, v));
  t.connect_s = static_cast<int>(v);
  v = t.acse_s;
  HILUM_RETURN_IF_ERROR(r.get_int("acse", 1, 3600, v));
  t.acse_s = static_cast<int>(v);
  v = t.dimse_s;
  HILUM_RETURN_IF_ERROR(r.get_int("dimse", 1, 86400, v));
  t.dimse_s = static_cast<int>(v);
  return Status::Ok();
}

Status read_tls(const ObjectReader& parent, const std::string& source, const std::filesystem::path& base,
                Tls& tls) {
  if (!parent.has("tls")) return Status::Ok();
  ObjectReader r(parent.at("tls"), source, parent.where("tls"));
  HILUM_RETURN_IF_ERROR(r.check_object());
  HILUM_RETURN_IF_ERROR(r.check_fields({"enabled", "ca", "cert", "key", "verify_peer"}));
  tls.enabled = true;  // a "tls" block turns TLS on unless it says "enabled": false
  HILUM_RETURN_IF_ERROR(r.get_bool("enabled", tls.enabled));
  std::string ca, cert, key;
  HILUM_RETURN_IF_ERROR(r.get_string("ca", ca));
  HILUM_RETURN_IF_ERROR(r.get_string("cert", cert));
  HILUM_RETURN_IF_ERROR(r.get_string("key", key));
  HILUM_RETURN_IF_ERROR(r.get_bool("verify_peer", tls.verify_peer));
  tls.ca_file = resolve(base, ca);
  tls.cert_file = resolve(base, cert);
  tls.key_file = resolve(base, key);
  return Status::Ok();
}

// Fields a node may hold; the top level may hold the same as defaults for all nodes.
const std::set<std::string> kNodeFields = {"ae_title",     "host",       "port", "calling_ae",
                                           "timeouts",     "max_pdu",    "tls",  "move_destination",
                                           "storage_port", "description"};

Status read_node_fields(const ObjectReader& r, const std::string& source, const std::filesystem::path& base,
                        Node& node) {
  HILUM_RETURN_IF_ERROR(r.get_string("ae_title", node.ae_title));
  HILUM_RETURN_IF_ERROR(r.get_string("host", node.host));
  int64_t v = node.port;
  HILUM_RETURN_IF_ERROR(r.get_int("port", 1, 65535, v));
  node.port = static_cast<uint16_t>(v);
  HILUM_RETURN_IF_ERROR(r.get_string("calling_ae", node.calling_ae));
  HILUM_RETURN_IF_ERROR(read_timeouts(r, "timeouts", source, node.timeouts));
  v = node.max_pdu;
  HILUM_RETURN_IF_ERROR(r.get_int("max_pdu", 4096, 131072, v));
  node.max_pdu = static_cast<uint32_t>(v);
  HILUM_RETURN_IF_ERROR(read_tls(r, source, base, node.tls));
  HILUM_RETURN_IF_ERROR(r.get_string("move_destination", node.move_destination));
  v = node.storage_port;
  HILUM_RETURN_IF_ERROR(r.get_int("storage_port", 1, 65535, v));
  node.storage_port = static_cast<uint16_t>(v);
  std::string description;
  HILUM_RETURN_IF_ERROR(r.get_string("description", description));
  return Status::Ok();
}

}  // namespace

std::string Node::address() const { return ae_title + "@" + host + ":" + std::to_string(port); }

std::string ae_title_problem(std::string_view ae) {
  if (ae.empty()) return "is empty";
  if (ae.size() > 16) return "is longer than 16 characters";
  bool all_spaces = true;
  for (char c : ae) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u > 0x7e || c == '\\')
      return "may only hold printable ASCII characters without backslash";
    if (c != ' ') all_spaces = false;
  }
  if (all_spaces) return "is blank";
  return "";
}

Status validate_node(const Node& node, const std::string& what, bool check_files) {
  auto check_ae = [&](const std::string& field, const std::string& ae) -> Status {
    const std::string problem = ae_title_problem(ae);
    if (!problem.empty()) return bad_input(what + ": " + field + " '" + ae + "' " + problem);
    return Status::Ok();
  };
  HILUM_RETURN_IF_ERROR(check_ae("ae_title", node.ae_title));
  HILUM_RETURN_IF_ERROR(check_ae("calling_ae", node.calling_ae));
  if (!node.move_destination.empty())
    HILUM_RETURN_IF_ERROR(check_ae("move_destination", node.move_destination));
  if (node.host.empty()) return bad_input(what + ": host is empty");
  if (node.host.size() > 57) return bad_input(what + ": host name is longer than 57 characters");
  if (node.port == 0) return bad_input(what + ": port must be 1..65535");
  if (node.storage_port == 0) return bad_input(what + ": storage_port must be 1..65535");
  if (node.timeouts.connect_s <= 0 || node.timeouts.acse_s <= 0 || node.timeouts.dimse_s <= 0) {
    return bad_input(what + ": timeouts must be positive");
  }
  if (node.max_pdu < 4096 || node.max_pdu > 131072) return bad_input(what + ": max_pdu must be 4096..131072");
  if (node.tls.enabled) {
    auto check_file = [&](const std::string& field, const std::filesystem::path& p) -> Status {
      if (p.empty() || !check_files) return Status::Ok();
      std::ifstream f(p);
      if (!f) return bad_input(what + ": tls " + field + " file " + p.string() + " cannot be read");
      return Status::Ok();
    };
    HILUM_RETURN_IF_ERROR(check_file("ca", node.tls.ca_file));
    HILUM_RETURN_IF_ERROR(check_file("cert", node.tls.cert_file));
    HILUM_RETURN_IF_ERROR(check_file("key", node.tls.key_file));
    if (node.tls.cert_file.empty() != node.tls.key_file.empty()) {
      return bad_input(what + ": tls cert and key go together (give both or neither)");
    }
    if (node.tls.verify_peer && node.tls.ca_file.empty()) {
      return bad_input(what + ": tls needs a ca file to verify the server (or verify_peer false)");
    }
  }
  return Status::Ok();
}

Result<Node> Config::node(const std::string& name) const {
  const std::string src = source.empty() ? std::string("PACS configuration") : source.string();
  std::string key = name.empty() ? default_node : name;
  if (key.empty()) {
    if (nodes.size() == 1) return nodes.begin()->second;
    if (nodes.empty()) return bad_input(src + ": no nodes configured");
    return bad_input(src + ": several nodes and no default_node: choose one with --node NAME");
  }
  auto it = nodes.find(key);
  if (it == nodes.end()) {
    std::string known;
    for (const auto& [k, v] : nodes) known += (known.empty() ? "" : ", ") + k;
    return bad_input(src + ": no node named '" + key + "' (configured: " + (known.empty() ? "none" : known) +
                     ")");
  }
  return it->second;
}

Result<Config> parse_config(std::string_view json_text, const std::string& source,
                            const std::filesystem::path& base_dir) {
  json doc;
  try {
    doc = json::parse(json_text);
  } catch (const json::parse_error& e) {
    // nlohmann's message carries the byte offset; keep only that part.
    return bad_input(source + ": not valid JSON (" + std::string(e.what()) + ")");
  }
  ObjectReader top(doc, source, "");
  HILUM_RETURN_IF_ERROR(top.check_object());
  std::set<std::string> top_fields = kNodeFields;
  top_fields.erase("ae_title");
  top_fields.erase("host");
  top_fields.erase("port");
  top_fields.insert({"nodes", "default_node"});
  HILUM_RETURN_IF_ERROR(top.check_fields(top_fields));

  // Top-level values are defaults for every node.
  Node defaults;
  HILUM_RETURN_IF_ERROR(read_node_fields(top, source, base_dir, defaults));

  Config config;
  config.source = source;
  HILUM_RETURN_IF_ERROR(top.get_string("default_node", config.default_node));
  if (!top.has("nodes")) return bad_input(source + ": nodes: missing (an object of named PACS nodes)");
  ObjectReader nodes(top.at("nodes"), source, "nodes");
  HILUM_RETURN_IF_ERROR(nodes.check_object());
  for (auto it = top.at("nodes").begin(); it != top.at("nodes").end(); ++it) {
    const std::string path = "nodes." + it.key();
    ObjectReader r(it.value(), source, path);
    HILUM_RETURN_IF_ERROR(r.check_object());
    HILUM_RETURN_IF_ERROR(r.check_fields(kNodeFields));
    for (const char* required : {"ae_title", "host", "port"}) {
      if (!r.has(required)) return r.error(required, "missing");
    }
    Node node = defaults;
    node.name = it.key();
    HILUM_RETURN_IF_ERROR(read_node_fields(r, source, base_dir, node));
    HILUM_RETURN_IF_ERROR(validate_node(node, source + ": " + path, /*check_files=*/false));
    config.nodes[node.name] = node;
  }
  if (!config.default_node.empty() && !config.nodes.count(config.default_node)) {
    return bad_input(source + ": default_node '" + config.default_node + "' is not one of the nodes");
  }
  return config;
}

Result<Config> load_config(const std::filesystem::path& path) {
  auto text = read_file(path);
  if (!text.ok())
    return bad_input(path.string() + ": cannot read the PACS configuration (" + text.error().message() + ")");
  return parse_config(*text, path.string(), path.parent_path());
}

std::optional<std::filesystem::path> default_config_path() {
  if (const char* env = std::getenv("HILUM_PACS_CONFIG"); env && *env) return std::filesystem::path(env);
  std::filesystem::path dir;
  if (const char* xdg = std::getenv("XDG_CONFIG_HOME"); xdg && *xdg) {
    dir = xdg;
  } else if (const char* home = std::getenv("HOME"); home && *home) {
    dir = std::filesystem::path(home) / ".config";
  } else {
    return std::nullopt;
  }
  std::filesystem::path p = dir / "hilum" / "pacs.json";
  std::error_code ec;
  if (std::filesystem::exists(p, ec)) return p;
  return std::nullopt;
}

}  // namespace hilum::pacs
