// Whole-file reads, memory mapping and atomic writes.
//
// Outputs are never left half-written: AtomicFile writes to a temporary name in
// the same directory and renames over the target on commit(); if the object is
// destroyed without commit() (an error path, an exception), the temporary file
// is removed.
#pragma once

#include <cstddef>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "model/result.h"

namespace hilum {

Result<std::string> read_file(const std::filesystem::path& path);

// Writes `bytes` to `path` atomically (temporary file + fsync + rename).
Status write_file_atomic(const std::filesystem::path& path, std::string_view bytes);

class AtomicFile {
 public:
  // Creates "<path>.tmp-<pid>-<n>" beside `path`.
  static Result<std::unique_ptr<AtomicFile>> create(const std::filesystem::path& path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  Status write(const void* data, size_t bytes);
  Status write(std::string_view s) { return write(s.data(), s.size()); }
  // Flushes, syncs and renames onto the target path. After a failed commit the
  // temporary file is gone too.
  Status commit();
  const std::filesystem::path& temp_path() const { return temp_; }

 private:
  AtomicFile(std::filesystem::path target, std::filesystem::path temp, std::FILE* f)
      : target_(std::move(target)), temp_(std::move(temp)), file_(f) {}
  std::filesystem::path target_, temp_;
  std::FILE* file_;
  bool committed_ = false;
};

// A read-only view of a whole file mapped into memory (copy-on-write private
// mapping, so a stray write never reaches the file).
class MappedFile {
 public:
  static Result<std::shared_ptr<MappedFile>> open(const std::filesystem::path& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const unsigned char* data() const { return data_; }
  unsigned char* mutable_data() const { return data_; }
  size_t size() const { return size_; }
  const std::filesystem::path& path() const { return path_; }

 private:
  MappedFile() = default;
  std::filesystem::path path_;
  unsigned char* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace hilum
