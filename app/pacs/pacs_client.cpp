#include "app/pacs/pacs_client.h"

#include <algorithm>
#include <chrono>
#include <functional>
#include <map>
#include <set>
#include <thread>

#include "app/pacs/dcmtk_net.h"
#include "app/pacs/storage_scp.h"
#include "dcmtk/dcmnet/scu.h"
#include "model/log.h"

namespace hilum::pacs {

using detail::status_text;

const char* to_string(QueryLevel level) {
  switch (level) {
    case QueryLevel::kPatient:
      return "PATIENT";
    case QueryLevel::kStudy:
      return "STUDY";
    case QueryLevel::kSeries:
      return "SERIES";
    case QueryLevel::kImage:
      return "IMAGE";
  }
  return "STUDY";
}

namespace {

bool is_uid(const std::string& s) {
  if (s.empty() || s.size() > 64) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || c == '.'; });
}

std::string safe_name(const std::string& uid) {
  if (is_uid(uid)) return uid;
  char buf[32];
  std::snprintf(buf, sizeof buf, "x%016zx", std::hash<std::string>{}(uid));
  return buf;
}

bool is_date(const std::string& s) {
  if (s.size() != 8 || !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return false;
  const int month = std::stoi(s.substr(4, 2)), day = std::stoi(s.substr(6, 2));
  return month >= 1 && month <= 12 && day >= 1 && day <= 31;
}

// A DcmSCU whose response and sub-operation handlers call back into the
// operation that runs it.
class Scu : public DcmSCU {
 public:
  using DcmSCU::useSecureConnection;

  std::function<bool(QRResponse&)> on_find;            // false: stop reading responses
  std::function<bool(RetrieveResponse&)> on_retrieve;  // C-GET / C-MOVE responses; false: stop
  std::function<Uint16(DcmDataset&)> on_store;         // C-GET sub-operation; returns the C-STORE status
  Uint16 final_status = 0;
  bool stopped_early = false;  // a handler asked to stop before the final response

 protected:
  OFCondition handleFINDResponse(const T_ASC_PresentationContextID pc, QRResponse* response,
                                 OFBool& wait_for_next) override {
    OFCondition c = DcmSCU::handleFINDResponse(pc, response, wait_for_next);
    pass_on(response, on_find, wait_for_next);
    return c;
  }

  OFCondition handleMOVEResponse(const T_ASC_PresentationContextID pc, RetrieveResponse* response,
                                 OFBool& wait_for_next) override {
    OFCondition c = DcmSCU::handleMOVEResponse(pc, response, wait_for_next);
    pass_on(response, on_retrieve, wait_for_next);
    return c;
  }

  OFCondition handleCGETResponse(const T_ASC_PresentationContextID pc, RetrieveResponse* response,
                                 OFBool& continue_session) override {
    OFCondition c = DcmSCU::handleCGETResponse(pc, response, continue_session);
    pass_on(response, on_retrieve, continue_session);
    return c;
  }

  OFCondition handleSTORERequest(const T_ASC_PresentationContextID, DcmDataset* incoming,
                                 OFBool& continue_session, Uint16& store_status) override {
    std::unique_ptr<DcmDataset> dataset(incoming);  // ours to delete
    if (!dataset) return DIMSE_NULLKEY;
    store_status = on_store ? on_store(*dataset) : STATUS_STORE_Refused_OutOfResources;
    if (stopped_early) continue_session = OFFalse;
    return EC_Normal;
  }

 private:
  // Keeps the response's status and hands it to the operation's handler; stops
  // reading when the handler says so.
  template <typename Response>
  void pass_on(Response* response, const std::function<bool(Response&)>& handler, OFBool& wait_for_next) {
    if (!response) return;
    final_status = response->m_status;
    if (handler && !handler(*response)) stop(wait_for_next);
  }

  void stop(OFBool& wait_for_next) {
    if (wait_for_next) stopped_early = true;
    wait_for_next = OFFalse;
  }
};

// One association: the TLS layer must outlive the SCU that uses it.
class Session {
 public:
  explicit Session(const Node& node) : node_(node) { detail::init_dcmtk(); }
  ~Session() {
    if (scu_ && scu_->isConnected()) scu_->abortAssociation();
    scu_.reset();
    tls_.reset();
  }

  Scu& scu() { return *scu_; }

  // Configures the SCU with the node's settings and the given presentation
  // contexts, connects and negotiates.
  Status open(const std::vector<std::pair<std::string, OFList<OFString>>>& contexts,
              T_ASC_SC_ROLE role_for_rest, size_t first_with_role) {
    scu_ = std::make_unique<Scu>();
    Scu& s = *scu_;
    s.setAETitle(node_.calling_ae.c_str());
    s.setPeerAETitle(node_.ae_title.c_str());
    s.setPeerHostName(node_.host.c_str());
    s.setPeerPort(node_.port);
    s.setMaxReceivePDULength(node_.max_pdu);
    s.setACSETimeout(static_cast<Uint32>(node_.timeouts.acse_s));
    s.setDIMSETimeout(static_cast<Uint32>(node_.timeouts.dimse_s));
    s.setDIMSEBlockingMode(DIMSE_NONBLOCKING);
    s.setConnectionTimeout(node_.timeouts.connect_s);
    s.setDatasetConversionMode(OFTrue);
    s.setProgressNotificationMode(OFFalse);
    for (size_t i = 0; i < contexts.size(); ++i) {
      s.addPresentationContext(contexts[i].first.c_str(), contexts[i].second,
                               i >= first_with_role ? role_for_rest : ASC_SC_ROLE_DEFAULT);
    }
    OFCondition c = s.initNetwork();
    if (c.bad())
      return internal_error("PACS " + node_.address() + ": cannot set up the network (" + c.text() + ")");
    if (node_.tls.enabled) {
      auto layer = detail::make_tls_layer(node_.tls, NET_REQUESTOR, "PACS " + node_.address());
      if (!layer.ok()) return layer.error();
      tls_ = std::move(layer).value();
      c = s.useSecureConnection(tls_.get());
      if (c.bad())
        return internal_error("PACS " + node_.address() + ": TLS set-up failed (" + c.text() + ")");
    }
    c = s.negotiateAssociation();
    if (c.bad()) return detail::association_error(node_, c, tls_.get());
    return Status::Ok();
  }

  Status open(const std::vector<std::pair<std::string, OFList<OFString>>>& contexts) {
    return open(contexts, ASC_SC_ROLE_DEFAULT, contexts.size());
  }

  void release() {
    if (scu_ && scu_->isConnected()) scu_->releaseAssociation();
  }
  void abort() {
    if (scu_ && scu_->isConnected()) scu_->abortAssociation();
  }

 private:
  const Node& node_;
  std::unique_ptr<DcmTLSTransportLayer> tls_;
  std::unique_ptr<Scu> scu_;
};

const char* find_sop_class(QueryModel model) {
  return model == QueryModel::kPatientRoot ? UID_FINDPatientRootQueryRetrieveInformationModel
                                           : UID_FINDStudyRootQueryRetrieveInformationModel;
}
const char* get_sop_class(QueryModel model) {
  return model == QueryModel::kPatientRoot ? UID_GETPatientRootQueryRetrieveInformationModel
                                           : UID_GETStudyRootQueryRetrieveInformationModel;
}
const char* move_sop_class(QueryModel model) {
  return model == QueryModel::kPatientRoot ? UID_MOVEPatientRootQueryRetrieveInformationModel
                                           : UID_MOVEStudyRootQueryRetrieveInformationModel;
}

bool non_ascii(const std::string& s) {
  return std::any_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) >= 0x80; });
}

