// A real Orthanc server for the PACS tests: a generated configuration in a
// scratch folder (DICOM and HTTP ports picked free at run time, storage in the
// scratch folder, Hilum registered as a modality so that C-MOVE can reach its
// storage SCP, HTTP authentication on, remote access off, called AE title
// checked, no plugins), started as a child process, polled until its REST API
// answers, and stopped with SIGTERM. It never touches the system Orthanc
// service (other ports, own database) and needs no root.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "app/pacs/pacs_config.h"
#include "tests/support/test_support.h"

namespace hilum::test {

// The Orthanc binary, or "" when it is not installed (tests then skip).
inline std::string orthanc_binary() {
  for (const char* p : {"/usr/sbin/Orthanc", "/usr/bin/Orthanc", "/usr/local/bin/Orthanc"}) {
    if (::access(p, X_OK) == 0) return p;
  }
  return "";
}

// A TCP socket bound to a port the kernel picks on `host` (host byte order:
// INADDR_ANY, INADDR_LOOPBACK); `addr` receives the address it got. The socket
// (the caller closes it), or -1 when none could be bound.
inline int bind_free_port(uint32_t host, sockaddr_in& addr) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(host);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// A TCP port nobody listens on right now (bound to port 0, then released); 0
// when none could be bound.
inline uint16_t free_tcp_port() {
  sockaddr_in addr{};
  const int fd = bind_free_port(INADDR_ANY, addr);
  if (fd < 0) return 0;
  ::close(fd);
  return ntohs(addr.sin_port);
}

inline std::string random_token() {
  std::random_device rd;
  char buf[17];
  std::snprintf(buf, sizeof buf, "%08x%08x", rd(), rd());
  return buf;
}

struct OrthancOptions {
  std::string aet = "ORTHANC";
  std::string hilum_aet = "HILUM";
  // DICOM TLS on Orthanc's DICOM port; Hilum's modality entry then uses TLS for
  // C-MOVE too.
  bool tls = false;
  std::filesystem::path tls_cert, tls_key, tls_trusted;
  bool tls_require_client_cert = true;
  // Hilum may query and retrieve but not store: its C-STORE associations are
  // aborted (DicomAlwaysAllowStore off, AllowStore false for Hilum). The AE
  // title `seeder_aet` may store, to fill the server.
  bool refuse_hilum_stores = false;
  std::string seeder_aet = "SEEDER";
};

class OrthancServer {
 public:
  // Starts Orthanc with its files under `dir`; null (and `error` set) on failure.
  static std::unique_ptr<OrthancServer> start(const std::filesystem::path& dir, const OrthancOptions& options,
                                              std::string* error) {
    const std::string binary = orthanc_binary();
    if (binary.empty()) {
      *error = "Orthanc is not installed";
      return nullptr;
    }
    // A port picked free may be taken by someone else before Orthanc binds it:
    // try a few times.
    for (int attempt = 0; attempt < 4; ++attempt) {
      auto server = std::unique_ptr<OrthancServer>(new OrthancServer(dir, options));
      if (server->launch(binary, error)) return server;
    }
    return nullptr;
  }

