#include "model/moe/checkpoint.h"

#include <nlohmann/json.hpp>

#include "model/file_io.h"

namespace hilum::moe {

namespace fs = std::filesystem;
using json = nlohmann::json;

Result<Checkpoint> Checkpoint::open(const fs::path& dir) {
  Checkpoint ck;
  ck.dir_ = dir;
  const fs::path index = dir / "model.safetensors.index.json";
  const fs::path single = dir / "model.safetensors";
  std::error_code ec;
  if (fs::exists(index, ec)) {
    HILUM_ASSIGN_OR_RETURN(std::string text, read_file(index));
    json j;
    try {
      j = json::parse(text);
    } catch (const std::exception& e) {
      return bad_input(index.string() + ": not valid JSON (" + e.what() + ")");
    }
    if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object()) {
      return bad_input(index.string() + ": missing the 'weight_map' object");
    }
    std::map<std::string, size_t> file_index;
    for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
      if (!it->is_string())
        return bad_input(index.string() + ": weight_map entry '" + it.key() + "' is not a file name");
      const std::string shard = it->get<std::string>();
      if (shard.empty() || shard.find('/') != std::string::npos || shard.find('\\') != std::string::npos ||
          shard == "." || shard == "..") {
        return bad_input(index.string() + ": weight_map entry '" + it.key() + "' names an invalid shard '" +
                         shard + "'");
      }
      auto f = file_index.find(shard);
      if (f == file_index.end()) {
        const fs::path shard_path = dir / shard;
        if (!fs::exists(shard_path, ec)) {
          return bad_input(index.string() + ": shard '" + shard + "' (holding '" + it.key() +
                           "') is missing");
        }
        HILUM_ASSIGN_OR_RETURN(SafetensorsFile sf, SafetensorsFile::open(shard_path));
        ck.files_.push_back(std::make_shared<SafetensorsFile>(std::move(sf)));
        f = file_index.emplace(shard, ck.files_.size() - 1).first;
      }
      if (!ck.files_[f->second]->contains(it.key())) {
        return bad_input((dir / shard).string() + ": does not hold tensor '" + it.key() +
                         "' that model.safetensors.index.json places there");
      }
      ck.where_[it.key()] = f->second;
    }
    if (ck.where_.empty()) return bad_input(index.string() + ": weight_map is empty");
    return ck;
  }
  if (fs::exists(single, ec)) {
    HILUM_ASSIGN_OR_RETURN(SafetensorsFile sf, SafetensorsFile::open(single));
    ck.files_.push_back(std::make_shared<SafetensorsFile>(std::move(sf)));
    for (const std::string& name : ck.files_[0]->names()) ck.where_[name] = 0;
    return ck;
  }
  if (fs::exists(dir / "pytorch_model.bin", ec) || fs::exists(dir / "pytorch_model.bin.index.json", ec)) {
    return unsupported(dir.string() +
                       ": only safetensors checkpoints are supported (found pytorch_model.bin)");
  }
  return bad_input(dir.string() + ": no model.safetensors or model.safetensors.index.json");
}

Shape Checkpoint::shape(const std::string& name) const {
  auto it = where_.find(name);
  if (it == where_.end()) return {};
  return files_[it->second]->entry(name)->shape;
}

std::string Checkpoint::file_of(const std::string& name) const {
  auto it = where_.find(name);
  if (it == where_.end()) return dir_.string();
  return files_[it->second]->path().string();
}

Result<Tensor> Checkpoint::f32(const std::string& name, const Shape& expected) {
  auto it = where_.find(name);
  if (it == where_.end()) {
    return bad_input(dir_.string() + ": checkpoint has no tensor '" + name + "' (expected shape " +
                     shape_string(expected) + ")");
  }
  const SafetensorsFile& f = *files_[it->second];
  const SafetensorsFile::Entry* e = f.entry(name);
  if (e->shape != expected) {
    return bad_input(f.path().string() + ": tensor '" + name + "' has shape " + shape_string(e->shape) +
                     ", expected " + shape_string(expected) + " from config.json");
  }
  if (!dtype_is_float(e->dtype)) {
    return bad_input(f.path().string() + ": tensor '" + name + "' has dtype " +
                     std::string(dtype_name(e->dtype)) + ", expected a float type");
  }
  HILUM_ASSIGN_OR_RETURN(Tensor t, f.get(name));
  used_.insert(name);
  return t.to_dtype(DType::kF32);
}

std::vector<std::string> Checkpoint::unused() const {
  std::vector<std::string> out;
  for (const auto& [name, idx] : where_) {
    if (!used_.count(name)) out.push_back(name);
  }
  return out;
}

}  // namespace hilum::moe
