#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "model/tensor_util.h"

namespace hilum {
namespace {

TEST(TensorUtil, RelativeL2Error) {
  Tensor want = Tensor::from_f32({2, 2}, std::vector<float>{3, 0, 0, 4});
  Tensor got = Tensor::from_f32({2, 2}, std::vector<float>{3, 0, 0, 4.5f});
  EXPECT_NEAR(*relative_l2_error(got, want), 0.5 / 5.0, 1e-12);
  EXPECT_NEAR(*max_abs_error(got, want), 0.5, 1e-12);
  EXPECT_EQ(*relative_l2_error(want, want), 0.0);
  // Other float dtypes are compared through f32.
  EXPECT_NEAR(*relative_l2_error(got.to_dtype(DType::kBF16).value(), want), 0.1, 1e-3);
  auto bad = relative_l2_error(Tensor::from_f32({4}, std::vector<float>{3, 0, 0, 4}), want);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message().find("shape mismatch"), std::string::npos);
  Tensor nan = Tensor::from_f32({2, 2}, std::vector<float>{3, NAN, 0, 4});
  EXPECT_TRUE(std::isnan(*relative_l2_error(nan, want)));
}

TEST(TensorUtil, Int4RoundTripOddCount) {
  std::vector<int8_t> v = {-8, 7, 0, -1, 3, -5, 1};
  auto packed = pack_int4(v, {7});
  ASSERT_TRUE(packed.ok()) << packed.error().message();
  EXPECT_EQ(packed->nbytes(), 4u);
  EXPECT_EQ(packed->data<uint8_t>()[0], 0x78);  // low nibble -8 (0x8), high nibble 7
  auto back = unpack_int4(*packed);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, v);
}

TEST(TensorUtil, Int4RejectsOutOfRangeAndCountMismatch) {
  std::vector<int8_t> v = {1, 8};
  auto r = pack_int4(v, {2});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("value 8 at 1"), std::string::npos) << r.error().message();
  EXPECT_FALSE(pack_int4(v, {3}).ok());
  EXPECT_FALSE(unpack_int4(Tensor::zeros({2}, DType::kI8)).ok());
}

}  // namespace
}  // namespace hilum