Status validate_query(const Query& q) {
  if (const std::string p = date_range_problem(q.study_date); !p.empty()) {
    return bad_input("study date '" + q.study_date + "' " + p);
  }
  if ((q.level == QueryLevel::kSeries || q.level == QueryLevel::kImage) && q.study_uid.empty()) {
    return bad_input(std::string("a query at ") + to_string(q.level) +
                     " level needs the study UID (--study)");
  }
  if (q.level == QueryLevel::kImage && q.series_uid.empty()) {
    return bad_input("a query at IMAGE level needs the series UID (--series)");
  }
  if (q.level != QueryLevel::kPatient && q.model == QueryModel::kPatientRoot && q.patient_id.empty()) {
    return bad_input("the Patient Root model needs the patient ID below PATIENT level (--patient-id)");
  }
  for (const std::string* uid : {&q.study_uid, &q.series_uid}) {
    if (!uid->empty() && !is_uid(*uid)) return bad_input("'" + *uid + "' is not a DICOM UID");
  }
  return Status::Ok();
}

void put(DcmDataset& ds, const DcmTagKey& tag, const std::string& value) {
  ds.putAndInsertString(tag, value.c_str());
}

DcmDataset build_query(const Query& q) {
  DcmDataset ds;
  const bool utf8 = non_ascii(q.patient_name) || non_ascii(q.patient_id) || non_ascii(q.study_description) ||
                    non_ascii(q.accession_number);
  if (utf8) put(ds, DCM_SpecificCharacterSet, "ISO_IR 192");
  put(ds, DCM_QueryRetrieveLevel, to_string(q.level));
  const bool patient_keys = q.level == QueryLevel::kPatient || q.level == QueryLevel::kStudy;
  if (patient_keys) {
    put(ds, DCM_PatientName, q.patient_name);
    put(ds, DCM_PatientID, q.patient_id);
    put(ds, DCM_PatientBirthDate, "");
    put(ds, DCM_PatientSex, "");
  } else if (q.model == QueryModel::kPatientRoot) {
    put(ds, DCM_PatientID, q.patient_id);  // unique key of the level above
  }
  if (q.level == QueryLevel::kPatient) {
    put(ds, DCM_NumberOfPatientRelatedStudies, "");
    return ds;
  }
  put(ds, DCM_StudyInstanceUID, q.study_uid);
  if (q.level == QueryLevel::kStudy) {
    put(ds, DCM_StudyDate, q.study_date);
    put(ds, DCM_StudyTime, "");
    put(ds, DCM_StudyDescription, q.study_description);
    put(ds, DCM_AccessionNumber, q.accession_number);
    put(ds, DCM_StudyID, "");
    put(ds, DCM_ModalitiesInStudy, q.modality);
    put(ds, DCM_NumberOfStudyRelatedSeries, "");
    put(ds, DCM_NumberOfStudyRelatedInstances, "");
    return ds;
  }
  put(ds, DCM_SeriesInstanceUID, q.series_uid);
  if (q.level == QueryLevel::kSeries) {
    put(ds, DCM_Modality, q.modality);
    put(ds, DCM_SeriesNumber, "");
    put(ds, DCM_SeriesDescription, "");
    put(ds, DCM_NumberOfSeriesRelatedInstances, "");
    return ds;
  }
  put(ds, DCM_SOPInstanceUID, "");
  put(ds, DCM_SOPClassUID, "");
  put(ds, DCM_InstanceNumber, "");
  return ds;
}

