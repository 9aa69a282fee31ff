#include "app/pacs/storage_scp.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "app/pacs/dcmtk_net.h"
#include "dcmtk/dcmnet/scp.h"
#include "model/log.h"

namespace hilum::pacs {

namespace {

// The DcmSCP that writes what it receives. Runs on the StorageScp thread;
// counters and the instance list are read from other threads.
class Receiver : public DcmSCP {
 public:
  explicit Receiver(const StorageScpOptions& options) : options_(options) {}

  std::atomic<bool> stop_requested{false};
  std::atomic<int> received{0}, failed{0};
  std::atomic<bool> active{false};

  std::vector<ReceivedInstance> instances() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return instances_;
  }

 protected:
  OFCondition handleIncomingCommand(T_DIMSE_Message* msg, const DcmPresentationContextInfo& info) override {
    if (msg->CommandField != DIMSE_C_STORE_RQ) return DcmSCP::handleIncomingCommand(msg, info);
    T_DIMSE_C_StoreRQ& request = msg->msg.CStoreRQ;
    DcmDataset* raw = nullptr;
    OFCondition c = receiveSTORERequest(request, info.presentationContextID, raw);
    std::unique_ptr<DcmDataset> dataset(raw);
    if (c.bad()) {
      ++failed;
      return c;
    }
    Uint16 status = STATUS_Success;
    auto saved = detail::save_instance(*dataset, options_.out_dir);
    if (saved.ok()) {
      {
        std::lock_guard<std::mutex> lock(mutex_);
        instances_.push_back(std::move(saved).value());
      }
      ++received;
    } else {
      ++failed;
      log_warning("storage SCP: " + saved.error().message());
      status = saved.error().kind() == ErrorKind::kBadInput ? STATUS_STORE_Error_DataSetDoesNotMatchSOPClass
                                                            : STATUS_STORE_Refused_OutOfResources;
    }
    return sendSTOREResponse(info.presentationContextID, request, status);
  }

  OFBool checkCalledAETitleAccepted(const OFString& called) override {
    std::string ae = called.c_str();
    while (!ae.empty() && ae.back() == ' ') ae.pop_back();
    return ae == options_.ae_title;
  }

  void notifyAssociationAcknowledge() override { active = true; }
  void notifyAssociationTermination() override { active = false; }
  OFBool stopAfterCurrentAssociation() override { return stop_requested.load(); }
  OFBool stopAfterConnectionTimeout() override { return stop_requested.load(); }

 private:
  StorageScpOptions options_;
  mutable std::mutex mutex_;
  std::vector<ReceivedInstance> instances_;
};

// Connects to our own port and hangs up, so that a listener blocked in accept()
// returns at once and sees the stop request.
void wake_listener(uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  (void)::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  ::close(fd);
}

// DcmSCP switches dcmdata's automatic input correction off for the whole
// process when it starts listening ("we want to see the real data") and never
// back on; afterwards, values read from files keep their padding and some
// DCMTK checks fail (DSRDocument::read refuses odd-length UIDs). The setting is
// restored when the last running listener stops.
class InputCorrection {
 public:
  static void listener_started() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (listeners_++ == 0) saved_ = dcmEnableAutomaticInputDataCorrection.get();
  }
  static void listener_stopped() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (--listeners_ == 0) dcmEnableAutomaticInputDataCorrection.set(saved_);
  }

 private:
  static inline std::mutex mutex_;
  static inline int listeners_ = 0;
  static inline OFBool saved_ = OFTrue;
};

}  // namespace

class StorageScp::Impl {
 public:
  std::unique_ptr<DcmTLSTransportLayer> tls;  // destroyed after the receiver that uses it
  std::unique_ptr<Receiver> receiver;
  std::thread thread;
  uint16_t port = 0;
  bool stopped = false;

  ~Impl() {
    receiver.reset();
    tls.reset();
  }
};

StorageScp::StorageScp(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

StorageScp::~StorageScp() { stop(); }

Result<std::unique_ptr<StorageScp>> StorageScp::start(const StorageScpOptions& options) {
  detail::init_dcmtk();
  const std::string what = "storage SCP " + options.ae_title + " on port " + std::to_string(options.port);
  if (const std::string p = ae_title_problem(options.ae_title); !p.empty()) {
    return bad_input(what + ": AE title " + p);
  }
  if (options.out_dir.empty()) return bad_input(what + ": no output folder");
  std::error_code ec;
  std::filesystem::create_directories(options.out_dir, ec);
  if (ec) return bad_input(options.out_dir.string() + ": cannot create the output folder: " + ec.message());

  auto impl = std::make_unique<Impl>();
  impl->port = options.port;
  impl->receiver = std::make_unique<Receiver>(options);
  Receiver& r = *impl->receiver;
  r.setAETitle(options.ae_title.c_str());
  r.setPort(options.port);
  r.setMaxReceivePDULength(options.max_pdu);
  r.setACSETimeout(static_cast<Uint32>(options.timeouts.acse_s));
  r.setDIMSETimeout(static_cast<Uint32>(options.timeouts.dimse_s));
  r.setDIMSEBlockingMode(DIMSE_NONBLOCKING);
  r.setConnectionBlockingMode(DUL_NOBLOCK);
  r.setConnectionTimeout(1);  // poll the stop flag at least once a second
  r.setHostLookupEnabled(OFFalse);
  r.setProgressNotificationMode(OFFalse);
  r.setEnableVerification();
  for (const std::string& sop : detail::storage_sop_classes()) {
    OFCondition c = r.addPresentationContext(sop.c_str(), detail::receive_transfer_syntaxes());
    if (c.bad()) return internal_error(what + ": cannot add presentation contexts (" + c.text() + ")");
  }
  if (options.tls.enabled) {
    auto layer = detail::make_tls_layer(options.tls, NET_ACCEPTOR, what);
    if (!layer.ok()) return layer.error();
    impl->tls = std::move(layer).value();
    r.getConfig().setTransportLayer(impl->tls.get());
  }
  InputCorrection::listener_started();
  OFCondition c = r.openListenPort();
  if (c.bad()) {
    InputCorrection::listener_stopped();
    std::string t = c.text();
    for (char& ch : t) {
      if (ch == '\n') ch = ' ';
    }
    return bad_input(what + ": cannot listen (" + t +
                     "); is the port in use? Choose another (--scp-port, or storage_port in pacs.json)");
  }
  impl->thread = std::thread([&r] { r.acceptAssociations(); });
  return std::unique_ptr<StorageScp>(new StorageScp(std::move(impl)));
}

void StorageScp::stop() {
  if (!impl_ || impl_->stopped) return;
  impl_->stopped = true;
  impl_->receiver->stop_requested = true;
  if (impl_->thread.joinable()) {
    wake_listener(impl_->port);  // queued behind an association in progress, if any
    impl_->thread.join();
  }
  InputCorrection::listener_stopped();
}

int StorageScp::received() const { return impl_->receiver->received.load(); }
int StorageScp::failed() const { return impl_->receiver->failed.load(); }
std::vector<ReceivedInstance> StorageScp::instances() const { return impl_->receiver->instances(); }
bool StorageScp::association_active() const { return impl_->receiver->active.load(); }

}  // namespace hilum::pacs
