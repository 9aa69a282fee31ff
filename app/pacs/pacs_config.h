// Where the PACS is and how Hilum talks to it: named DICOM nodes read from a
// pacs.json file (see docs/pacs.md), overridable from the command line.
//
// Parsing is strict: an unknown field, a wrong type or an invalid value is
// ErrorKind::kBadInput with a message naming the file and the field
// ("pacs.json: nodes.main.prot: unknown field"). Nothing here touches the
// network.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "model/result.h"

namespace hilum::pacs {

struct Timeouts {
  int connect_s = 10;  // TCP connect (DCMTK's connection timeout)
  int acse_s = 30;     // association request/accept/release
  int dimse_s = 60;    // waiting for each DIMSE message (a response, a C-STORE sub-operation)
};

// DICOM TLS (PS3.15 Annex B) through DCMTK's dcmtls (OpenSSL).
struct Tls {
  bool enabled = false;
  std::filesystem::path ca_file;    // PEM certificate(s) trusted to sign the peer's certificate
  std::filesystem::path cert_file;  // our PEM certificate, for peers that require client authentication
  std::filesystem::path key_file;   // its PEM private key (unencrypted)
  bool verify_peer = true;          // false: encrypt but accept any server certificate (testing only)
};

// One remote DICOM application entity (a PACS, an archive, a modality) and the
// local settings used to reach it.
struct Node {
  std::string name;                  // the key in pacs.json ("" for a node given on the command line only)
  std::string ae_title;              // called AE title (the PACS's)
  std::string host;                  // host name or IP address
  uint16_t port = 104;               // the PACS's DICOM port
  std::string calling_ae = "HILUM";  // our AE title, as the PACS knows us
  Timeouts timeouts;
  uint32_t max_pdu = 116794;  // largest PDU we accept (DCMTK's range 4096..131072)
  // C-MOVE: the AE title the PACS sends the instances to (default: calling_ae)
  // and the port of Hilum's storage SCP that receives them.
  std::string move_destination;
  uint16_t storage_port = 11113;
  Tls tls;

  const std::string& move_destination_ae() const {
    return move_destination.empty() ? calling_ae : move_destination;
  }
  // "ORTHANC@127.0.0.1:4242" (AE titles and addresses are not patient data).
  std::string address() const;
};

struct Config {
  std::map<std::string, Node> nodes;
  std::string default_node;      // empty: the only node, if there is exactly one
  std::filesystem::path source;  // the file it was read from

  // The named node; with an empty name, the default node (or the only one).
  Result<Node> node(const std::string& name) const;
};

// Parses pacs.json text. `source` names the file in error messages; relative
// TLS paths are resolved against `base_dir`.
Result<Config> parse_config(std::string_view json_text, const std::string& source,
                            const std::filesystem::path& base_dir);

// Reads and parses a pacs.json file.
Result<Config> load_config(const std::filesystem::path& path);

// The configuration file used when none is given: $HILUM_PACS_CONFIG, else
// $XDG_CONFIG_HOME/hilum/pacs.json (or ~/.config/hilum/pacs.json) when it exists.
std::optional<std::filesystem::path> default_config_path();

// Checks one node's fields (AE titles 1..16 characters of printable ASCII without
// backslash, non-empty host, port 1..65535, timeouts > 0, max PDU in range, TLS
// cert and key together, a CA when the peer is verified) and, with
// `check_files`, that the TLS files can be read. `what` prefixes the messages.
// parse_config() checks everything but the files (a node with a missing
// certificate does not stop the others); PacsClient checks the files too.
Status validate_node(const Node& node, const std::string& what, bool check_files = true);

// Checks an AE title; returns the problem or an empty string.
std::string ae_title_problem(std::string_view ae);

}  // namespace hilum::pacs
