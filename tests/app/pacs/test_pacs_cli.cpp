// `hilum pacs ...` through the real binary against a real Orthanc: output
// formats, exit codes (0 ok, 2 bad input, 1 failure), one-line errors, and no
// patient identifiers on stderr even with -v.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "tests/app/pacs/seeded_orthanc.h"

namespace hilum::pacs {
namespace {

namespace fs = std::filesystem;
using test::run_hilum;
using test::SeededOrthanc;

std::string config_for(const Node& n, const std::string& extra_node_fields = "") {
  return "{\n  \"calling_ae\": \"" + n.calling_ae +
         "\",\n  \"nodes\": {\n    \"orthanc\": {\"ae_title\": \"" + n.ae_title + "\", \"host\": \"" +
         n.host + "\", \"port\": " + std::to_string(n.port) +
         ", \"storage_port\": " + std::to_string(n.storage_port) + extra_node_fields + "}\n  }\n}\n";
}

void write_text(const fs::path& p, const std::string& s) { std::ofstream(p) << s; }

bool one_line(const std::string& err) {
  // The error is the last line; progress lines may precede it.
  const size_t pos = err.find("hilum: error: ");
  return pos != std::string::npos && err.find('\n', pos) == err.size() - 1;
}

class PacsOrthancCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    seeded_ = SeededOrthanc::start("pacs_cli").release();
    if (seeded_ && seeded_->ready()) {
      config_ = seeded_->dir->path() / "pacs.json";
      write_text(config_, config_for(seeded_->server->node()));
    }
  }
  static void TearDownTestSuite() {
    delete seeded_;
    seeded_ = nullptr;
  }
  void SetUp() override { HILUM_REQUIRE_ORTHANC(seeded_); }

  static std::vector<std::string> with_config(std::vector<std::string> args) {
    args.push_back("--config");
    args.push_back(config_.string());
    return args;
  }

  static SeededOrthanc* seeded_;
  static fs::path config_;
};

SeededOrthanc* PacsOrthancCli::seeded_ = nullptr;
fs::path PacsOrthancCli::config_;