std::string get_string(DcmDataset& ds, const DcmTagKey& tag) {
  OFString v;
  if (ds.findAndGetOFStringArray(tag, v).bad()) return "";
  // Trim the padding some servers leave.
  std::string s = v.c_str();
  while (!s.empty() && (s.back() == ' ' || s.back() == '\0')) s.pop_back();
  return s;
}

int get_int(DcmDataset& ds, const DcmTagKey& tag) {
  const std::string s = get_string(ds, tag);
  if (s.empty()) return -1;
  try {
    return std::stoi(s);
  } catch (...) {
    return -1;
  }
}

Match parse_match(DcmDataset& ds, const Query& q) {
  ds.convertToUTF8();  // names in the server's character set -> UTF-8 (best effort)
  Match m;
  m.level = q.level;
  m.patient_name = get_string(ds, DCM_PatientName);
  m.patient_id = get_string(ds, DCM_PatientID);
  m.patient_birth_date = get_string(ds, DCM_PatientBirthDate);
  m.patient_sex = get_string(ds, DCM_PatientSex);
  m.patient_studies = get_int(ds, DCM_NumberOfPatientRelatedStudies);
  m.study_uid = get_string(ds, DCM_StudyInstanceUID);
  if (m.study_uid.empty()) m.study_uid = q.study_uid;
  m.study_date = get_string(ds, DCM_StudyDate);
  m.study_time = get_string(ds, DCM_StudyTime);
  m.study_description = get_string(ds, DCM_StudyDescription);
  m.accession_number = get_string(ds, DCM_AccessionNumber);
  m.study_id = get_string(ds, DCM_StudyID);
  m.modalities_in_study = get_string(ds, DCM_ModalitiesInStudy);
  m.study_series = get_int(ds, DCM_NumberOfStudyRelatedSeries);
  m.study_instances = get_int(ds, DCM_NumberOfStudyRelatedInstances);
  m.series_uid = get_string(ds, DCM_SeriesInstanceUID);
  if (m.series_uid.empty() && q.level == QueryLevel::kImage) m.series_uid = q.series_uid;
  m.series_description = get_string(ds, DCM_SeriesDescription);
  m.modality = get_string(ds, DCM_Modality);
  m.series_number = get_int(ds, DCM_SeriesNumber);
  m.series_instances = get_int(ds, DCM_NumberOfSeriesRelatedInstances);
  m.sop_instance_uid = get_string(ds, DCM_SOPInstanceUID);
  m.sop_class_uid = get_string(ds, DCM_SOPClassUID);
  m.instance_number = get_int(ds, DCM_InstanceNumber);
  return m;
}

void sort_matches(std::vector<Match>& matches, QueryLevel level) {
  std::stable_sort(matches.begin(), matches.end(), [level](const Match& a, const Match& b) {
    switch (level) {
      case QueryLevel::kPatient:
        return a.patient_id < b.patient_id;
      case QueryLevel::kStudy:
        return std::tie(a.study_date, a.study_time, a.study_uid) <
               std::tie(b.study_date, b.study_time, b.study_uid);
      case QueryLevel::kSeries:
        return std::tie(a.series_number, a.series_uid) < std::tie(b.series_number, b.series_uid);
      case QueryLevel::kImage:
        return std::tie(a.instance_number, a.sop_instance_uid) <
               std::tie(b.instance_number, b.sop_instance_uid);
    }
    return false;
  });
}

