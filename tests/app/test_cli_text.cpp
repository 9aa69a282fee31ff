// `hilum lm-logits` and `hilum generate` end to end through the real binary:
// outputs match the library, bad inputs exit 2 with a message and leave no
// output file.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>

#include "model/moe/generate.h"
#include "model/moe/lora.h"
#include "model/moe/text_model.h"
#include "model/npy.h"
#include "model/tokenizer.h"
#include "tests/model/moe_fixture.h"

namespace hilum {
namespace {

namespace fs = std::filesystem;

struct CliRun {
  int exit_code;
  std::string out;  // stdout and stderr
};

CliRun run(const std::string& args) {
  const std::string cmd = std::string(HILUM_CLI) + " " + args + " 2>&1";
  CliRun r{-1, ""};
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int status = ::pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

class TempDir {
 public:
  TempDir() {
    static std::atomic<int> n{0};
    path_ = fs::temp_directory_path() /
            ("hilum_cli_text_" + std::to_string(::getpid()) + "_" + std::to_string(n++));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }
  std::string str(const std::string& rel) const { return (path_ / rel).string(); }

 private:
  fs::path path_;
};

// A tiny olmoe model and an adapter on its attention and experts.
void write_model(const fs::path& model_dir, const fs::path& lora_dir) {
  moe::testing::FixtureOptions o;
  o.model_type = "olmoe";
  o.weight_std = 0.3f;
  moe::testing::write_fixture(moe::testing::FixtureBuilder(o).build(), model_dir);
  fs::create_directories(lora_dir);
  nlohmann::json cfg = {{"peft_type", "LORA"}, {"r", 2},
                        {"lora_alpha", 4},     {"target_modules", {"q_proj", "down_proj"}},
                        {"bias", "none"},      {"task_type", "CAUSAL_LM"}};
  ASSERT_TRUE(write_file_atomic(lora_dir / "adapter_config.json", cfg.dump()).ok());
  std::mt19937_64 rng(5);
  std::normal_distribution<float> d(0, 0.3f);
  auto rnd = [&](Shape s) {
    Tensor t = Tensor::empty(s, DType::kF32);
    for (float& v : t.span<float>()) v = d(rng);
    return t;
  };
  std::vector<std::pair<std::string, Tensor>> t = {
      {"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", rnd({2, o.hidden})},
      {"base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight", rnd({o.heads * o.head_dim, 2})},
      {"base_model.model.model.layers.1.mlp.experts.2.down_proj.lora_A.weight", rnd({2, o.moe_inter})},
      {"base_model.model.model.layers.1.mlp.experts.2.down_proj.lora_B.weight", rnd({o.hidden, 2})},
  };
  ASSERT_TRUE(write_safetensors(lora_dir / "adapter_model.safetensors", t).ok());
}

const std::vector<int32_t> kIds = {1, 7, 30, 12, 4};
const std::string kIdsArg = "1,7,30,12,4";

TEST(CliText, LmLogitsMatchesTheLibraryWithAndWithoutLora) {
  TempDir d;
  write_model(d.path() / "model", d.path() / "lora");
  auto model = *moe::TextModel::load(d.path() / "model");
  auto adapter = *moe::LoraAdapter::load(d.path() / "lora", *model);
  auto base = *model->forward(kIds);
  auto tuned = *model->forward(kIds, adapter.get());

  CliRun r = run("lm-logits --model " + d.str("model") + " --ids " + kIdsArg + " --out " + d.str("base.npy"));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  Tensor got = *read_npy(d.path() / "base.npy");
  ASSERT_EQ(got.shape(), base.logits.shape());
  for (int64_t i = 0; i < got.numel(); ++i)
    ASSERT_FLOAT_EQ(got.data<float>()[i], base.logits.data<float>()[i]);

  for (const char* merge : {"", " --merge"}) {
    r = run("lm-logits --model " + d.str("model") + " --lora " + d.str("lora") + merge + " --ids " + kIdsArg +
            " --out " + d.str("tuned.npy"));
    ASSERT_EQ(r.exit_code, 0) << r.out;
    got = *read_npy(d.path() / "tuned.npy");
    double diff = 0, moved = 0;
    for (int64_t i = 0; i < got.numel(); ++i) {
      diff = std::max(diff,
                      static_cast<double>(std::fabs(got.data<float>()[i] - tuned.logits.data<float>()[i])));
      moved = std::max(moved,
                       static_cast<double>(std::fabs(got.data<float>()[i] - base.logits.data<float>()[i])));
    }
    EXPECT_LT(diff, 1e-4) << merge;
    EXPECT_GT(moved, 1e-3) << "the adapter changed nothing" << merge;
  }
}

TEST(CliText, GenerateIdsMatchesTheLibrary) {
  TempDir d;
  write_model(d.path() / "model", d.path() / "lora");
  auto model = *moe::TextModel::load(d.path() / "model");
  moe::GenerateOptions opt;
  opt.max_new_tokens = 6;
  auto want = *moe::generate(*model, kIds, nullptr, opt);
  std::string expect = "[";
  for (size_t i = 0; i < want.tokens.size(); ++i) expect += (i ? ", " : "") + std::to_string(want.tokens[i]);
  expect += "]";
  CliRun r = run("-q generate --model " + d.str("model") + " --ids " + kIdsArg + " --max-tokens 6");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find(expect), std::string::npos) << r.out << " vs " << expect;
  // Seeded sampling is reproducible.
  const std::string sample = "-q generate --model " + d.str("model") + " --lora " + d.str("lora") +
                             " --ids " + kIdsArg +
                             " --max-tokens 6 --temperature 1.3 --top-p 0.9 --top-k 20 --seed 11";
  EXPECT_EQ(run(sample).out, run(sample).out);
  EXPECT_EQ(run(sample).exit_code, 0);
}

TEST(CliText, GenerateStreamsTheTokenizersText) {
  TempDir d;
  moe::testing::FixtureOptions o;
  o.model_type = "olmoe";
  o.vocab = 2048;  // covers the test tokenizer's ids
  o.weight_std = 0.3f;
  moe::testing::write_fixture(moe::testing::FixtureBuilder(o).build(), d.path() / "model");
  const fs::path tok_src =
      fs::path(HILUM_TEST_DATA_DIR) / "golden" / "tokenizers" / "olmoe" / "tokenizer.json";
  fs::copy_file(tok_src, d.path() / "model" / "tokenizer.json");
  auto tok = Tokenizer::from_file(tok_src);
  ASSERT_TRUE(tok.ok()) << tok.error().message();
  const std::string prompt = "A 6 mm solid nodule in the right upper lobe";
  auto model = *moe::TextModel::load(d.path() / "model");
  moe::GenerateOptions opt;
  opt.max_new_tokens = 12;
  auto want = *moe::generate(*model, tok->encode(prompt, true), nullptr, opt);
  const std::string text = tok->decode(want.tokens, /*skip_special_tokens=*/true);
  CliRun r =
      run("-q generate --model " + d.str("model") + " --prompt '" + prompt + "' --max-tokens 12 --greedy");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(r.out, text + "\n");
}

TEST(CliText, BadInputsExit2WithoutOutput) {
  TempDir d;
  write_model(d.path() / "model", d.path() / "lora");
  fs::create_directories(d.path() / "empty");
  moe::testing::FixtureOptions other;
  other.model_type = "olmoe";
  other.hidden = 40;
  other.heads = 5;
  other.kv_heads = 5;
  moe::testing::write_fixture(moe::testing::FixtureBuilder(other).build(), d.path() / "other");
  const std::string out = d.str("out.npy");
  struct Case {
    std::string args, expect;
  };
  const std::vector<Case> cases = {
      {"--model " + d.str("empty") + " --ids 1,2", "config.json"},
      {"--model " + d.str("model") + " --ids 1,2,99999", "99999"},
      {"--model " + d.str("model") + " --ids 1,x", "'x'"},
      {"--model " + d.str("model") + " --ids 1,2 --merge", "--merge"},
      {"--model " + d.str("other") + " --lora " + d.str("lora") + " --ids 1,2", "lora_A.weight"},
      {"--model " + d.str("model") + " --lora " + d.str("empty") + " --ids 1,2", "adapter_config.json"},
      {"--model " + d.str("model") + " --ids 1,2 --device tpu", "--device"},
  };
  for (const Case& c : cases) {
    CliRun r = run("lm-logits " + c.args + " --out " + out);
    EXPECT_EQ(r.exit_code, 2) << c.args << "\n" << r.out;
    EXPECT_NE(r.out.find(c.expect), std::string::npos) << c.args << "\n" << r.out;
    EXPECT_FALSE(fs::exists(out)) << c.args;
    for (const auto& e : fs::directory_iterator(d.path())) {
      EXPECT_EQ(e.path().string().find(".tmp-"), std::string::npos) << "stray temporary file " << e.path();
    }
  }
  // A missing shard.
  moe::testing::FixtureOptions o;
  o.model_type = "llama";
  o.shards = 2;
  moe::testing::write_fixture(moe::testing::FixtureBuilder(o).build(), d.path() / "sharded");
  fs::remove(d.path() / "sharded" / "model-00001-of-00002.safetensors");
  CliRun r = run("lm-logits --model " + d.str("sharded") + " --ids 1,2 --out " + out);
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find("model-00001-of-00002.safetensors"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(out));
  r = run("generate --model " + d.str("model") + " --ids 1,2 --greedy --temperature 0.5");
  EXPECT_EQ(r.exit_code, 2) << r.out;
  r = run("generate --model " + d.str("model") + " --ids 1,2 --temperature 0");
  EXPECT_EQ(r.exit_code, 2) << r.out;
}

}  // namespace
}  // namespace hilum
