// Report generation costs per study: key images, the PDF (Qt, offscreen), the
// DICOM SR (DCMTK, TID 1500) and the narrative check, on a 512 x 512 x 300
// synthetic volume with five nodules. Results: bench/RESULTS.md ("Reports").
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>

#include "app/narrative.h"
#include "app/report_content.h"
#include "app/report_sr.h"
#if HILUM_HAVE_REPORT_PDF
#include "app/pdf/report_pdf_qt.h"
#endif

namespace hilum {
namespace {

struct Study {
  Volume volume;
  StudyInfo info;
  FindingsDocument doc;
};

const Study& study() {
  static const Study s = [] {
    Study st;
    st.volume = Volume::allocate(512, 512, 300, {0.7, 0.7, 1.0}, {-179.2, -179.2, -150});
    float* v = st.volume.data();
    for (int64_t i = 0; i < st.volume.hu.numel(); ++i)
      v[i] = -850.f + static_cast<float>((i * 7919) % 61) - 30.f;
    const double lobes[5][3] = {{-80, -20, 60}, {-70, 10, 0}, {-90, 40, -60}, {80, -10, 50}, {85, 30, -70}};
    const char* codes[5] = {"RUL", "RML", "RLL", "LUL", "LLL"};
    for (int n = 0; n < 5; ++n) {
      Finding f;
      f.id = n + 1;
      f.center_mm = {lobes[n][0], lobes[n][1], lobes[n][2]};
      f.long_axis_mm = 6 + 3 * n;
      f.short_axis_mm = 5 + 2.5 * n;
      f.mean_diameter_mm = round_to_tenth((f.long_axis_mm + f.short_axis_mm) / 2);
      f.solid_component_mm = f.mean_diameter_mm;
      f.volume_mm3 = 3.14159 / 6 * f.long_axis_mm * f.short_axis_mm * f.short_axis_mm;
      f.probability = 0.9 - 0.05 * n;
      f.malignancy = 0.1 + 0.1 * n;
      f.location.lobe = codes[n];
      f.location.side = n < 3 ? LungSide::kRight : LungSide::kLeft;
      const Vec3 vox = st.volume.voxel_from_world(f.center_mm);
      f.location.slice_index = static_cast<int>(std::lround(vox[2]));
      f.lung_rads = *assess_lung_rads({NoduleType::kSolid, f.mean_diameter_mm, f.mean_diameter_mm});
      st.doc.findings.push_back(f);
    }
    st.doc.series_uid = "2.25.1";
    st.doc.generator = "hilum 0.1.0";
    st.doc.lung_rads_study = study_lung_rads(st.doc.findings);
    st.info.patient.name = "DOE^JANE";
    st.info.patient.id = "ID-1";
    st.info.study_instance_uid = "2.25.2";
    st.info.series_instance_uid = "2.25.1";
    st.info.study_date = "20240101";
    st.info.modality = "CT";
    for (int k = 0; k < 300; ++k) st.info.sop_instance_uids.push_back("2.25.3." + std::to_string(k));
    return st;
  }();
  return s;
}

void BM_KeyImagesAndContent(benchmark::State& state) {
  const Study& s = study();
  const Narrative n = write_impression(s.doc, nullptr);
  for (auto _ : state) {
    auto c = build_report_content(s.doc, s.volume, s.info, n);
    benchmark::DoNotOptimize(c);
  }
}
BENCHMARK(BM_KeyImagesAndContent)->Unit(benchmark::kMillisecond);

#if HILUM_HAVE_REPORT_PDF
void BM_PdfRender(benchmark::State& state) {
  (void)install_qt_pdf_renderer();
  const Study& s = study();
  const ReportContent c = *build_report_content(s.doc, s.volume, s.info, write_impression(s.doc, nullptr));
  size_t bytes = 0;
  for (auto _ : state) {
    auto pdf = render_report_pdf_qt(c);
    bytes = pdf->size();
    benchmark::DoNotOptimize(pdf);
  }
  state.counters["pdf_kB"] = static_cast<double>(bytes) / 1024;
}
BENCHMARK(BM_PdfRender)->Unit(benchmark::kMillisecond);
#endif

void BM_DicomSr(benchmark::State& state) {
  const Study& s = study();
  const auto path =
      std::filesystem::temp_directory_path() / ("hilum_bench_sr_" + std::to_string(::getpid()) + ".dcm");
  SrOptions o;
  o.impression = template_impression(s.doc);
  for (auto _ : state) {
    auto st = write_report_sr(path, s.doc, s.info, o);
    benchmark::DoNotOptimize(st);
  }
  state.counters["sr_kB"] = static_cast<double>(std::filesystem::file_size(path)) / 1024;
  std::filesystem::remove(path);
}
BENCHMARK(BM_DicomSr)->Unit(benchmark::kMillisecond);

void BM_ImpressionCheck(benchmark::State& state) {
  const Study& s = study();
  const std::string text = template_impression(s.doc);
  for (auto _ : state) benchmark::DoNotOptimize(check_impression(text, s.doc));
}
BENCHMARK(BM_ImpressionCheck)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace hilum

BENCHMARK_MAIN();
