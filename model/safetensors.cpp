#include "model/safetensors.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>

namespace hilum {

using json = nlohmann::json;

namespace {
constexpr uint64_t kMaxHeader = 100u * 1024 * 1024;  // the reference implementation's limit
}  // namespace

Result<DType> safetensors_dtype(const std::string& name) {
  static const std::map<std::string, DType> kMap = {
      {"F32", DType::kF32}, {"F16", DType::kF16}, {"BF16", DType::kBF16}, {"F64", DType::kF64},
      {"I64", DType::kI64}, {"I32", DType::kI32}, {"I16", DType::kI16},   {"I8", DType::kI8},
      {"U8", DType::kU8},   {"BOOL", DType::kBool},
  };
  auto it = kMap.find(name);
  if (it == kMap.end()) return unsupported("dtype '" + name + "' is not supported");
  return it->second;
}

std::string safetensors_dtype_name(DType dtype) {
  switch (dtype) {
    case DType::kF32: return "F32";
    case DType::kF16: return "F16";
    case DType::kBF16: return "BF16";
    case DType::kF64: return "F64";
    case DType::kI64: return "I64";
    case DType::kI32: return "I32";
    case DType::kI16: return "I16";
    case DType::kI8: return "I8";
    case DType::kU8: return "U8";
    case DType::kBool: return "BOOL";
    case DType::kI4: break;
  }
  return "";
}

Result<SafetensorsFile> SafetensorsFile::open(const std::filesystem::path& path) {
  HILUM_ASSIGN_OR_RETURN(auto map, MappedFile::open(path));
  return parse(std::move(map));
}

Result<SafetensorsFile> SafetensorsFile::parse(std::shared_ptr<MappedFile> file) {
  const std::string fname = file->path().string();
  auto fail = [&](const std::string& what) { return bad_input(fname + ": " + what); };
  const size_t size = file->size();
  if (size < 8) return fail("too short for a safetensors file (" + std::to_string(size) + " bytes)");
  uint64_t header_len = 0;
  for (int k = 7; k >= 0; --k) header_len = (header_len << 8) | file->data()[k];
  if (header_len > kMaxHeader) return fail("header length " + std::to_string(header_len) + " exceeds 100 MB");
  if (header_len > size - 8) {
    return fail("header length " + std::to_string(header_len) + " runs past the end of the file");
  }
  const char* hp = reinterpret_cast<const char*>(file->data() + 8);
  json header = json::parse(hp, hp + header_len, nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded()) return fail("header is not valid JSON");
  if (!header.is_object()) return fail("header is not a JSON object");

  SafetensorsFile out;
  out.file_ = file;
  out.data_start_ = 8 + header_len;
  const size_t data_size = size - out.data_start_;
  std::vector<std::pair<size_t, std::string>> order;

  for (auto& [name, value] : header.items()) {
    if (name == "__metadata__") {
      if (!value.is_object()) return fail("__metadata__ is not an object");
      for (auto& [k, v] : value.items()) {
        if (!v.is_string()) return fail("__metadata__ value of '" + k + "' is not a string");
        out.metadata_[k] = v.get<std::string>();
      }
      continue;
    }
    auto bad = [&](const std::string& what) { return fail("tensor '" + name + "': " + what); };
    if (!value.is_object()) return bad("entry is not an object");
    for (auto& [k, v] : value.items()) {
      if (k != "dtype" && k != "shape" && k != "data_offsets") return bad("unknown field '" + k + "'");
    }
    if (!value.contains("dtype") || !value["dtype"].is_string()) return bad("missing or non-string dtype");
    auto dt = safetensors_dtype(value["dtype"].get<std::string>());
    if (!dt.ok()) return bad(dt.error().message());
    if (!value.contains("shape") || !value["shape"].is_array()) return bad("missing or non-array shape");
    Entry e;
    e.dtype = *dt;
    uint64_t numel = 1;
    for (auto& d : value["shape"]) {
      if (!d.is_number_unsigned()) return bad("shape has a negative or non-integer dimension");
      uint64_t dim = d.get<uint64_t>();
      if (dim != 0 && numel > std::numeric_limits<uint64_t>::max() / 8 / dim) return bad("shape overflows");
      numel *= dim;
      e.shape.push_back(static_cast<int64_t>(dim));
    }
    if (!value.contains("data_offsets") || !value["data_offsets"].is_array() ||
        value["data_offsets"].size() != 2 || !value["data_offsets"][0].is_number_unsigned() ||
        !value["data_offsets"][1].is_number_unsigned()) {
      return bad("data_offsets must be two non-negative integers");
    }
    uint64_t b = value["data_offsets"][0].get<uint64_t>();
    uint64_t en = value["data_offsets"][1].get<uint64_t>();
    if (b > en) return bad("data_offsets begin " + std::to_string(b) + " is after end " + std::to_string(en));
    if (en > data_size) {
      return bad("data_offsets end " + std::to_string(en) + " lies outside the data section (" +
                 std::to_string(data_size) + " bytes)");
    }
    uint64_t want = dtype_bytes(e.dtype, numel);
    if (en - b != want) {
      return bad("byte span " + std::to_string(en - b) + " does not match shape " + shape_string(e.shape) +
                 " x " + value["dtype"].get<std::string>() + " (" + std::to_string(want) + " bytes)");
    }
    e.begin = b;
    e.end = en;
    out.entries_[name] = e;
    order.emplace_back(b, name);
  }
  std::sort(order.begin(), order.end(), [&](const auto& x, const auto& y) {
    const Entry& ex = out.entries_[x.second];
    const Entry& ey = out.entries_[y.second];
    return ex.begin != ey.begin ? ex.begin < ey.begin : ex.end < ey.end;
  });
  for (size_t i = 1; i < order.size(); ++i) {
    const Entry& prev = out.entries_[order[i - 1].second];
    const Entry& cur = out.entries_[order[i].second];
    bool both_nonempty = prev.end > prev.begin && cur.end > cur.begin;
    if (both_nonempty && cur.begin < prev.end) {
      return fail("tensors '" + order[i - 1].second + "' and '" + order[i].second + "' overlap");
    }
  }
  for (auto& [b, name] : order) out.names_.push_back(name);
  return out;
}

const SafetensorsFile::Entry* SafetensorsFile::entry(const std::string& name) const {
  auto it = entries_.find(name);
  return it == entries_.end() ? nullptr : &it->second;
}

Result<Tensor> SafetensorsFile::get(const std::string& name) const {
  const Entry* e = entry(name);
  if (!e) return bad_input(path().string() + ": no tensor named '" + name + "'");
  size_t offset = data_start_ + e->begin;
  size_t align = std::max<size_t>(1, dtype_bytes(e->dtype, 1));
  if (offset % align == 0) {
    auto storage = Storage::wrap(file_->mutable_data(), file_->size(), Device::kCPU, file_);
    return Tensor::view_of(storage, offset, e->shape, e->dtype);
  }
  Tensor t = Tensor::empty(e->shape, e->dtype);
  std::memcpy(t.raw(), file_->data() + offset, e->end - e->begin);
  return t;
}

Status write_safetensors(const std::filesystem::path& path,
                         const std::vector<std::pair<std::string, Tensor>>& tensors,
                         const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  size_t offset = 0;
  for (auto& [name, t] : tensors) {
    if (t.device() != Device::kCPU) return internal_error("write_safetensors: '" + name + "' is not on the CPU");
    std::string dt = safetensors_dtype_name(t.dtype());
    if (dt.empty()) return unsupported(path.string() + ": safetensors cannot hold dtype of '" + name + "'");
    header[name] = {{"dtype", dt}, {"shape", t.shape()}, {"data_offsets", {offset, offset + t.nbytes()}}};
    offset += t.nbytes();
  }
  std::string h = header.dump();
  h.append((8 - h.size() % 8) % 8, ' ');
  std::string prefix(8, '\0');
  uint64_t n = h.size();
  for (int k = 0; k < 8; ++k) prefix[k] = static_cast<char>((n >> (8 * k)) & 0xff);
  HILUM_ASSIGN_OR_RETURN(auto file, AtomicFile::create(path));
  HILUM_RETURN_IF_ERROR(file->write(prefix));
  HILUM_RETURN_IF_ERROR(file->write(h));
  for (auto& [name, t] : tensors) HILUM_RETURN_IF_ERROR(file->write(t.raw(), t.nbytes()));
  return file->commit();
}

}  // namespace hilum
