#!/usr/bin/env bash
# Batch-1 decode of the OLMoE-1B-7B geometry side by side on the GPU machine:
# the MoE kernel tests, then the decode benchmark with every kernel choice,
# back to back in one job, once per setting of AB_ENV (space-separated
# NAME=VALUE settings, "-" for none). Results in $OUT/ab.txt.
#   AB_ENV="- HILUM_EXPERT_GLU_B1=0" bash scripts/gpu/decode_ab.sh
set -uo pipefail
source scripts/gpu/env.sh
OUT=${OUT:-out}
mkdir -p "$OUT"
cmake --preset gpu-machine -DHILUM_BUILD_BENCH=ON >/dev/null 2>&1
cmake --build build-gpu -j16 --target bench_moe test_cuda 2>&1 | grep -E "error|FAILED" | head -20
{
  build-gpu/tests/test_cuda --gtest_filter='MoeKernels.*:MoeCudaEngine.*' 2>&1 | grep -E "PASSED|FAILED|Failure|error" | head -20
  for setting in ${AB_ENV:--}; do
    echo "== ${setting}"
    env ${setting#-} build-gpu/bench/bench_moe --benchmark_filter="${FILTER:-Cuda/olmoe_1b_7b/decode/fused}" 2>&1 |
      grep -E "decode|error" | sed -E 's/ +[0-9]+ ms +[0-9]+ ms +[0-9]+ / /'
  done
} | tee "$OUT/ab.txt"
