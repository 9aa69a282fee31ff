// `hilum pacs echo|find|get|move|store|wrap-pdf`: query, retrieve and store with a
// PACS (see docs/pacs.md). Built only with imaging (DCMTK): HILUM_HAVE_PACS.
#if HILUM_HAVE_PACS
#include <cstdio>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>

#include "app/cli/cli.h"
#include "app/cli/terminal_progress.h"
#include "app/pacs/encapsulated_pdf.h"
#include "app/pacs/pacs_client.h"
#include "app/pacs/pacs_config.h"
#include "model/stopwatch.h"

namespace hilum::cli {

namespace {

using namespace hilum::pacs;

// Connection options every `hilum pacs` command takes.
struct ConnectionOptions {
  std::string config, node, host, aet, calling_aet;
  int port = 0;
  int connect_timeout = 0, acse_timeout = 0, dimse_timeout = 0;
  int max_pdu = 0;
  bool tls = false, tls_no_verify = false;
  std::string tls_ca, tls_cert, tls_key;
};

void add_connection_options(CLI::App* cmd, ConnectionOptions& o) {
  const char* group = "Connection";
  cmd->add_option("--config", o.config,
                  "PACS configuration (pacs.json; default: $HILUM_PACS_CONFIG or ~/.config/hilum/pacs.json)")
      ->group(group);
  cmd->add_option("--node", o.node,
                  "Node of the configuration to use (default: default_node or the only one)")
      ->group(group);
  cmd->add_option("--host", o.host, "PACS host name or IP address")->group(group);
  cmd->add_option("--port", o.port, "PACS DICOM port")->check(CLI::Range(1, 65535))->group(group);
  cmd->add_option("--aet", o.aet, "Called AE title (the PACS's)")->group(group);
  cmd->add_option("--calling-aet", o.calling_aet, "Our AE title (default HILUM)")->group(group);
  cmd->add_option("--connect-timeout", o.connect_timeout, "Seconds to wait for the TCP connection")
      ->check(CLI::Range(1, 3600))
      ->group(group);
  cmd->add_option("--acse-timeout", o.acse_timeout, "Seconds to wait for association messages")
      ->check(CLI::Range(1, 3600))
      ->group(group);
  cmd->add_option("--dimse-timeout", o.dimse_timeout, "Seconds to wait for each DIMSE message")
      ->check(CLI::Range(1, 86400))
      ->group(group);
  cmd->add_option("--max-pdu", o.max_pdu, "Largest PDU we receive (4096..131072)")
      ->check(CLI::Range(4096, 131072))
      ->group(group);
  cmd->add_flag("--tls", o.tls, "Use DICOM TLS")->group(group);
  cmd->add_option("--tls-ca", o.tls_ca, "PEM certificate(s) that sign the PACS's certificate")->group(group);
  cmd->add_option("--tls-cert", o.tls_cert, "Our PEM certificate (client authentication)")->group(group);
  cmd->add_option("--tls-key", o.tls_key, "Our PEM private key")->group(group);
  cmd->add_flag("--tls-no-verify", o.tls_no_verify, "Do not verify the PACS's certificate (testing only)")
      ->group(group);
}

// The node from the configuration file and/or the command line.
Result<Node> resolve_node(const ConnectionOptions& o) {
  std::optional<std::filesystem::path> config_path;
  if (!o.config.empty()) {
    config_path = o.config;
  } else {
    config_path = default_config_path();
  }
  Node node;
  const bool from_config = config_path && (!o.node.empty() || o.host.empty());
  if (from_config) {
    HILUM_ASSIGN_OR_RETURN(Config config, load_config(*config_path));
    HILUM_ASSIGN_OR_RETURN(node, config.node(o.node));
  } else if (!o.node.empty()) {
    return bad_input("--node " + o.node + " needs a configuration file (--config FILE)");
  } else if (o.host.empty()) {
    return bad_input(
        "no PACS configured: give --config FILE (or set HILUM_PACS_CONFIG), or --host, --port and --aet");
  } else if (o.port == 0 || o.aet.empty()) {
    return bad_input("--host needs --port and --aet too (or a configuration file)");
  }
  if (!o.host.empty()) node.host = o.host;
  if (o.port) node.port = static_cast<uint16_t>(o.port);
  if (!o.aet.empty()) node.ae_title = o.aet;
  if (!o.calling_aet.empty()) node.calling_ae = o.calling_aet;
  if (o.connect_timeout) node.timeouts.connect_s = o.connect_timeout;
  if (o.acse_timeout) node.timeouts.acse_s = o.acse_timeout;
  if (o.dimse_timeout) node.timeouts.dimse_s = o.dimse_timeout;
  if (o.max_pdu) node.max_pdu = static_cast<uint32_t>(o.max_pdu);
  const bool tls_options = !o.tls_ca.empty() || !o.tls_cert.empty() || !o.tls_key.empty() || o.tls_no_verify;
  if (tls_options && !o.tls && !node.tls.enabled)
    return bad_input("--tls-ca/--tls-cert/--tls-key need --tls");
  if (o.tls) node.tls.enabled = true;
  if (!o.tls_ca.empty()) node.tls.ca_file = o.tls_ca;
  if (!o.tls_cert.empty()) node.tls.cert_file = o.tls_cert;
  if (!o.tls_key.empty()) node.tls.key_file = o.tls_key;
  if (o.tls_no_verify) node.tls.verify_peer = false;
  HILUM_RETURN_IF_ERROR(
      validate_node(node, node.name.empty() ? std::string("PACS node") : "PACS node " + node.name));
  return node;
}

// ---- find output ----

std::string count_text(int n) { return n < 0 ? "" : std::to_string(n); }

std::string sop_class_name(const std::string& uid) {
  if (uid == "1.2.840.10008.5.1.4.1.1.2") return "CT";
  if (uid == "1.2.840.10008.5.1.4.1.1.4") return "MR";
  if (uid == "1.2.840.10008.5.1.4.1.1.104.1") return "Encapsulated PDF";
  if (uid == "1.2.840.10008.5.1.4.1.1.88.11") return "Basic Text SR";
  if (uid == "1.2.840.10008.5.1.4.1.1.88.22") return "Enhanced SR";
  if (uid == "1.2.840.10008.5.1.4.1.1.88.33") return "Comprehensive SR";
  if (uid == "1.2.840.10008.5.1.4.1.1.88.34") return "Comprehensive 3D SR";
  if (uid == "1.2.840.10008.5.1.4.1.1.7") return "Secondary Capture";
  return uid;
}

struct Table {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;

