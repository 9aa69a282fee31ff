// A DICOM client for one PACS node (DIMSE over DCMTK's DcmSCU): verify the
// connection (C-ECHO), query (C-FIND at patient, study, series, image level),
// retrieve (C-GET on one association, or C-MOVE to Hilum's own storage SCP) and
// send files back (C-STORE). See docs/pacs.md.
//
// Every call opens its own association and closes it before returning, so one
// PacsClient may serve calls from one thread at a time; separate clients may run
// on separate threads (DCMTK's connect timeout is process-wide: the last one set
// wins).
//
// Errors are values. Messages name the node ("ORTHANC@pacs:4242") and what went
// wrong (connection refused, host unreachable, timeout, association rejected and
// why, the DIMSE status) and never contain patient data. ErrorKind::kBadInput
// (exit code 2): the request or configuration is wrong (invalid query, AE title
// the PACS rejects, unreadable or non-DICOM file to send). ErrorKind::kInternal
// (exit code 1): the network or the PACS failed (refused, unreachable, timeout,
// failure status). ErrorKind::kCancelled when progress.cancelled() turned true.
//
// Patient names and IDs come back in PacsMatch because the user asked for them;
// callers must not log them.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "app/pacs/pacs_config.h"
#include "model/progress.h"
#include "model/result.h"

namespace hilum::pacs {

enum class QueryLevel { kPatient, kStudy, kSeries, kImage };
// Patient Root or Study Root Query/Retrieve information model.
enum class QueryModel { kStudyRoot, kPatientRoot };

const char* to_string(QueryLevel level);  // "PATIENT", "STUDY", "SERIES", "IMAGE"

// Matching keys; empty fields match everything. Text keys may use the DICOM
// wildcards * and ?. Dates are YYYYMMDD, or ranges YYYYMMDD-YYYYMMDD,
// YYYYMMDD- and -YYYYMMDD.
struct Query {
  QueryLevel level = QueryLevel::kStudy;
  QueryModel model = QueryModel::kStudyRoot;  // patient level always uses Patient Root
  std::string patient_id;
  std::string patient_name;
  std::string study_date;
  std::string modality;  // study level: ModalitiesInStudy; series/image level: Modality
  std::string accession_number;
  std::string study_description;
  std::string study_uid;   // required at series and image level
  std::string series_uid;  // required at image level
};

// One C-FIND match. Counts are -1 when the PACS did not return them.
struct Match {
  QueryLevel level = QueryLevel::kStudy;
  // PHI: returned to the user who asked, never logged.
  std::string patient_name, patient_id, patient_birth_date, patient_sex;
  int patient_studies = -1;  // NumberOfPatientRelatedStudies
  // Study level and below (series/image matches carry the study UID they were asked for).
  std::string study_uid, study_date, study_time, study_description, accession_number, study_id;
  std::string modalities_in_study;  // e.g. "CT\SR"
  int study_series = -1, study_instances = -1;
  // Series level and below.
  std::string series_uid, series_description, modality;
  int series_number = -1, series_instances = -1;
  // Image level.
  std::string sop_instance_uid, sop_class_uid;
  int instance_number = -1;
};

// What to retrieve: a study, one of its series, or one instance.
struct RetrieveRequest {
  std::string study_uid;         // required
  std::string series_uid;        // optional: only this series
  std::string sop_instance_uid;  // optional (needs series_uid): only this instance
  QueryModel model = QueryModel::kStudyRoot;
  std::string patient_id;  // required with the Patient Root model
};

// One instance written to disk.
struct ReceivedInstance {
  std::string sop_class_uid, sop_instance_uid, study_uid, series_uid;
  std::filesystem::path file;
};

struct RetrieveResult {
  std::vector<ReceivedInstance> instances;     // in arrival order
  int completed = 0, failed = 0, warning = 0;  // the PACS's final sub-operation counts
  std::filesystem::path study_dir;             // out_dir/<StudyInstanceUID>
};

struct StoreOutcome {
  std::filesystem::path file;
  std::string sop_instance_uid;
  uint16_t status = 0;  // DIMSE status from the PACS (0 = success, 0xB000.. = warning)
  std::string problem;  // empty when stored
};

struct StoreResult {
  std::vector<StoreOutcome> files;  // in the order given
  int stored = 0, warnings = 0, failed = 0;
};

class PacsClient {
 public:
  explicit PacsClient(Node node);

  const Node& node() const { return node_; }

  // C-ECHO: association, verification, release.
  Status echo();

  // C-FIND with the query's level and model. Matches are sorted (patients by ID,
  // studies by date and UID, series by number, images by instance number).
  Result<std::vector<Match>> find(const Query& query, Progress& progress);

  // C-GET: the PACS sends the instances back on the same association (storage
  // sub-operations; Hilum proposes the CT, MR, SR, encapsulated PDF, secondary
  // capture, ... storage SOP classes in the SCP role). Each instance is written
  // atomically to out_dir/<StudyUID>/<SeriesUID>/<SOPInstanceUID>.dcm (created as
  // needed). Progress counts instances against the PACS's counts (or a C-FIND
  // count). On failure or cancellation the files this call wrote are removed and
  // the error says how many sub-operations failed.
  Result<RetrieveResult> get(const RetrieveRequest& request, const std::filesystem::path& out_dir,
                             Progress& progress);

  // C-MOVE to node().move_destination_ae(): starts Hilum's storage SCP on
  // node().storage_port (the PACS must know that AE title at this host and port),
  // asks the PACS to move, writes what arrives as get() does and stops the SCP.
  Result<RetrieveResult> move(const RetrieveRequest& request, const std::filesystem::path& out_dir,
                              Progress& progress);

  // C-STORE of DICOM files (images, SR, encapsulated PDF, ...). Every file is read
  // first: a file that is not DICOM is bad input and nothing is sent. Files go in
  // their own transfer syntax (uncompressed ones may be converted between
  // explicit and implicit VR little endian if the PACS asks). A file the PACS
  // refuses is reported in StoreResult (failed > 0), not as an error; the call
  // fails only when the association does.
  Result<StoreResult> store(const std::vector<std::filesystem::path>& files, Progress& progress);

 private:
  Node node_;
};

// Where get()/move() put an instance: out_dir/<study>/<series>/<sop>.dcm. UIDs
// that are not plain digits and dots are replaced by a safe name.
std::filesystem::path instance_path(const std::filesystem::path& out_dir, const std::string& study_uid,
                                    const std::string& series_uid, const std::string& sop_instance_uid);

// Validates a DICOM date or date range for a query ("" is fine); returns the
// problem or an empty string.
std::string date_range_problem(const std::string& range);

}  // namespace hilum::pacs
