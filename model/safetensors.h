// safetensors files: a zero-copy reader over a memory mapping, and a writer.
//
// The reader validates everything a hostile file could get wrong before any
// tensor is touched: the 8-byte header length, the JSON, each entry's dtype
// name, shape and data_offsets, that shape x dtype size equals the byte span,
// that every span lies inside the file, and that no two spans overlap. Errors
// name the file and, where one is at fault, the tensor.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "model/file_io.h"
#include "model/result.h"
#include "model/tensor.h"

namespace hilum {

class SafetensorsFile {
 public:
  struct Entry {
    DType dtype;
    Shape shape;
    size_t begin;  // byte offsets within the data section
    size_t end;
  };

  static Result<SafetensorsFile> open(const std::filesystem::path& path);
  // Parses an in-memory image (used by open() and by tests).
  static Result<SafetensorsFile> parse(std::shared_ptr<MappedFile> file);

  const std::filesystem::path& path() const { return file_->path(); }
  // Tensor names in file order of their data.
  const std::vector<std::string>& names() const { return names_; }
  bool contains(const std::string& name) const { return entries_.count(name) > 0; }
  const Entry* entry(const std::string& name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  // A CPU tensor viewing the mapped bytes (copied only when the span is not
  // aligned to its element size). It keeps the mapping alive.
  Result<Tensor> get(const std::string& name) const;

 private:
  std::shared_ptr<MappedFile> file_;
  size_t data_start_ = 0;
  std::vector<std::string> names_;
  std::map<std::string, Entry> entries_;
  std::map<std::string, std::string> metadata_;
};

// safetensors dtype spellings ("F32", "BF16", ...).
Result<DType> safetensors_dtype(const std::string& name);
std::string safetensors_dtype_name(DType dtype);

// Writes CPU tensors (any dtype but packed int4) atomically, in the given order.
Status write_safetensors(const std::filesystem::path& path,
                         const std::vector<std::pair<std::string, Tensor>>& tensors,
                         const std::map<std::string, std::string>& metadata = {});

}  // namespace hilum
