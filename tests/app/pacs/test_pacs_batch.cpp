// `hilum batch --from-pacs` against a real Orthanc: phantom studies stored in
// the PACS are found by a query, retrieved (C-GET and C-MOVE), analysed with a
// tiny random model bundle, and their SR and PDF reports stored back and found
// again; a PACS that refuses the results, --resume that only stores, a query
// that matches nothing, bad queries and an unreachable PACS.
#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "app/csv.h"
#include "app/pacs_batch.h"
#include "model/file_io.h"
#include "tests/app/orthanc_fixture.h"
#include "tests/app/pacs_test_data.h"
#include "tests/app/report_fixture.h"

namespace hilum {
namespace {

namespace fs = std::filesystem;
using pacs::Match;
using pacs::PacsClient;
using pacs::Query;
using pacs::QueryLevel;
using test::run_hilum;

std::string config_for(const pacs::Node& n) {
  return "{\"calling_ae\": \"" + n.calling_ae +
         "\", \"timeouts\": {\"connect\": 5, \"acse\": 10, \"dimse\": 30}," +
         " \"nodes\": {\"orthanc\": {\"ae_title\": \"" + n.ae_title + "\", \"host\": \"" + n.host +
         "\", \"port\": " + std::to_string(n.port) + ", \"storage_port\": " + std::to_string(n.storage_port) +
         "}}}\n";
}

std::string dicom_string(const fs::path& file, const DcmTagKey& tag) {
  DcmFileFormat ff;
  if (ff.loadFile(file.c_str(), EXS_Unknown, EGL_noChange, 4096).bad()) return "";
  OFString v;
  ff.getDataset()->findAndGetOFString(tag, v);
  return v.c_str();
}

ino_t inode(const fs::path& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 ? st.st_ino : 0;
}

// Every file under `dir` (relative path -> bytes), without the lock file.
std::map<std::string, std::string> tree(const fs::path& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    const std::string rel = fs::relative(e.path(), dir).string();
    if (rel != ".batch.lock") out[rel] = *read_file(e.path());
  }
  return out;
}

// Rows of summary.csv by study: column name -> value.
std::map<std::string, std::map<std::string, std::string>> summary_rows(const fs::path& out) {
  std::map<std::string, std::map<std::string, std::string>> rows;
  auto csv = read_csv(out / "summary.csv");
  EXPECT_TRUE(csv.ok()) << (csv.ok() ? "" : csv.error().message());
  if (!csv.ok()) return rows;
  const size_t study = *csv->column("study");
  for (size_t r = 0; r < csv->size(); ++r) {
    for (const char* c : {"status", "findings", "stored", "message"}) {
      rows[csv->text(r, study)][c] = csv->text(r, *csv->column(c));
    }
  }
  return rows;
}

class PacsBatch : public ::testing::Test {
 protected:
  // Two PACS: `server_` holds phantoms PHANTOM-41 (with its referral as an SR),
  // PHANTOM-42 and PHANTOM-51; `refusing_` holds PHANTOM-51 too, and lets Hilum
  // query and retrieve but not store.
  static void SetUpTestSuite() {
    if (test::orthanc_binary().empty()) return;
    dir_ = new test::ScratchDir("pacs_batch");
    const fs::path root = dir_->path();
    server_ = test::OrthancServer::start(root / "orthanc", {}, &error_).release();
    if (!server_) return;
    test::OrthancOptions refusing;
    refusing.refuse_hilum_stores = true;
    refusing_ = test::OrthancServer::start(root / "refusing", refusing, &error_).release();
    if (!refusing_) return;
    std::vector<fs::path> files, refused_files;
    for (int seed : {41, 42, 51}) {
      const fs::path study = root / "phantoms" / std::to_string(seed);
      auto r = run_hilum({"-q", "phantom", "--out", study.string(), "--seed", std::to_string(seed),
                          "--slices", "30", "--nodules", "2"});
      if (r.exit_code != 0) {
        error_ = "hilum phantom failed: " + r.err;
        return;
      }
      std::vector<fs::path> slices;
      for (const auto& e : fs::directory_iterator(study / "dicom")) slices.push_back(e.path());
      std::sort(slices.begin(), slices.end());
      auto info = pacs::read_study_identifiers(slices.front());
      if (!info.ok()) {
        error_ = info.error().message();
        return;
      }
      (*uids_)[seed] = info->study_instance_uid;
      files.insert(files.end(), slices.begin(), slices.end());
      if (seed == 51) refused_files = slices;
      if (seed == 41) {  // the referral as a Basic Text SR in the study
        test::TestStudy s;
        s.patient = {info->patient.name, info->patient.id, info->patient.birth_date, info->patient.sex};
        s.study_uid = info->study_instance_uid;
        s.study_date = info->study_date;
        s.study_time = info->study_time;
        s.accession = info->accession_number;
        s.description = info->study_description;
        test::write_text_sr(s, study / "note.dcm", "Ex-smoker, 40 pack-years. Haemoptysis.");
        files.push_back(study / "note.dcm");
      }
    }
    NullProgress progress;
    pacs::Node seeder = refusing_->node();
    seeder.calling_ae = "SEEDER";
    for (auto [node, list] : {std::pair{server_->node(), &files}, std::pair{seeder, &refused_files}}) {
      auto stored = PacsClient(node).store(*list, progress);
      if (!stored.ok() || stored->stored != static_cast<int>(list->size())) {
        error_ = "seeding Orthanc failed: " +
                 (stored.ok() ? std::to_string(stored->failed) + " refused" : stored.error().message());
        return;
      }
    }
    test::TinyBundleOptions b;
    b.nodule_bias = 8;
    b.head_std = 4;
    test::write_tiny_bundle(root / "bundle", b);
    write_text(root / "pacs.json", config_for(server_->node()));
    write_text(root / "refusing.json", config_for(refusing_->node()));
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
    delete refusing_;
    refusing_ = nullptr;
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override {
    if (test::orthanc_binary().empty()) GTEST_SKIP() << "Orthanc is not installed (Debian package orthanc)";
    ASSERT_TRUE(server_ && refusing_ && error_.empty()) << error_;
  }

  static void write_text(const fs::path& p, const std::string& s) { std::ofstream(p) << s; }

  static std::vector<std::string> batch(const fs::path& out, const std::string& query,
                                        std::vector<std::string> extra = {},
                                        const std::string& config = "pacs.json") {
    std::vector<std::string> args = {"batch",
                                     "--from-pacs",
                                     "--pacs-config",
                                     (dir_->path() / config).string(),
                                     "--query",
                                     query,
                                     "--out",
                                     out.string(),
                                     "--model-bundle",
                                     (dir_->path() / "bundle").string(),
                                     "--min-probability",
                                     "0",
                                     "--max-findings",
                                     "1"};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }

  // The SOP Instance UIDs Orthanc holds in the study's series of `modality`.
  static std::vector<std::string> instances_in_pacs(const std::string& study_uid, const std::string& modality,
                                                    const test::OrthancServer* server = server_) {
    NullProgress progress;
    PacsClient client(server->node());
    Query series;
    series.level = QueryLevel::kSeries;
    series.study_uid = study_uid;
    series.modality = modality;
    std::vector<std::string> out;
    auto found = client.find(series, progress);
    EXPECT_TRUE(found.ok()) << found.error().message();
    if (!found.ok()) return out;
    for (const Match& s : *found) {
      Query images;
      images.level = QueryLevel::kImage;
      images.study_uid = study_uid;
      images.series_uid = s.series_uid;
      auto found_images = client.find(images, progress);
      if (!found_images.ok()) continue;
      for (const Match& m : *found_images) out.push_back(m.sop_instance_uid);
    }
    return out;
  }

  static bool clinical_text_used(const fs::path& study_out) {
    return nlohmann::json::parse(*read_file(study_out / "findings.json")).value("clinical_text_used", false);
  }

  static std::string uid(int seed) { return uids_->at(seed); }

  static test::ScratchDir* dir_;
  static test::OrthancServer* server_;
  static test::OrthancServer* refusing_;
  static std::string error_;
  static std::map<int, std::string>* uids_;
};

test::ScratchDir* PacsBatch::dir_ = nullptr;
test::OrthancServer* PacsBatch::server_ = nullptr;
test::OrthancServer* PacsBatch::refusing_ = nullptr;
std::string PacsBatch::error_;
std::map<int, std::string>* PacsBatch::uids_ = new std::map<int, std::string>;

TEST_F(PacsBatch, AnalysesWhatTheQueryFindsAndStoresTheReportsBack) {
  test::ScratchDir d;
  const fs::path out = d / "out";
  // C-MOVE to Hilum's storage SCP (one at a time) while the other job analyses.
  auto r = run_hilum(batch(out, "patient-id=PHANTOM-4?, modality=CT",
                           {"--store-results", "--jobs", "2", "--retrieve", "move"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("2 done now, 0 already done, 0 failed, 2 stored"), std::string::npos) << r.out;
  // No patient data on the console: folders and messages use Study Instance UIDs.
  EXPECT_EQ((r.out + r.err).find("PHANTOM"), std::string::npos) << r.out << r.err;

  const auto rows = summary_rows(out);
  ASSERT_EQ(rows.size(), 2u);
  for (int seed : {41, 42}) {
    const fs::path s = out / uid(seed);
    ASSERT_TRUE(rows.count(uid(seed))) << seed;
    EXPECT_EQ(rows.at(uid(seed)).at("status"), "ok");
    EXPECT_EQ(rows.at(uid(seed)).at("stored"), "yes");
    EXPECT_EQ(rows.at(uid(seed)).at("findings"), "1");
    for (const char* f : {"findings.json", "candidates.csv", "report.pdf", "report-sr.dcm", "report-pdf.dcm",
                          "done.json", "stored.json"}) {
      EXPECT_TRUE(fs::is_regular_file(s / f)) << seed << "/" << f;
    }
    // The clinical note is the SR that came with study 41; 42 has none.
    EXPECT_EQ(clinical_text_used(s), seed == 41) << seed;
    // The SR and the PDF are in the PACS now, in the study they describe.
    const std::string sr_uid = dicom_string(s / "report-sr.dcm", DCM_SOPInstanceUID);
    const std::string pdf_uid = dicom_string(s / "report-pdf.dcm", DCM_SOPInstanceUID);
    ASSERT_FALSE(sr_uid.empty());
    ASSERT_FALSE(pdf_uid.empty());
    const auto srs = instances_in_pacs(uid(seed), "SR");
    EXPECT_NE(std::find(srs.begin(), srs.end(), sr_uid), srs.end()) << seed;
    const auto docs = instances_in_pacs(uid(seed), "DOC");
    EXPECT_EQ(docs, std::vector<std::string>{pdf_uid}) << seed;
    EXPECT_EQ(dicom_string(s / "report-pdf.dcm", DCM_StudyInstanceUID), uid(seed));
    const auto stored = nlohmann::json::parse(*read_file(s / "stored.json"));
    EXPECT_EQ(stored["stored"], "yes");
    EXPECT_EQ(stored["files"], nlohmann::json::array({"report-sr.dcm", "report-pdf.dcm"}));
  }
  EXPECT_FALSE(fs::exists(out / ".inbox"));  // retrieved images removed after success

  // --resume: nothing is retrieved, analysed or stored again; the files stay byte for byte.
  const auto before = tree(out);
  const ino_t findings_inode = inode(out / uid(41) / "findings.json");
  r = run_hilum(batch(out, "patient-id=PHANTOM-4?, modality=CT", {"--store-results", "--resume"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("0 done now, 2 already done, 0 failed, 0 stored"), std::string::npos) << r.out;
  EXPECT_EQ(tree(out), before);
  EXPECT_EQ(inode(out / uid(41) / "findings.json"), findings_inode);
  EXPECT_EQ(instances_in_pacs(uid(41), "DOC").size(), 1u);
}

TEST_F(PacsBatch, RefusedResultsAreReportedThenStoredOnResumeWithoutAnalysingAgain) {
  test::ScratchDir d;
  const fs::path out = d / "out";
  const fs::path s = out / uid(51);
  // A PACS that does not take Hilum's results: the analysis stays, the store fails.
  auto r =
      run_hilum(batch(out, "patient-id=PHANTOM-51", {"--store-results", "--keep-inbox"}, "refusing.json"));
  EXPECT_EQ(r.exit_code, 3) << r.err;  // some studies failed
  EXPECT_TRUE(fs::is_regular_file(s / "findings.json"));
  EXPECT_TRUE(fs::is_regular_file(s / "done.json"));
  auto rows = summary_rows(out);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[uid(51)]["status"], "ok");
  EXPECT_EQ(rows[uid(51)]["stored"], "failed");
  EXPECT_EQ(rows[uid(51)]["message"].rfind("store: ", 0), 0u) << rows[uid(51)]["message"];
  EXPECT_NE(rows[uid(51)]["message"].find("aborted"), std::string::npos) << rows[uid(51)]["message"];
  EXPECT_NE(r.err.find("study failed: " + uid(51) + ": store: "), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("PHANTOM"), std::string::npos) << r.err;
  EXPECT_TRUE(instances_in_pacs(uid(51), "DOC", refusing_).empty());
  size_t kept = 0;  // --keep-inbox: the retrieved slices stay
  for (const auto& e : fs::recursive_directory_iterator(out / ".inbox" / uid(51)))
    kept += e.is_regular_file();
  EXPECT_EQ(kept, 30u);

  // --resume --store-results stores again without retrieving or analysing: still refused there...
  const ino_t findings_inode = inode(s / "findings.json");
  r = run_hilum(batch(out, "patient-id=PHANTOM-51", {"--store-results", "--resume"}, "refusing.json"));
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("analysed earlier"), std::string::npos) << r.err;
  EXPECT_EQ(summary_rows(out)[uid(51)]["stored"], "failed");
  // ... and accepted by a PACS that takes them (the same study is on both).
  r = run_hilum(batch(out, "patient-id=PHANTOM-51", {"--store-results", "--resume"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("0 done now, 1 already done, 0 failed, 1 stored"), std::string::npos) << r.out;
  EXPECT_EQ(inode(s / "findings.json"), findings_inode);
  rows = summary_rows(out);
  EXPECT_EQ(rows[uid(51)]["stored"], "yes");
  EXPECT_EQ(rows[uid(51)]["message"], "");
  EXPECT_EQ(instances_in_pacs(uid(51), "SR").size(), 1u);
  EXPECT_EQ(instances_in_pacs(uid(51), "DOC").size(), 1u);

  // A fresh run over the study, which now holds Hilum's SR and PDF too: the CT
  // is analysed as before (Hilum's own reports are neither input nor a clinical
  // note), and storing again replaces the reports instead of adding copies.
  r = run_hilum(batch(d / "again", "study-uid=" + uid(51), {"--store-results"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const fs::path again = d / "again" / uid(51);
  EXPECT_FALSE(clinical_text_used(again));
  EXPECT_EQ(*read_file(again / "findings.json"), *read_file(s / "findings.json"));
  EXPECT_EQ(*read_file(again / "report-sr.dcm"), *read_file(s / "report-sr.dcm"));
  EXPECT_EQ(*read_file(again / "report-pdf.dcm"), *read_file(s / "report-pdf.dcm"));
  EXPECT_EQ(instances_in_pacs(uid(51), "SR").size(), 1u);
  EXPECT_EQ(instances_in_pacs(uid(51), "DOC").size(), 1u);
}

TEST_F(PacsBatch, AQueryThatMatchesNothingIsAnEmptyRun) {
  test::ScratchDir d;
  auto r = run_hilum(batch(d / "out", "patient-id=NOBODY*,date=20260101-20261231"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("the query matched no study"), std::string::npos) << r.out;
  EXPECT_EQ(*read_file(d / "out" / "summary.csv"),
            "study,status,findings,lung_rads,impression,series_uid,stored,message\n");
  EXPECT_EQ(*read_file(d / "out" / "candidates.csv"), "seriesuid,coordX,coordY,coordZ,probability\n");
}

// ---- without a PACS ----

TEST(PacsBatchQuery, ParsesKeysLikePacsFind) {
  auto q = parse_pacs_query(
      " patient-id = LUNG* ,date=20260101-20261231,modality=CT,accession=A1,"
      "description=CT?CHEST,patient-name=DOE^*,study-uid=1.2.3");
  ASSERT_TRUE(q.ok()) << q.error().message();
  EXPECT_EQ(q->level, QueryLevel::kStudy);
  EXPECT_EQ(q->patient_id, "LUNG*");
  EXPECT_EQ(q->study_date, "20260101-20261231");
  EXPECT_EQ(q->modality, "CT");
  EXPECT_EQ(q->accession_number, "A1");
  EXPECT_EQ(q->study_description, "CT?CHEST");
  EXPECT_EQ(q->patient_name, "DOE^*");
  EXPECT_EQ(q->study_uid, "1.2.3");
  EXPECT_EQ(parse_pacs_query("study=1.2.3")->study_uid, "1.2.3");
}

TEST(PacsBatchQuery, BadQueriesNameTheProblemButNotTheValues) {
  struct Case {
    std::string query, expected;
  };
  for (const Case& c : std::vector<Case>{{"", "empty"},
                                         {"  ", "empty"},
                                         {"PHANTOM-12", "pair 1 has no '='"},
                                         {"modality=CT,,date=20260101", "pair 2 is empty"},
                                         {"modality=CT,", "pair 2 is empty"},
                                         {"patient=X", "unknown key 'patient'"},
                                         {"modality=CT,modality=MR", "'modality' is given twice"},
                                         {"study=1.2,study-uid=1.3", "'study' is given twice"},
                                         {"patient-id=", "'patient-id' has no value"},
                                         {"date=March", "March"}}) {
    auto q = parse_pacs_query(c.query);
    ASSERT_FALSE(q.ok()) << c.query;
    EXPECT_EQ(q.error().kind(), ErrorKind::kBadInput) << c.query;
    EXPECT_NE(q.error().message().find(c.expected), std::string::npos)
        << c.query << ": " << q.error().message();
    EXPECT_EQ(q.error().message().find("PHANTOM"), std::string::npos) << q.error().message();
  }
}

TEST(PacsBatchQuery, StudyFolderNamesAreUidsOrHashes) {
  EXPECT_EQ(pacs_study_name("1.2.840.113619.2.55.3.1"), "1.2.840.113619.2.55.3.1");
  const std::string odd = pacs_study_name("1.2/../../etc");
  EXPECT_EQ(odd.rfind("study-", 0), 0u);
  EXPECT_EQ(odd.size(), 6u + 16u);
  EXPECT_NE(pacs_study_name("DOE^JOHN"), pacs_study_name("DOE^JANE"));
  EXPECT_EQ(pacs_study_name("DOE^JOHN").find("DOE"), std::string::npos);
  EXPECT_EQ(pacs_study_name(std::string(65, '1')).rfind("study-", 0), 0u);
  EXPECT_EQ(pacs_study_name("").rfind("study-", 0), 0u);
}

TEST(PacsBatchQuery, CommandLineErrorsExit2AndLeaveNoOutput) {
  test::ScratchDir d;
  const fs::path out = d / "out";
  std::ofstream(d / "pacs.json")
      << "{\"nodes\": {\"p\": {\"ae_title\": \"X\", \"host\": \"127.0.0.1\", \"port\": " +
             std::to_string(test::free_tcp_port()) + "}}}";
  const std::string config = (d / "pacs.json").string();
  struct Case {
    std::vector<std::string> args;
    std::string expected;
  };
  for (const Case& c : std::vector<Case>{
           {{"--from-pacs", "--pacs-config", config, "--query", "colour=red"}, "unknown key 'colour'"},
           {{"--from-pacs", "--pacs-config", config}, "--from-pacs needs --query"},
           {{"--from-pacs", "--pacs-config", config, "--query", "date=2026"}, "2026"},
           {{"--from-pacs", "--pacs-config", (d / "missing.json").string(), "--query", "modality=CT"},
            "missing.json"},
           {{"--from-pacs", "--pacs-config", config, "--node", "other", "--query", "modality=CT"}, "other"},
           {{"--query", "modality=CT"}, "--from-pacs"},
           {{"--from-pacs", "--input", d.path().string(), "--pacs-config", config, "--query", "modality=CT"},
            "--input"},
           {{"--from-pacs", "--pacs-config", config, "--query", "modality=CT", "--retrieve", "fetch"},
            "fetch"},
       }) {
    std::vector<std::string> args = {"batch", "--out", out.string(), "--model-bundle", d.path().string()};
    args.insert(args.end(), c.args.begin(), c.args.end());
    auto r = run_hilum(args);
    EXPECT_EQ(r.exit_code, 2) << c.expected << ": " << r.err;
    EXPECT_NE(r.err.find(c.expected), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(out)) << c.expected;
  }
}

TEST(PacsBatchQuery, UnreachablePacsExits1AndLeavesNoOutput) {
  test::ScratchDir d;
  const fs::path out = d / "out";
  const uint16_t port = test::free_tcp_port();  // nothing listens there
  std::ofstream(d / "pacs.json")
      << "{\"nodes\": {\"p\": {\"ae_title\": \"X\", \"host\": \"127.0.0.1\", \"port\": " +
             std::to_string(port) + "}}}";
  auto r = run_hilum({"batch", "--from-pacs", "--pacs-config", (d / "pacs.json").string(), "--query",
                      "modality=CT", "--out", out.string(), "--model-bundle", d.path().string()});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("connection refused"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_FALSE(fs::exists(out));
}

}  // namespace
}  // namespace hilum
