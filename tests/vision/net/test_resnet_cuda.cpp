// The CUDA engine (fp16/bf16, cuDNN, CUDA graphs) against the torchvision
// golden files. Skipped where no GPU is usable.
#include <gtest/gtest.h>

#include <filesystem>

#include "cuda/device.h"
#include "model/npy.h"
#include "model/tensor_util.h"
#include "vision/net/resnet.h"

namespace hilum {
namespace {

namespace fs = std::filesystem;

const fs::path kGolden = fs::path(HILUM_TEST_DATA_DIR) / "golden" / "resnet";

// Half-precision storage with fp32 accumulation: the brief's bound.
constexpr double kHalfTolerance = 1e-2;
// bf16 keeps 8 mantissa bits; on the width-4 bottleneck golden PyTorch's own
// bf16 forward departs from its fp32 forward by 1.38e-2 relative L2 on the
// spatial map (torch 1.13 CPU, tests/golden/resnet/bottleneck_*), so the narrow
// goldens allow bf16 2e-2. The full ResNet-152 parity (scripts/gpu/resnet.sh)
// keeps the 1e-2 for both half types.
constexpr double kBf16GoldenTolerance = 2e-2;

#define HILUM_REQUIRE_GPU()                                                                  \
  do {                                                                                       \
    if (hilum::cuda::device_count() == 0) GTEST_SKIP() << hilum::cuda::unavailable_reason(); \
  } while (0)

class ResNetCuda : public ::testing::TestWithParam<std::tuple<const char*, DType>> {};

TEST_P(ResNetCuda, MatchesTorchvision) {
  HILUM_REQUIRE_GPU();
  const auto [name_c, dtype] = GetParam();
  const std::string name = name_c;
  ResNetOptions options;
  options.device = Device::kCUDA;
  options.dtype = dtype;
  auto net = ResNet::load(kGolden / (name + "_weights.safetensors"), std::nullopt, options);
  ASSERT_TRUE(net.ok()) << net.error().message();
  EXPECT_EQ((*net)->engine_name(), std::string("cuda-") + std::string(dtype_name(dtype)));
  auto input = read_npy(kGolden / (name + "_input.npy"));
  ASSERT_TRUE(input.ok());

  struct Want {
    ResNetOutput output;
    const char* file;
  };
  for (const Want& w :
       {Want{ResNetOutput::kLogits, "_logits.npy"}, Want{ResNetOutput::kFeatures, "_features.npy"},
        Want{ResNetOutput::kSpatialFeatures, "_spatial.npy"}}) {
    auto want = read_npy(kGolden / (name + w.file));
    ASSERT_TRUE(want.ok());
    // Twice: the first call plans and captures, the second replays the graph.
    for (int call = 0; call < 2; ++call) {
      auto got = (*net)->forward(*input, w.output);
      ASSERT_TRUE(got.ok()) << got.error().message();
      ASSERT_EQ(got->shape(), want->shape());
      auto err = relative_l2_error(*got, *want);
      ASSERT_TRUE(err.ok());
      EXPECT_LE(*err, dtype == DType::kBF16 ? kBf16GoldenTolerance : kHalfTolerance)
          << name << w.file << " call " << call;
      std::cout << "  " << name << w.file << " " << dtype_name(dtype) << " rel L2 " << *err << "\n";
    }
  }

  // Device-resident images and output, through forward_into (no allocation
  // in the steady state), agree with the host path.
  auto host = (*net)->forward(*input, ResNetOutput::kLogits);
  ASSERT_TRUE(host.ok());
  auto dev_in = input->to(Device::kCUDA);
  ASSERT_TRUE(dev_in.ok()) << dev_in.error().message();
  auto dev_out = Tensor::empty_on(host->shape(), DType::kF32, Device::kCUDA);
  ASSERT_TRUE(dev_out.ok());
  ASSERT_TRUE((*net)->forward_into(*dev_in, ResNetOutput::kLogits, *dev_out).ok());
  auto back = dev_out->to(Device::kCPU);
  ASSERT_TRUE(back.ok());
  // The same graph on the same values; allow for a non-deterministic algorithm.
  EXPECT_LE(*relative_l2_error(*back, *host), 1e-3);

  // Another batch size gets its own plan; a single image matches its row.
  auto one = input->slice0(1, 2);
  ASSERT_TRUE(one.ok());
  auto single = (*net)->forward(one->clone(), ResNetOutput::kLogits);
  ASSERT_TRUE(single.ok()) << single.error().message();
  auto want_logits = read_npy(kGolden / (name + "_logits.npy"));
  EXPECT_LE(*relative_l2_error(*single, *want_logits->slice0(1, 2)), kHalfTolerance);
}

INSTANTIATE_TEST_SUITE_P(Goldens, ResNetCuda,
                         ::testing::Combine(::testing::Values("basic", "bottleneck", "slab"),
                                            ::testing::Values(DType::kF16, DType::kBF16)),
                         [](const auto& info) {
                           return std::string(std::get<0>(info.param)) + "_" +
                                  std::string(dtype_name(std::get<1>(info.param)));
                         });

// The layer-by-layer profile: every convolution named with its timing and
// the planner's choice; the CPU engines say they have none.
TEST(ResNetProfile, NamesEveryLayerOnCudaAndIsUnsupportedOnTheCpu) {
  auto cpu = ResNet::load(kGolden / "bottleneck_weights.safetensors", std::nullopt);
  ASSERT_TRUE(cpu.ok()) << cpu.error().message();
  auto input = read_npy(kGolden / "bottleneck_input.npy");
  ASSERT_TRUE(input.ok());
  auto none = (*cpu)->profile(*input);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().kind(), ErrorKind::kUnsupported);
  auto bad = (*cpu)->profile(Tensor::empty({2, 3}, DType::kF32));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().kind(), ErrorKind::kBadInput);