Status validate_retrieve(const RetrieveRequest& r, const std::filesystem::path& out_dir) {
  if (r.study_uid.empty()) return bad_input("retrieve needs the study UID (--study)");
  for (const std::string* uid : {&r.study_uid, &r.series_uid, &r.sop_instance_uid}) {
    if (!uid->empty() && !is_uid(*uid)) return bad_input("'" + *uid + "' is not a DICOM UID");
  }
  if (!r.sop_instance_uid.empty() && r.series_uid.empty()) {
    return bad_input("retrieving one instance needs its series UID (--series)");
  }
  if (r.model == QueryModel::kPatientRoot && r.patient_id.empty()) {
    return bad_input("the Patient Root model needs the patient ID (--patient-id)");
  }
  if (out_dir.empty()) return bad_input("retrieve needs an output folder (--out)");
  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  if (ec) return bad_input(out_dir.string() + ": cannot create the output folder: " + ec.message());
  return Status::Ok();
}

DcmDataset build_retrieve(const RetrieveRequest& r) {
  DcmDataset ds;
  const char* level = !r.sop_instance_uid.empty() ? "IMAGE" : !r.series_uid.empty() ? "SERIES" : "STUDY";
  put(ds, DCM_QueryRetrieveLevel, level);
  if (r.model == QueryModel::kPatientRoot) put(ds, DCM_PatientID, r.patient_id);
  put(ds, DCM_StudyInstanceUID, r.study_uid);
  if (!r.series_uid.empty()) put(ds, DCM_SeriesInstanceUID, r.series_uid);
  if (!r.sop_instance_uid.empty()) put(ds, DCM_SOPInstanceUID, r.sop_instance_uid);
  return ds;
}

std::string what_to_retrieve(const RetrieveRequest& r) {
  if (!r.sop_instance_uid.empty()) return "instance " + r.sop_instance_uid;
  if (!r.series_uid.empty()) return "series " + r.series_uid;
  return "study " + r.study_uid;
}

// Removes the files a failed retrieve wrote, and the folders it left empty.
void remove_partial(const std::vector<ReceivedInstance>& instances, const std::filesystem::path& out_dir) {
  std::set<std::filesystem::path> dirs;
  for (const auto& inst : instances) {
    std::error_code ec;
    std::filesystem::remove(inst.file, ec);
    dirs.insert(inst.file.parent_path());
    dirs.insert(inst.file.parent_path().parent_path());
  }
  // Deepest first; remove() refuses non-empty folders, which is what we want.
  for (auto it = dirs.rbegin(); it != dirs.rend(); ++it) {
    if (*it == out_dir) continue;
    std::error_code ec;
    std::filesystem::remove(*it, ec);
  }
}

// Progress of a retrieve from the PACS's sub-operation counts.
void report_retrieve(Progress& progress, const RetrieveResponse& r, int received) {
  const int done = r.m_numberOfCompletedSubops + r.m_numberOfFailedSubops + r.m_numberOfWarningSubops;
  const int total = done + r.m_numberOfRemainingSubops;
  const int shown = std::max(done, received);
  if (total > 0) {
    progress.report(static_cast<double>(done) / total,
                    "retrieved " + std::to_string(shown) + " of " + std::to_string(total) + " instances");
  } else {
    progress.report(0, "retrieved " + std::to_string(shown) + " instances");
  }
}

// The C-GET/C-MOVE response handler: keeps the last response's counts in
// `last`, reports them with the instances received so far, and stops (setting
// `cancelled`) when the user cancels.
std::function<bool(RetrieveResponse&)> follow_retrieve(std::unique_ptr<RetrieveResponse>& last,
                                                       bool& cancelled, Progress& progress,
                                                       std::function<int()> received) {
  return [&last, &cancelled, &progress, received = std::move(received)](RetrieveResponse& r) {
    last = std::make_unique<RetrieveResponse>();
    last->m_status = r.m_status;
    last->m_numberOfCompletedSubops = r.m_numberOfCompletedSubops;
    last->m_numberOfFailedSubops = r.m_numberOfFailedSubops;
    last->m_numberOfWarningSubops = r.m_numberOfWarningSubops;
    last->m_numberOfRemainingSubops = r.m_numberOfRemainingSubops;
    report_retrieve(progress, r, received());
    if (progress.cancelled()) {
      cancelled = true;
      return false;
    }
    return true;
  };
}

