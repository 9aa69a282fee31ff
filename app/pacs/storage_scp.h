// Hilum's storage SCP: a DICOM listener (DCMTK DcmSCP) on a background thread
// that accepts C-ECHO and C-STORE and writes every received instance atomically
// to out_dir/<StudyUID>/<SeriesUID>/<SOPInstanceUID>.dcm. PacsClient::move()
// runs one for the duration of a C-MOVE; it can also run on its own to receive
// what a PACS pushes.
//
// Thread safety: start() and stop() from the owning thread; received() and
// instances() from any thread.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "app/pacs/pacs_client.h"
#include "app/pacs/pacs_config.h"
#include "model/result.h"

namespace hilum::pacs {

struct StorageScpOptions {
  std::string ae_title = "HILUM";  // called AE title we answer to (others are rejected)
  uint16_t port = 11113;
  std::filesystem::path out_dir;
  Timeouts timeouts;  // acse and dimse apply
  uint32_t max_pdu = 116794;
  Tls tls;  // when enabled, cert_file and key_file are the server certificate
};

class StorageScp {
 public:
  // Opens the listening port (errors, e.g. the port is in use, come back here)
  // and starts accepting associations on a background thread.
  static Result<std::unique_ptr<StorageScp>> start(const StorageScpOptions& options);
  ~StorageScp();  // stop()
  StorageScp(const StorageScp&) = delete;
  StorageScp& operator=(const StorageScp&) = delete;

  // Finishes the association in progress, stops listening and joins the thread.
  void stop();

  int received() const;                             // instances written so far
  int failed() const;                               // instances that could not be written
  std::vector<ReceivedInstance> instances() const;  // copies, in arrival order
  bool association_active() const;                  // a peer is connected right now

  class Impl;

 private:
  explicit StorageScp(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace hilum::pacs