  HILUM_REQUIRE_GPU();
  ResNetOptions options;
  options.device = Device::kCUDA;
  options.dtype = DType::kF16;
  auto net = ResNet::load(kGolden / "bottleneck_weights.safetensors", std::nullopt, options);
  ASSERT_TRUE(net.ok()) << net.error().message();
  auto report = (*net)->profile(*input, ResNetOutput::kLogits);
  ASSERT_TRUE(report.ok()) << report.error().message();
  std::cout << *report;
  for (const char* want : {"whole forward", "stem", "maxpool", "layer1.0.conv1", "layer1.0.downsample",
                           "layer4.0.conv3", "avgpool+fc", "distinct convolutions", " * "}) {
    EXPECT_NE(report->find(want), std::string::npos) << want;
  }
  // The network still computes the right thing afterwards.
  auto got = (*net)->forward(*input, ResNetOutput::kLogits);
  ASSERT_TRUE(got.ok());
  auto want = read_npy(kGolden / "bottleneck_logits.npy");
  EXPECT_LE(*relative_l2_error(*got, *want), kHalfTolerance);
}

TEST(ResNetCudaErrors, CudaNeedsHalfPrecisionAndADevice) {
  ResNetOptions f32_cuda;
  f32_cuda.device = Device::kCUDA;
  f32_cuda.dtype = DType::kF32;
  auto r = ResNet::load(kGolden / "basic_weights.safetensors", std::nullopt, f32_cuda);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind(), ErrorKind::kUnsupported);
  if (cuda::device_count() == 0) {
    ResNetOptions f16_cuda;
    f16_cuda.device = Device::kCUDA;
    f16_cuda.dtype = DType::kF16;
    auto none = ResNet::load(kGolden / "basic_weights.safetensors", std::nullopt, f16_cuda);
    ASSERT_FALSE(none.ok());
    EXPECT_EQ(none.error().kind(), ErrorKind::kUnsupported);
    EXPECT_NE(none.error().message().find("CUDA"), std::string::npos) << none.error().message();
  }
}

}  // namespace
}  // namespace hilum
