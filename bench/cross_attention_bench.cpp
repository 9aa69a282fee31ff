// Times the CUDA cross-attention kernels on the fusion head's shapes and prints
// one JSON object per line (shape, kernel, dtype, ms, TFLOP/s). No Google
// Benchmark: this binary runs on the GPU machine (scripts/gpu/bench_fusion.sh),
// side by side with bench/cross_attention_torch.py (PyTorch SDPA, same shapes).
//
//   cross_attention_bench [--candidates N] [--tokens K] [--keys T] [--heads H] [--head-dim D]
//                         [--iters I] [--all-kernels]
// FLOPs counted as 4 * N * K * T * H * D (QK^T and PV, two per multiply-add).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "cuda/cross_attention.h"
#include "cuda/device.h"

int main(int argc, char** argv) {
  using namespace hilum;
  int64_t n = 256, k = 49, t = 512;
  int heads = 16, d = 64, iters = 100;
  bool all = false;
  for (int i = 1; i < argc; ++i) {
    auto next = [&](const char* flag) -> long long {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "cross_attention_bench: %s needs a value\n", flag);
        std::exit(2);
      }
      return std::atoll(argv[++i]);
    };
    if (!std::strcmp(argv[i], "--candidates"))
      n = next("--candidates");
    else if (!std::strcmp(argv[i], "--tokens"))
      k = next("--tokens");
    else if (!std::strcmp(argv[i], "--keys"))
      t = next("--keys");
    else if (!std::strcmp(argv[i], "--heads"))
      heads = static_cast<int>(next("--heads"));
    else if (!std::strcmp(argv[i], "--head-dim"))
      d = static_cast<int>(next("--head-dim"));
    else if (!std::strcmp(argv[i], "--iters"))
      iters = static_cast<int>(next("--iters"));
    else if (!std::strcmp(argv[i], "--all-kernels"))
      all = true;
    else {
      std::fprintf(stderr, "cross_attention_bench: unknown option %s\n", argv[i]);
      return 2;
    }
  }
  if (cuda::device_count() == 0) {
    std::fprintf(stderr, "cross_attention_bench: no CUDA device (%s)\n", cuda::unavailable_reason().c_str());
    return 1;
  }
  auto info = cuda::device_info(0);
  const std::string device = info.ok() ? info->name : "unknown";
  const double flops = 4.0 * n * k * t * heads * d;
  struct Run {
    cuda::CrossAttentionKernel kernel;
    const char* name;
  };
  const Run runs[] = {{cuda::CrossAttentionKernel::kTensorCore, "tensor-core"},
                      {cuda::CrossAttentionKernel::kSimple, "simple"}};
  int failures = 0;
  for (const Run& run : runs) {
    if (!all && run.kernel == cuda::CrossAttentionKernel::kSimple) continue;
    for (auto dtype : {cuda::AttentionDType::kF16, cuda::AttentionDType::kBF16}) {
      cuda::CrossAttentionShape s{n * k, t, heads, d};
      const int it = run.kernel == cuda::CrossAttentionKernel::kSimple ? std::max(1, iters / 10) : iters;
      auto ms = cuda::time_cross_attention(s, dtype, run.kernel, 10, it);
      if (!ms.ok()) {
        std::fprintf(stderr, "cross_attention_bench: %s\n", ms.error().message().c_str());
        ++failures;
        continue;
      }
      std::printf(
          "{\"impl\": \"hilum %s\", \"dtype\": \"%s\", \"candidates\": %lld, \"tokens\": %lld, \"keys\": "
          "%lld, "
          "\"heads\": %d, \"head_dim\": %d, \"ms\": %.5f, \"tflops\": %.2f, \"device\": \"%s\"}\n",
          run.name, dtype == cuda::AttentionDType::kF16 ? "f16" : "bf16", static_cast<long long>(n),
          static_cast<long long>(k), static_cast<long long>(t), heads, d, *ms, flops / (*ms * 1e-3) / 1e12,
          device.c_str());
    }
  }
  return failures ? 1 : 0;
}