// Turns the end of a C-GET/C-MOVE into the result or an error.
Result<RetrieveResult> finish_retrieve(const Node& node, const std::string& op,
                                       const RetrieveRequest& request, const std::filesystem::path& out_dir,
                                       uint16_t final_status, const RetrieveResponse* last,
                                       std::vector<ReceivedInstance> instances, int write_failures) {
  RetrieveResult result;
  result.instances = std::move(instances);
  result.study_dir = out_dir / safe_name(request.study_uid);
  if (last) {
    result.completed = last->m_numberOfCompletedSubops;
    result.failed = last->m_numberOfFailedSubops;
    result.warning = last->m_numberOfWarningSubops;
  }
  const std::string where = "PACS " + node.address() + ": " + op + " of " + what_to_retrieve(request);
  auto fail = [&](Error e) -> Result<RetrieveResult> {
    remove_partial(result.instances, out_dir);
    return e;
  };
  if (write_failures > 0) {
    return fail(internal_error(where + ": " + std::to_string(write_failures) +
                               " received instance(s) could not be written to " + out_dir.string()));
  }
  if (final_status == 0x0000) {
    if (result.instances.empty()) {
      return fail(bad_input(where + ": the PACS has no instances for it"));
    }
    if (result.failed > 0) {
      return fail(internal_error(where + ": " + std::to_string(result.failed) + " sub-operation(s) failed"));
    }
    return result;
  }
  if (final_status == 0xB000) {
    const int total = result.completed + result.failed + result.warning;
    return fail(internal_error(where + ": " + std::to_string(result.failed) + " of " + std::to_string(total) +
                               " instances failed (" + status_text(final_status) + ")"));
  }
  if (final_status == 0xA801) {
    return fail(bad_input(where + ": the PACS does not know the move destination '" +
                          node.move_destination_ae() + "' (register it on the PACS with this host and port " +
                          std::to_string(node.storage_port) + ")"));
  }
  if ((final_status & 0xFF00) == 0xA900) {
    return fail(bad_input(where + ": the PACS refused the request: " + status_text(final_status)));
  }
  std::string hint;
  if (op == "C-MOVE" && result.instances.empty() && result.completed == 0) {
    hint = " (does the PACS know the move destination '" + node.move_destination_ae() +
           "' at this host, port " + std::to_string(node.storage_port) + "?)";
  }
  return fail(internal_error(
      where + ": failed with status " + status_text(final_status) +
      (result.failed > 0 ? ", " + std::to_string(result.failed) + " sub-operation(s) failed" : "") + hint));
}

// When a retrieve failed without sending anything, asks the PACS (C-FIND)
// whether it has what was asked for at all; turns "unable to process" into
// "no such study" when it does not.
Error explain_empty_failure(PacsClient& client, const RetrieveRequest& request, Error error) {
  Query q;
  q.model = request.model;
  q.patient_id = request.patient_id;
  q.study_uid = request.study_uid;
  q.level = QueryLevel::kStudy;
  if (!request.series_uid.empty()) {
    q.level = QueryLevel::kSeries;
    q.series_uid = request.series_uid;
  }
  NullProgress quiet;
  auto found = client.find(q, quiet);
  if (found.ok() && found->empty()) {
    return bad_input("PACS " + client.node().address() + ": no " + what_to_retrieve(request) +
                     " on the PACS");
  }
  return error;
}

}  // namespace

std::filesystem::path instance_path(const std::filesystem::path& out_dir, const std::string& study_uid,
                                    const std::string& series_uid, const std::string& sop_instance_uid) {
  return out_dir / safe_name(study_uid) / safe_name(series_uid) / (safe_name(sop_instance_uid) + ".dcm");
}

std::string date_range_problem(const std::string& range) {
  if (range.empty()) return "";
  const size_t dash = range.find('-');
  if (dash == std::string::npos) return is_date(range) ? "" : "is not a date YYYYMMDD";
  if (range.find('-', dash + 1) != std::string::npos) return "has more than one '-'";
  const std::string from = range.substr(0, dash), to = range.substr(dash + 1);
  if (from.empty() && to.empty()) return "is an empty range";
  if (!from.empty() && !is_date(from)) return "does not start with a date YYYYMMDD";
  if (!to.empty() && !is_date(to)) return "does not end with a date YYYYMMDD";
  if (!from.empty() && !to.empty() && from > to) return "ends before it starts";
  return "";
}

PacsClient::PacsClient(Node node) : node_(std::move(node)) {}

Status PacsClient::echo() {
  HILUM_RETURN_IF_ERROR(validate_node(node_, "PACS node"));
  Session session(node_);
  HILUM_RETURN_IF_ERROR(session.open({{UID_VerificationSOPClass, detail::uncompressed_transfer_syntaxes()}}));
  OFCondition c = session.scu().sendECHORequest(0);
  if (c.bad()) return detail::dimse_error(node_, "C-ECHO", c, node_.timeouts.dimse_s);
  session.release();
  return Status::Ok();
}

