// `hilum batch --from-pacs`: the studies a C-FIND returns, retrieved one at a
// time into OUT/.inbox/, analysed by the batch pipeline (app/batch.h) and, on
// request, their SR and PDF reports stored back in the PACS. Builds with
// DCMTK only (HILUM_HAVE_PACS). See docs/batch.md ("Studies from a PACS") and
// docs/pacs.md.
//
// Study folders are named after the Study Instance UID, never after the
// patient; messages name UIDs, AE titles and addresses only.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "app/batch.h"
#include "app/pacs/pacs_client.h"
#include "app/pacs/pacs_config.h"
#include "model/progress.h"
#include "model/result.h"

namespace hilum {

// Parses the query of `hilum batch --from-pacs --query TEXT`: comma-separated
// key=value pairs whose keys are the options of `hilum pacs find`:
//   patient-id, patient-name, date, modality, accession, description, study
// ("study-uid" is accepted for "study"). Values may use the DICOM wildcards *
// and ?; a value cannot hold a comma (match one with ?). Spaces around keys and
// values are ignored. Returns a study-level, Study Root query.
// kBadInput, naming the pair: an empty query, a pair without '=', an unknown or
// repeated key, an empty value, an invalid date or date range.
Result<pacs::Query> parse_pacs_query(const std::string& text);

// The keys parse_pacs_query() knows, for messages and help ("patient-id, ...").
std::string pacs_query_keys();

enum class RetrieveMethod { kGet, kMove };

struct PacsBatchOptions {
  pacs::Node node;
  pacs::Query query;  // study level (parse_pacs_query())
  RetrieveMethod retrieve = RetrieveMethod::kGet;
  bool store_results = false;  // C-STORE report-sr.dcm and report-pdf.dcm back
  bool keep_inbox = false;     // keep the retrieved images of analysed studies
};

// The folder name of a study: the Study Instance UID itself when it is a plain
// UID (digits and dots, at most 64 characters), else "study-" and 16 hex digits
// of a hash of it. Never empty, never hidden, never patient data.
std::string pacs_study_name(const std::string& study_uid);

// Runs the C-FIND and returns the studies (one per Study Instance UID; matches
// without one are dropped) as a BatchSource for run_batch() writing into `out`:
//   fetch    retrieves the study (C-GET, or C-MOVE to Hilum's storage SCP on
//            node.storage_port; moves run one at a time) into
//            OUT/.inbox/.partial-<name>.<pid>/ and renames it to
//            OUT/.inbox/<name>/ when complete;
//   release  removes OUT/.inbox/<name>/ after a successful analysis (unless
//            keep_inbox); the images of a failed study stay for a look;
//   deliver  (store_results only) C-STOREs pacs_result_files() to the node.
// Errors are the C-FIND's: kBadInput (a query or node the PACS refuses, unknown
// host, ...), kInternal (refused connection, timeout, ...), kCancelled.
Result<std::shared_ptr<const BatchSource>> find_pacs_studies(const PacsBatchOptions& options,
                                                             const std::filesystem::path& out,
                                                             Progress& progress);

// The DICOM objects that go back to the PACS from a finished study folder:
// report-sr.dcm and, when report.pdf is there, report-pdf.dcm (written
// atomically: report.pdf as Encapsulated PDF Storage of the same study, patient
// and study identifiers taken from the SR). The PDF object's UIDs and dates are
// derived from the SR's, so that storing twice replaces rather than duplicates.
// kBadInput when report-sr.dcm is missing or unreadable.
Result<std::vector<std::filesystem::path>> pacs_result_files(const std::filesystem::path& study_out);

}  // namespace hilum
