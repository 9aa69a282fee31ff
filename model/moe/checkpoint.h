// A Hugging Face checkpoint directory's tensors: model.safetensors, or the
// shards listed in model.safetensors.index.json.
//
// open() validates the index (every shard it names exists and holds the tensors
// the index says it does). Tensor reads check the stored shape against the
// expected one and name the tensor and file on a mismatch. The reader records
// which tensors were read, so the loader can refuse a checkpoint that carries
// tensors the architecture does not use.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "model/result.h"
#include "model/safetensors.h"
#include "model/tensor.h"

namespace hilum::moe {

class Checkpoint {
 public:
  static Result<Checkpoint> open(const std::filesystem::path& dir);

  bool contains(const std::string& name) const { return where_.count(name) > 0; }
  // The stored shape, or an empty shape when absent.
  Shape shape(const std::string& name) const;
  // The tensor converted to f32 on the CPU; an error when missing or when its
  // shape is not `expected`. Marks the tensor as used.
  Result<Tensor> f32(const std::string& name, const Shape& expected);
  // Marks a tensor as deliberately unused (tied weights, rotary caches).
  void skip(const std::string& name) { used_.insert(name); }

  std::vector<std::string> unused() const;  // tensor names nobody read, sorted
  const std::filesystem::path& dir() const { return dir_; }
  // The file holding `name` (for messages).
  std::string file_of(const std::string& name) const;

 private:
  std::filesystem::path dir_;
  std::vector<std::shared_ptr<SafetensorsFile>> files_;
  std::map<std::string, size_t> where_;  // tensor name -> index in files_
  std::set<std::string> used_;
};

}  // namespace hilum::moe
