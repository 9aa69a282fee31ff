// One Orthanc per test suite, seeded with two synthetic patients: Alice (CT
// study, two series of 3 and 2 slices, 2026-03-10) and Bob (MR study, one series
// of 2 slices, 2025-01-02). Tests that store more use studies of their own, so
// the tests of a suite do not depend on each other's order.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "app/pacs/pacs_client.h"
#include "tests/app/orthanc_fixture.h"
#include "tests/app/pacs_test_data.h"

namespace hilum::test {

struct SeededOrthanc {
  std::unique_ptr<ScratchDir> dir;
  std::unique_ptr<OrthancServer> server;
  TestStudy alice, bob;
  std::string error;  // why set-up failed ("" when it worked)

  static std::unique_ptr<SeededOrthanc> start(const std::string& tag, const OrthancOptions& options = {},
                                              const pacs::Tls& client_tls = {}) {
    auto s = std::make_unique<SeededOrthanc>();
    if (orthanc_binary().empty()) return s;
    s->dir = std::make_unique<ScratchDir>(tag);
    s->server = OrthancServer::start(s->dir->path() / "orthanc", options, &s->error);
    if (!s->server) return s;
    s->alice = make_study({"TESTER^ALICE", "HILUM-T1", "19550101", "F"}, "20260310", "ACC-A1", "CT CHEST");
    add_image_series(s->alice, s->dir->path() / "alice", "CT", 2, 3, "AXIAL 2.5mm");
    add_image_series(s->alice, s->dir->path() / "alice", "CT", 3, 2, "AXIAL LUNG");
    s->bob = make_study({"TESTER^BOB", "HILUM-T2", "19700202", "M"}, "20250102", "ACC-B1", "MR BRAIN");
    add_image_series(s->bob, s->dir->path() / "bob", "MR", 1, 2, "T1");
    std::vector<std::filesystem::path> files;
    for (const auto* study : {&s->alice, &s->bob}) {
      for (const auto& inst : study->instances) files.push_back(inst.file);
    }
    pacs::Node node = s->server->node();
    node.tls = client_tls;
    NullProgress progress;
    auto stored = pacs::PacsClient(node).store(files, progress);
    if (!stored.ok()) {
      s->error = "seeding Orthanc failed: " + stored.error().message() + "\n" + s->server->log_tail();
    } else if (stored->stored != static_cast<int>(files.size())) {
      s->error =
          "seeding Orthanc stored " + std::to_string(stored->stored) + " of " + std::to_string(files.size());
    }
    return s;
  }

  bool ready() const { return server && error.empty(); }
};

// Skips when Orthanc is absent; fails with the reason when it would not start.
#define HILUM_REQUIRE_ORTHANC(seeded)                                                         \
  do {                                                                                        \
    if (::hilum::test::orthanc_binary().empty()) {                                            \
      GTEST_SKIP() << "Orthanc is not installed (Debian package orthanc)";                    \
    }                                                                                         \
    ASSERT_TRUE((seeded) && (seeded)->ready()) << ((seeded) ? (seeded)->error : "no set-up"); \
  } while (0)

}  // namespace hilum::test
