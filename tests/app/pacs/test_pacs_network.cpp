// Network failures without a PACS (refused, silent server, dropped SYNs,
// unknown host) and Hilum's storage SCP on its own, fed by Hilum's client.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "app/pacs/pacs_client.h"
#include "app/pacs/storage_scp.h"
#include "model/stopwatch.h"
#include "tests/app/orthanc_fixture.h"
#include "tests/app/pacs_test_data.h"

namespace hilum::pacs {
namespace {

namespace fs = std::filesystem;

Node local_node(uint16_t port, const std::string& ae = "NOBODY") {
  Node n;
  n.ae_title = ae;
  n.host = "127.0.0.1";
  n.port = port;
  n.timeouts.connect_s = 2;
  n.timeouts.acse_s = 2;
  n.timeouts.dimse_s = 5;
  return n;
}

void expect_error(const Status& s, ErrorKind kind, std::initializer_list<std::string> fragments) {
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().kind(), kind) << s.error().message();
  for (const auto& f : fragments)
    EXPECT_NE(s.error().message().find(f), std::string::npos) << s.error().message();
  EXPECT_EQ(s.error().message().find('\n'), std::string::npos) << s.error().message();
}

TEST(PacsNetworkErrors, RefusedConnection) {
  const uint16_t port = test::free_tcp_port();  // nothing listens there
  expect_error(PacsClient(local_node(port)).echo(), ErrorKind::kInternal,
               {"NOBODY@127.0.0.1:" + std::to_string(port), "connection refused"});
}

TEST(PacsNetworkErrors, SilentServerHitsTheAssociationTimeout) {
  test::SilentServer silent;
  Node node = local_node(silent.port());
  node.timeouts.acse_s = 1;
  const Stopwatch clock;
  expect_error(PacsClient(node).echo(), ErrorKind::kInternal, {"no answer", "1 s"});
  EXPECT_LT(clock.seconds(), 10.0);  // it gave up instead of hanging
}

TEST(PacsNetworkErrors, DroppedConnectionHitsTheConnectTimeout) {
  test::BlackholePort hole;
  if (!hole.works()) GTEST_SKIP() << "could not fill the accept queue of a loopback socket";
  Node node = local_node(hole.port());
  node.timeouts.connect_s = 1;
  const Stopwatch clock;
  expect_error(PacsClient(node).echo(), ErrorKind::kInternal, {"no connection within 1 s"});
  EXPECT_LT(clock.seconds(), 10.0);
}

TEST(PacsNetworkErrors, UnknownHost) {
  Node node = local_node(104);
  node.host = "no-such-host.invalid";
  expect_error(PacsClient(node).echo(), ErrorKind::kBadInput, {"unknown host", "no-such-host.invalid"});
}

TEST(PacsNetworkErrors, InvalidNodeIsRefusedBeforeConnecting) {
  Node node = local_node(104, "WAY_TOO_LONG_AE_TITLE");
  expect_error(PacsClient(node).echo(), ErrorKind::kBadInput, {"ae_title", "16 characters"});
  Node no_host = local_node(104);
  no_host.host.clear();
  expect_error(PacsClient(no_host).echo(), ErrorKind::kBadInput, {"host is empty"});
}

class CountingProgress : public Progress {
 public:
  void report(double fraction, std::string_view) override {
    EXPECT_GE(fraction, 0.0);
    EXPECT_LE(fraction, 1.0);
    ++reports;
  }
  int reports = 0;
};

TEST(PacsStorageScp, ReceivesWhatHilumStores) {
  test::ScratchDir dir;
  auto study = test::make_study({"TESTER^SCP", "HILUM-SCP", "19800101", "O"}, "20260101", "ACC-S", "CT");
  test::add_image_series(study, dir / "src", "CT", 1, 3, "AXIAL");

  StorageScpOptions options;
  options.ae_title = "HILUM_RX";
  options.port = test::free_tcp_port();
  options.out_dir = dir / "inbox";
  auto scp = StorageScp::start(options);
  ASSERT_TRUE(scp.ok()) << scp.error().message();

  PacsClient client(local_node(options.port, "HILUM_RX"));
  ASSERT_TRUE(client.echo().ok());
  std::vector<fs::path> files;
  for (const auto& inst : study.instances) files.push_back(inst.file);
  CountingProgress progress;
  auto stored = client.store(files, progress);
  ASSERT_TRUE(stored.ok()) << stored.error().message();
  EXPECT_EQ(stored->stored, 3);
  EXPECT_EQ(stored->failed, 0);
  EXPECT_GE(progress.reports, 3);
  (*scp)->stop();
  EXPECT_EQ((*scp)->received(), 3);
  EXPECT_EQ((*scp)->failed(), 0);

  for (const auto& inst : study.instances) {
    const fs::path p = instance_path(options.out_dir, inst.study_uid, inst.series_uid, inst.sop_instance_uid);
    const auto back = test::read_back(p);
    ASSERT_TRUE(back.ok) << p;
    EXPECT_EQ(back.sop_instance_uid, inst.sop_instance_uid);
    EXPECT_EQ(back.pixels, inst.pixels);
  }
  // Only finished files: no temporary names left.
  for (const auto& e : fs::recursive_directory_iterator(options.out_dir)) {
    if (e.is_regular_file()) {
      EXPECT_EQ(e.path().extension(), ".dcm") << e.path();
    }
  }
}

TEST(PacsStorageScp, RejectsOtherCalledAeTitles) {
  test::ScratchDir dir;
  StorageScpOptions options;
  options.ae_title = "HILUM_RX";
  options.port = test::free_tcp_port();
  options.out_dir = dir / "inbox";
  auto scp = StorageScp::start(options);
  ASSERT_TRUE(scp.ok()) << scp.error().message();
  expect_error(PacsClient(local_node(options.port, "SOMEONE_ELSE")).echo(), ErrorKind::kBadInput,
               {"association rejected", "called AE title 'SOMEONE_ELSE' not recognized"});
}

TEST(PacsStorageScp, PortInUseIsReportedAtStart) {
  test::ScratchDir dir;
  StorageScpOptions options;
  options.port = test::free_tcp_port();
  options.out_dir = dir / "inbox";
  auto first = StorageScp::start(options);
  ASSERT_TRUE(first.ok()) << first.error().message();
  auto second = StorageScp::start(options);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().kind(), ErrorKind::kBadInput);
  EXPECT_NE(second.error().message().find("port " + std::to_string(options.port)), std::string::npos)
      << second.error().message();
}

