#include "app/pacs_batch.h"

#if HILUM_HAVE_PACS && HILUM_HAVE_IMAGING

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <mutex>
#include <set>

#include "app/pacs/encapsulated_pdf.h"
#include "app/report_sr.h"
#include "model/log.h"

namespace hilum {

namespace fs = std::filesystem;

namespace {

std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

struct QueryKey {
  const char* name;
  std::string pacs::Query::*field;
};

const std::vector<QueryKey>& query_keys() {
  static const std::vector<QueryKey> keys = {
      {"patient-id", &pacs::Query::patient_id},
      {"patient-name", &pacs::Query::patient_name},
      {"date", &pacs::Query::study_date},
      {"modality", &pacs::Query::modality},
      {"accession", &pacs::Query::accession_number},
      {"description", &pacs::Query::study_description},
      {"study", &pacs::Query::study_uid},
  };
  return keys;
}

// Removes OUT/.inbox/.partial-<name>.<digits> folders left by killed runs.
void remove_partials(const fs::path& inbox, const std::string& name) {
  std::error_code ec;
  const std::string prefix = ".partial-" + name + ".";
  for (const auto& e : fs::directory_iterator(inbox, ec)) {
    const std::string f = e.path().filename().string();
    if (f.size() > prefix.size() && f.compare(0, prefix.size(), prefix) == 0 &&
        std::all_of(f.begin() + static_cast<long>(prefix.size()), f.end(),
                    [](char c) { return c >= '0' && c <= '9'; })) {
      fs::remove_all(e.path(), ec);
    }
  }
}

// What the hooks share: the node, the inbox, and which UID each name stands for.
struct PacsRun {
  PacsBatchOptions options;
  fs::path inbox;
  std::map<std::string, std::string> uid_of;  // study name -> Study Instance UID
  std::mutex folders;                         // creating and removing inbox folders
  std::mutex moves;                           // one storage SCP port: one C-MOVE at a time
};

// Whether a retrieved instance is a report Hilum stored in the study earlier
// (an SR or encapsulated PDF made by Hilum): it is no input, and analysing
// the study with it would change the findings' notes and so the SR's UID.
bool earlier_hilum_result(const pacs::ReceivedInstance& instance) {
  const std::string& cls = instance.sop_class_uid;
  const bool report =
      cls.rfind("1.2.840.10008.5.1.4.1.1.88.", 0) == 0 || cls == "1.2.840.10008.5.1.4.1.1.104.1";
  if (!report) return false;
  DcmFileFormat file;
  if (file.loadFile(instance.file.c_str(), EXS_Unknown, EGL_noChange, 4096).bad()) return false;
  OFString manufacturer;
  file.getDataset()->findAndGetOFString(DCM_Manufacturer, manufacturer);
  return manufacturer == "Hilum";
}

Result<fs::path> retrieve(PacsRun& run, const BatchStudy& study, Progress& progress) {
  const fs::path dest = run.inbox / study.name;
  const fs::path tmp = run.inbox / (".partial-" + study.name + "." + std::to_string(::getpid()));
  std::error_code ec;
  {
    std::lock_guard<std::mutex> lock(run.folders);
    remove_partials(run.inbox, study.name);
    fs::remove_all(dest, ec);  // an incomplete earlier attempt (a kept inbox is fetched again)
    fs::create_directories(tmp, ec);
    if (ec) return bad_input(tmp.string() + ": cannot create the inbox folder (" + ec.message() + ")");
  }
  pacs::RetrieveRequest request;
  request.study_uid = run.uid_of.at(study.name);
  pacs::PacsClient client(run.options.node);
  Result<pacs::RetrieveResult> got = internal_error("not retrieved");
  if (run.options.retrieve == RetrieveMethod::kMove) {
    std::lock_guard<std::mutex> lock(run.moves);
    got = client.move(request, tmp, progress);
  } else {
    got = client.get(request, tmp, progress);
  }
  auto fail = [&](Error e) -> Result<fs::path> {
    fs::remove_all(tmp, ec);
    return e;
  };
  if (!got.ok()) return fail(got.error());
  if (got->instances.empty()) {
    return fail(
        bad_input("PACS " + run.options.node.address() + " sent no instances of study " + request.study_uid));
  }
  for (const pacs::ReceivedInstance& instance : got->instances) {
    if (earlier_hilum_result(instance)) fs::remove(instance.file, ec);
  }
  {
    std::lock_guard<std::mutex> lock(run.folders);
    fs::rename(got->study_dir, dest, ec);
  }
  if (ec)
    return fail(internal_error(dest.string() + ": cannot move the retrieved study into place (" +
                               ec.message() + ")"));
  fs::remove_all(tmp, ec);
  return dest;
}

void release(PacsRun& run, const BatchStudy& study, bool analysed) {
  std::error_code ec;
  std::lock_guard<std::mutex> lock(run.folders);
  if (analysed && !run.options.keep_inbox) fs::remove_all(run.inbox / study.name, ec);
  fs::remove(run.inbox, ec);  // only when empty
}

Result<Delivery> store_results(PacsRun& run, const fs::path& study_out, Progress& progress) {
  HILUM_ASSIGN_OR_RETURN(std::vector<fs::path> files, pacs_result_files(study_out));
  pacs::PacsClient client(run.options.node);
  HILUM_ASSIGN_OR_RETURN(pacs::StoreResult sent, client.store(files, progress));
  if (sent.failed > 0) {
    std::string refused;
    for (const pacs::StoreOutcome& f : sent.files) {
      if (f.problem.empty()) continue;
      if (!refused.empty()) refused += "; ";
      refused += f.file.filename().string() + ": " + f.problem;
    }
    return internal_error("PACS " + client.node().address() + " refused " + std::to_string(sent.failed) +
                          " of " + std::to_string(files.size()) + " files (" + refused + ")");
  }
  Delivery d;
  d.destination = client.node().address();
  for (const fs::path& f : files) d.files.push_back(f.filename().string());
  return d;
}

// The SR attributes the PDF object's UIDs and dates are derived from.
struct SrKeys {
  std::string sop_instance_uid, series_uid, content_date, content_time;
};

Result<SrKeys> read_sr_keys(const fs::path& sr) {
  DcmFileFormat file;
  const OFCondition c = file.loadFile(sr.c_str(), EXS_Unknown, EGL_noChange, 4096);
  if (c.bad()) return bad_input(sr.string() + ": not a readable DICOM file (" + c.text() + ")");
  DcmDataset& ds = *file.getDataset();
  auto get = [&ds](const DcmTagKey& tag) {
    OFString v;
    ds.findAndGetOFString(tag, v);
    return std::string(v.c_str());
  };
  SrKeys k{get(DCM_SOPInstanceUID), get(DCM_SeriesInstanceUID), get(DCM_ContentDate), get(DCM_ContentTime)};
  if (k.sop_instance_uid.empty()) return bad_input(sr.string() + ": no SOP Instance UID");
  return k;
}

}  // namespace

std::string pacs_query_keys() {
  std::string s;
  for (const QueryKey& k : query_keys()) s += (s.empty() ? "" : ", ") + std::string(k.name);
  return s;
}

Result<pacs::Query> parse_pacs_query(const std::string& text) {
  pacs::Query q;
  q.level = pacs::QueryLevel::kStudy;
  q.model = pacs::QueryModel::kStudyRoot;
  const std::string example = " (e.g. \"patient-id=LUNG*,date=20260101-20261231,modality=CT\")";
  if (trim(text).empty()) return bad_input("--query is empty: give key=value pairs" + example);
  // Values may be patient identifiers: messages name keys and positions only.
  std::set<std::string> seen;
  size_t start = 0;
  for (int n = 1; start <= text.size(); ++n) {
    size_t comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    const std::string pair = trim(text.substr(start, comma - start));
    start = comma + 1;
    const std::string where = "--query: pair " + std::to_string(n);
    if (pair.empty()) return bad_input(where + " is empty (two commas in a row, or one at the end?)");
    const size_t eq = pair.find('=');
    if (eq == std::string::npos) return bad_input(where + " has no '=': pairs are key=value" + example);
    std::string key = trim(pair.substr(0, eq));
    const std::string value = trim(pair.substr(eq + 1));
    if (key == "study-uid") key = "study";
    const auto it = std::find_if(query_keys().begin(), query_keys().end(),
                                 [&key](const QueryKey& k) { return key == k.name; });
    if (it == query_keys().end()) {
      const bool word = !key.empty() && key.size() <= 24 && std::all_of(key.begin(), key.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' || c == '_';
      });
      return bad_input(where + ": unknown key" + (word ? " '" + key + "'" : std::string()) +
                       " (known: " + pacs_query_keys() + ")");
    }
    if (!seen.insert(key).second) return bad_input("--query: the key '" + key + "' is given twice");
    if (value.empty()) return bad_input("--query: the key '" + key + "' has no value");
    q.*(it->field) = value;
  }
  if (const std::string problem = pacs::date_range_problem(q.study_date); !problem.empty()) {
    return bad_input("--query: date '" + q.study_date + "' " + problem);
  }
  return q;
}