TEST_F(PacsOrthancCli, EchoWithConfigAndWithFlags) {
  auto r = run_hilum(with_config({"pacs", "echo"}));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("ok"), std::string::npos) << r.out;
  const Node n = seeded_->server->node();
  r = run_hilum(
      {"pacs", "echo", "--host", "127.0.0.1", "--port", std::to_string(n.port), "--aet", n.ae_title});
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST_F(PacsOrthancCli, FindPrintsATableOrJson) {
  auto r = run_hilum(
      with_config({"-q", "pacs", "find", "--patient-id", "HILUM-T*", "--date", "20260101-20261231"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("StudyInstanceUID"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(seeded_->alice.study_uid), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find(seeded_->bob.study_uid), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("TESTER^ALICE"), std::string::npos);  // the user asked for it

  r = run_hilum(with_config(
      {"-q", "pacs", "find", "--level", "series", "--study", seeded_->alice.study_uid, "--json"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_TRUE(j.is_array());
  ASSERT_EQ(j.size(), 2u);
  EXPECT_EQ(j[0]["series_uid"], seeded_->alice.series_uids[0]);
  EXPECT_EQ(j[0]["series_instances"], 3);
  EXPECT_EQ(j[0]["modality"], "CT");
  EXPECT_EQ(j[0]["level"], "SERIES");

  r = run_hilum(
      with_config({"-q", "pacs", "find", "--level", "patient", "--patient-name", "TESTER^B*", "--json"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto p = nlohmann::json::parse(r.out);
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0]["patient_id"], "HILUM-T2");
}

TEST_F(PacsOrthancCli, PatientIdentifiersNeverReachStderr) {
  auto r = run_hilum(with_config({"-v", "pacs", "find", "--patient-id", "HILUM-T1", "--json"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("TESTER^ALICE"), std::string::npos);
  EXPECT_EQ(r.err.find("TESTER"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("HILUM-T1"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("19550101"), std::string::npos) << r.err;

  test::ScratchDir out;
  r = run_hilum(
      with_config({"-v", "pacs", "get", "--study", seeded_->alice.study_uid, "--out", out.path().string()}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err.find("TESTER"), std::string::npos) << r.err;
  EXPECT_EQ((r.out + r.err).find("HILUM-T1"), std::string::npos);
}

TEST_F(PacsOrthancCli, GetAndMoveWriteTheStudy) {
  test::ScratchDir out;
  auto r = run_hilum(with_config(
      {"-q", "pacs", "get", "--study", seeded_->alice.study_uid, "--out", (out / "get").string()}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("retrieved 5 instances"), std::string::npos) << r.out;
  EXPECT_TRUE(fs::is_directory(out / "get" / seeded_->alice.study_uid));

  r = run_hilum(
      with_config({"-q", "pacs", "move", "--study", seeded_->bob.study_uid, "--out", (out / "move").string(),
                   "--scp-port", std::to_string(seeded_->server->hilum_scp_port())}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("retrieved 2 instances"), std::string::npos) << r.out;
  int n = 0;
  for (const auto& e : fs::recursive_directory_iterator(out / "move")) n += e.is_regular_file();
  EXPECT_EQ(n, 2);
}

TEST_F(PacsOrthancCli, StoreWrapPdfAndFolders) {
  test::ScratchDir dir;
  auto dave = test::make_study({"TESTER^DAVE", "HILUM-T4", "19500404", "M"}, "20260501", "ACC-D1", "CT");
  test::add_image_series(dave, dir / "study" / "dicom", "CT", 2, 2, "AXIAL");
  write_text(dir / "study" / "clinical.txt", "referral text");  // skipped: not DICOM
  test::write_bytes(dir / "report.pdf", test::minimal_pdf("report"));

  auto r = run_hilum({"pacs", "wrap-pdf", "--pdf", (dir / "report.pdf").string(), "--study-file",
                      dave.instances[0].file.string(), "--out", (dir / "report.dcm").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("SOP Instance UID 2.25."), std::string::npos) << r.out;

  r = run_hilum(
      with_config({"-q", "pacs", "store", (dir / "study").string(), (dir / "report.dcm").string()}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("stored 3 of 3 files"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("skipped 1 non-DICOM"), std::string::npos) << r.out;

  r = run_hilum(with_config({"-q", "pacs", "find", "--patient-id", "HILUM-T4", "--json"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j.size(), 1u);
  EXPECT_EQ(j[0]["study_instances"], 3);

  // An explicit non-DICOM file is bad input and sends nothing.
  r = run_hilum(with_config({"pacs", "store", (dir / "study" / "clinical.txt").string()}));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("clinical.txt"), std::string::npos) << r.err;
  EXPECT_TRUE(one_line(r.err)) << r.err;
}

TEST_F(PacsOrthancCli, ErrorsHaveExitCodesAndOneLine) {
  const Node n = seeded_->server->node();
  // Wrong called AE title: rejected, bad input.
  auto r = run_hilum(
      {"pacs", "echo", "--host", "127.0.0.1", "--port", std::to_string(n.port), "--aet", "WRONG_AE"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("association rejected"), std::string::npos) << r.err;
  EXPECT_TRUE(one_line(r.err)) << r.err;
  // Nothing listening: refused, failure.
  r = run_hilum(
      {"pacs", "echo", "--host", "127.0.0.1", "--port", std::to_string(test::free_tcp_port()), "--aet", "X"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("connection refused"), std::string::npos) << r.err;
  EXPECT_TRUE(one_line(r.err)) << r.err;
  // Silent server: timeout, failure.
  test::SilentServer silent;
  r = run_hilum({"pacs", "echo", "--host", "127.0.0.1", "--port", std::to_string(silent.port()), "--aet", "X",
                 "--acse-timeout", "1"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("no answer"), std::string::npos) << r.err;
  // Unknown study: bad input.
  test::ScratchDir out;
  r = run_hilum(
      with_config({"pacs", "get", "--study", "1.2.826.0.1.3680043.10.999.2", "--out", out.path().string()}));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_TRUE(one_line(r.err)) << r.err;
  // Invalid date.
  r = run_hilum(with_config({"pacs", "find", "--date", "March"}));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("March"), std::string::npos) << r.err;
}

// A phantom study (the project's synthetic chest CT) through the PACS and back,
// both ways, then read by the DICOM loader.
TEST_F(PacsOrthancCli, PhantomStudyRoundTrip) {
  test::ScratchDir dir;
  auto r = run_hilum({"-q", "phantom", "--out", (dir / "phantom").string(), "--seed", "7", "--slices", "16"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::map<std::string, test::ReadBack> source;
  for (const auto& e : fs::directory_iterator(dir / "phantom" / "dicom")) {
    auto back = test::read_back(e.path());
    ASSERT_TRUE(back.ok) << e.path();
    source[back.sop_instance_uid] = back;
  }
  ASSERT_EQ(source.size(), 16u);
  const std::string study_uid = source.begin()->second.study_uid;

  r = run_hilum(with_config({"-q", "pacs", "store", (dir / "phantom").string()}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("stored 16 of 16 files"), std::string::npos) << r.out;

  for (const char* how : {"get", "move"}) {
    const fs::path out = dir / how;
    r = run_hilum(with_config({"-q", "pacs", how, "--study", study_uid, "--out", out.string()}));
    ASSERT_EQ(r.exit_code, 0) << how << ": " << r.err;
    int n = 0;
    for (const auto& e : fs::recursive_directory_iterator(out / study_uid)) {
      if (!e.is_regular_file()) continue;
      ++n;
      const auto back = test::read_back(e.path());
      ASSERT_TRUE(back.ok) << e.path();
      ASSERT_TRUE(source.count(back.sop_instance_uid)) << e.path();
      EXPECT_EQ(back.pixels, source[back.sop_instance_uid].pixels) << e.path();
      EXPECT_FALSE(back.pixels.empty());
    }
    EXPECT_EQ(n, 16) << how;
    // The DICOM loader reads the retrieved study as it read the original.
    r = run_hilum({"-q", "info", (out / study_uid).string()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("16 slice(s)"), std::string::npos) << r.out;
  }
}

TEST(PacsCli, ConfigurationErrorsExit2NamingFileAndField) {
  test::ScratchDir dir;
  const fs::path bad = dir / "pacs.json";
  write_text(bad, R"({"nodes": {"main": {"ae_title": "A", "host": "h", "port": 104, "hostname": "x"}}})");
  auto r = run_hilum({"pacs", "echo", "--config", bad.string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find(bad.string()), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("nodes.main.hostname: unknown field"), std::string::npos) << r.err;

  write_text(bad, "{ not json");
  r = run_hilum({"pacs", "find", "--config", bad.string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("not valid JSON"), std::string::npos) << r.err;

  r = run_hilum({"pacs", "echo", "--config", (dir / "missing.json").string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("missing.json"), std::string::npos) << r.err;

  write_text(bad, R"({"nodes": {"main": {"ae_title": "A", "host": "h", "port": 104}}})");
  r = run_hilum({"pacs", "echo", "--config", bad.string(), "--node", "other"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("no node named 'other'"), std::string::npos) << r.err;
}

TEST(PacsCli, NoConfigurationAndNoHostIsExplained) {
  test::ScratchDir dir;
  // No config anywhere: point HOME and XDG at an empty folder.
  auto r = test::run_command(
      HILUM_CLI, {"pacs", "echo"},
      "HILUM_PACS_CONFIG= HOME=" + dir.path().string() + " XDG_CONFIG_HOME=" + dir.path().string() + " ");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("no PACS configured"), std::string::npos) << r.err;
  r = run_hilum({"pacs", "echo", "--host", "127.0.0.1"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--port"), std::string::npos) << r.err;
  r = run_hilum({"pacs", "echo", "--host", "127.0.0.1", "--port", "104", "--aet", "A", "--tls-ca", "x.pem"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--tls"), std::string::npos) << r.err;
}

TEST(PacsCli, WrapPdfRejectsANonPdf) {
  test::ScratchDir dir;
  auto s = test::make_study({"TESTER^E", "HILUM-T5", "19500505", "F"}, "20260505", "A", "CT");
  test::add_image_series(s, dir / "ct", "CT", 1, 1, "AXIAL");
  auto r = run_hilum({"pacs", "wrap-pdf", "--pdf", s.instances[0].file.string(), "--study-file",
                      s.instances[0].file.string(), "--out", (dir / "out.dcm").string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("not a PDF"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir / "out.dcm"));
}

}  // namespace
}  // namespace hilum::pacs
