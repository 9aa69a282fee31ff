#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "model/file_io.h"
#include "model/half.h"
#include "model/npy.h"
#include "model/tensor.h"

namespace hilum {
namespace {

namespace fs = std::filesystem;

fs::path temp_dir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("hilum_test_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

TEST(Half, RoundTripsRepresentableValues) {
  for (float v : {0.0f, -0.0f, 1.0f, -2.5f, 65504.0f, 6.103515625e-05f, 5.9604644775390625e-08f, 0.333251953125f}) {
    EXPECT_EQ(f16_to_f32(f32_to_f16(v)), v) << v;
  }
  for (float v : {0.0f, 1.0f, -3.0f, std::ldexp(1.0f, 100), 0.0078125f}) {
    EXPECT_EQ(bf16_to_f32(f32_to_bf16(v)), v) << v;
  }
}

TEST(Half, RoundsToNearestEven) {
  // 1 + 2^-11 lies exactly between two halves (1 and 1+2^-10): ties go to even (1).
  EXPECT_EQ(f16_to_f32(f32_to_f16(1.0f + std::ldexp(1.0f, -11))), 1.0f);
  EXPECT_EQ(f16_to_f32(f32_to_f16(1.0f + 3 * std::ldexp(1.0f, -11))), 1.0f + 2 * std::ldexp(1.0f, -10));
  EXPECT_TRUE(std::isinf(f16_to_f32(f32_to_f16(70000.0f))));
  EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(NAN))));
  // Subnormal halves: the smallest is 2^-24; half of it rounds to zero (tie to even).
  EXPECT_EQ(f16_to_f32(f32_to_f16(std::ldexp(1.0f, -24))), std::ldexp(1.0f, -24));
  EXPECT_EQ(f16_to_f32(f32_to_f16(std::ldexp(1.0f, -25))), 0.0f);
  EXPECT_EQ(f16_to_f32(f32_to_f16(std::ldexp(3.0f, -25))), std::ldexp(2.0f, -24));
  // bf16: 1 + 2^-8 is a tie between 1 and 1 + 2^-7 -> 1.
  EXPECT_EQ(bf16_to_f32(f32_to_bf16(1.0f + std::ldexp(1.0f, -8))), 1.0f);
}

TEST(Half, MatchesExhaustiveDecodeEncode) {
  // Every finite half decodes and re-encodes to itself.
  for (uint32_t h = 0; h < 0x10000; ++h) {
    if ((h & 0x7c00) == 0x7c00) continue;  // inf/nan
    EXPECT_EQ(f32_to_f16(f16_to_f32(static_cast<uint16_t>(h))), h) << h;
  }
}

TEST(Tensor, ShapesViewsAndConversions) {
  Tensor t = Tensor::from_f32({2, 3}, std::vector<float>{1, 2, 3, 4, 5, 6});
  EXPECT_EQ(t.numel(), 6);
  EXPECT_EQ(t.nbytes(), 24u);
  EXPECT_EQ(t.describe(), "f32[2, 3] cpu");
  auto r = t.reshape({3, -1});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->shape(), (Shape{3, 2}));
  EXPECT_FALSE(t.reshape({4, 2}).ok());
  auto row = t.slice0(1, 2);
  ASSERT_TRUE(row.ok());
  EXPECT_EQ(row->data<float>()[0], 4.0f);
  row->data<float>()[0] = 40.0f;  // a view: writes reach the parent
  EXPECT_EQ(t.data<float>()[3], 40.0f);
  EXPECT_FALSE(t.slice0(1, 3).ok());
  auto half = t.to_dtype(DType::kBF16);
  ASSERT_TRUE(half.ok());
  auto back = half->to_dtype(DType::kF32);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->data<float>()[5], 6.0f);
  Tensor c = t.clone();
  c.data<float>()[0] = -1;
  EXPECT_EQ(t.data<float>()[0], 1.0f);
  EXPECT_EQ(dtype_bytes(DType::kI4, 5), 3u);
  EXPECT_EQ(*parse_dtype("bf16"), DType::kBF16);
  EXPECT_FALSE(parse_dtype("f12").ok());
}

