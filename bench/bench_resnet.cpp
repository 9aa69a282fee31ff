// ResNet inference throughput and latency (a plain timing binary: the GPU
// machine has no Google Benchmark). Runs one engine over a list of
// (batch, side) cases with random or given weights and prints a table; with
// --json, also one JSON object per case (for bench/RESULTS.md and the
// side-by-side scripts).
//
//   bench_resnet --device cuda --dtype f16 --cases 1x224,64x224,256x224,256x64,1024x64
//   bench_resnet --device cpu --depth 152 --width 8 --cases 64x64 --min-time 3
//   bench_resnet --device cuda --cases 64x224 --profile [--profile-out FILE]
//
// GPU cases keep images and results in device memory (forward_into), as a
// framework benchmark does; the first call of each case (planning, graph
// capture) is reported separately and not timed. --profile (CUDA) instead
// prints ResNet::profile() for each case: per-layer times from CUDA graphs and
// every convolution's planner choices.
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "model/log.h"
#include "model/parallel.h"
#include "model/safetensors.h"
#include "vision/net/resnet.h"
#include "vision/net/resnet_random.h"

namespace {

using namespace hilum;
namespace fs = std::filesystem;

struct Options {
  std::string device = "cpu", dtype, cpu_engine = "auto", weights, json, cases = "1x224";
  int depth = 152;
  int64_t width = 64, classes = 1000;
  double min_time = 2.0;
  int min_iters = 5;
  double peak_tflops = 989.5;  // H200 SXM dense fp16/bf16 tensor-core peak
  bool profile = false;
  std::string profile_out;
};

// Multiply-adds x 2 of every convolution and the fc layer, per image.
double gflop_per_image(const ResNetConfig& c, int64_t h, int64_t w) {
  double flops = 0;
  auto conv = [&](int64_t cin, int64_t cout, int64_t k, int64_t stride, int64_t pad, int64_t& hh,
                  int64_t& ww) {
    hh = (hh + 2 * pad - k) / stride + 1;
    ww = (ww + 2 * pad - k) / stride + 1;
    flops += 2.0 * cin * cout * k * k * hh * ww;
  };
  conv(c.in_channels, c.width, 7, 2, 3, h, w);
  h = (h + 2 - 3) / 2 + 1;
  w = (w + 2 - 3) / 2 + 1;
  int64_t inplanes = c.width;
  for (int stage = 0; stage < 4; ++stage) {
    const int64_t planes = c.width << stage, out = planes * c.expansion();
    for (int b = 0; b < c.layers[stage]; ++b) {
      const int64_t stride = (stage > 0 && b == 0) ? 2 : 1;
      int64_t h0 = h, w0 = w;
      if (b == 0 && (stride != 1 || inplanes != out)) {
        int64_t hd = h0, wd = w0;
        conv(inplanes, out, 1, stride, 0, hd, wd);
      }
      if (c.block == ResNetBlock::kBasic) {
        conv(inplanes, planes, 3, stride, 1, h, w);
        conv(planes, planes, 3, 1, 1, h, w);
      } else {
        const int64_t inner = c.inner_width(planes);
        conv(inplanes, inner, 1, 1, 0, h, w);
        conv(inner, inner, 3, stride, 1, h, w);
        conv(inner, out, 1, 1, 0, h, w);
      }
      inplanes = out;
    }
  }
  flops += 2.0 * inplanes * c.num_classes;
  return flops / 1e9;
}

int usage() {
  std::fprintf(
      stderr,
      "usage: bench_resnet [--device cpu|cuda] [--dtype f32|f16|bf16] [--cpu-engine auto|reference|onednn]\n"
      "                    [--weights W.safetensors | --depth D --width W --classes K]\n"
      "                    [--cases NxS,...] [--min-time SECONDS] [--min-iters N] [--json FILE]\n"
      "                    [--profile [--profile-out FILE]]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  set_log_level(LogLevel::kInfo);  // the CUDA engine reports its planning per batch shape
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "bench_resnet: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--device")
      o.device = next();
    else if (a == "--dtype")
      o.dtype = next();
    else if (a == "--cpu-engine")
      o.cpu_engine = next();
    else if (a == "--weights")
      o.weights = next();
    else if (a == "--json")
      o.json = next();
    else if (a == "--cases")
      o.cases = next();
    else if (a == "--depth")
      o.depth = std::atoi(next().c_str());
    else if (a == "--width")
      o.width = std::atoll(next().c_str());
    else if (a == "--classes")
      o.classes = std::atoll(next().c_str());
    else if (a == "--min-time")
      o.min_time = std::atof(next().c_str());
    else if (a == "--min-iters")
      o.min_iters = std::atoi(next().c_str());
    else if (a == "--peak-tflops")
      o.peak_tflops = std::atof(next().c_str());
    else if (a == "--profile")
      o.profile = true;
    else if (a == "--profile-out")
      o.profile_out = next();
    else
      return usage();
  }

  ResNetOptions options;
  options.device = o.device == "cuda" ? Device::kCUDA : Device::kCPU;
  options.dtype = options.device == Device::kCUDA ? DType::kF16 : DType::kF32;
  if (!o.dtype.empty()) {
    auto d = parse_dtype(o.dtype);
    if (!d.ok()) return usage();
    options.dtype = *d;
  }
  options.cpu_engine = o.cpu_engine == "reference" ? CpuEngine::kReference
                       : o.cpu_engine == "onednn"  ? CpuEngine::kOneDnn
                                                   : CpuEngine::kAuto;

