// Evaluation speed: fast DeLong against the O(m n) definition, the LUNA16 FROC
// on a challenge-sized set (888 scans, ~1200 nodules, 100 marks per scan) with
// and without the 1000-sample bootstrap, and drawing a plot.
//   build/bench/bench_eval
// bench/eval_froc_vs_reference.sh times the same FROC against the Python
// reference of the LUNA16 procedure.
#include <benchmark/benchmark.h>

#include <random>

#include "app/eval_froc.h"
#include "app/eval_plot.h"
#include "app/eval_report.h"
#include "app/eval_roc.h"

namespace hilum {
namespace {

ScoredSample random_sample(int m, int n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> g(0, 1);
  ScoredSample s;
  for (int i = 0; i < m; ++i) s.positives.push_back(std::round((g(rng) + 1) * 100) / 100);
  for (int j = 0; j < n; ++j) s.negatives.push_back(std::round(g(rng) * 100) / 100);
  return s;
}

// DeLong's variance from its definition: every positive against every negative.
double naive_delong_variance(const ScoredSample& s) {
  const size_t m = s.positives.size(), n = s.negatives.size();
  std::vector<double> v10(m, 0), v01(n, 0);
  double auc = 0;
  for (size_t i = 0; i < m; ++i) {
    for (size_t j = 0; j < n; ++j) {
      const double x = s.positives[i], y = s.negatives[j];
      const double psi = x > y ? 1.0 : x == y ? 0.5 : 0.0;
      v10[i] += psi;
      v01[j] += psi;
      auc += psi;
    }
  }
  auc /= double(m) * n;
  double s10 = 0, s01 = 0;
  for (double v : v10) s10 += (v / n - auc) * (v / n - auc);
  for (double v : v01) s01 += (v / m - auc) * (v / m - auc);
  return s10 / (m - 1) / m + s01 / (n - 1) / n;
}

void BM_DelongFast(benchmark::State& state) {
  const ScoredSample s = random_sample(int(state.range(0)), int(state.range(0)), 1);
  for (auto _ : state) benchmark::DoNotOptimize(delong_interval(s));
}
BENCHMARK(BM_DelongFast)->Arg(1000)->Arg(10000)->Unit(benchmark::kMillisecond);

void BM_DelongNaive(benchmark::State& state) {
  const ScoredSample s = random_sample(int(state.range(0)), int(state.range(0)), 1);
  for (auto _ : state) benchmark::DoNotOptimize(naive_delong_variance(s));
}
BENCHMARK(BM_DelongNaive)->Arg(1000)->Arg(10000)->Unit(benchmark::kMillisecond);

void BM_RocBootstrap2000(benchmark::State& state) {
  const ScoredSample s = random_sample(300, 700, 2);
  for (auto _ : state) benchmark::DoNotOptimize(bootstrap_auc_interval(s, 2000, 1));
}
BENCHMARK(BM_RocBootstrap2000)->Unit(benchmark::kMillisecond);

// LUNA16-sized: 888 scans, 1186 nodules, 100 marks per scan of which about
// 85 % of the nodules get a hit.
FrocInput luna16_sized() {
  std::mt19937 rng(16);
  std::uniform_real_distribution<double> pos(-150, 150), u(0, 1);
  std::normal_distribution<double> g(0, 1);
  FrocInput in;
  for (int s = 0; s < 888; ++s) in.scans.push_back("1.3.6.1.4.1.14519.5.2.1.6279." + std::to_string(s));
  for (int k = 0; k < 1186; ++k) {
    const std::string& scan = in.scans[rng() % in.scans.size()];
    const NoduleAnnotation n{scan, pos(rng), pos(rng), pos(rng), 3 + 25 * u(rng) * u(rng)};
    in.nodules.push_back(n);
    if (u(rng) < 0.85)
      in.marks.push_back({scan, n.x + g(rng), n.y + g(rng), n.z + g(rng), 0.5 + 0.5 * u(rng)});
  }
  for (const std::string& scan : in.scans) {
    for (int k = 0; k < 100; ++k) in.marks.push_back({scan, pos(rng), pos(rng), pos(rng), u(rng) * u(rng)});
  }
  return in;
}

void BM_FrocLuna16(benchmark::State& state) {
  const FrocInput in = luna16_sized();
  FrocOptions o;
  o.bootstrap_samples = int(state.range(0));
  for (auto _ : state) benchmark::DoNotOptimize(evaluate_froc(in, o));
}
BENCHMARK(BM_FrocLuna16)->Arg(0)->Arg(1000)->Unit(benchmark::kMillisecond);

void BM_RocPlotPngAndSvg(benchmark::State& state) {
  const RocReport r = analyze_scores(random_sample(300, 700, 3), "score", std::nullopt, 0, 0);
  const Plot p = roc_plot(r, "ROC");
  for (auto _ : state) {
    benchmark::DoNotOptimize(render_png(p));
    benchmark::DoNotOptimize(render_svg(p));
  }
}
BENCHMARK(BM_RocPlotPngAndSvg)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace hilum

BENCHMARK_MAIN();
