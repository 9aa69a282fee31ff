// DICOM series -> HU volume, in process: header scan alone and the full load
// (scan + parallel decode), over the series named by HILUM_BENCH_DICOM (a
// folder). bench/bench_dicom_load.sh runs the side-by-side comparison with
// dcm2niix on the command line; this binary shows where the time goes.
//
//   HILUM_BENCH_DICOM=/tmp/hilum-bench/ct300 build/bench/bench_dicom_load
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <string>

#if HILUM_HAVE_IMAGING
#include "vision/io/dicom.h"

namespace {

const char* series_dir() { return std::getenv("HILUM_BENCH_DICOM"); }

void BM_ScanHeaders(benchmark::State& state) {
  if (!series_dir()) {
    state.SkipWithError("set HILUM_BENCH_DICOM to a DICOM series folder");
    return;
  }
  hilum::NullProgress progress;
  for (auto _ : state) {
    auto inv = hilum::scan_dicom({series_dir()}, progress, static_cast<int>(state.range(0)));
    if (!inv.ok()) {
      state.SkipWithError(inv.error().message().c_str());
      return;
    }
    benchmark::DoNotOptimize(inv->series.size());
  }
}
BENCHMARK(BM_ScanHeaders)->Arg(1)->Arg(0)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_LoadVolume(benchmark::State& state) {
  if (!series_dir()) {
    state.SkipWithError("set HILUM_BENCH_DICOM to a DICOM series folder");
    return;
  }
  hilum::NullProgress progress;
  hilum::LoadOptions options;
  options.threads = static_cast<int>(state.range(0));
  int64_t voxels = 0;
  for (auto _ : state) {
    auto r = hilum::load_dicom_volume({series_dir()}, options, progress);
    if (!r.ok()) {
      state.SkipWithError(r.error().message().c_str());
      return;
    }
    voxels = r->volume.hu.numel();
    benchmark::DoNotOptimize(r->volume.data());
  }
  state.counters["voxels/s"] =
      benchmark::Counter(static_cast<double>(voxels), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_LoadVolume)->Arg(1)->Arg(0)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
#endif

BENCHMARK_MAIN();
