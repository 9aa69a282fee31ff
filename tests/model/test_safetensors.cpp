#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "model/file_io.h"
#include "model/safetensors.h"

namespace hilum {
namespace {

namespace fs = std::filesystem;

class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("hilum_st_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A file with the given JSON header and `data_bytes` bytes of payload.
  fs::path raw_file(const std::string& header, size_t data_bytes, const std::string& name = "bad.safetensors") {
    std::string bytes(8, '\0');
    uint64_t n = header.size();
    for (int k = 0; k < 8; ++k) bytes[k] = static_cast<char>((n >> (8 * k)) & 0xff);
    bytes += header;
    bytes.append(data_bytes, '\x01');
    fs::path p = dir_ / name;
    EXPECT_TRUE(write_file_atomic(p, bytes).ok());
    return p;
  }

  void expect_rejected(const fs::path& p, const std::string& fragment) {
    auto r = SafetensorsFile::open(p);
    ASSERT_FALSE(r.ok()) << "accepted a bad file expecting: " << fragment;
    EXPECT_EQ(r.error().kind(), ErrorKind::kBadInput);
    EXPECT_NE(r.error().message().find(p.string()), std::string::npos) << r.error().message();
    EXPECT_NE(r.error().message().find(fragment), std::string::npos) << r.error().message();
  }

  fs::path dir_;
};

TEST_F(SafetensorsTest, RoundTripsTensorsAndMetadata) {
  Tensor a = Tensor::from_f32({2, 2}, std::vector<float>{1, 2, 3, 4});
  Tensor b = a.to_dtype(DType::kBF16).value();
  Tensor c = Tensor::from_f32({3}, std::vector<float>{7, 8, 9}).to_dtype(DType::kI64).value();
  fs::path p = dir_ / "ok.safetensors";
  ASSERT_TRUE(write_safetensors(p, {{"a.weight", a}, {"b", b}, {"c", c}}, {{"format", "pt"}}).ok());
  auto f = SafetensorsFile::open(p);
  ASSERT_TRUE(f.ok()) << f.error().message();
  EXPECT_EQ(f->names(), (std::vector<std::string>{"a.weight", "b", "c"}));
  EXPECT_EQ(f->metadata().at("format"), "pt");
  auto ta = f->get("a.weight");
  ASSERT_TRUE(ta.ok());
  EXPECT_EQ(ta->shape(), (Shape{2, 2}));
  EXPECT_EQ(ta->data<float>()[3], 4.0f);
  EXPECT_EQ(f->get("b")->to_dtype(DType::kF32)->data<float>()[2], 3.0f);
  EXPECT_EQ(f->get("c")->data<int64_t>()[1], 8);
  EXPECT_FALSE(f->get("missing").ok());
  // The view keeps the mapping alive after the file object is gone.
  Tensor keep = f->get("a.weight").value();
  f = bad_input("dropped");
  EXPECT_EQ(keep.data<float>()[0], 1.0f);
}

TEST_F(SafetensorsTest, RejectsHostileHeaders) {
  {
    fs::path p = dir_ / "tiny.safetensors";
    ASSERT_TRUE(write_file_atomic(p, "abc").ok());
    expect_rejected(p, "too short");
  }
  {
    std::string bytes(8, '\0');
    bytes[0] = '\xff';
    bytes[1] = '\xff';
    bytes[2] = '\xff';
    bytes[3] = '\x7f';
    fs::path p = dir_ / "huge.safetensors";
    ASSERT_TRUE(write_file_atomic(p, bytes + "{}").ok());
    expect_rejected(p, "exceeds");
  }
  {
    std::string bytes(8, '\0');
    bytes[0] = 100;
    fs::path p = dir_ / "past.safetensors";
    ASSERT_TRUE(write_file_atomic(p, bytes + "{}").ok());
    expect_rejected(p, "past the end");
  }
  expect_rejected(raw_file("{not json", 0), "not valid JSON");
  expect_rejected(raw_file("[1,2]", 0), "not a JSON object");
  expect_rejected(raw_file(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"__metadata__":{"a":1}})", 8),
                  "__metadata__");
  expect_rejected(raw_file(R"({"w":{"dtype":"F33","shape":[2],"data_offsets":[0,8]}})", 8), "tensor 'w'");
  expect_rejected(raw_file(R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8), "negative");
  expect_rejected(raw_file(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8), "does not match shape");
  expect_rejected(raw_file(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", 8), "after end");
  expect_rejected(raw_file(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 8), "outside the data");
  expect_rejected(raw_file(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", 8), "data_offsets");
  expect_rejected(raw_file(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1}})", 8), "unknown field");
  expect_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                           R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                           12),
                  "overlap");
  expect_rejected(raw_file(R"({"w":{"dtype":"F32","shape":[1099511627776,1099511627776,1099511627776],)"
                           R"("data_offsets":[0,8]}})",
                           8),
                  "overflows");
}

TEST_F(SafetensorsTest, CopiesUnalignedSpans) {
  // A 1-byte tensor first pushes the f32 tensor off 4-byte alignment.
  Tensor u = Tensor::zeros({1}, DType::kU8);
  Tensor f = Tensor::from_f32({2}, std::vector<float>{1.5f, -2.0f});
  fs::path p = dir_ / "unaligned.safetensors";
  ASSERT_TRUE(write_safetensors(p, {{"u", u}, {"f", f}}).ok());
  auto file = SafetensorsFile::open(p);
  ASSERT_TRUE(file.ok());
  Tensor got = file->get("f").value();
  EXPECT_EQ(reinterpret_cast<uintptr_t>(got.raw()) % 4, 0u);
  EXPECT_EQ(got.data<float>()[1], -2.0f);
}

}  // namespace
}  // namespace hilum
