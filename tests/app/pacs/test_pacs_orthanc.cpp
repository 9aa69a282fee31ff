// PacsClient against a real Orthanc: echo, C-FIND at every level and in both
// information models, C-GET and C-MOVE of studies and series (files checked
// against the originals: SOP Instance UIDs and pixel data), storing an SR and an
// encapsulated PDF back and finding them, cancellation, and the errors a PACS
// gives (wrong called AE, unknown calling AE, unknown move destination, unknown
// study, wrong port).
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "app/pacs/encapsulated_pdf.h"
#include "app/pacs/pacs_client.h"
#include "tests/app/pacs/seeded_orthanc.h"

namespace hilum::pacs {
namespace {

namespace fs = std::filesystem;
using test::SeededOrthanc;
using test::TestStudy;

class PacsOrthanc : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { seeded_ = SeededOrthanc::start("pacs_orthanc").release(); }
  static void TearDownTestSuite() {
    delete seeded_;
    seeded_ = nullptr;
  }
  void SetUp() override { HILUM_REQUIRE_ORTHANC(seeded_); }

  static Node node() { return seeded_->server->node(); }
  static const TestStudy& alice() { return seeded_->alice; }
  static const TestStudy& bob() { return seeded_->bob; }

  static std::vector<Match> find(const Query& q) {
    NullProgress progress;
    auto r = PacsClient(node()).find(q, progress);
    EXPECT_TRUE(r.ok()) << r.error().message();
    return r.ok() ? *r : std::vector<Match>{};
  }

  // Every instance of `expected` is in `result` and on disk, with the same pixels.
  static void expect_retrieved(const RetrieveResult& result, const std::vector<test::TestInstance>& expected,
                               const fs::path& out_dir) {
    ASSERT_EQ(result.instances.size(), expected.size());
    std::map<std::string, fs::path> by_uid;
    for (const auto& inst : result.instances) by_uid[inst.sop_instance_uid] = inst.file;
    for (const auto& want : expected) {
      ASSERT_TRUE(by_uid.count(want.sop_instance_uid)) << want.sop_instance_uid;
      const fs::path file = by_uid[want.sop_instance_uid];
      EXPECT_EQ(file, instance_path(out_dir, want.study_uid, want.series_uid, want.sop_instance_uid));
      const auto back = test::read_back(file);
      ASSERT_TRUE(back.ok) << file;
      EXPECT_EQ(back.sop_instance_uid, want.sop_instance_uid);
      EXPECT_EQ(back.series_uid, want.series_uid);
      EXPECT_EQ(back.pixels, want.pixels) << file;
    }
    EXPECT_EQ(count_files(out_dir), static_cast<int>(expected.size()));  // nothing else (no temporaries)
  }

  static int count_files(const fs::path& dir) {
    int n = 0;
    std::error_code ec;
    if (!fs::exists(dir, ec)) return 0;
    for (const auto& e : fs::recursive_directory_iterator(dir)) n += e.is_regular_file() ? 1 : 0;
    return n;
  }

  static std::vector<test::TestInstance> series_instances(const TestStudy& s, const std::string& series_uid) {
    std::vector<test::TestInstance> out;
    for (const auto& i : s.instances) {
      if (i.series_uid == series_uid) out.push_back(i);
    }
    return out;
  }

  static SeededOrthanc* seeded_;
};

SeededOrthanc* PacsOrthanc::seeded_ = nullptr;

TEST_F(PacsOrthanc, EchoSucceedsAndTheRestApiNeedsCredentials) {
  EXPECT_TRUE(PacsClient(node()).echo().ok());
  EXPECT_EQ(seeded_->server->http_status("/system", true), 200);
  EXPECT_EQ(seeded_->server->http_status("/system", false), 401);
}

TEST_F(PacsOrthanc, FindsPatients) {
  Query q;
  q.level = QueryLevel::kPatient;
  q.patient_id = "HILUM-T*";
  const auto m = find(q);
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m[0].patient_id, "HILUM-T1");
  EXPECT_EQ(m[0].patient_name, "TESTER^ALICE");
  EXPECT_EQ(m[0].patient_birth_date, "19550101");
  EXPECT_EQ(m[0].patient_sex, "F");
  EXPECT_EQ(m[0].patient_studies, 1);
  EXPECT_EQ(m[1].patient_id, "HILUM-T2");
  EXPECT_EQ(m[0].level, QueryLevel::kPatient);
}

