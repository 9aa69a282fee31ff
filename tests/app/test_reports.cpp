// Report files of one study: the DICOM SR (TID 1500) checked with dicom3tools'
// dciodvfy and DCMTK's dsrdump, the PDF (Qt, offscreen) read back with
// poppler's pdftotext/pdfinfo, key images, determinism, and the error paths.
// The study is a real phantom series written by `hilum phantom` and loaded
// with the DICOM loader, so the SR references real SOP instances.
#if HILUM_HAVE_IMAGING && defined(HILUM_CLI)
#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmsr/dsrdoc.h>
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "app/analyze.h"
#include "app/report_content.h"
#include "app/report_pdf.h"
#include "app/report_sr.h"
#include "model/file_io.h"
#include "tests/app/report_fixture.h"
#include "tests/support/test_support.h"
#include "vision/io/dicom.h"
#if HILUM_HAVE_REPORT_PDF
#include "app/pdf/report_pdf_qt.h"
#endif

namespace hilum {
namespace {

namespace fs = std::filesystem;

bool have_tool(const std::string& name) {
  return std::system(("command -v " + name + " >/dev/null 2>&1").c_str()) == 0;
}

// One phantom study loaded once per test process.
class StudyReports : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(fs::temp_directory_path() / ("hilum_reports_suite_" + std::to_string(::getpid())));
    fs::remove_all(*dir_);
    auto r = test::run_hilum({"-q", "phantom", "--out", (*dir_ / "study").string(), "--seed", "12",
                              "--slices", "30", "--nodules", "2"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    NullProgress p;
    auto loaded = load_dicom_volume({*dir_ / "study" / "dicom"}, LoadOptions{}, p);
    ASSERT_TRUE(loaded.ok()) << loaded.error().message();
    study_ = new LoadedStudy(std::move(*loaded));
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    fs::remove_all(*dir_, ec);
    delete dir_;
    delete study_;
  }

  // Two findings on real slices of the phantom.
  static FindingsDocument document() {
    auto a = test::make_finding(1, NoduleType::kPartSolid, 25.3, 23.8, "RUL", 0.97, 0.41, 15.6);
    auto b = test::make_finding(2, NoduleType::kSolid, 7.0, 5.0, "LLL", 0.9, 0.05);
    const Volume& v = study_->volume;
    a.location.slice_index = 10;
    a.center_mm = v.world_from_voxel({200, 250, 10});
    b.location.slice_index = 20;
    b.center_mm = v.world_from_voxel({330, 260, 20});
    FindingsDocument d = test::make_document({a, b});
    d.series_uid = study_->info.series_instance_uid;
    return d;
  }

  static fs::path* dir_;
  static LoadedStudy* study_;
};
fs::path* StudyReports::dir_ = nullptr;
LoadedStudy* StudyReports::study_ = nullptr;

SrOptions sr_options() {
  SrOptions o;
  o.impression = "1. Part-solid nodule in the right upper lobe measuring 25.3 x 23.8 mm (Lung-RADS 4B).";
  o.impression_note = "AI draft";
  o.software_version = "hilum 0.1.0";
  return o;
}

TEST_F(StudyReports, SrPassesDciodvfyAndDumpsTheTree) {
  test::ScratchDir d;
  const FindingsDocument doc = document();
  ASSERT_TRUE(write_report_sr(d / "sr.dcm", doc, study_->info, sr_options()).ok());
  if (have_tool("dciodvfy")) {
    auto v = test::run_command("/bin/sh",
                               {"-c", "dciodvfy " + test::shell_quote((d / "sr.dcm").string()) + " 2>&1"});
    EXPECT_EQ(v.out.find("Error"), std::string::npos) << v.out;
    EXPECT_NE(v.out.find("EnhancedSR"), std::string::npos) << v.out;
  }
  if (!have_tool("dsrdump")) GTEST_SKIP() << "dsrdump (dcmtk) not installed";
  auto dump = test::run_command("dsrdump", {"+Pc", (d / "sr.dcm").string()});
  ASSERT_EQ(dump.exit_code, 0) << dump.err;
  const std::string& t = dump.out;
  for (const char* want :
       {"Imaging Measurement Report", "\"Tracking Identifier\")=\"Nodule 1\"",
        "\"Tracking Identifier\")=\"Nodule 2\"", "(27925004,SCT,\"Nodule\")",
        "(42400003,SCT,\"Upper lobe of right lung\")", "(41224006,SCT,\"Lower lobe of left lung\")",
        "(103339001,SCT,\"Long Axis\")=\"25.3\"", "(103340004,SCT,\"Short Axis\")=\"23.8\"",
        "(81827009,SCT,\"Diameter\")=\"24.6\"", "(373098007,SCT,\"Mean\")", "(118565006,SCT,\"Volume\")",
        "(111003,DCM,\"Algorithm Version\")=\"0.1.0\"", "\"Lung-RADS v2022 category\")=\"4B\"",
        "(121073,DCM,\"Impression\")", "Image Library", "PHANTOM^SEED12"}) {
    EXPECT_NE(t.find(want), std::string::npos) << "missing " << want << "\n" << t;
  }
}

TEST_F(StudyReports, SrReferencesTheSourceSlicesAndIsDeterministic) {
  test::ScratchDir d;
  const FindingsDocument doc = document();
  ASSERT_TRUE(write_report_sr(d / "a.dcm", doc, study_->info, sr_options()).ok());
  ASSERT_TRUE(write_report_sr(d / "b.dcm", doc, study_->info, sr_options()).ok());
  EXPECT_EQ(*read_file(d / "a.dcm"), *read_file(d / "b.dcm"));
  DcmFileFormat ff;
  ASSERT_TRUE(ff.loadFile((d / "a.dcm").c_str()).good());
  DcmDataset* ds = ff.getDataset();
  OFString value;
  ds->findAndGetOFString(DCM_StudyInstanceUID, value);
  EXPECT_EQ(value.c_str(), study_->info.study_instance_uid);
  ds->findAndGetOFString(DCM_PatientID, value);
  EXPECT_EQ(value.c_str(), study_->info.patient.id);
  DSRDocument sr;
  ASSERT_TRUE(sr.read(*ds).good());
  // Every slice is in the evidence, and nodule 1's measurements point at slice 10.
  EXPECT_EQ(sr.getCurrentRequestedProcedureEvidence().getNumberOfInstances(),
            study_->info.sop_instance_uids.size());
  std::set<std::string> referenced;
  DSRDocumentTree& tree = sr.getTree();
  ASSERT_GT(tree.gotoRoot(), 0u);
  do {
    DSRContentItem& item = tree.getCurrentContentItem();
    if (item.getValueType() == DSRTypes::VT_Image && item.getConceptName().getCodeValue() == "121112") {
      referenced.insert(item.getImageReferencePtr()->getSOPInstanceUID().c_str());
    }
  } while (tree.iterate() > 0);
  EXPECT_EQ(referenced,
            (std::set<std::string>{study_->info.sop_instance_uids[10], study_->info.sop_instance_uids[20]}));
  // Other findings, other instance UID; same series UID.
  FindingsDocument other = doc;
  other.findings[0].long_axis_mm = 26.0;
  ASSERT_TRUE(write_report_sr(d / "c.dcm", other, study_->info, sr_options()).ok());
  DcmFileFormat fc;
  ASSERT_TRUE(fc.loadFile((d / "c.dcm").c_str()).good());
  OFString a_uid, c_uid, a_series, c_series;
  ds->findAndGetOFString(DCM_SOPInstanceUID, a_uid);
  fc.getDataset()->findAndGetOFString(DCM_SOPInstanceUID, c_uid);
  ds->findAndGetOFString(DCM_SeriesInstanceUID, a_series);
  fc.getDataset()->findAndGetOFString(DCM_SeriesInstanceUID, c_series);
  EXPECT_NE(a_uid, c_uid);
  EXPECT_EQ(a_series, c_series);
}

TEST_F(StudyReports, SrWithoutFindingsIsValid) {
  test::ScratchDir d;
  FindingsDocument doc = test::make_document({});
  doc.series_uid = study_->info.series_instance_uid;
  ASSERT_TRUE(write_report_sr(d / "sr.dcm", doc, study_->info, SrOptions{}).ok());
  if (!have_tool("dciodvfy")) GTEST_SKIP() << "dciodvfy (dicom3tools) not installed";
  auto v = test::run_command("/bin/sh",
                             {"-c", "dciodvfy " + test::shell_quote((d / "sr.dcm").string()) + " 2>&1"});
  EXPECT_EQ(v.out.find("Error"), std::string::npos) << v.out;
}

TEST_F(StudyReports, SrErrorsLeaveNoFile) {
  test::ScratchDir d;
  FindingsDocument doc = document();
  doc.findings[1].location.slice_index = 999;
  const Status s = write_report_sr(d / "sr.dcm", doc, study_->info, sr_options());
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().kind(), ErrorKind::kBadInput);
  EXPECT_NE(s.error().message().find("nodule 2"), std::string::npos) << s.error().message();
  EXPECT_TRUE(fs::is_empty(d.path()));
  // Into a folder that does not exist: an error, nothing written.
  EXPECT_FALSE(write_report_sr(d / "missing" / "sr.dcm", document(), study_->info, sr_options()).ok());
  EXPECT_TRUE(fs::is_empty(d.path()));
}

TEST_F(StudyReports, ContentHasHeaderTableAndKeyImages) {
  const FindingsDocument doc = document();
  Narrative n;
  n.text = template_impression(doc);
  n.note = "Template impression (no text model was given).";
  auto c = build_report_content(doc, study_->volume, study_->info, n);
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(c->header[0].second, "PHANTOM, SEED12");
  EXPECT_EQ(c->header[4].second, "2000-01-01");
  ASSERT_EQ(c->rows.size(), 2u);
  EXPECT_EQ(c->rows[0].location, "right upper lobe");
  EXPECT_EQ(c->rows[0].long_axis, "25.3");
  EXPECT_EQ(c->rows[0].type, "part-solid (solid 15.6 mm)");
  EXPECT_EQ(c->rows[1].lung_rads, "3");
  EXPECT_EQ(c->study_lung_rads, "4B (very suspicious)");
  EXPECT_EQ(c->images.size(), 2u);
  EXPECT_EQ(c->images[1].slice_index, 20);
  EXPECT_EQ(c->document_time, "20000101090000");
  EXPECT_NE(c->impression_label.find("template"), std::string::npos);
}

TEST(KeyImage, CentredOnTheNoduleInTheLungWindow) {
  Volume v = Volume::allocate(64, 64, 9, {0.8, 0.8, 2.0}, {-25.6, -25.6, -8});
  for (int64_t z = 0; z < 9; ++z) {
    for (int64_t y = 0; y < 64; ++y) {
      for (int64_t x = 0; x < 64; ++x) {
        const Vec3 w = v.world_from_voxel({double(x), double(y), double(z)});
        v.data()[(z * 64 + y) * 64 + x] = std::hypot(w[0] - 4, w[1] + 3, w[2]) < 5 ? 40.f : -850.f;
      }
    }
  }
  Finding f = test::make_finding(1, NoduleType::kSolid, 10, 10, "RUL", 0.9, 0.2);
  f.center_mm = {4, -3, 0};
  f.location.slice_index = 4;
  auto k = make_key_image(v, f, 120);
  ASSERT_TRUE(k.ok()) << k.error().message();
  EXPECT_EQ(k->width, 120);
  EXPECT_DOUBLE_EQ(k->mm_per_pixel, 0.5);  // 60 mm field
  EXPECT_DOUBLE_EQ(k->radius_px, 10.0);
  const auto px = [&](int r, int c) { return int(k->gray[size_t(r) * 120 + c]); };
  EXPECT_EQ(px(60, 60), 236);  // (40 + 1350) / 1500 * 255
  EXPECT_EQ(px(60, 90), 85);   // 15 mm to the patient's left: parenchyma
  f.location.slice_index = 12;
  EXPECT_FALSE(make_key_image(v, f).ok());
}

TEST(ReportContent, Formatting) {
  EXPECT_EQ(format_dicom_date("19630412"), "1963-04-12");
  EXPECT_EQ(format_dicom_date("1963"), "1963");
  EXPECT_EQ(format_person_name("DOE^JANE^M"), "DOE, JANE M");
  EXPECT_EQ(format_person_name("DOE"), "DOE");
  EXPECT_EQ(format_person_name("DOE^JANE=ideographic"), "DOE, JANE");
}

TEST(ReportPdf, WithoutARendererNothingIsWritten) {
  test::ScratchDir d;
  set_pdf_renderer(nullptr);
  const Status s = write_report_pdf(ReportContent{}, d / "r.pdf");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().kind(), ErrorKind::kUnsupported);
  EXPECT_TRUE(fs::is_empty(d.path()));
}