  void print() const {
    std::vector<size_t> width(header.size());
    for (size_t c = 0; c < header.size(); ++c) width[c] = header[c].size();
    for (const auto& row : rows) {
      for (size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
    }
    auto line = [&](const std::vector<std::string>& cells) {
      std::string s;
      for (size_t c = 0; c < cells.size(); ++c) {
        s += cells[c];
        if (c + 1 < cells.size()) s += std::string(width[c] - cells[c].size() + 2, ' ');
      }
      std::printf("%s\n", s.c_str());
    };
    line(header);
    for (const auto& row : rows) line(row);
  }
};

void print_table(const std::vector<Match>& matches, QueryLevel level) {
  Table t;
  switch (level) {
    case QueryLevel::kPatient:
      t.header = {"PatientID", "PatientName", "BirthDate", "Sex", "Studies"};
      for (const auto& m : matches) {
        t.rows.push_back({m.patient_id, m.patient_name, m.patient_birth_date, m.patient_sex,
                          count_text(m.patient_studies)});
      }
      break;
    case QueryLevel::kStudy:
      t.header = {"PatientID", "PatientName", "StudyDate", "Modalities",      "Description",
                  "Accession", "Series",      "Instances", "StudyInstanceUID"};
      for (const auto& m : matches) {
        t.rows.push_back({m.patient_id, m.patient_name, m.study_date, m.modalities_in_study,
                          m.study_description, m.accession_number, count_text(m.study_series),
                          count_text(m.study_instances), m.study_uid});
      }
      break;
    case QueryLevel::kSeries:
      t.header = {"Number", "Modality", "Description", "Instances", "SeriesInstanceUID"};
      for (const auto& m : matches) {
        t.rows.push_back({count_text(m.series_number), m.modality, m.series_description,
                          count_text(m.series_instances), m.series_uid});
      }
      break;
    case QueryLevel::kImage:
      t.header = {"Number", "SOPClass", "SOPInstanceUID"};
      for (const auto& m : matches) {
        t.rows.push_back(
            {count_text(m.instance_number), sop_class_name(m.sop_class_uid), m.sop_instance_uid});
      }
      break;
  }
  t.print();
}

nlohmann::json match_json(const Match& m) {
  nlohmann::json j = nlohmann::json::object();
  j["level"] = to_string(m.level);
  auto str = [&j](const char* key, const std::string& v) {
    if (!v.empty()) j[key] = v;
  };
  auto num = [&j](const char* key, int v) {
    if (v >= 0) j[key] = v;
  };
  str("patient_name", m.patient_name);
  str("patient_id", m.patient_id);
  str("patient_birth_date", m.patient_birth_date);
  str("patient_sex", m.patient_sex);
  num("patient_studies", m.patient_studies);
  str("study_uid", m.study_uid);
  str("study_date", m.study_date);
  str("study_time", m.study_time);
  str("study_description", m.study_description);
  str("accession_number", m.accession_number);
  str("study_id", m.study_id);
  str("modalities_in_study", m.modalities_in_study);
  num("study_series", m.study_series);
  num("study_instances", m.study_instances);
  str("series_uid", m.series_uid);
  str("series_description", m.series_description);
  str("modality", m.modality);
  num("series_number", m.series_number);
  num("series_instances", m.series_instances);
  str("sop_instance_uid", m.sop_instance_uid);
  str("sop_class_uid", m.sop_class_uid);
  num("instance_number", m.instance_number);
  return j;
}

// ---- store input ----

bool looks_like_dicom(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  char buf[132];
  if (!f.read(buf, sizeof buf)) return false;
  return std::string(buf + 128, 4) == "DICM";
}

// Files given on the command line are sent as they are (and must be DICOM);
// folders are searched recursively for files with a DICOM preamble.
Result<std::vector<std::filesystem::path>> collect_files(const std::vector<std::string>& inputs,
                                                         int& skipped) {
  std::vector<std::filesystem::path> files;
  for (const auto& in : inputs) {
    std::error_code ec;
    const std::filesystem::path p(in);
    if (std::filesystem::is_directory(p, ec)) {
      std::vector<std::filesystem::path> found;
      for (auto it = std::filesystem::recursive_directory_iterator(p, ec);
           !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
        if (!it->is_regular_file(ec)) continue;
        // A DICOMDIR indexes files; it is not an instance to store.
        if (it->path().filename() != "DICOMDIR" && looks_like_dicom(it->path())) {
          found.push_back(it->path());
        } else {
          ++skipped;
        }
      }
      if (ec) return bad_input(in + ": cannot read the folder: " + ec.message());
      std::sort(found.begin(), found.end());
      files.insert(files.end(), found.begin(), found.end());
    } else if (std::filesystem::exists(p, ec)) {
      files.push_back(p);
    } else {
      return bad_input(in + ": no such file or folder");
    }
  }
  if (files.empty()) return bad_input("no DICOM files to send");
  return files;
}

QueryModel parse_model(const std::string& s) {
  return s == "patient" ? QueryModel::kPatientRoot : QueryModel::kStudyRoot;
}

struct RetrieveOptions {
  std::string study, series, instance, patient_id, model = "study", out;
};

void add_retrieve_options(CLI::App* cmd, RetrieveOptions& r) {
  cmd->add_option("--study", r.study, "Study Instance UID")->required();
  cmd->add_option("--series", r.series, "Series Instance UID (only this series)");
  cmd->add_option("--instance", r.instance, "SOP Instance UID (only this instance; needs --series)");
  cmd->add_option("--model", r.model, "Query/retrieve information model")
      ->check(CLI::IsMember({"study", "patient"}))
      ->capture_default_str();
  cmd->add_option("--patient-id", r.patient_id, "Patient ID (needed with --model patient)");
  cmd->add_option("--out", r.out, "Folder that receives <StudyUID>/<SeriesUID>/<SOPInstanceUID>.dcm")
      ->required();
}

RetrieveRequest to_request(const RetrieveOptions& r) {
  RetrieveRequest q;
  q.study_uid = r.study;
  q.series_uid = r.series;
  q.sop_instance_uid = r.instance;
  q.patient_id = r.patient_id;
  q.model = parse_model(r.model);
  return q;
}

Status print_retrieved(const Result<RetrieveResult>& result) {
  if (!result.ok()) return result.error();
  std::printf("retrieved %zu instances into %s\n", result->instances.size(), result->study_dir.c_str());
  return Status::Ok();
}

}  // namespace

void register_pacs_commands(CommandLine& cl) {
  CLI::App* pacs = cl.add_group(nullptr, "pacs",
                                "Query, retrieve and store with a PACS (DICOM C-ECHO/FIND/GET/MOVE/STORE)");

  {
    auto o = std::make_shared<ConnectionOptions>();
    CLI::App* cmd = cl.add(pacs, "echo", "Check the connection and the AE titles (C-ECHO)", [o]() -> Status {
      HILUM_ASSIGN_OR_RETURN(Node node, resolve_node(*o));
      const Stopwatch clock;
      HILUM_RETURN_IF_ERROR(PacsClient(node).echo());
      const double ms = clock.milliseconds();
      std::printf("C-ECHO %s -> %s: ok (%.0f ms%s)\n", node.calling_ae.c_str(), node.address().c_str(), ms,
                  node.tls.enabled ? ", TLS" : "");
      return Status::Ok();
    });
    add_connection_options(cmd, *o);
  }

  {
    auto o = std::make_shared<ConnectionOptions>();
    auto q = std::make_shared<Query>();
    auto level = std::make_shared<std::string>("study");
    auto model = std::make_shared<std::string>("study");
    auto json = std::make_shared<bool>(false);
    CLI::App* cmd = cl.add(pacs, "find", "Search the PACS (C-FIND); prints a table, or JSON with --json",
                           [o, q, level, model, json]() -> Status {
                             q->level = *level == "patient"  ? QueryLevel::kPatient
                                        : *level == "series" ? QueryLevel::kSeries
                                        : *level == "image"  ? QueryLevel::kImage
                                                             : QueryLevel::kStudy;
                             q->model = parse_model(*model);
                             HILUM_ASSIGN_OR_RETURN(Node node, resolve_node(*o));
                             HILUM_ASSIGN_OR_RETURN(std::vector<Match> matches,
                                                    PacsClient(node).find(*q, process_progress()));
                             process_progress().finish();
                             if (*json) {
                               nlohmann::json out = nlohmann::json::array();
                               for (const auto& m : matches) out.push_back(match_json(m));
                               std::printf("%s\n", out.dump(2).c_str());
                             } else {
                               print_table(matches, q->level);
                             }
                             return Status::Ok();
                           });
    cmd->add_option("--level", *level, "Query level")
        ->check(CLI::IsMember({"patient", "study", "series", "image"}))
        ->capture_default_str();
    cmd->add_option("--model", *model, "Information model (patient level always uses patient)")
        ->check(CLI::IsMember({"study", "patient"}))
        ->capture_default_str();
    cmd->add_option("--patient-id", q->patient_id, "Patient ID (wildcards * and ? allowed)");
    cmd->add_option("--patient-name", q->patient_name,
                    "Patient name, DICOM form FAMILY^GIVEN (wildcards allowed)");
    cmd->add_option("--date", q->study_date,
                    "Study date YYYYMMDD or range YYYYMMDD-YYYYMMDD, YYYYMMDD-, -YYYYMMDD");
    cmd->add_option("--modality", q->modality, "Modality (study level: modalities in study)");
    cmd->add_option("--accession", q->accession_number, "Accession number");
    cmd->add_option("--description", q->study_description, "Study description (wildcards allowed)");
    cmd->add_option("--study", q->study_uid, "Study Instance UID (needed at series and image level)");
    cmd->add_option("--series", q->series_uid, "Series Instance UID (needed at image level)");
    cmd->add_flag("--json", *json, "Print the matches as a JSON array");
    add_connection_options(cmd, *o);
  }

  {
    auto o = std::make_shared<ConnectionOptions>();
    auto r = std::make_shared<RetrieveOptions>();
    CLI::App* cmd =
        cl.add(pacs, "get", "Retrieve a study or series with C-GET (one association)", [o, r]() -> Status {
          HILUM_ASSIGN_OR_RETURN(Node node, resolve_node(*o));
          auto result = PacsClient(node).get(to_request(*r), r->out, process_progress());
          process_progress().finish();
          return print_retrieved(result);
        });
    add_retrieve_options(cmd, *r);
    add_connection_options(cmd, *o);
  }

  {
    auto o = std::make_shared<ConnectionOptions>();
    auto r = std::make_shared<RetrieveOptions>();
    auto dest_ae = std::make_shared<std::string>();
    auto scp_port = std::make_shared<int>(0);
    CLI::App* cmd =
        cl.add(pacs, "move",
               "Retrieve a study or series with C-MOVE to Hilum's own storage SCP (the PACS must know "
               "the destination AE title with this host and port)",
               [o, r, dest_ae, scp_port]() -> Status {
                 HILUM_ASSIGN_OR_RETURN(Node node, resolve_node(*o));
                 if (!dest_ae->empty()) node.move_destination = *dest_ae;
                 if (*scp_port) node.storage_port = static_cast<uint16_t>(*scp_port);
                 HILUM_RETURN_IF_ERROR(validate_node(node, "PACS node"));
                 auto result = PacsClient(node).move(to_request(*r), r->out, process_progress());
                 process_progress().finish();
                 return print_retrieved(result);
               });
    add_retrieve_options(cmd, *r);
    cmd->add_option("--dest-ae", *dest_ae, "Move destination AE title (default: the calling AE title)");
    cmd->add_option("--scp-port", *scp_port,
                    "Port of Hilum's storage SCP (default: the node's storage_port, 11113)")
        ->check(CLI::Range(1, 65535));
    add_connection_options(cmd, *o);
  }

  {
    auto o = std::make_shared<ConnectionOptions>();
    auto inputs = std::make_shared<std::vector<std::string>>();
    CLI::App* cmd = cl.add(
        pacs, "store",
        "Send DICOM files to the PACS (C-STORE): images, SR, encapsulated PDF; folders are searched "
        "recursively",
        [o, inputs]() -> Status {
          HILUM_ASSIGN_OR_RETURN(Node node, resolve_node(*o));
          int skipped = 0;
          HILUM_ASSIGN_OR_RETURN(std::vector<std::filesystem::path> files, collect_files(*inputs, skipped));
          HILUM_ASSIGN_OR_RETURN(StoreResult result, PacsClient(node).store(files, process_progress()));
          process_progress().finish();
          for (const auto& f : result.files) {
            if (!f.problem.empty()) std::fprintf(stderr, "%s: %s\n", f.file.c_str(), f.problem.c_str());
          }
          std::printf("stored %d of %zu files on %s", result.stored + result.warnings, result.files.size(),
                      node.address().c_str());
          if (result.warnings) std::printf(" (%d with warnings)", result.warnings);
          if (skipped) std::printf("; skipped %d non-DICOM files", skipped);
          std::printf("\n");
          if (result.failed > 0) {
            return internal_error(std::to_string(result.failed) + " of " +
                                  std::to_string(result.files.size()) + " files were refused by " +
                                  node.address());
          }
          return Status::Ok();
        });
    cmd->add_option("files", *inputs, "DICOM files or folders")->required();
    add_connection_options(cmd, *o);
  }

  {
    auto pdf = std::make_shared<std::string>();
    auto study_file = std::make_shared<std::string>();
    auto out = std::make_shared<std::string>();
    auto options = std::make_shared<EncapsulatedPdfOptions>();
    CLI::App* cmd = cl.add(
        pacs, "wrap-pdf",
        "Wrap a PDF report as a DICOM Encapsulated PDF of a study, ready for `hilum pacs store`",
        [pdf, study_file, out, options]() -> Status {
          EncapsulatedPdfOptions opt = *options;
          HILUM_ASSIGN_OR_RETURN(
              StudyInfo study, read_study_identifiers(*study_file, &opt.study_id, &opt.referring_physician));
          HILUM_ASSIGN_OR_RETURN(std::string uid, write_encapsulated_pdf(*pdf, study, opt, *out));
          std::printf("wrote %s (SOP Instance UID %s)\n", out->c_str(), uid.c_str());
          return Status::Ok();
        });
    cmd->add_option("--pdf", *pdf, "The PDF file")->required();
    cmd->add_option("--study-file", *study_file, "A DICOM file of the study (patient and study identifiers)")
        ->required();
    cmd->add_option("--out", *out, "The DICOM file to write")->required();
    cmd->add_option("--title", options->document_title, "Document title")->capture_default_str();
    cmd->add_option("--series-number", options->series_number, "Series number")->capture_default_str();
  }
}

}  // namespace hilum::cli

#endif  // HILUM_HAVE_PACS