Result<std::vector<Match>> PacsClient::find(const Query& query_in, Progress& progress) {
  HILUM_RETURN_IF_ERROR(validate_node(node_, "PACS node"));
  Query query = query_in;
  if (query.level == QueryLevel::kPatient) query.model = QueryModel::kPatientRoot;
  HILUM_RETURN_IF_ERROR(validate_query(query));
  if (progress.cancelled()) return cancelled_error();

  Session session(node_);
  const char* sop_class = find_sop_class(query.model);
  progress.report(0, "connecting to " + node_.address());
  HILUM_RETURN_IF_ERROR(session.open({{sop_class, detail::uncompressed_transfer_syntaxes()}}));
  const T_ASC_PresentationContextID pc = session.scu().findPresentationContextID(sop_class, "");
  if (pc == 0) return internal_error("PACS " + node_.address() + ": C-FIND was not accepted");

  std::vector<Match> matches;
  bool cancelled = false;
  Scu& scu = session.scu();
  scu.on_find = [&](QRResponse& r) {
    if (DICOM_PENDING_STATUS(r.m_status) && r.m_dataset) {
      matches.push_back(parse_match(*r.m_dataset, query));
      progress.report(0.5, std::to_string(matches.size()) + " matches");
    }
    if (progress.cancelled()) {
      cancelled = true;
      return false;
    }
    return true;
  };
  DcmDataset keys = build_query(query);
  progress.report(0.1, std::string("C-FIND at ") + to_string(query.level) + " level");
  OFCondition c = scu.sendFINDRequest(pc, &keys, nullptr);
  if (cancelled || progress.cancelled()) {  // Ctrl-C may also interrupt a blocking read
    scu.sendCANCELRequest(pc);
    session.abort();
    return cancelled_error();
  }
  if (c.bad()) return detail::dimse_error(node_, "C-FIND", c, node_.timeouts.dimse_s);
  session.release();
  const uint16_t status = scu.final_status;
  if (status != 0x0000 && !DICOM_PENDING_STATUS(status)) {
    const std::string msg = "PACS " + node_.address() + ": C-FIND failed with status " + status_text(status);
    if ((status & 0xFF00) == 0xA900 || status == 0x0122) return bad_input(msg);
    return internal_error(msg);
  }
  sort_matches(matches, query.level);
  progress.report(1, std::to_string(matches.size()) + " matches");
  return matches;
}

Result<RetrieveResult> PacsClient::get(const RetrieveRequest& request, const std::filesystem::path& out_dir,
                                       Progress& progress) {
  HILUM_RETURN_IF_ERROR(validate_node(node_, "PACS node"));
  HILUM_RETURN_IF_ERROR(validate_retrieve(request, out_dir));
  if (progress.cancelled()) return cancelled_error();

  Session session(node_);
  const char* sop_class = get_sop_class(request.model);
  std::vector<std::pair<std::string, OFList<OFString>>> contexts = {
      {sop_class, detail::uncompressed_transfer_syntaxes()}};
  for (const std::string& storage : detail::storage_sop_classes()) {
    contexts.push_back({storage, detail::receive_transfer_syntaxes()});
  }
  progress.report(0, "connecting to " + node_.address());
  // Storage contexts in the SCP role: the PACS sends the instances to us.
  HILUM_RETURN_IF_ERROR(session.open(contexts, ASC_SC_ROLE_SCP, 1));
  Scu& scu = session.scu();
  const T_ASC_PresentationContextID pc = scu.findPresentationContextID(sop_class, "");
  if (pc == 0) return bad_input("PACS " + node_.address() + ": C-GET is not offered (try `hilum pacs move`)");

  std::vector<ReceivedInstance> instances;
  int write_failures = 0;
  bool cancelled = false;
  std::unique_ptr<RetrieveResponse> last;
  scu.on_store = [&](DcmDataset& dataset) -> Uint16 {
    if (progress.cancelled()) {
      cancelled = true;
      scu.stopped_early = true;
      return STATUS_STORE_Refused_OutOfResources;
    }
    auto saved = detail::save_instance(dataset, out_dir);
    if (!saved.ok()) {
      ++write_failures;
      log_warning("C-GET: " + saved.error().message());
      return saved.error().kind() == ErrorKind::kBadInput ? STATUS_STORE_Error_DataSetDoesNotMatchSOPClass
                                                          : STATUS_STORE_Refused_OutOfResources;
    }
    instances.push_back(std::move(saved).value());
    const int received = static_cast<int>(instances.size());
    if (last) {
      RetrieveResponse& r = *last;
      const int total = r.m_numberOfCompletedSubops + r.m_numberOfFailedSubops + r.m_numberOfWarningSubops +
                        r.m_numberOfRemainingSubops;
      if (total > 0) {
        progress.report(
            std::min(1.0, static_cast<double>(received) / total),
            "retrieved " + std::to_string(received) + " of " + std::to_string(total) + " instances");
        return STATUS_Success;
      }
    }
    progress.report(0, "retrieved " + std::to_string(received) + " instances");
    return STATUS_Success;
  };
  scu.on_retrieve =
      follow_retrieve(last, cancelled, progress, [&] { return static_cast<int>(instances.size()); });
  DcmDataset keys = build_retrieve(request);
  OFCondition c = scu.sendCGETRequest(pc, &keys, nullptr);
  if (cancelled || progress.cancelled()) {
    session.abort();
    remove_partial(instances, out_dir);
    return cancelled_error();
  }
  if (c.bad()) {
    remove_partial(instances, out_dir);
    return detail::dimse_error(node_, "C-GET", c, node_.timeouts.dimse_s);
  }
  session.release();
  auto result = finish_retrieve(node_, "C-GET", request, out_dir, scu.final_status, last.get(),
                                std::move(instances), write_failures);
  if (!result.ok() && (!last || last->m_numberOfCompletedSubops == 0) && write_failures == 0) {
    return explain_empty_failure(*this, request, result.error());
  }
  if (result.ok()) progress.report(1, "retrieved " + std::to_string(result->instances.size()) + " instances");
  return result;
}