std::string pacs_study_name(const std::string& study_uid) {
  const bool plain = !study_uid.empty() && study_uid.size() <= 64 && study_uid.front() != '.' &&
                     study_uid.find("..") == std::string::npos &&
                     std::all_of(study_uid.begin(), study_uid.end(),
                                 [](char c) { return (c >= '0' && c <= '9') || c == '.'; });
  if (plain) return study_uid;
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : study_uid) h = (h ^ c) * 0x100000001b3ull;
  char buf[32];
  std::snprintf(buf, sizeof buf, "study-%016llx", static_cast<unsigned long long>(h));
  return buf;
}

Result<std::shared_ptr<const BatchSource>> find_pacs_studies(const PacsBatchOptions& options,
                                                             const fs::path& out, Progress& progress) {
  pacs::Query query = options.query;
  query.level = pacs::QueryLevel::kStudy;
  HILUM_ASSIGN_OR_RETURN(std::vector<pacs::Match> matches,
                         pacs::PacsClient(options.node).find(query, progress));
  auto run = std::make_shared<PacsRun>();
  run->options = options;
  run->inbox = out / ".inbox";
  auto source = std::make_shared<BatchSource>();
  int without_uid = 0;
  std::set<std::string> uids;
  for (const pacs::Match& m : matches) {
    if (m.study_uid.empty()) {
      ++without_uid;
      continue;
    }
    if (!uids.insert(m.study_uid).second) continue;  // the PACS listed it twice
    const std::string name = pacs_study_name(m.study_uid);
    if (run->uid_of.count(name)) {
      return internal_error("two Study Instance UIDs give the study folder name '" + name + "'");
    }
    run->uid_of[name] = m.study_uid;
    source->studies.push_back({name, run->inbox / name});
  }
  if (without_uid > 0) {
    log_warning("PACS " + options.node.address() + ": " + std::to_string(without_uid) +
                " matches without a Study Instance UID were skipped");
  }
  source->fetch = [run](const BatchStudy& study, Progress& p) { return retrieve(*run, study, p); };
  source->release = [run](const BatchStudy& study, bool analysed) { release(*run, study, analysed); };
  if (options.store_results) {
    source->deliver = [run](const BatchStudy&, const fs::path& study_out, Progress& p) {
      return store_results(*run, study_out, p);
    };
  }
  return std::shared_ptr<const BatchSource>(std::move(source));
}

