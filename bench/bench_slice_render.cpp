// Workstation rendering speed on a 512 x 512 x 300 CT volume (0.7 x 0.7 x 1 mm):
// what a scroll step costs. The budget is 16 ms per step (60 frames/s).
//
//   BM_Render/<plane>        SliceRenderer::render of one slice (HU -> 8-bit via the window LUT)
//   BM_RenderMip10mm/<plane> the same with a 10 mm maximum-intensity slab
//   BM_ScrollStep/<plane>    a whole step as the viewer does it: move the cursor one slice,
//                            re-render and paint the view (image scaled, overlays, text)
//                            into an 800 x 800 offscreen image
//   BM_ScrollStepMip10mm/<plane>  the same with the 10 mm MIP on
//
// Results: bench/RESULTS.md ("Workstation" section).
#include <benchmark/benchmark.h>

#include <QApplication>
#include <QImage>
#include <QPainter>
#include <memory>

#include "ui/slice_renderer.h"
#include "ui/slice_view.h"
#include "ui/study_document.h"

namespace {

using hilum::Volume;
using namespace hilum::ui;

std::shared_ptr<const Volume> benchVolume() {
  static std::shared_ptr<const Volume> volume = [] {
    auto v = std::make_shared<Volume>(Volume::allocate(512, 512, 300, {0.7, 0.7, 1.0}, {-179, -179, -300}));
    float* d = v->data();
    // A plausible HU spread (air, lung, soft tissue, bone) without structure
    // the renderer could exploit.
    uint32_t state = 12345;
    for (int64_t n = 0; n < v->hu.numel(); ++n) {
      state = state * 1664525u + 1013904223u;
      d[n] = static_cast<float>(static_cast<int>(state >> 20) % 2600 - 1100);
    }
    return v;
  }();
  return volume;
}

const char* planeLabel(Plane plane) {
  switch (plane) {
    case Plane::Axial:
      return "axial";
    case Plane::Coronal:
      return "coronal";
    case Plane::Sagittal:
      return "sagittal";
  }
  return "";
}

void renderSlices(benchmark::State& state, double slabMm) {
  const Plane plane = static_cast<Plane>(state.range(0));
  state.SetLabel(planeLabel(plane));
  SliceRenderer renderer(benchVolume());
  const int slices = renderer.sliceCount(plane);
  int slice = slices / 4;
  for (auto _ : state) {
    QImage image = renderer.render(plane, slice, kLungWindow, slabMm);
    benchmark::DoNotOptimize(image.constBits());
    slice = slice + 1 < slices * 3 / 4 ? slice + 1 : slices / 4;  // scroll through the middle half
  }
}

void BM_Render(benchmark::State& state) { renderSlices(state, 0); }
void BM_RenderMip10mm(benchmark::State& state) { renderSlices(state, 10); }

void scrollSteps(benchmark::State& state, bool mip) {
  const Plane plane = static_cast<Plane>(state.range(0));
  state.SetLabel(planeLabel(plane));
  StudyDocument document;
  document.setStudy(benchVolume(), {});
  document.setMipEnabled(mip);
  SliceView view(&document, plane);
  view.resize(800, 800);
  QImage target(800, 800, QImage::Format_ARGB32_Premultiplied);
  const int slices = document.renderer()->sliceCount(plane);
  int direction = 1;
  for (auto _ : state) {
    if (document.slice(plane) + direction < slices / 4 ||
        document.slice(plane) + direction > slices * 3 / 4) {
      direction = -direction;
    }
    document.stepSlice(plane, direction);
    view.render(&target);
    benchmark::DoNotOptimize(target.constBits());
  }
}

void BM_ScrollStep(benchmark::State& state) { scrollSteps(state, false); }
void BM_ScrollStepMip10mm(benchmark::State& state) { scrollSteps(state, true); }

BENCHMARK(BM_Render)->DenseRange(0, 2)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_RenderMip10mm)->DenseRange(0, 2)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ScrollStep)->DenseRange(0, 2)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ScrollStepMip10mm)->DenseRange(0, 2)->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
  if (qEnvironmentVariableIsEmpty("QT_QPA_PLATFORM")) qputenv("QT_QPA_PLATFORM", "offscreen");
  QApplication app(argc, argv);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