Result<RetrieveResult> PacsClient::move(const RetrieveRequest& request, const std::filesystem::path& out_dir,
                                        Progress& progress) {
  HILUM_RETURN_IF_ERROR(validate_node(node_, "PACS node"));
  HILUM_RETURN_IF_ERROR(validate_retrieve(request, out_dir));
  if (progress.cancelled()) return cancelled_error();

  StorageScpOptions scp_options;
  scp_options.ae_title = node_.move_destination_ae();
  scp_options.port = node_.storage_port;
  scp_options.out_dir = out_dir;
  scp_options.timeouts = node_.timeouts;
  scp_options.max_pdu = node_.max_pdu;
  if (node_.tls.enabled && !node_.tls.cert_file.empty()) scp_options.tls = node_.tls;
  HILUM_ASSIGN_OR_RETURN(std::unique_ptr<StorageScp> scp, StorageScp::start(scp_options));

  Session session(node_);
  const char* sop_class = move_sop_class(request.model);
  progress.report(0, "connecting to " + node_.address());
  HILUM_RETURN_IF_ERROR(session.open({{sop_class, detail::uncompressed_transfer_syntaxes()}}));
  Scu& scu = session.scu();
  const T_ASC_PresentationContextID pc = scu.findPresentationContextID(sop_class, "");
  if (pc == 0) return bad_input("PACS " + node_.address() + ": C-MOVE is not offered (try `hilum pacs get`)");

  bool cancelled = false;
  std::unique_ptr<RetrieveResponse> last;
  scu.on_retrieve = follow_retrieve(last, cancelled, progress, [&] { return scp->received(); });
  DcmDataset keys = build_retrieve(request);
  OFCondition c = scu.sendMOVERequest(pc, node_.move_destination_ae().c_str(), &keys, nullptr);
  if (cancelled || progress.cancelled()) {
    scu.sendCANCELRequest(pc);
    session.abort();
    scp->stop();
    remove_partial(scp->instances(), out_dir);
    return cancelled_error();
  }
  if (c.bad()) {
    scp->stop();
    remove_partial(scp->instances(), out_dir);
    return detail::dimse_error(node_, "C-MOVE", c, node_.timeouts.dimse_s);
  }
  session.release();

  // The final response can overtake the last sub-association's release: wait
  // (bounded by the DIMSE timeout) until every completed instance is on disk.
  const int expected = last ? last->m_numberOfCompletedSubops + last->m_numberOfWarningSubops : 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(node_.timeouts.dimse_s);
  while ((scp->received() + scp->failed() < expected || scp->association_active()) &&
         std::chrono::steady_clock::now() < deadline && !progress.cancelled()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  scp->stop();
  if (progress.cancelled()) {
    remove_partial(scp->instances(), out_dir);
    return cancelled_error();
  }
  auto result = finish_retrieve(node_, "C-MOVE", request, out_dir, scu.final_status, last.get(),
                                scp->instances(), scp->failed());
  if (!result.ok() && (!last || last->m_numberOfCompletedSubops == 0) && scp->failed() == 0) {
    return explain_empty_failure(*this, request, result.error());
  }
  if (result.ok() && static_cast<int>(result->instances.size()) < expected) {
    remove_partial(result->instances, out_dir);
    return internal_error("PACS " + node_.address() + ": C-MOVE of " + what_to_retrieve(request) +
                          ": the PACS reported " + std::to_string(expected) + " instances sent but " +
                          std::to_string(result->instances.size()) + " arrived at " +
                          node_.move_destination_ae() + " on port " + std::to_string(node_.storage_port));
  }
  if (result.ok()) progress.report(1, "retrieved " + std::to_string(result->instances.size()) + " instances");
  return result;
}

Result<StoreResult> PacsClient::store(const std::vector<std::filesystem::path>& files, Progress& progress) {
  HILUM_RETURN_IF_ERROR(validate_node(node_, "PACS node"));
  detail::init_dcmtk();
  if (files.empty()) return bad_input("no files to send");

  // Read every header first: a file that is not DICOM stops everything before
  // anything is sent.
  struct Item {
    std::filesystem::path file;
    std::string sop_class, sop_instance, xfer_uid;
    bool uncompressed = false;
  };
  std::vector<Item> items;
  items.reserve(files.size());
  for (const auto& f : files) {
    DcmFileFormat ff;
    OFCondition c = ff.loadFile(f.c_str(), EXS_Unknown, EGL_noChange, 4096);
    if (c.bad()) return bad_input(f.string() + ": not a readable DICOM file (" + c.text() + ")");
    DcmDataset* ds = ff.getDataset();
    Item item;
    item.file = f;
    OFString v;
    if (ds->findAndGetOFString(DCM_SOPClassUID, v).good()) item.sop_class = v.c_str();
    if (ds->findAndGetOFString(DCM_SOPInstanceUID, v).good()) item.sop_instance = v.c_str();
    if (item.sop_class.empty() || item.sop_instance.empty()) {
      return bad_input(f.string() + ": no SOP Class or SOP Instance UID (not a storable DICOM instance)");
    }
    const E_TransferSyntax xfer = ds->getOriginalXfer();
    DcmXfer x(xfer);
    item.xfer_uid = x.getXferID();
    item.uncompressed = !x.isEncapsulated() && xfer != EXS_DeflatedLittleEndianExplicit;
    items.push_back(std::move(item));
  }

  // One presentation context per SOP class and (compressed) transfer syntax;
  // at most 100 per association, so very mixed sets go in several.
  StoreResult result;
  result.files.resize(items.size());
  size_t next = 0;
  while (next < items.size()) {
    std::map<std::pair<std::string, std::string>, bool> keys;
    std::vector<std::pair<std::string, OFList<OFString>>> contexts;
    size_t end = next;
    for (; end < items.size(); ++end) {
      const Item& it = items[end];
      auto key = std::make_pair(it.sop_class, it.uncompressed ? std::string() : it.xfer_uid);
      if (keys.count(key)) continue;
      if (contexts.size() == 100) break;
      keys[key] = true;
      OFList<OFString> ts;
      if (it.uncompressed) {
        ts = detail::uncompressed_transfer_syntaxes();
      } else {
        ts.push_back(it.xfer_uid.c_str());
      }
      contexts.push_back({it.sop_class, ts});
    }
    Session session(node_);
    progress.report(static_cast<double>(next) / items.size(), "connecting to " + node_.address());
    HILUM_RETURN_IF_ERROR(session.open(contexts));
    Scu& scu = session.scu();
    for (size_t i = next; i < end; ++i) {
      if (progress.cancelled()) {
        session.abort();
        return cancelled_error();
      }
      StoreOutcome& out = result.files[i];
      out.file = items[i].file;
      out.sop_instance_uid = items[i].sop_instance;
      Uint16 status = 0;
      // The context for this SOP class in the file's transfer syntax, else an
      // uncompressed one (DCMTK converts between explicit and implicit VR).
      const T_ASC_PresentationContextID pc =
          scu.findAnyPresentationContextID(items[i].sop_class.c_str(), items[i].xfer_uid.c_str());
      OFCondition c = pc == 0 ? OFCondition(DIMSE_NOVALIDPRESENTATIONCONTEXTID)
                              : scu.sendSTORERequest(pc, items[i].file.c_str(), nullptr, status);
      if (c.bad() && progress.cancelled()) {
        session.abort();
        return cancelled_error();
      }
      if (c.bad()) {
        if (!scu.isConnected() || c == DUL_PEERABORTEDASSOCIATION || c == DIMSE_NODATAAVAILABLE ||
            c == DUL_READTIMEOUT) {
          return detail::dimse_error(node_, "C-STORE of " + items[i].file.string(), c,
                                     node_.timeouts.dimse_s);
        }
        out.status = 0xFFFF;
        out.problem = c == DIMSE_NOVALIDPRESENTATIONCONTEXTID
                          ? "not sent: the PACS does not accept this SOP class / transfer syntax"
                          : std::string("not sent: ") + c.text();
        ++result.failed;
      } else {
        out.status = status;
        if (status == 0x0000) {
          ++result.stored;
        } else if ((status & 0xF000) == 0xB000 || status == 0x0107) {
          ++result.warnings;
          out.problem = status_text(status);
        } else {
          ++result.failed;
          out.problem = status_text(status);
        }
      }
      progress.report(static_cast<double>(i + 1) / items.size(),
                      "sent " + std::to_string(i + 1) + " of " + std::to_string(items.size()) + " files");
    }
    session.release();
    next = end;
  }
  return result;
}

}  // namespace hilum::pacs