TEST_F(PacsOrthanc, FindsStudiesByPatientDateModalityAndName) {
  Query q;
  q.patient_id = "HILUM-T1";
  auto m = find(q);
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].study_uid, alice().study_uid);
  EXPECT_EQ(m[0].patient_name, "TESTER^ALICE");
  EXPECT_EQ(m[0].study_date, "20260310");
  EXPECT_EQ(m[0].accession_number, "ACC-A1");
  EXPECT_EQ(m[0].study_description, "CT CHEST");
  EXPECT_EQ(m[0].modalities_in_study, "CT");
  EXPECT_EQ(m[0].study_series, 2);
  EXPECT_EQ(m[0].study_instances, 5);

  Query by_date;
  by_date.patient_id = "HILUM-T*";
  by_date.study_date = "20260101-20261231";
  m = find(by_date);
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].study_uid, alice().study_uid);
  by_date.study_date = "-20251231";
  m = find(by_date);
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].study_uid, bob().study_uid);
  by_date.study_date = "20250102";
  m = find(by_date);
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].study_uid, bob().study_uid);

  Query by_modality;
  by_modality.patient_id = "HILUM-T*";
  by_modality.modality = "MR";
  m = find(by_modality);
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].study_uid, bob().study_uid);
  EXPECT_EQ(m[0].modalities_in_study, "MR");

  Query by_name;
  by_name.patient_name = "TESTER^B*";
  m = find(by_name);
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].patient_id, "HILUM-T2");

  Query by_accession;
  by_accession.accession_number = "ACC-A1";
  m = find(by_accession);
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].study_uid, alice().study_uid);

  Query nothing;
  nothing.patient_id = "NO-SUCH-PATIENT";
  EXPECT_TRUE(find(nothing).empty());
}

TEST_F(PacsOrthanc, FindsStudiesWithThePatientRootModel) {
  Query q;
  q.model = QueryModel::kPatientRoot;
  q.patient_id = "HILUM-T2";
  const auto m = find(q);
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].study_uid, bob().study_uid);
}

TEST_F(PacsOrthanc, FindsSeriesAndImages) {
  Query q;
  q.level = QueryLevel::kSeries;
  q.study_uid = alice().study_uid;
  const auto series = find(q);
  ASSERT_EQ(series.size(), 2u);
  EXPECT_EQ(series[0].series_number, 2);
  EXPECT_EQ(series[0].series_uid, alice().series_uids[0]);
  EXPECT_EQ(series[0].series_instances, 3);
  EXPECT_EQ(series[0].modality, "CT");
  EXPECT_EQ(series[0].series_description, "AXIAL 2.5mm");
  EXPECT_EQ(series[0].study_uid, alice().study_uid);
  EXPECT_EQ(series[1].series_number, 3);
  EXPECT_EQ(series[1].series_instances, 2);

  q.modality = "MR";
  EXPECT_TRUE(find(q).empty());

  Query images;
  images.level = QueryLevel::kImage;
  images.study_uid = alice().study_uid;
  images.series_uid = alice().series_uids[0];
  const auto m = find(images);
  ASSERT_EQ(m.size(), 3u);
  for (int k = 0; k < 3; ++k) {
    EXPECT_EQ(m[k].instance_number, k + 1);
    EXPECT_EQ(m[k].sop_instance_uid, alice().instances[k].sop_instance_uid);
    EXPECT_EQ(m[k].sop_class_uid, "1.2.840.10008.5.1.4.1.1.2");
    EXPECT_EQ(m[k].series_uid, alice().series_uids[0]);
  }

  Query patient_root_series = q;
  patient_root_series.modality.clear();
  patient_root_series.model = QueryModel::kPatientRoot;
  patient_root_series.patient_id = "HILUM-T1";
  EXPECT_EQ(find(patient_root_series).size(), 2u);
}

