// The encapsulated-PDF writer: dciodvfy (dicom3tools) accepts what it writes,
// the PDF comes back byte for byte, the identifiers are the study's, and bad
// input leaves no file behind.
#include <gtest/gtest.h>

#include "app/pacs/encapsulated_pdf.h"
#include "tests/app/pacs_test_data.h"
#include "tests/support/test_support.h"

namespace hilum::pacs {
namespace {

namespace fs = std::filesystem;

test::TestStudy sample_study(const fs::path& dir) {
  auto study =
      test::make_study({"TESTER^PDF", "HILUM-PDF", "19600101", "F"}, "20260310", "ACC-PDF", "CT CHEST");
  test::add_image_series(study, dir, "CT", 2, 1, "AXIAL");
  return study;
}

TEST(PacsEncapsulatedPdf, WritesAnObjectDciodvfyAccepts) {
  test::ScratchDir dir;
  auto study = sample_study(dir / "ct");
  const std::string pdf = test::minimal_pdf("Hilum report: no nodules");  // odd or even, both handled
  test::write_bytes(dir / "report.pdf", pdf);

  std::string study_id, referring;
  auto info = read_study_identifiers(study.instances[0].file, &study_id, &referring);
  ASSERT_TRUE(info.ok()) << info.error().message();
  EXPECT_EQ(info->patient.name, "TESTER^PDF");
  EXPECT_EQ(info->patient.id, "HILUM-PDF");
  EXPECT_EQ(info->study_instance_uid, study.study_uid);
  EXPECT_EQ(info->accession_number, "ACC-PDF");
  EXPECT_EQ(study_id, "1");

  EncapsulatedPdfOptions options;
  options.study_id = study_id;
  options.referring_physician = referring;
  auto uid = write_encapsulated_pdf(dir / "report.pdf", *info, options, dir / "report.dcm");
  ASSERT_TRUE(uid.ok()) << uid.error().message();
  EXPECT_EQ(uid->rfind("2.25.", 0), 0u);

  // dicom3tools' IOD checker: exit 0 and no "Error" lines.
  const auto check = test::run_command("dciodvfy", {(dir / "report.dcm").string()});
  ASSERT_NE(check.exit_code, 127) << "dciodvfy not found: install dicom3tools (scripts/setup.sh does)";
  EXPECT_EQ(check.exit_code, 0) << check.err;
  EXPECT_EQ(check.err.find("Error"), std::string::npos) << check.err;
  EXPECT_NE((check.out + check.err).find("EncapsulatedPDF"), std::string::npos) << check.out << check.err;

  const auto back = test::read_back(dir / "report.dcm");
  ASSERT_TRUE(back.ok);
  EXPECT_EQ(back.sop_class_uid, "1.2.840.10008.5.1.4.1.1.104.1");
  EXPECT_EQ(back.sop_instance_uid, *uid);
  EXPECT_EQ(back.study_uid, study.study_uid);
  EXPECT_NE(back.series_uid, study.series_uids[0]);  // a series of its own
  ASSERT_GE(back.document.size(), pdf.size());
  EXPECT_LE(back.document.size(), pdf.size() + 1);  // even-length padding
  EXPECT_EQ(back.document.substr(0, pdf.size()), pdf);
}

TEST(PacsEncapsulatedPdf, KeepsGivenUidsAndNonAsciiNames) {
  test::ScratchDir dir;
  test::write_bytes(dir / "r.pdf", test::minimal_pdf("x"));
  StudyInfo study;
  study.study_instance_uid = "1.2.826.0.1.3680043.10.1234.1";
  study.patient.name = "MÜLLER^JÖRG";
  study.patient.id = "P1";
  EncapsulatedPdfOptions options;
  options.series_instance_uid = "1.2.826.0.1.3680043.10.1234.2";
  options.sop_instance_uid = "1.2.826.0.1.3680043.10.1234.3";
  auto uid = write_encapsulated_pdf(dir / "r.pdf", study, options, dir / "r.dcm");
  ASSERT_TRUE(uid.ok()) << uid.error().message();
  EXPECT_EQ(*uid, options.sop_instance_uid);
  auto info = read_study_identifiers(dir / "r.dcm");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->patient.name, "MÜLLER^JÖRG");  // written as ISO_IR 192, read back as UTF-8
  EXPECT_EQ(info->series_instance_uid, options.series_instance_uid);
}

TEST(PacsEncapsulatedPdf, BadInputLeavesNoFile) {
  test::ScratchDir dir;
  StudyInfo study;
  study.study_instance_uid = "1.2.3.4";
  test::write_bytes(dir / "not.pdf", "hello, I am text");
  auto r = write_encapsulated_pdf(dir / "not.pdf", study, {}, dir / "out.dcm");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind(), ErrorKind::kBadInput);
  EXPECT_NE(r.error().message().find("not.pdf"), std::string::npos);
  EXPECT_NE(r.error().message().find("not a PDF"), std::string::npos);

  auto missing = write_encapsulated_pdf(dir / "missing.pdf", study, {}, dir / "out.dcm");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message().find("missing.pdf"), std::string::npos);

  test::write_bytes(dir / "ok.pdf", test::minimal_pdf("x"));
  StudyInfo no_uid;
  auto r2 = write_encapsulated_pdf(dir / "ok.pdf", no_uid, {}, dir / "out.dcm");
  ASSERT_FALSE(r2.ok());
  EXPECT_EQ(r2.error().kind(), ErrorKind::kBadInput);
  EXPECT_NE(r2.error().message().find("Study Instance UID"), std::string::npos);

  EncapsulatedPdfOptions bad_uid;
  bad_uid.sop_instance_uid = "not-a-uid";
  auto r3 = write_encapsulated_pdf(dir / "ok.pdf", study, bad_uid, dir / "out.dcm");
  ASSERT_FALSE(r3.ok());
  EXPECT_NE(r3.error().message().find("not-a-uid"), std::string::npos);

  EXPECT_FALSE(fs::exists(dir / "out.dcm"));
  for (const auto& e : fs::directory_iterator(dir.path())) {
    EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos) << e.path();
  }

  auto not_dicom = read_study_identifiers(dir / "not.pdf");
  ASSERT_FALSE(not_dicom.ok());
  EXPECT_EQ(not_dicom.error().kind(), ErrorKind::kBadInput);
  EXPECT_NE(not_dicom.error().message().find("not.pdf"), std::string::npos);
}

TEST(PacsEncapsulatedPdf, NewUidsAreValidAndDistinct) {
  std::set<std::string> seen;
  for (int i = 0; i < 200; ++i) {
    const std::string uid = new_dicom_uid();
    EXPECT_LE(uid.size(), 64u);
    EXPECT_EQ(uid.rfind("2.25.", 0), 0u);
    EXPECT_NE(uid[5], '0');  // no leading zero in a UID component
    EXPECT_TRUE(seen.insert(uid).second);
  }
}

}  // namespace
}  // namespace hilum::pacs
