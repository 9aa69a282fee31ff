// Lung mask, candidate detection, patches and sizing on a 300-slice phantom
// (512 x 512 x 300) on the CPU. Results: bench/RESULTS.md, "Findings".
//
//   build/bench/bench_findings --benchmark_min_time=1x
#include <benchmark/benchmark.h>

#include "model/parallel.h"

#if HILUM_HAVE_IMAGING

#include "vision/io/candidates.h"
#include "vision/io/gaussian.h"
#include "vision/io/itk_bridge.h"
#include "vision/io/lung_mask.h"
#include "vision/io/phantom.h"
#include "vision/io/sizing.h"
#include "vision/patches.h"

namespace hilum {
namespace {

struct Study {
  Phantom phantom;
  LungMask mask;
  std::vector<Candidate> candidates;
};

const Study& study() {
  static const Study s = [] {
    Study st;
    NullProgress p;
    PhantomOptions o;
    o.seed = 5;
    o.slices = 300;
    o.nodules = 4;
    st.phantom = make_phantom(o, p).value();
    st.mask = segment_lungs(st.phantom.volume, LungMaskOptions{}, p).value();
    st.candidates = detect_candidates(st.phantom.volume, st.mask, CandidateOptions{}, p).value();
    return st;
  }();
  return s;
}

// Argument: the size of Hilum's thread pool (slices and planes in parallel), as for BM_Candidates.
void BM_LungMask(benchmark::State& state) {
  const Volume& v = study().phantom.volume;
  NullProgress p;
  set_num_threads(static_cast<int>(state.range(0)));
  const int pool = num_threads();
  for (auto _ : state) benchmark::DoNotOptimize(segment_lungs(v, LungMaskOptions{}, p).ok());
  set_num_threads(0);
  state.counters["slices"] = static_cast<double>(v.nz());
  state.counters["pool"] = pool;
}

// Argument: the size of Hilum's thread pool, which scans the planes of each
// pass (and builds the grids) in parallel (1: one after another; 0: the
// default, one per core). ITK threads its filters itself either way.
void BM_Candidates(benchmark::State& state) {
  const Study& s = study();
  NullProgress p;
  size_t n = 0;
  set_num_threads(static_cast<int>(state.range(0)));
  const int pool = num_threads();
  for (auto _ : state) n = detect_candidates(s.phantom.volume, s.mask, CandidateOptions{}, p)->size();
  set_num_threads(0);
  state.counters["candidates"] = static_cast<double>(n);
  state.counters["pool"] = pool;
}

// The detector's Gaussian smoothing on its finest grid (the lung box of a
// 512 x 512 x 300 study at 0.7 x 0.7 x 1 mm), sigma 0.9 mm: argument 0 ITK's
// recursive Gaussian (used before 2026-11-29), 1 the sampled kernel with
// OpenCV's separable filters (gaussian_smooth, used now).
void BM_Smoothing(benchmark::State& state) {
  const itk_bridge::Grid g{456, 320, 293, {0.703, 0.703, 1.0}};
  std::vector<float> image(static_cast<size_t>(g.voxels()));
  const Volume& v = study().phantom.volume;
  for (int64_t z = 0; z < g.nz; ++z)
    for (int64_t y = 0; y < g.ny; ++y)
      for (int64_t x = 0; x < g.nx; ++x)
        image[static_cast<size_t>(g.index(x, y, z))] = v.data()[(z * v.ny() + y + 96) * v.nx() + x + 28];
  const bool opencv = state.range(0) == 1;
  for (auto _ : state) {
    auto s = opencv ? gaussian_smooth(image, g, 0.9) : itk_bridge::smooth_gaussian(image, g, 0.9);
    benchmark::DoNotOptimize(s.ok());
  }
  state.counters["Mvoxels"] = static_cast<double>(g.voxels()) / 1e6;
}

void BM_Patches(benchmark::State& state) {
  const Study& s = study();
  std::vector<Vec3> centers;
  for (const Candidate& c : s.candidates) centers.push_back(c.center_mm);
  NullProgress p;
  // Arg: the frame (0 the scanner's axes, 1-3 rz45, rx45, ry45: oblique planes, less cache-friendly).
  PatchOptions po;
  po.frame = *patch_frame(patch_frame_names()[static_cast<size_t>(state.range(0))]);
  for (auto _ : state) benchmark::DoNotOptimize(extract_patches(s.phantom.volume, centers, po, p).ok());
  state.counters["patches"] = static_cast<double>(centers.size());
}

void BM_SizingPerNodule(benchmark::State& state) {
  const Study& s = study();
  for (auto _ : state)
    for (const PhantomNodule& n : s.phantom.nodules)
      benchmark::DoNotOptimize(measure_nodule(s.phantom.volume, s.mask, n.center_mm, n.diameter_mm).ok());
  state.counters["nodules"] = static_cast<double>(s.phantom.nodules.size());
}

// Sizing of the juxtapleural nodules of the phantom of seed 2006 (three: 16, 23.5
// and 27 mm), argument 0 ending at the lung mask's edge, 1 with the pleura
// continued under them (SizingOptions::continue_pleura; docs/findings.md, "Sizing").
void BM_SizingJuxtapleural(benchmark::State& state) {
  static const Study s = [] {
    Study st;
    NullProgress p;
    PhantomOptions o;
    o.seed = 2006;
    st.phantom = make_phantom(o, p).value();
    st.mask = segment_lungs(st.phantom.volume, LungMaskOptions{}, p).value();
    return st;
  }();
  SizingOptions so;
  so.continue_pleura = state.range(0) == 1;
  int64_t n = 0;
  for (auto _ : state)
    for (const PhantomNodule& nod : s.phantom.nodules)
      if (nod.juxtapleural) {
        benchmark::DoNotOptimize(
            measure_nodule(s.phantom.volume, s.mask, nod.center_mm, nod.diameter_mm, so).ok());
        ++n;
      }
  state.counters["nodules"] = static_cast<double>(n) / static_cast<double>(state.iterations());
}

BENCHMARK(BM_LungMask)->Arg(1)->Arg(0)->Unit(benchmark::kMillisecond)->Iterations(3)->UseRealTime();
BENCHMARK(BM_Candidates)->Arg(1)->Arg(0)->Unit(benchmark::kMillisecond)->Iterations(3)->UseRealTime();
BENCHMARK(BM_Smoothing)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->Iterations(3)->UseRealTime();
BENCHMARK(BM_Patches)->DenseRange(0, 3)->Unit(benchmark::kMillisecond)->Iterations(3)->UseRealTime();
BENCHMARK(BM_SizingPerNodule)->Unit(benchmark::kMillisecond)->Iterations(3);
BENCHMARK(BM_SizingJuxtapleural)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->Iterations(3);

}  // namespace
}  // namespace hilum

#endif  // HILUM_HAVE_IMAGING

BENCHMARK_MAIN();