#if HILUM_HAVE_REPORT_PDF
TEST_F(StudyReports, PdfShowsEverythingAndIsDeterministic) {
  ASSERT_TRUE(install_qt_pdf_renderer().ok());
  test::ScratchDir d;
  const FindingsDocument doc = document();
  Narrative n;
  n.source = Narrative::Source::kModel;
  n.text = "Part-solid nodule in the right upper lobe, 25.3 x 23.8 mm, Lung-RADS 4B.";
  n.note = "AI draft by the general text model (text), checked against the structured findings.";
  auto c = build_report_content(doc, study_->volume, study_->info, n);
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(write_report_pdf(*c, d / "a.pdf").ok());
  ASSERT_TRUE(write_report_pdf(*c, d / "b.pdf").ok());
  const std::string a = *read_file(d / "a.pdf");
  EXPECT_EQ(a.rfind("%PDF-", 0), 0u);
  EXPECT_EQ(a, *read_file(d / "b.pdf"));
  if (!have_tool("pdftotext")) GTEST_SKIP() << "pdftotext (poppler-utils) not installed";
  auto text = test::run_command("pdftotext", {"-layout", (d / "a.pdf").string(), "-"});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  std::string t = text.out;
  for (const char* want :
       {"PHANTOM, SEED12", "PHANTOM-12", "2000-01-01", "AI-GENERATED DRAFT", "right upper lobe", "25.3",
        "23.8", "24.6", "part-solid (solid 15.6 mm)", "0.97", "0.41", "4B",
        "Lung-RADS v2022 (baseline): 4B (very suspicious)", "Management: Diagnostic chest CT",
        "AI draft by the general text model", "Key images", "axial slice 11 of 30",
        "Research software, not a medical device", "reviewed by a radiologist"}) {
    EXPECT_NE(t.find(want), std::string::npos) << "missing " << want << "\n" << t;
  }
  auto info = test::run_command("pdfinfo", {(d / "a.pdf").string()});
  EXPECT_NE(info.out.find("A4"), std::string::npos) << info.out;
}

TEST_F(StudyReports, StudyReportFilesAreWrittenTogether) {
  ASSERT_TRUE(install_qt_pdf_renderer().ok());
  test::ScratchDir d;
  StudyAnalysis a;
  a.volume = study_->volume;
  a.study = study_->info;
  a.findings = document();
  a.candidates = {{a.findings.findings[0].center_mm, 0.97, 12}};
  auto files = write_study_reports(a, write_impression(a.findings, nullptr), d / "out");
  ASSERT_TRUE(files.ok()) << files.error().message();
  EXPECT_TRUE(files->pdf_written);
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(d / "out")) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names,
            (std::vector<std::string>{"candidates.csv", "findings.json", "report-sr.dcm", "report.pdf"}));
  auto back = read_findings_json(d / "out" / "findings.json");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->findings.size(), 2u);
}
#endif

}  // namespace
}  // namespace hilum

#endif
