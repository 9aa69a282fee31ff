#!/usr/bin/env bash
# The text engine's decode kernels on the GPU machine: their conformance
# tests, the decode benchmark (batch 1 and 16) and a per-kernel Nsight
# Compute profile of batch-1 decode steps (OLMoE-1B-7B geometry, random bf16
# weights; clocks and caches as in a real run).
#   bash scripts/gpu/profile_decode.sh      (results in $OUT)
#   NCU=0 skips Nsight Compute; TESTS=0 the conformance tests; FILTER picks the decode benchmarks (default
#   the fused kernels without programmatic dependent launch); AB_ENV runs them
#   once per space-separated NAME=VALUE setting ("-" for none), back to back:
#   AB_ENV="- HILUM_EXPERT_GLU_B1=0 -" NCU=0 bash scripts/gpu/profile_decode.sh
#   (several variables in one setting: joined by commas, A=1,B=0)
set -uo pipefail
source scripts/gpu/env.sh
OUT=${OUT:-out}
mkdir -p "$OUT"
cmake --preset gpu-machine -DHILUM_BUILD_BENCH=ON >/dev/null 2>&1
cmake --build build-gpu -j16 --target bench_moe test_cuda 2>&1 | grep -E "error|FAILED" | head -20
if [ "${TESTS:-1}" = 1 ]; then  # TESTS=0: benchmarks only
  build-gpu/tests/test_cuda --gtest_filter='MoeKernels.*:MoeCudaEngine.*' 2>&1 | tail -40 >"$OUT/tests.txt"
  grep -E "PASSED|FAILED|Failure" "$OUT/tests.txt" | head -20
fi
B=build-gpu/bench/bench_moe
for setting in ${AB_ENV:--}; do
  [ "$setting" = - ] && setting= || echo "== $setting"
  env ${setting//,/ } "$B" --benchmark_filter="${FILTER:-Cuda/olmoe_1b_7b/decode/fused/}" 2>&1 | grep -E "decode|error"
done | tee "$OUT/bench.txt"
[ "${NCU:-1}" = 1 ] || exit 0
K='regex:staged_gemv|expert_glu|expert_down|route_fused|qkv_finish|flash_decode|greedy|embed'
timeout 300 ncu --graph-profiling node --clock-control none --cache-control none -k "$K" --launch-skip 200 \
  --launch-count 250 \
  --metrics gpu__time_duration.sum,dram__bytes_read.sum,launch__registers_per_thread,sm__warps_active.avg.pct_of_peak_sustained_active \
  --csv "$B" --benchmark_filter='Cuda/olmoe_1b_7b/decode/fused/1/' >"$OUT/ncu.csv" 2>"$OUT/ncu.err"
echo "ncu rc $?"
# Stall reasons of the latency-bound kernels.
timeout 120 ncu --graph-profiling node --clock-control none -k 'regex:route_fused|flash_decode|greedy' --launch-skip 60 \
  --launch-count 3 --section WarpStateStats --section LaunchStats \
  "$B" --benchmark_filter='Cuda/olmoe_1b_7b/decode/fused/1/' >"$OUT/ncu_detail.txt" 2>&1
echo "ncu detail rc $?"