  ~OrthancServer() { stop(); }

  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    int status = 0;
    while (::waitpid(pid_, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    pid_ = -1;
  }

  uint16_t dicom_port() const { return dicom_port_; }
  uint16_t http_port() const { return http_port_; }
  uint16_t hilum_scp_port() const { return scp_port_; }
  const std::string& aet() const { return options_.aet; }

  // How Hilum reaches this server.
  pacs::Node node() const {
    pacs::Node n;
    n.name = "orthanc";
    n.ae_title = options_.aet;
    n.host = "127.0.0.1";
    n.port = dicom_port_;
    n.calling_ae = options_.hilum_aet;
    n.storage_port = scp_port_;
    n.timeouts.connect_s = 5;
    n.timeouts.acse_s = 10;
    n.timeouts.dimse_s = 20;
    return n;
  }

  // GET on the REST API with the test user's credentials; the body, or "" on
  // failure.
  std::string http_get(const std::string& path) const {
    const std::string url = "http://127.0.0.1:" + std::to_string(http_port_) + path;
    CommandResult r = run_command("curl", {"-s", "-f", "-u", user_ + ":" + password_, url});
    return r.exit_code == 0 ? r.out : "";
  }

  // The HTTP status code of a GET (for the authentication check).
  int http_status(const std::string& path, bool with_credentials) const {
    const std::string url = "http://127.0.0.1:" + std::to_string(http_port_) + path;
    std::vector<std::string> args = {"-s", "-o", "/dev/null", "-w", "%{http_code}"};
    if (with_credentials) {
      args.push_back("-u");
      args.push_back(user_ + ":" + password_);
    }
    args.push_back(url);
    CommandResult r = run_command("curl", args);
    return r.exit_code == 0 ? std::atoi(r.out.c_str()) : -1;
  }

  std::string log_tail() const {
    std::ifstream f(dir_ / "orthanc.log");
    std::stringstream ss;
    ss << f.rdbuf();
    std::string s = ss.str();
    return s.size() > 3000 ? s.substr(s.size() - 3000) : s;
  }

 private:
  OrthancServer(std::filesystem::path dir, OrthancOptions options)
      : dir_(std::move(dir)), options_(std::move(options)), user_("hilum-test"), password_(random_token()) {}

  std::string config_json() const {
    auto q = [](const std::string& s) { return "\"" + s + "\""; };
    const std::string db = (dir_ / "orthanc-db").string();
    std::ostringstream c;
    c << "{\n"
      << "  \"Name\": \"hilum-test\",\n"
      << "  \"StorageDirectory\": " << q(db) << ",\n"
      << "  \"IndexDirectory\": " << q(db) << ",\n"
      << "  \"Plugins\": [],\n"
      << "  \"HttpServerEnabled\": true,\n"
      << "  \"HttpPort\": " << http_port_ << ",\n"
      << "  \"RemoteAccessAllowed\": false,\n"
      << "  \"AuthenticationEnabled\": true,\n"
      << "  \"RegisteredUsers\": {" << q(user_) << ": " << q(password_) << "},\n"
      << "  \"DicomServerEnabled\": true,\n"
      << "  \"DicomAet\": " << q(options_.aet) << ",\n"
      << "  \"DicomPort\": " << dicom_port_ << ",\n"
      << "  \"DicomCheckCalledAet\": true,\n"
      << "  \"DicomScpTimeout\": 30,\n"
      << "  \"DicomScuTimeout\": 10,\n"
      << "  \"DicomModalities\": {\"hilum\": {\"AET\": " << q(options_.hilum_aet)
      << ", \"Host\": \"127.0.0.1\", \"Port\": " << scp_port_
      << (options_.tls ? ", \"UseDicomTls\": true" : "")
      << (options_.refuse_hilum_stores ? ", \"AllowStore\": false" : "") << "}"
      << (options_.refuse_hilum_stores ? ", \"seeder\": {\"AET\": " + q(options_.seeder_aet) +
                                             ", \"Host\": \"127.0.0.1\", \"Port\": 104}"
                                       : std::string())
      << "},\n"
      << "  \"DicomAlwaysAllowStore\": " << (options_.refuse_hilum_stores ? "false" : "true") << ",\n"
      << "  \"SaveJobs\": false,\n"
      << "  \"StorageCompression\": false,\n"
      << "  \"SyncStorageArea\": false,\n"
      << "  \"ConcurrentJobs\": 1,\n";
    if (options_.tls) {
      c << "  \"DicomTlsEnabled\": true,\n"
        << "  \"DicomTlsCertificate\": " << q(options_.tls_cert.string()) << ",\n"
        << "  \"DicomTlsPrivateKey\": " << q(options_.tls_key.string()) << ",\n"
        << "  \"DicomTlsTrustedCertificates\": " << q(options_.tls_trusted.string()) << ",\n"
        << "  \"DicomTlsRemoteCertificateRequired\": "
        << (options_.tls_require_client_cert ? "true" : "false") << ",\n";
    }
    c << "  \"LimitFindResults\": 0\n}\n";
    return c.str();
  }

  bool launch(const std::string& binary, std::string* error) {
    dicom_port_ = free_tcp_port();
    http_port_ = free_tcp_port();
    scp_port_ = free_tcp_port();
    if (!dicom_port_ || !http_port_ || !scp_port_ || dicom_port_ == http_port_ || scp_port_ == dicom_port_ ||
        scp_port_ == http_port_) {
      *error = "no free TCP ports";
      return false;
    }
    std::filesystem::create_directories(dir_);
    const auto config = dir_ / "orthanc.json";
    {
      std::ofstream f(config);
      f << config_json();
    }
    const std::string log = (dir_ / "orthanc.log").string();
    pid_ = ::fork();
    if (pid_ < 0) {
      *error = "fork failed";
      return false;
    }
    if (pid_ == 0) {
      const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      if (fd >= 0) {
        ::dup2(fd, 1);
        ::dup2(fd, 2);
        ::close(fd);
      }
      const int null_fd = ::open("/dev/null", O_RDONLY);
      if (null_fd >= 0) ::dup2(null_fd, 0);
      ::execl(binary.c_str(), binary.c_str(), config.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    // Up when the REST API answers with our credentials.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        *error = "Orthanc exited during start-up:\n" + log_tail();
        return false;
      }
      if (http_status("/system", true) == 200) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    *error = "Orthanc did not answer within 20 s:\n" + log_tail();
    stop();
    return false;
  }

  std::filesystem::path dir_;
  OrthancOptions options_;
  std::string user_, password_;
  uint16_t dicom_port_ = 0, http_port_ = 0, scp_port_ = 0;
  pid_t pid_ = -1;
};

// A listening TCP socket that accepts connections and never says a word (for
// ACSE/DIMSE timeouts).
class SilentServer {
 public:
  SilentServer() {
    sockaddr_in addr{};
    fd_ = bind_free_port(INADDR_LOOPBACK, addr);
    port_ = ntohs(addr.sin_port);
    ::listen(fd_, 16);
    thread_ = std::thread([this] {
      while (!stop_) {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, 50) > 0) {
          const int c = ::accept(fd_, nullptr, nullptr);
          if (c >= 0) accepted_.push_back(c);
        }
      }
    });
  }
  ~SilentServer() {
    stop_ = true;
    thread_.join();
    for (int c : accepted_) ::close(c);
    ::close(fd_);
  }
  uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::vector<int> accepted_;
  std::thread thread_;
};

// A port whose SYNs go unanswered, like a host behind a firewall that drops
// packets: a listening socket with a full accept queue (Linux drops further
// SYNs; nothing ever accepts). Works on loopback, so it needs no network.
class BlackholePort {
 public:
  BlackholePort() {
    sockaddr_in addr{};
    fd_ = bind_free_port(INADDR_LOOPBACK, addr);
    port_ = ntohs(addr.sin_port);
    ::listen(fd_, 0);
    // Fill the accept queue until a connection attempt hangs.
    for (int i = 0; i < 16; ++i) {
      const int c = ::socket(AF_INET, SOCK_STREAM, 0);
      ::fcntl(c, F_SETFL, O_NONBLOCK);
      ::connect(c, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
      pollfd p{c, POLLOUT, 0};
      if (::poll(&p, 1, 300) == 0) {  // still in SYN_SENT: the queue is full
        ::close(c);
        full_ = true;
        break;
      }
      fillers_.push_back(c);
    }
  }
  ~BlackholePort() {
    for (int c : fillers_) ::close(c);
    ::close(fd_);
  }
  uint16_t port() const { return port_; }
  bool works() const { return full_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
  bool full_ = false;
  std::vector<int> fillers_;
};

}  // namespace hilum::test
