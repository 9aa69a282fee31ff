// DICOM TLS against an Orthanc whose DICOM port speaks only TLS and requires a
// client certificate. Certificates (a test CA, Orthanc's, Hilum's, and an
// unrelated CA) are made with the openssl command at suite set-up.
#include <gtest/gtest.h>

#include "app/pacs/pacs_client.h"
#include "tests/app/pacs/seeded_orthanc.h"

namespace hilum::pacs {
namespace {

namespace fs = std::filesystem;
using test::SeededOrthanc;

// Makes a CA and certificates signed by it under `dir`; returns "" or the problem.
std::string make_certificates(const fs::path& dir) {
  auto openssl = [](const std::vector<std::string>& args) { return test::run_command("openssl", args); };
  const std::string d = dir.string() + "/";
  auto check = [](const test::CommandResult& r, const char* what) -> std::string {
    return r.exit_code == 0 ? "" : std::string(what) + ": " + r.err;
  };
  std::string problem;
  for (const char* ca : {"ca", "other_ca"}) {
    problem = check(
        openssl({"req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "3", "-subj",
                 std::string("/CN=Hilum test ") + ca, "-keyout", d + ca + ".key", "-out", d + ca + ".pem"}),
        ca);
    if (!problem.empty()) return problem;
  }
  for (const char* who : {"orthanc", "hilum"}) {
    problem =
        check(openssl({"req", "-newkey", "rsa:2048", "-nodes", "-sha256", "-subj", std::string("/CN=") + who,
                       "-keyout", d + who + ".key", "-out", d + who + ".csr"}),
              who);
    if (!problem.empty()) return problem;
    problem =
        check(openssl({"x509", "-req", "-in", d + who + ".csr", "-CA", d + "ca.pem", "-CAkey", d + "ca.key",
                       "-CAcreateserial", "-sha256", "-days", "3", "-out", d + who + ".pem"}),
              who);
    if (!problem.empty()) return problem;
  }
  return "";
}

class PacsOrthancTls : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (test::orthanc_binary().empty()) return;
    certs_ = new test::ScratchDir("pacs_tls_certs");
    cert_error_ = make_certificates(certs_->path());
    if (!cert_error_.empty()) return;
    test::OrthancOptions options;
    options.tls = true;
    options.tls_cert = certs_->path() / "orthanc.pem";
    options.tls_key = certs_->path() / "orthanc.key";
    options.tls_trusted = certs_->path() / "ca.pem";
    options.tls_require_client_cert = true;
    seeded_ = SeededOrthanc::start("pacs_tls", options, client_tls()).release();
  }
  static void TearDownTestSuite() {
    delete seeded_;
    seeded_ = nullptr;
    delete certs_;
    certs_ = nullptr;
  }
  void SetUp() override {
    if (test::orthanc_binary().empty()) GTEST_SKIP() << "Orthanc is not installed";
    // openssl is in scripts/setup.sh's packages: its absence is a failure, not a skip.
    ASSERT_TRUE(cert_error_.empty()) << "making test certificates with openssl failed: " << cert_error_;
    HILUM_REQUIRE_ORTHANC(seeded_);
  }

  static Tls client_tls() {
    Tls tls;
    tls.enabled = true;
    tls.ca_file = certs_->path() / "ca.pem";
    tls.cert_file = certs_->path() / "hilum.pem";
    tls.key_file = certs_->path() / "hilum.key";
    return tls;
  }
  static Node tls_node() {
    Node n = seeded_->server->node();
    n.tls = client_tls();
    return n;
  }

  static test::ScratchDir* certs_;
  static std::string cert_error_;
  static SeededOrthanc* seeded_;
};

test::ScratchDir* PacsOrthancTls::certs_ = nullptr;
std::string PacsOrthancTls::cert_error_;
SeededOrthanc* PacsOrthancTls::seeded_ = nullptr;

TEST_F(PacsOrthancTls, EchoFindAndGetOverTls) {
  PacsClient client(tls_node());
  ASSERT_TRUE(client.echo().ok());
  NullProgress progress;
  Query q;
  q.patient_id = "HILUM-T1";
  auto found = client.find(q, progress);
  ASSERT_TRUE(found.ok()) << found.error().message();
  ASSERT_EQ(found->size(), 1u);
  EXPECT_EQ((*found)[0].study_uid, seeded_->alice.study_uid);

  test::ScratchDir out;
  RetrieveRequest req;
  req.study_uid = seeded_->bob.study_uid;
  auto got = client.get(req, out.path(), progress);
  ASSERT_TRUE(got.ok()) << got.error().message();
  ASSERT_EQ(got->instances.size(), 2u);
  for (const auto& inst : got->instances) {
    EXPECT_TRUE(test::read_back(inst.file).ok) << inst.file;
  }
}

TEST_F(PacsOrthancTls, MoveOverTlsIntoATlsStorageScp) {
  test::ScratchDir out;
  RetrieveRequest req;
  req.study_uid = seeded_->bob.study_uid;
  NullProgress progress;
  auto r = PacsClient(tls_node()).move(req, out.path(), progress);
  ASSERT_TRUE(r.ok()) << r.error().message() << "\n" << seeded_->server->log_tail();
  ASSERT_EQ(r->instances.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    bool found = false;
    for (const auto& want : seeded_->bob.instances) {
      if (want.sop_instance_uid == r->instances[i].sop_instance_uid) {
        found = true;
        EXPECT_EQ(test::read_back(r->instances[i].file).pixels, want.pixels);
      }
    }
    EXPECT_TRUE(found);
  }
}

TEST_F(PacsOrthancTls, PlainDicomToTheTlsPortFailsClearly) {
  Node n = seeded_->server->node();  // no TLS
  const Status s = PacsClient(n).echo();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message().find("TLS"), std::string::npos) << s.error().message();
}

TEST_F(PacsOrthancTls, UntrustedServerCertificateIsRefused) {
  Node n = tls_node();
  n.tls.ca_file = certs_->path() / "other_ca.pem";
  const Status s = PacsClient(n).echo();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message().find("TLS"), std::string::npos) << s.error().message();
}

TEST_F(PacsOrthancTls, ClientWithoutCertificateIsRefused) {
  Node n = tls_node();
  n.tls.cert_file.clear();
  n.tls.key_file.clear();
  const Status s = PacsClient(n).echo();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message().find(n.address()), std::string::npos) << s.error().message();
}

TEST_F(PacsOrthancTls, KeyThatDoesNotMatchTheCertificateIsBadInput) {
  Node n = tls_node();
  n.tls.key_file = certs_->path() / "orthanc.key";
  const Status s = PacsClient(n).echo();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().kind(), ErrorKind::kBadInput);
  EXPECT_NE(s.error().message().find("does not match"), std::string::npos) << s.error().message();
}

}  // namespace
}  // namespace hilum::pacs