TEST_F(PacsOrthanc, BadQueriesAreRefusedBeforeTheNetwork) {
  NullProgress progress;
  PacsClient client(node());
  auto expect_bad = [&](const Query& q, const std::string& fragment) {
    auto r = client.find(q, progress);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().kind(), ErrorKind::kBadInput);
    EXPECT_NE(r.error().message().find(fragment), std::string::npos) << r.error().message();
  };
  Query series;
  series.level = QueryLevel::kSeries;
  expect_bad(series, "study UID");
  Query image;
  image.level = QueryLevel::kImage;
  image.study_uid = alice().study_uid;
  expect_bad(image, "series UID");
  Query date;
  date.study_date = "2026-01-01";
  expect_bad(date, "2026-01-01");
  Query root;
  root.model = QueryModel::kPatientRoot;
  expect_bad(root, "patient ID");
  Query uid;
  uid.level = QueryLevel::kSeries;
  uid.study_uid = "1.2.abc";
  expect_bad(uid, "1.2.abc");
}

TEST_F(PacsOrthanc, GetsAWholeStudy) {
  test::ScratchDir out;
  RetrieveRequest req;
  req.study_uid = alice().study_uid;
  NullProgress progress;
  auto r = PacsClient(node()).get(req, out.path(), progress);
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->study_dir, out.path() / alice().study_uid);
  EXPECT_EQ(r->completed, 5);
  EXPECT_EQ(r->failed, 0);
  expect_retrieved(*r, alice().instances, out.path());
}

TEST_F(PacsOrthanc, GetsOneSeriesWithThePatientRootModel) {
  test::ScratchDir out;
  RetrieveRequest req;
  req.study_uid = alice().study_uid;
  req.series_uid = alice().series_uids[1];
  req.model = QueryModel::kPatientRoot;
  req.patient_id = "HILUM-T1";
  NullProgress progress;
  auto r = PacsClient(node()).get(req, out.path(), progress);
  ASSERT_TRUE(r.ok()) << r.error().message();
  expect_retrieved(*r, series_instances(alice(), alice().series_uids[1]), out.path());
}

class RecordingProgress : public Progress {
 public:
  void report(double fraction, std::string_view stage) override {
    fractions.push_back(fraction);
    stages.emplace_back(stage);
  }
  std::vector<double> fractions;
  std::vector<std::string> stages;
};

TEST_F(PacsOrthanc, MovesAStudyThroughHilumsStorageScp) {
  test::ScratchDir out;
  RetrieveRequest req;
  req.study_uid = bob().study_uid;
  RecordingProgress progress;
  auto r = PacsClient(node()).move(req, out.path(), progress);
  ASSERT_TRUE(r.ok()) << r.error().message() << "\n" << seeded_->server->log_tail();
  EXPECT_EQ(r->completed, 2);
  expect_retrieved(*r, bob().instances, out.path());
  // Progress went from 0 to 1 and said how far it was.
  ASSERT_FALSE(progress.fractions.empty());
  EXPECT_DOUBLE_EQ(progress.fractions.back(), 1.0);
  for (size_t i = 1; i < progress.fractions.size(); ++i)
    EXPECT_GE(progress.fractions[i], progress.fractions[i - 1]);
  bool counted = false;
  for (const auto& s : progress.stages) counted |= s.find("of 2 instances") != std::string::npos;
  EXPECT_TRUE(counted);
}

TEST_F(PacsOrthanc, MovesOneSeries) {
  test::ScratchDir out;
  RetrieveRequest req;
  req.study_uid = alice().study_uid;
  req.series_uid = alice().series_uids[0];
  NullProgress progress;
  auto r = PacsClient(node()).move(req, out.path(), progress);
  ASSERT_TRUE(r.ok()) << r.error().message();
  expect_retrieved(*r, series_instances(alice(), alice().series_uids[0]), out.path());
}

TEST_F(PacsOrthanc, MoveToADestinationThePacsDoesNotKnowFails) {
  test::ScratchDir out;
  Node n = node();
  n.move_destination = "NOWHERE";
  RetrieveRequest req;
  req.study_uid = bob().study_uid;
  NullProgress progress;
  auto r = PacsClient(n).move(req, out.path(), progress);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("NOWHERE"), std::string::npos) << r.error().message();
  EXPECT_EQ(count_files(out.path()), 0);
}

TEST_F(PacsOrthanc, RetrievingAStudyThePacsDoesNotHaveIsBadInput) {
  test::ScratchDir out;
  RetrieveRequest req;
  req.study_uid = "1.2.826.0.1.3680043.10.999.1";
  NullProgress progress;
  for (bool use_move : {false, true}) {
    auto r = use_move ? PacsClient(node()).move(req, out.path(), progress)
                      : PacsClient(node()).get(req, out.path(), progress);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().kind(), ErrorKind::kBadInput) << r.error().message();
    EXPECT_NE(r.error().message().find("no study " + req.study_uid), std::string::npos)
        << r.error().message();
    EXPECT_EQ(count_files(out.path()), 0);
  }
}