TEST(PacsStorageScp, StopsAndFreesThePort) {
  test::ScratchDir dir;
  StorageScpOptions options;
  options.port = test::free_tcp_port();
  options.out_dir = dir / "inbox";
  auto scp = StorageScp::start(options);
  ASSERT_TRUE(scp.ok()) << scp.error().message();
  (*scp)->stop();
  (*scp)->stop();  // idempotent
  // The port is free again.
  auto again = StorageScp::start(options);
  EXPECT_TRUE(again.ok()) << again.error().message();
}

// DcmSCP turns dcmdata's input correction off process-wide; after the SCP
// stops, reading a DICOM SR with an odd-length UID must work as before.
TEST(PacsStorageScp, LeavesDcmdataSettingsAsTheyWere) {
  test::ScratchDir dir;
  auto study = test::make_study({"TESTER^SET", "HILUM-SET", "19800101", "O"}, "20260101", "ACC-SET", "CT");
  const std::string sr_uid = test::write_text_sr(study, dir / "note.dcm", "A note.");
  const bool before = dcmEnableAutomaticInputDataCorrection.get();
  StorageScpOptions options;
  options.port = test::free_tcp_port();
  options.out_dir = dir / "inbox";
  {
    auto scp = StorageScp::start(options);
    ASSERT_TRUE(scp.ok()) << scp.error().message();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the listener thread is running
  }
  EXPECT_EQ(dcmEnableAutomaticInputDataCorrection.get(), before);
  DcmFileFormat ff;
  ASSERT_TRUE(ff.loadFile((dir / "note.dcm").c_str()).good());
  DSRDocument doc;
  EXPECT_TRUE(doc.read(*ff.getDataset()).good());
}

TEST(PacsStorageScp, StoreRefusesNonDicomBeforeSendingAnything) {
  test::ScratchDir dir;
  auto study = test::make_study({"TESTER^X", "HILUM-X", "19800101", "O"}, "20260101", "A", "CT");
  test::add_image_series(study, dir / "src", "CT", 1, 1, "AXIAL");
  test::write_bytes(dir / "notes.txt", "not DICOM");
  StorageScpOptions options;
  options.port = test::free_tcp_port();
  options.out_dir = dir / "inbox";
  auto scp = StorageScp::start(options);
  ASSERT_TRUE(scp.ok());
  NullProgress progress;
  auto r = PacsClient(local_node(options.port, "HILUM"))
               .store({study.instances[0].file, dir / "notes.txt"}, progress);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind(), ErrorKind::kBadInput);
  EXPECT_NE(r.error().message().find("notes.txt"), std::string::npos) << r.error().message();
  (*scp)->stop();
  EXPECT_EQ((*scp)->received(), 0);
}

}  // namespace
}  // namespace hilum::pacs
