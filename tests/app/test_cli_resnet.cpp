// `hilum resnet` end to end: the real binary on the committed golden files.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cuda/device.h"
#include "model/npy.h"
#include "model/tensor_util.h"
#include "vision/patches.h"

namespace hilum {
namespace {

namespace fs = std::filesystem;

const fs::path kGolden = fs::path(HILUM_TEST_DATA_DIR) / "golden" / "resnet";

class CliResNet : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("hilum_cli_resnet_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Runs `hilum resnet <args>`; returns the exit code, stderr in err_.
  int run(const std::string& args) {
    const fs::path err = dir_ / "stderr.txt";
    const std::string cmd =
        std::string(HILUM_CLI) + " -q resnet " + args + " 2>" + err.string() + " >/dev/null";
    const int status = std::system(cmd.c_str());
    std::ifstream in(err);
    std::stringstream ss;
    ss << in.rdbuf();
    err_ = ss.str();
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  std::string golden(const std::string& name) const { return (kGolden / name).string(); }

  fs::path dir_;
  std::string err_;
};

TEST_F(CliResNet, WritesLogitsAndFeaturesMatchingTorchvision) {
  const fs::path out = dir_ / "logits.npy";
  ASSERT_EQ(run("--weights " + golden("bottleneck_weights.safetensors") + " --config " +
                golden("bottleneck_config.json") + " --input " + golden("bottleneck_input.npy") + " --out " +
                out.string() + " --device cpu"),
            0)
      << err_;
  auto got = read_npy(out);
  ASSERT_TRUE(got.ok()) << got.error().message();
  auto want = read_npy(golden("bottleneck_logits.npy"));
  EXPECT_LE(*relative_l2_error(*got, *want), 1e-4);

  const fs::path feat = dir_ / "features.npy";
  ASSERT_EQ(run("--weights " + golden("basic_weights.safetensors") + " --input " + golden("basic_input.npy") +
                " --out " + feat.string() + " --features --device cpu --dtype f32 --cpu-engine reference"),
            0)
      << err_;
  auto f = read_npy(feat);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->shape(), (Shape{2, 64}));
  EXPECT_LE(*relative_l2_error(*f, *read_npy(golden("basic_features.npy"))), 1e-4);

  const fs::path spatial = dir_ / "spatial.npy";
  ASSERT_EQ(run("--weights " + golden("basic_weights.safetensors") + " --input " + golden("basic_input.npy") +
                " --out " + spatial.string() + " --spatial --device cpu"),
            0)
      << err_;
  EXPECT_EQ(read_npy(spatial)->shape(), (Shape{2, 64, 2, 2}));
}

// --view takes the test-time augmentation view of every image first: the same
// logits as the flipped input itself, and not those of the input as it is.
TEST_F(CliResNet, ViewFlipsTheImagesFirst) {
  const std::string weights = " --weights " + golden("basic_weights.safetensors") + " --device cpu";
  // Square images with no mirror symmetry.
  Tensor input = Tensor::zeros({2, 3, 32, 32}, DType::kF32);
  float* v = input.data<float>();
  for (int64_t i = 0; i < input.numel(); ++i) v[i] = std::sin(0.37f * static_cast<float>(i)) + 0.01f * (i % 32);
  const fs::path plain = dir_ / "plain.npy", flipped = dir_ / "flipped.npy";
  ASSERT_TRUE(write_npy(plain, input).ok());
  auto view = patch_view(input, "flip_x");
  ASSERT_TRUE(view.ok()) << view.error().message();
  ASSERT_TRUE(write_npy(flipped, *view).ok());
  const fs::path a = dir_ / "a.npy", b = dir_ / "b.npy", c = dir_ / "c.npy";
  ASSERT_EQ(run(weights + " --input " + plain.string() + " --view flip_x --out " + a.string()), 0) << err_;
  ASSERT_EQ(run(weights + " --input " + flipped.string() + " --out " + b.string()), 0) << err_;
  ASSERT_EQ(run(weights + " --input " + plain.string() + " --out " + c.string()), 0) << err_;
  EXPECT_LE(*relative_l2_error(*read_npy(a), *read_npy(b)), 1e-6);
  EXPECT_GT(*relative_l2_error(*read_npy(a), *read_npy(c)), 1e-3);
}

TEST_F(CliResNet, BadInputsExitTwoAndWriteNothing) {
  const fs::path out = dir_ / "y.npy";
  const std::string weights = " --weights " + golden("basic_weights.safetensors");
  const std::string input = " --input " + golden("basic_input.npy");
  const std::string o = " --out " + out.string();

  // Unknown config field.
  const fs::path cfg = dir_ / "c.json";
  std::ofstream(cfg) << R"({"depth": 18, "width": 8, "num_classes": 10, "dropout": 0.5})";
  EXPECT_EQ(run(weights + input + o + " --config " + cfg.string()), 2);
  EXPECT_NE(err_.find("unknown field 'dropout'"), std::string::npos) << err_;
  EXPECT_NE(err_.find(cfg.string()), std::string::npos) << err_;

  // Wrong channel count and wrong rank.
  const fs::path four = dir_ / "four.npy";
  ASSERT_TRUE(write_npy(four, Tensor::zeros({1, 4, 16, 16}, DType::kF32)).ok());
  EXPECT_EQ(run(weights + " --input " + four.string() + o + " --device cpu"), 2);
  EXPECT_NE(err_.find("4 channels"), std::string::npos) << err_;
  EXPECT_NE(err_.find(four.string()), std::string::npos) << err_;
  const fs::path flat = dir_ / "flat.npy";
  ASSERT_TRUE(write_npy(flat, Tensor::zeros({3, 16, 16}, DType::kF32)).ok());
  EXPECT_EQ(run(weights + " --input " + flat.string() + o + " --device cpu"), 2);
  EXPECT_NE(err_.find("(N, 3, H, W)"), std::string::npos) << err_;

  // Broken weights file.
  const fs::path broken = dir_ / "broken.safetensors";
  std::ofstream(broken) << "garbage";
  EXPECT_EQ(run(" --weights " + broken.string() + input + o), 2);
  EXPECT_NE(err_.find(broken.string()), std::string::npos) << err_;

  // f16 on the CPU.
  EXPECT_EQ(run(weights + input + o + " --device cpu --dtype f16"), 2);
  EXPECT_NE(err_.find("f32 only"), std::string::npos) << err_;

  // Missing input file, unknown device, unknown view, a view of non-square images.
  EXPECT_EQ(run(weights + " --input " + (dir_ / "nope.npy").string() + o), 2);
  EXPECT_EQ(run(weights + input + o + " --device tpu"), 2);
  EXPECT_EQ(run(weights + input + o + " --view rotate"), 2);
  EXPECT_NE(err_.find("--view"), std::string::npos) << err_;
  const fs::path wide = dir_ / "wide.npy";
  ASSERT_TRUE(write_npy(wide, Tensor::zeros({1, 3, 16, 24}, DType::kF32)).ok());
  EXPECT_EQ(run(weights + " --input " + wide.string() + o + " --device cpu --view transpose"), 2);
  EXPECT_NE(err_.find("square"), std::string::npos) << err_;
  EXPECT_NE(err_.find(wide.string()), std::string::npos) << err_;

  if (cuda::device_count() == 0) {
    EXPECT_EQ(run(weights + input + o + " --device cuda"), 2);
    EXPECT_NE(err_.find("CUDA"), std::string::npos) << err_;
  }
  EXPECT_FALSE(fs::exists(out));
  for (const auto& e : fs::directory_iterator(dir_)) {
    EXPECT_EQ(e.path().string().find(".tmp-"), std::string::npos) << "left behind " << e.path();
  }
}

}  // namespace
}  // namespace hilum