  // Weights: the given file, or random ones of the requested shape.
  fs::path weights = o.weights;
  fs::path temp;
  if (weights.empty()) {
    auto cfg = resnet_config_for_depth(o.depth);
    if (!cfg.ok()) {
      std::fprintf(stderr, "bench_resnet: %s\n", cfg.error().message().c_str());
      return 2;
    }
    cfg->width = o.width;
    cfg->num_classes = o.classes;
    temp = fs::temp_directory_path() / ("bench_resnet_" + std::to_string(::getpid()) + ".safetensors");
    if (auto s = write_safetensors(temp, random_resnet_weights(*cfg, 1)); !s.ok()) {
      std::fprintf(stderr, "bench_resnet: %s\n", s.error().message().c_str());
      return 1;
    }
    weights = temp;
  }
  auto loaded = ResNet::load(weights, std::nullopt, options);
  if (!temp.empty()) fs::remove(temp);
  if (!loaded.ok()) {
    std::fprintf(stderr, "bench_resnet: %s\n", loaded.error().message().c_str());
    return exit_code_for(loaded.error());
  }
  ResNet& net = **loaded;
  const ResNetConfig& cfg = net.config();

  std::ofstream json;
  if (!o.json.empty()) json.open(o.json, std::ios::app);
  std::printf("# %s, engine %s, %d CPU threads\n", cfg.describe().c_str(), net.engine_name().c_str(),
              num_threads());
  std::printf("%-10s %8s %12s %12s %12s %10s %8s %10s\n", "case", "iters", "first_ms", "ms/batch", "images/s",
              "GFLOP/img", "TFLOP/s", "peak_frac");

  std::stringstream cases(o.cases);
  std::string item;
  int failures = 0;
  while (std::getline(cases, item, ',')) {
    const auto x = item.find('x');
    if (x == std::string::npos) return usage();
    const int64_t batch = std::atoll(item.substr(0, x).c_str());
    const int64_t side = std::atoll(item.substr(x + 1).c_str());
    const Shape shape{batch, cfg.in_channels, side, side};

    Tensor host = Tensor::empty(shape, DType::kF32);
    std::mt19937 rng(7);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (auto& v : host.span<float>()) v = normal(rng);
    const ResNetOutput output = cfg.num_classes > 0 ? ResNetOutput::kLogits : ResNetOutput::kFeatures;
    auto out_shape = net.output_shape(shape, output);
    auto images = host.to(options.device);
    auto out = out_shape.ok() ? Tensor::empty_on(*out_shape, DType::kF32, options.device)
                              : Result<Tensor>(out_shape.error());
    if (!images.ok() || !out.ok()) {
      std::fprintf(stderr, "bench_resnet: %s: cannot allocate (%s)\n", item.c_str(),
                   (!images.ok() ? images.error() : out.error()).message().c_str());
      ++failures;
      continue;
    }
    if (o.profile) {
      auto report = net.profile(*images, output);
      if (!report.ok()) {
        std::fprintf(stderr, "bench_resnet: %s: profile: %s\n", item.c_str(),
                     report.error().message().c_str());
        ++failures;
        continue;
      }
      if (o.profile_out.empty()) {
        std::fputs(report->c_str(), stdout);
      } else {
        std::ofstream f(o.profile_out, std::ios::app);
        f << *report << "\n";
        std::printf("%-10s profile written to %s\n", item.c_str(), o.profile_out.c_str());
      }
      std::fflush(stdout);
      continue;
    }
    using clock = std::chrono::steady_clock;
    const auto t0 = clock::now();
    Status first = net.forward_into(*images, output, *out);
    const double first_ms = std::chrono::duration<double, std::milli>(clock::now() - t0).count();
    if (first.ok()) first = net.forward_into(*images, output, *out);  // warm (graph capture, caches)
    if (!first.ok()) {
      std::fprintf(stderr, "bench_resnet: %s: %s\n", item.c_str(), first.error().message().c_str());
      ++failures;
      continue;
    }
    int iters = 0;
    const auto start = clock::now();
    double elapsed = 0;
    Status s;
    while (s.ok() && (elapsed < o.min_time || iters < o.min_iters)) {
      s = net.forward_into(*images, output, *out);
      ++iters;
      elapsed = std::chrono::duration<double>(clock::now() - start).count();
    }
    if (!s.ok()) {
      std::fprintf(stderr, "bench_resnet: %s: %s\n", item.c_str(), s.error().message().c_str());
      ++failures;
      continue;
    }
    const double ms = elapsed * 1e3 / iters;
    const double ips = batch * iters / elapsed;
    const double gflop = gflop_per_image(cfg, side, side);
    const double tflops = gflop * ips / 1e3;
    const double frac = options.device == Device::kCUDA ? tflops / o.peak_tflops : 0.0;
    std::printf("%-10s %8d %12.1f %12.3f %12.1f %10.3f %8.2f %10.4f\n", item.c_str(), iters, first_ms, ms,
                ips, gflop, tflops, frac);
    std::fflush(stdout);
    if (json.is_open()) {
      json << "{\"impl\": \"hilum\", \"engine\": \"" << net.engine_name() << "\", \"model\": \""
           << cfg.describe() << "\", \"batch\": " << batch << ", \"side\": " << side
           << ", \"iters\": " << iters << ", \"first_call_ms\": " << first_ms << ", \"ms_per_batch\": " << ms
           << ", \"images_per_s\": " << ips << ", \"gflop_per_image\": " << gflop
           << ", \"tflops\": " << tflops << ", \"peak_fraction\": " << frac
           << ", \"threads\": " << num_threads() << "}\n";
    }
  }
  return failures ? 1 : 0;
}