// Cancels as soon as the first instance has arrived.
class CancelAfterFirst : public Progress {
 public:
  void report(double, std::string_view stage) override {
    if (stage.find("retrieved 1 ") != std::string_view::npos) cancel = true;
  }
  bool cancelled() const override { return cancel; }
  bool cancel = false;
};

TEST_F(PacsOrthanc, CancelledRetrievesLeaveNoFiles) {
  RetrieveRequest req;
  req.study_uid = alice().study_uid;
  {
    test::ScratchDir out("get");
    CancelAfterFirst progress;
    auto r = PacsClient(node()).get(req, out.path(), progress);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().kind(), ErrorKind::kCancelled) << r.error().message();
    EXPECT_EQ(count_files(out.path()), 0);
  }
  {
    test::ScratchDir out("move");
    CancelAfterFirst progress;
    auto r = PacsClient(node()).move(req, out.path(), progress);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().kind(), ErrorKind::kCancelled) << r.error().message();
    EXPECT_EQ(count_files(out.path()), 0);
  }
  // The server is fine afterwards.
  EXPECT_TRUE(PacsClient(node()).echo().ok());
}

TEST_F(PacsOrthanc, StoresAnSrAndAnEncapsulatedPdfAndFindsThemBack) {
  test::ScratchDir dir;
  auto carol =
      test::make_study({"TESTER^CAROL", "HILUM-T3", "19650303", "F"}, "20260401", "ACC-C1", "CT CHEST");
  test::add_image_series(carol, dir / "ct", "CT", 2, 2, "AXIAL");
  const std::string sr_uid = test::write_text_sr(carol, dir / "sr.dcm", "No pulmonary nodule.");
  const std::string pdf = test::minimal_pdf("Hilum report for Carol");
  test::write_bytes(dir / "report.pdf", pdf);
  std::string study_id, referring;
  auto info = read_study_identifiers(carol.instances[0].file, &study_id, &referring);
  ASSERT_TRUE(info.ok()) << info.error().message();
  EncapsulatedPdfOptions options;
  options.study_id = study_id;
  auto pdf_uid = write_encapsulated_pdf(dir / "report.pdf", *info, options, dir / "report.dcm");
  ASSERT_TRUE(pdf_uid.ok()) << pdf_uid.error().message();

  RecordingProgress progress;
  auto stored = PacsClient(node()).store(
      {carol.instances[0].file, carol.instances[1].file, dir / "sr.dcm", dir / "report.dcm"}, progress);
  ASSERT_TRUE(stored.ok()) << stored.error().message();
  EXPECT_EQ(stored->stored, 4);
  EXPECT_EQ(stored->failed, 0);
  ASSERT_EQ(stored->files.size(), 4u);
  EXPECT_EQ(stored->files[2].sop_instance_uid, sr_uid);
  EXPECT_EQ(stored->files[3].sop_instance_uid, *pdf_uid);
  EXPECT_DOUBLE_EQ(progress.fractions.back(), 1.0);

  Query study;
  study.patient_id = "HILUM-T3";
  auto studies = find(study);
  ASSERT_EQ(studies.size(), 1u);
  EXPECT_EQ(studies[0].study_instances, 4);
  EXPECT_NE(studies[0].modalities_in_study.find("SR"), std::string::npos) << studies[0].modalities_in_study;
  EXPECT_NE(studies[0].modalities_in_study.find("DOC"), std::string::npos) << studies[0].modalities_in_study;

  Query series;
  series.level = QueryLevel::kSeries;
  series.study_uid = carol.study_uid;
  std::map<std::string, Match> by_modality;
  for (const auto& m : find(series)) by_modality[m.modality] = m;
  ASSERT_EQ(by_modality.size(), 3u);
  ASSERT_TRUE(by_modality.count("SR"));
  ASSERT_TRUE(by_modality.count("DOC"));
  EXPECT_EQ(by_modality["DOC"].series_description, "Hilum report (PDF)");

  // Back by C-GET: the PDF is the same PDF, the SR the same SR.
  test::ScratchDir out;
  RetrieveRequest req;
  req.study_uid = carol.study_uid;
  req.series_uid = by_modality["DOC"].series_uid;
  NullProgress quiet;
  auto got = PacsClient(node()).get(req, out.path(), quiet);
  ASSERT_TRUE(got.ok()) << got.error().message();
  ASSERT_EQ(got->instances.size(), 1u);
  const auto doc = test::read_back(got->instances[0].file);
  EXPECT_EQ(doc.sop_instance_uid, *pdf_uid);
  EXPECT_EQ(doc.document.substr(0, pdf.size()), pdf);

  req.series_uid = by_modality["SR"].series_uid;
  got = PacsClient(node()).move(req, out.path(), quiet);
  ASSERT_TRUE(got.ok()) << got.error().message();
  ASSERT_EQ(got->instances.size(), 1u);
  EXPECT_EQ(got->instances[0].sop_instance_uid, sr_uid);
  EXPECT_EQ(got->instances[0].sop_class_uid, "1.2.840.10008.5.1.4.1.1.88.11");
}

