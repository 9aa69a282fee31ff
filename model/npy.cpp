#include "model/npy.h"

#include <algorithm>
#include <cctype>
#include <cstring>

#include "model/file_io.h"

namespace hilum {

namespace {

constexpr char kMagic[] = "\x93NUMPY";

struct Descr {
  DType dtype;
  bool big_endian;
};

Result<Descr> parse_descr(const std::string& d, const std::string& name) {
  if (d.size() < 3) return bad_input(name + ": unsupported NPY dtype '" + d + "'");
  char order = d[0];
  std::string kind = d.substr(1);
  bool big = order == '>';
  if (order != '<' && order != '>' && order != '|' && order != '=') {
    return bad_input(name + ": unsupported NPY byte order in '" + d + "'");
  }
  if (kind == "f4") return Descr{DType::kF32, big};
  if (kind == "f2") return Descr{DType::kF16, big};
  if (kind == "f8") return Descr{DType::kF64, big};
  if (kind == "i8") return Descr{DType::kI64, big};
  if (kind == "i4") return Descr{DType::kI32, big};
  if (kind == "i2") return Descr{DType::kI16, big};
  if (kind == "i1") return Descr{DType::kI8, false};
  if (kind == "u1") return Descr{DType::kU8, false};
  if (kind == "b1") return Descr{DType::kBool, false};
  return bad_input(name + ": unsupported NPY dtype '" + d + "'");
}

std::string descr_of(DType t) {
  switch (t) {
    case DType::kF32: return "<f4";
    case DType::kF16: return "<f2";
    case DType::kF64: return "<f8";
    case DType::kI64: return "<i8";
    case DType::kI32: return "<i4";
    case DType::kI16: return "<i2";
    case DType::kI8: return "|i1";
    case DType::kU8: return "|u1";
    case DType::kBool: return "|b1";
    case DType::kBF16:  // numpy has no bfloat16; callers convert first
    case DType::kI4: break;
  }
  return "";
}

// Minimal parser for the Python dict literal in the NPY header.
class HeaderParser {
 public:
  HeaderParser(std::string_view s, const std::string& name) : s_(s), name_(name) {}

  Status parse(std::string& descr, bool& fortran, Shape& shape) {
    bool have_descr = false, have_fortran = false, have_shape = false;
    skip();
    if (!eat('{')) return fail("header is not a dict");
    while (true) {
      skip();
      if (eat('}')) break;
      std::string key;
      HILUM_RETURN_IF_ERROR(string_literal(key));
      skip();
      if (!eat(':')) return fail("expected ':' after key");
      skip();
      if (key == "descr") {
        HILUM_RETURN_IF_ERROR(string_literal(descr));
        have_descr = true;
      } else if (key == "fortran_order") {
        if (s_.substr(i_, 4) == "True") {
          fortran = true;
          i_ += 4;
        } else if (s_.substr(i_, 5) == "False") {
          fortran = false;
          i_ += 5;
        } else {
          return fail("fortran_order is not True/False");
        }
        have_fortran = true;
      } else if (key == "shape") {
        HILUM_RETURN_IF_ERROR(tuple(shape));
        have_shape = true;
      } else {
        return fail("unexpected header key '" + key + "'");
      }
      skip();
      if (eat(',')) continue;
      skip();
      if (eat('}')) break;
      return fail("expected ',' or '}'");
    }
    if (!have_descr || !have_fortran || !have_shape) return fail("header lacks descr, fortran_order or shape");
    return Status::Ok();
  }

 private:
  Error fail(const std::string& what) { return bad_input(name_ + ": malformed NPY header: " + what); }
  void skip() {
    while (i_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[i_]))) ++i_;
  }
  bool eat(char c) {
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }
  Status string_literal(std::string& out) {
    if (i_ >= s_.size() || (s_[i_] != '\'' && s_[i_] != '"')) return fail("expected a string");
    char q = s_[i_++];
    size_t end = s_.find(q, i_);
    if (end == std::string_view::npos) return fail("unterminated string");
    out = std::string(s_.substr(i_, end - i_));
    i_ = end + 1;
    return Status::Ok();
  }
  Status tuple(Shape& shape) {
    if (!eat('(')) return fail("shape is not a tuple");
    shape.clear();
    while (true) {
      skip();
      if (eat(')')) break;
      size_t start = i_;
      while (i_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[i_]))) ++i_;
      if (i_ == start || i_ - start > 15) return fail("bad dimension in shape");
      shape.push_back(std::stoll(std::string(s_.substr(start, i_ - start))));
      skip();
      if (eat(',')) continue;
      skip();
      if (eat(')')) break;
      return fail("bad shape tuple");
    }
    return Status::Ok();
  }

  std::string_view s_;
  const std::string& name_;
  size_t i_ = 0;
};

}  // namespace

