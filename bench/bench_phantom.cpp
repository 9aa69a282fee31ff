// Phantom generation and writing speed (a study of N slices, 512x512).
//   build/bench/bench_phantom --benchmark_filter=. [--benchmark_repetitions=3]
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#if HILUM_HAVE_IMAGING
#include "vision/io/phantom.h"

namespace {

hilum::Phantom make(int slices) {
  hilum::PhantomOptions o;
  o.seed = 1;
  o.slices = slices;
  hilum::NullProgress progress;
  return std::move(hilum::make_phantom(o, progress)).value();
}

// In memory: anatomy, trees, nodules, rendering, noise and blur.
void BM_MakePhantom(benchmark::State& state) {
  for (auto _ : state) {
    hilum::Phantom p = make(static_cast<int>(state.range(0)));
    benchmark::DoNotOptimize(p.volume.data());
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));  // slices
}
BENCHMARK(BM_MakePhantom)->Arg(40)->Arg(300)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);

// The DICOM series, truth.csv and clinical.txt to a folder in /tmp.
void BM_WritePhantomStudy(benchmark::State& state) {
  const hilum::Phantom p = make(static_cast<int>(state.range(0)));
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("hilum_bench_phantom_" + std::to_string(::getpid()));
  hilum::NullProgress progress;
  for (auto _ : state) {
    if (!hilum::write_phantom_study(p, dir, progress).ok()) state.SkipWithError("write failed");
  }
  std::filesystem::remove_all(dir);
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_WritePhantomStudy)->Arg(300)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);

}  // namespace
#endif

BENCHMARK_MAIN();