TEST_F(PacsOrthanc, NonAsciiNamesComeBackAsUtf8) {
  test::ScratchDir dir;
  auto s = test::make_study({"MÜLLER^JÖRG", "HILUM-T6", "19440606", "M"}, "20260606", "ACC-U1", "CT THORAX");
  test::add_image_series(s, dir / "ct", "CT", 1, 1, "AXIAL");
  NullProgress progress;
  auto stored = PacsClient(node()).store({s.instances[0].file}, progress);
  ASSERT_TRUE(stored.ok()) << stored.error().message();
  Query q;
  q.patient_id = "HILUM-T6";
  auto m = find(q);
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].patient_name, "MÜLLER^JÖRG");  // whatever the server's character set, UTF-8 here
  Query by_name;
  by_name.patient_name = "MÜLLER*";  // sent as ISO_IR 192
  m = find(by_name);
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].patient_id, "HILUM-T6");
}

TEST_F(PacsOrthanc, StoringNonDicomSendsNothing) {
  test::ScratchDir dir;
  test::write_bytes(dir / "notes.txt", "clinical notes, not DICOM");
  const std::string before = seeded_->server->http_get("/statistics");
  NullProgress progress;
  auto r = PacsClient(node()).store({alice().instances[0].file, dir / "notes.txt"}, progress);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind(), ErrorKind::kBadInput);
  EXPECT_NE(r.error().message().find("notes.txt"), std::string::npos);
  EXPECT_EQ(seeded_->server->http_get("/statistics"), before);
}

TEST_F(PacsOrthanc, WrongCalledAeTitleIsRejected) {
  Node n = node();
  n.ae_title = "NOT_ORTHANC";
  const Status s = PacsClient(n).echo();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().kind(), ErrorKind::kBadInput);
  EXPECT_NE(s.error().message().find("association rejected"), std::string::npos) << s.error().message();
  EXPECT_NE(s.error().message().find("called AE title 'NOT_ORTHANC' not recognized"), std::string::npos)
      << s.error().message();
}

TEST_F(PacsOrthanc, UnknownCallingAeTitleCannotQuery) {
  Node n = node();
  n.calling_ae = "STRANGER";
  NullProgress progress;
  auto r = PacsClient(n).find(Query{}, progress);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("STRANGER"), std::string::npos) << r.error().message();
}

TEST_F(PacsOrthanc, TheHttpPortIsNotADicomPort) {
  Node n = node();
  n.port = seeded_->server->http_port();
  const Status s = PacsClient(n).echo();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message().find("does not speak DICOM"), std::string::npos) << s.error().message();
}

TEST_F(PacsOrthanc, MovePortInUseIsReported) {
  test::SilentServer squatter;  // holds a port
  Node n = node();
  n.storage_port = squatter.port();
  test::ScratchDir out;
  RetrieveRequest req;
  req.study_uid = bob().study_uid;
  NullProgress progress;
  auto r = PacsClient(n).move(req, out.path(), progress);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind(), ErrorKind::kBadInput);
  EXPECT_NE(r.error().message().find("port " + std::to_string(squatter.port())), std::string::npos)
      << r.error().message();
}

}  // namespace
}  // namespace hilum::pacs
