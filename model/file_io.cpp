#include "model/file_io.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

namespace hilum {

namespace fs = std::filesystem;

namespace {
std::string errno_text() { return std::strerror(errno); }
}  // namespace

Result<std::string> read_file(const fs::path& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return bad_input(path.string() + ": cannot open: " + errno_text());
  std::string out;
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  bool failed = std::ferror(f);
  std::fclose(f);
  if (failed) return bad_input(path.string() + ": read error");
  return out;
}

Status write_file_atomic(const fs::path& path, std::string_view bytes) {
  HILUM_ASSIGN_OR_RETURN(auto file, AtomicFile::create(path));
  HILUM_RETURN_IF_ERROR(file->write(bytes));
  return file->commit();
}

Result<std::unique_ptr<AtomicFile>> AtomicFile::create(const fs::path& path) {
  static std::atomic<int> counter{0};
  fs::path temp = path;
  temp += ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
  std::FILE* f = std::fopen(temp.c_str(), "wb");
  if (!f) return bad_input(path.string() + ": cannot create output file: " + errno_text());
  return std::unique_ptr<AtomicFile>(new AtomicFile(path, temp, f));
}

AtomicFile::~AtomicFile() {
  if (file_) std::fclose(file_);
  if (!committed_) {
    std::error_code ec;
    fs::remove(temp_, ec);
  }
}

Status AtomicFile::write(const void* data, size_t bytes) {
  if (!file_) return internal_error(target_.string() + ": write after close");
  if (bytes && std::fwrite(data, 1, bytes, file_) != bytes) {
    return internal_error(target_.string() + ": write failed: " + errno_text());
  }
  return Status::Ok();
}

Status AtomicFile::commit() {
  if (!file_) return internal_error(target_.string() + ": commit after close");
  bool ok = std::fflush(file_) == 0 && ::fsync(::fileno(file_)) == 0;
  ok = (std::fclose(file_) == 0) && ok;
  file_ = nullptr;
  if (!ok) return internal_error(target_.string() + ": flushing failed: " + errno_text());
  if (std::rename(temp_.c_str(), target_.c_str()) != 0) {
    return internal_error(target_.string() + ": rename failed: " + errno_text());
  }
  committed_ = true;
  return Status::Ok();
}

Result<std::shared_ptr<MappedFile>> MappedFile::open(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return bad_input(path.string() + ": cannot open: " + errno_text());
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    return bad_input(path.string() + ": cannot stat: " + errno_text());
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return bad_input(path.string() + ": not a regular file");
  }
  std::shared_ptr<MappedFile> m(new MappedFile());
  m->path_ = path;
  m->size_ = static_cast<size_t>(st.st_size);
  if (m->size_ > 0) {
    void* p = ::mmap(nullptr, m->size_, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      ::close(fd);
      return internal_error(path.string() + ": mmap failed: " + errno_text());
    }
    m->data_ = static_cast<unsigned char*>(p);
  }
  ::close(fd);
  return m;
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(data_, size_);
}

}  // namespace hilum