Result<Tensor> decode_npy(std::string_view bytes, const std::string& name) {
  if (bytes.size() < 10 || std::memcmp(bytes.data(), kMagic, 6) != 0) {
    return bad_input(name + ": not an NPY file (bad magic)");
  }
  const auto major = static_cast<unsigned char>(bytes[6]);
  size_t header_len, header_start;
  if (major == 1) {
    header_len = static_cast<unsigned char>(bytes[8]) | (static_cast<unsigned char>(bytes[9]) << 8);
    header_start = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) return bad_input(name + ": truncated NPY header");
    header_len = 0;
    for (int k = 3; k >= 0; --k) header_len = (header_len << 8) | static_cast<unsigned char>(bytes[8 + k]);
    header_start = 12;
  } else {
    return bad_input(name + ": unsupported NPY version " + std::to_string(major));
  }
  if (header_start + header_len > bytes.size()) return bad_input(name + ": truncated NPY header");
  std::string descr;
  bool fortran = false;
  Shape shape;
  HeaderParser parser(bytes.substr(header_start, header_len), name);
  HILUM_RETURN_IF_ERROR(parser.parse(descr, fortran, shape));
  if (fortran) return unsupported(name + ": Fortran-order NPY arrays are not supported (save with C order)");
  HILUM_ASSIGN_OR_RETURN(Descr d, parse_descr(descr, name));
  // Guard the element count against overflow before allocating.
  int64_t numel = 1;
  for (int64_t dim : shape) {
    if (dim < 0 || (dim > 0 && numel > (int64_t{1} << 40) / dim)) {
      return bad_input(name + ": NPY shape " + shape_string(shape) + " is too large");
    }
    numel *= dim;
  }
  size_t data_start = header_start + header_len;
  size_t need = dtype_bytes(d.dtype, static_cast<size_t>(numel));
  if (bytes.size() - data_start < need) {
    return bad_input(name + ": NPY data is truncated (" + std::to_string(bytes.size() - data_start) +
                     " bytes, expected " + std::to_string(need) + ")");
  }
  Tensor t = Tensor::empty(shape, d.dtype);
  std::memcpy(t.raw(), bytes.data() + data_start, need);
  if (d.big_endian) {
    size_t width = dtype_bytes(d.dtype, 1);
    auto* p = static_cast<unsigned char*>(t.raw());
    for (size_t i = 0; i < need; i += width) std::reverse(p + i, p + i + width);
  }
  return t;
}

std::string encode_npy(const Tensor& t) {
  std::string descr = descr_of(t.dtype());
  assert(!descr.empty() && t.device() == Device::kCPU);
  std::string header = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': (";
  for (size_t i = 0; i < t.shape().size(); ++i) {
    header += std::to_string(t.shape()[i]);
    if (t.shape().size() == 1 || i + 1 < t.shape().size()) header += ",";
    if (i + 1 < t.shape().size()) header += " ";
  }
  header += "), }";
  // Pad with spaces so that the data starts on a 64-byte boundary; end with '\n'.
  size_t prefix = 10;
  bool v2 = false;
  size_t total = prefix + header.size() + 1;
  size_t padded = (total + 63) / 64 * 64;
  if (padded - prefix > 0xffff) {
    v2 = true;
    prefix = 12;
    total = prefix + header.size() + 1;
    padded = (total + 63) / 64 * 64;
  }
  header.append(padded - total, ' ');
  header += '\n';
  std::string out(kMagic, 6);
  out += static_cast<char>(v2 ? 2 : 1);
  out += '\0';
  size_t hl = header.size();
  out += static_cast<char>(hl & 0xff);
  out += static_cast<char>((hl >> 8) & 0xff);
  if (v2) {
    out += static_cast<char>((hl >> 16) & 0xff);
    out += static_cast<char>((hl >> 24) & 0xff);
  }
  out += header;
  out.append(static_cast<const char*>(t.raw()), t.nbytes());
  return out;
}

Result<Tensor> read_npy(const std::filesystem::path& path) {
  HILUM_ASSIGN_OR_RETURN(auto map, MappedFile::open(path));
  std::string_view bytes(reinterpret_cast<const char*>(map->data()), map->size());
  return decode_npy(bytes, path.string());
}

Status write_npy(const std::filesystem::path& path, const Tensor& tensor) {
  if (tensor.device() != Device::kCPU) return internal_error("write_npy: tensor is not on the CPU");
  if (descr_of(tensor.dtype()).empty()) {
    return unsupported(path.string() + ": NPY cannot hold dtype " + std::string(dtype_name(tensor.dtype())));
  }
  return write_file_atomic(path, encode_npy(tensor));
}

}  // namespace hilum