TEST(Npy, RoundTripsAllDtypes) {
  fs::path dir = temp_dir("npy");
  for (DType dt : {DType::kF32, DType::kF16, DType::kF64, DType::kI64, DType::kI32, DType::kI16, DType::kI8,
                   DType::kU8, DType::kBool}) {
    Tensor t = Tensor::from_f32({2, 1, 3}, std::vector<float>{0, 1, 0, 1, 1, 0}).to_dtype(dt).value();
    fs::path p = dir / (std::string(dtype_name(dt)) + ".npy");
    ASSERT_TRUE(write_npy(p, t).ok());
    auto r = read_npy(p);
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(r->dtype(), dt);
    EXPECT_EQ(r->shape(), (Shape{2, 1, 3}));
    EXPECT_EQ(std::memcmp(r->raw(), t.raw(), t.nbytes()), 0);
  }
  // Data starts on a 64-byte boundary, as numpy writes it.
  std::string bytes = encode_npy(Tensor::zeros({7}, DType::kF32));
  EXPECT_EQ((bytes.size() - 28) % 64, 0u);
  EXPECT_NE(bytes.find("'shape': (7,)"), std::string::npos);
  fs::remove_all(dir);
}

TEST(Npy, ReadsBigEndian) {
  std::string header = "{'descr': '>i4', 'fortran_order': False, 'shape': (2,), }";
  header.append(128 - 10 - header.size() - 1, ' ');
  header += '\n';
  std::string bytes = std::string("\x93NUMPY\x01\x00", 8) + static_cast<char>(header.size()) + '\0' + header;
  bytes += std::string("\x00\x00\x01\x02\xff\xff\xff\xfe", 8);
  auto r = decode_npy(bytes, "be.npy");
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->data<int32_t>()[0], 258);
  EXPECT_EQ(r->data<int32_t>()[1], -2);
}

TEST(Npy, RejectsBadFilesWithNamedErrors) {
  auto expect_error = [](std::string bytes, const std::string& fragment) {
    auto r = decode_npy(bytes, "x.npy");
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message().find("x.npy"), std::string::npos) << r.error().message();
    EXPECT_NE(r.error().message().find(fragment), std::string::npos) << r.error().message();
  };
  expect_error("hello", "bad magic");
  std::string good = encode_npy(Tensor::zeros({4}, DType::kF32));
  expect_error(good.substr(0, good.size() - 1), "truncated");
  std::string fortran = good;
  fortran.replace(fortran.find("False"), 5, "True ");
  expect_error(fortran, "Fortran");
  std::string weird = good;
  weird.replace(weird.find("<f4"), 3, "<c8");
  expect_error(weird, "unsupported NPY dtype");
  std::string noshape = good;
  noshape.replace(noshape.find("'shape'"), 7, "'shapx'");
  expect_error(noshape, "unexpected header key");
  auto missing = read_npy("/nonexistent/file.npy");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().kind(), ErrorKind::kBadInput);
}

TEST(AtomicFile, LeavesNothingBehindWithoutCommit) {
  fs::path dir = temp_dir("atomic");
  {
    auto f = AtomicFile::create(dir / "out.bin");
    ASSERT_TRUE(f.ok());
    ASSERT_TRUE((*f)->write("partial").ok());
  }
  EXPECT_TRUE(fs::is_empty(dir));
  ASSERT_TRUE(write_file_atomic(dir / "out.bin", "whole").ok());
  EXPECT_EQ(read_file(dir / "out.bin").value(), "whole");
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 1);
  auto bad = write_file_atomic(dir / "no" / "such" / "dir.bin", "x");
  EXPECT_FALSE(bad.ok());
  fs::remove_all(dir);
}

}  // namespace
}  // namespace hilum
