// Generation: greedy equals step-by-step argmax of a full recompute; the
// sampler is deterministic per seed and honours temperature/top-k/top-p;
// stop tokens, callbacks and budgets.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cmath>

#include "model/moe/generate.h"
#include "tests/model/moe_fixture.h"

namespace hilum::moe {
namespace {

namespace fs = std::filesystem;

struct Model {
  fs::path dir;
  std::shared_ptr<const TextModel> model;
  Model() {
    static std::atomic<int> n{0};
    dir = fs::temp_directory_path() / ("hilum_gen_" + std::to_string(::getpid()) + "_" + std::to_string(n++));
    testing::FixtureOptions o;
    o.model_type = "olmoe";
    o.weight_std = 0.4f;
    testing::write_fixture(testing::FixtureBuilder(o).build(), dir);
    model = *TextModel::load(dir);
  }
  ~Model() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

const std::vector<int32_t> kPrompt = {1, 9, 22, 4};

TEST(Generate, GreedyIsArgmaxOfFullRecompute) {
  Model m;
  GenerateOptions opt;
  opt.max_new_tokens = 10;
  opt.use_model_stop_tokens = false;
  auto r = generate(*m.model, kPrompt, nullptr, opt);
  ASSERT_TRUE(r.ok()) << r.error().message();
  ASSERT_EQ(r->tokens.size(), 10u);
  EXPECT_EQ(r->stop, GenerateResult::Stop::kMaxTokens);
  std::vector<int32_t> seq = kPrompt;
  for (int32_t got : r->tokens) {
    auto out = m.model->forward(seq);
    ASSERT_TRUE(out.ok());
    const int64_t V = m.model->config().vocab_size;
    const float* last = out->logits.data<float>() + (static_cast<int64_t>(seq.size()) - 1) * V;
    EXPECT_EQ(got, static_cast<int32_t>(std::max_element(last, last + V) - last));
    seq.push_back(got);
  }
}

TEST(Generate, SamplingIsDeterministicPerSeed) {
  Model m;
  GenerateOptions opt;
  opt.max_new_tokens = 12;
  opt.use_model_stop_tokens = false;
  opt.sampling.greedy = false;
  opt.sampling.temperature = 1.5f;
  opt.sampling.seed = 42;
  auto a = generate(*m.model, kPrompt, nullptr, opt);
  auto b = generate(*m.model, kPrompt, nullptr, opt);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->tokens, b->tokens);
  bool differs = false;
  for (uint64_t seed = 1; seed < 6 && !differs; ++seed) {
    opt.sampling.seed = seed;
    differs = generate(*m.model, kPrompt, nullptr, opt)->tokens != a->tokens;
  }
  EXPECT_TRUE(differs);
  // top-k 1 is greedy.
  opt.sampling.top_k = 1;
  GenerateOptions greedy = opt;
  greedy.sampling.greedy = true;
  EXPECT_EQ(generate(*m.model, kPrompt, nullptr, opt)->tokens,
            generate(*m.model, kPrompt, nullptr, greedy)->tokens);
}

TEST(Sampler, FrequenciesFollowTemperatureTopKAndTopP) {
  const std::vector<float> logits = {std::log(0.5f), std::log(0.3f), std::log(0.2f)};
  auto freq = [&](SamplingOptions o) {
    Sampler s(o);
    std::vector<double> f(3, 0);
    const int n = 20000;
    for (int i = 0; i < n; ++i) f[s.next(logits)] += 1.0 / n;
    return f;
  };
  SamplingOptions o;
  o.greedy = false;
  o.seed = 3;
  auto f = freq(o);
  EXPECT_NEAR(f[0], 0.5, 0.02);
  EXPECT_NEAR(f[1], 0.3, 0.02);
  EXPECT_NEAR(f[2], 0.2, 0.02);
  o.top_k = 2;
  f = freq(o);
  EXPECT_NEAR(f[0], 0.625, 0.02);
  EXPECT_EQ(f[2], 0.0);
  o.top_k = 0;
  o.top_p = 0.6f;
  f = freq(o);
  EXPECT_NEAR(f[1], 0.375, 0.02);
  EXPECT_EQ(f[2], 0.0);
  o.top_p = 1.0f;
  o.temperature = 0.05f;  // nearly greedy
  f = freq(o);
  EXPECT_GT(f[0], 0.99);
  SamplingOptions g;
  EXPECT_EQ(Sampler(g).next(logits), 0);
}

TEST(Generate, StopTokensCallbacksAndBudgets) {
  Model m;
  GenerateOptions opt;
  opt.max_new_tokens = 6;
  opt.use_model_stop_tokens = false;
  auto free_run = generate(*m.model, kPrompt, nullptr, opt);
  ASSERT_TRUE(free_run.ok());
  opt.stop_tokens = {free_run->tokens[2]};
  auto stopped = generate(*m.model, kPrompt, nullptr, opt);
  ASSERT_TRUE(stopped.ok());
  EXPECT_EQ(stopped->stop, GenerateResult::Stop::kStopToken);
  EXPECT_EQ(stopped->tokens.back(), free_run->tokens[2]);
  EXPECT_LE(stopped->tokens.size(), 3u);
  std::vector<int32_t> streamed;
  opt.stop_tokens.clear();
  auto cb = generate(*m.model, kPrompt, nullptr, opt, [&](int32_t t) {
    streamed.push_back(t);
    return streamed.size() < 4;
  });
  ASSERT_TRUE(cb.ok());
  EXPECT_EQ(cb->stop, GenerateResult::Stop::kCallback);
  EXPECT_EQ(streamed, cb->tokens);
  EXPECT_EQ(streamed.size(), 4u);
  opt.max_new_tokens = 0;
  EXPECT_TRUE(generate(*m.model, kPrompt, nullptr, opt)->tokens.empty());
  GenerateOptions bad;
  bad.sampling.greedy = false;
  bad.sampling.temperature = 0.0f;
  EXPECT_FALSE(generate(*m.model, kPrompt, nullptr, bad).ok());
  bad.sampling.temperature = 1.0f;
  bad.sampling.top_p = 1.5f;
  EXPECT_FALSE(generate(*m.model, kPrompt, nullptr, bad).ok());
  EXPECT_FALSE(generate(*m.model, std::vector<int32_t>{}, nullptr, GenerateOptions{}).ok());
}

}  // namespace
}  // namespace hilum::moe
