// Parity with transformers: the CPU engine against golden logits and greedy
// continuations that tests/golden/moe_golden.py wrote with transformers + peft
// (relative error <= 1e-4 over all logits, identical greedy tokens), for the
// base model, the LoRA adapter unmerged, and the adapter merged.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "model/file_io.h"
#include "model/moe/generate.h"
#include "model/moe/lora.h"
#include "model/moe/text_model.h"
#include "model/npy.h"

namespace hilum::moe {
namespace {

namespace fs = std::filesystem;

fs::path golden_root() { return fs::path(HILUM_TEST_DATA_DIR) / "golden" / "moe"; }

std::vector<fs::path> golden_cases() {
  std::vector<fs::path> out;
  std::error_code ec;
  if (!fs::is_directory(golden_root(), ec)) return out;
  for (const auto& e : fs::directory_iterator(golden_root(), ec)) {
    if (fs::exists(e.path() / "meta.json") && fs::exists(e.path() / "logits.npy")) out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// max |got - want| / max |want|
double relative_error(const Tensor& got, const Tensor& want) {
  double num = 0, den = 1e-12;
  for (int64_t i = 0; i < want.numel(); ++i) {
    num = std::max(num, static_cast<double>(std::fabs(got.data<float>()[i] - want.data<float>()[i])));
    den = std::max(den, static_cast<double>(std::fabs(want.data<float>()[i])));
  }
  return num / den;
}

std::vector<int32_t> ints(const nlohmann::json& j) {
  std::vector<int32_t> v;
  for (const auto& x : j) v.push_back(x.get<int32_t>());
  return v;
}

std::vector<int32_t> greedy(const TextModel& m, const std::vector<int32_t>& prompt, const LoraAdapter* ad,
                            size_t n) {
  GenerateOptions opt;
  opt.max_new_tokens = static_cast<int64_t>(n);
  opt.use_model_stop_tokens = false;
  auto r = generate(m, prompt, ad, opt);
  EXPECT_TRUE(r.ok()) << r.error().message();
  return r.ok() ? r->tokens : std::vector<int32_t>{};
}

TEST(MoeGolden, CpuEngineMatchesTransformers) {
  const auto cases = golden_cases();
  if (cases.empty()) {
    GTEST_SKIP() << golden_root()
                 << " holds no golden cases yet: run `python3 tests/golden/moe_golden.py --out "
                 << "tests/golden/moe` where transformers is installed (scripts/gpu/moe.sh does)";
  }
  for (const fs::path& dir : cases) {
    SCOPED_TRACE(dir.filename().string());
    const auto g = nlohmann::json::parse(*read_file(dir / "greedy.json"));
    const std::vector<int32_t> prompt = ints(g["prompt"]);
    auto model = TextModel::load(dir);
    ASSERT_TRUE(model.ok()) << model.error().message();
    auto out = (*model)->forward(prompt);
    ASSERT_TRUE(out.ok()) << out.error().message();
    auto want = read_npy(dir / "logits.npy");
    ASSERT_TRUE(want.ok()) << want.error().message();
    ASSERT_EQ(out->logits.shape(), want->shape());
    EXPECT_LE(relative_error(out->logits, *want), 1e-4);
    EXPECT_EQ(greedy(**model, prompt, nullptr, g["base"].size()), ints(g["base"]));
    if (!fs::exists(dir / "lora" / "adapter_config.json")) continue;
    auto adapter = LoraAdapter::load(dir / "lora", **model);
    ASSERT_TRUE(adapter.ok()) << adapter.error().message();
    auto want_lora = read_npy(dir / "logits_lora.npy");
    ASSERT_TRUE(want_lora.ok());
    auto lora = (*model)->forward(prompt, adapter->get());
    ASSERT_TRUE(lora.ok()) << lora.error().message();
    EXPECT_LE(relative_error(lora->logits, *want_lora), 1e-4) << "LoRA, unmerged";
    EXPECT_EQ(greedy(**model, prompt, adapter->get(), g["lora"].size()), ints(g["lora"])) << "LoRA";
    auto merged = (*model)->merged(**adapter);
    ASSERT_TRUE(merged.ok());
    auto m = (*merged)->forward(prompt);
    ASSERT_TRUE(m.ok());
    EXPECT_LE(relative_error(m->logits, *want_lora), 1e-4) << "LoRA, merged";
  }
}

}  // namespace
}  // namespace hilum::moe