Result<std::vector<fs::path>> pacs_result_files(const fs::path& study_out) {
  const fs::path sr = study_out / "report-sr.dcm";
  std::error_code ec;
  if (!fs::is_regular_file(sr, ec)) return bad_input(sr.string() + ": missing (no DICOM SR to store)");
  std::vector<fs::path> files = {sr};
  const fs::path pdf = study_out / "report.pdf";
  if (!fs::is_regular_file(pdf, ec)) return files;
  HILUM_ASSIGN_OR_RETURN(SrKeys keys, read_sr_keys(sr));
  pacs::EncapsulatedPdfOptions o;
  HILUM_ASSIGN_OR_RETURN(StudyInfo study,
                         pacs::read_study_identifiers(sr, &o.study_id, &o.referring_physician));
  o.series_instance_uid = hashed_uid("pdf-series:" + keys.series_uid);
  o.sop_instance_uid = hashed_uid("pdf-instance:" + keys.sop_instance_uid);
  o.content_date = keys.content_date;
  o.content_time = keys.content_time;
  const fs::path dcm = study_out / "report-pdf.dcm";
  HILUM_RETURN_IF_ERROR(pacs::write_encapsulated_pdf(pdf, study, o, dcm));
  files.push_back(dcm);
  return files;
}

}  // namespace hilum

#endif  // HILUM_HAVE_PACS && HILUM_HAVE_IMAGING
