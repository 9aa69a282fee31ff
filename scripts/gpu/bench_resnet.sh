#!/usr/bin/env bash
# ResNet-152 speed on the GPU machine, Hilum and PyTorch side by side in one run:
#   1. Hilum fp16 at batch 1/64/256 on 224x224 and 256/1024 on 64x64, bf16 at 1 and 64 x 224
#   2. Hilum's layer-by-layer profile at 64x224 and 1x224 (bench_resnet --profile): per layer
#      the time, TFLOP/s, GB/s and the implementation chosen; per distinct convolution every
#      candidate the planner tried. Then, if time allows, the same at 64x224 with cuDNN's
#      runtime-compiled (fused) engines allowed (HILUM_CUDNN_RTC=1).
#   3. PyTorch eager (channels_last, cudnn.benchmark, fp16) at every shape; torch.compile at
#      64x224 (the target case) and reduce-overhead (CUDA graphs) at batch 1.
#
#   scripts/gpu/bench_resnet.sh [BUILD_DIR]     (default build-gpu; builds bench_resnet if missing)
#
# Env: OUT (default ./out), HILUM_BENCH_BUDGET_S (seconds for the whole script, default 330),
# HILUM_BENCH_COMPILE_ALL=1 (torch.compile at every shape: ~30 s each).
# Writes $OUT/bench.json (JSON lines), $OUT/bench.md (the table for bench/RESULTS.md),
# $OUT/profile.txt and $OUT/profile_rtc.txt.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
BUILD=${1:-build-gpu}
OUT=${OUT:-$PWD/out}
mkdir -p "$OUT"
BUDGET=${HILUM_BENCH_BUDGET_S:-330}
START=$(date +%s)
left() { echo $(( BUDGET - ($(date +%s) - START) )); }
CASES=1x224,64x224,256x224,256x64,1024x64
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
status=0

source scripts/gpu/env.sh
if [ ! -x "$BUILD/bench/bench_resnet" ]; then
  cmake --preset gpu-machine >/dev/null
  cmake --build "$BUILD" -j"$(nproc)" --target bench_resnet
fi
BENCH="$BUILD/bench/bench_resnet"

echo "== bench: Hilum fp16 ($(left) s left)"
"$BENCH" --device cuda --dtype f16 --cases "$CASES" --min-time 1 --json "$OUT/bench.json" || status=1
echo "== bench: Hilum bf16 ($(left) s left)"
"$BENCH" --device cuda --dtype bf16 --cases 1x224,64x224 --min-time 1 --json "$OUT/bench.json" || status=1

echo "== profile: Hilum fp16 layer by layer, 64x224 and 1x224 ($(left) s left)"
rm -f "$OUT/profile.txt"
"$BENCH" --device cuda --dtype f16 --cases 64x224,1x224 --profile --profile-out "$OUT/profile.txt" || status=1
# The summary lines of each profile, here in the log too.
grep -E "^# (Hilum|whole|the same|sum of|convolutions with|by stage)" "$OUT/profile.txt" || true

echo "== bench: PyTorch eager fp16 ($(left) s left)"
"$PY" bench/resnet_torch.py --device cuda --dtype f16 --modes eager --cases "$CASES" --min-time 1 \
  --json "$OUT/bench.json" || status=1
# torch.compile costs ~30 s per shape: the target case, and batch 1 with CUDA graphs
# (reduce-overhead), the fair latency comparison.
COMPILE_CASES=64x224
[ "${HILUM_BENCH_COMPILE_ALL:-0}" = 1 ] && COMPILE_CASES=64x224,256x224,1x224,256x64,1024x64
COMPILE_BUDGET=$(( $(left) - 50 ))
if [ "$COMPILE_BUDGET" -gt 30 ]; then
  echo "== bench: torch.compile fp16 $COMPILE_CASES (budget ${COMPILE_BUDGET} s)"
  "$PY" bench/resnet_torch.py --device cuda --dtype f16 --modes compile --cases "$COMPILE_CASES" \
    --min-time 1 --compile-budget-s "$COMPILE_BUDGET" --json "$OUT/bench.json" || status=1
fi
COMPILE_BUDGET=$(( $(left) - 10 ))
if [ "$COMPILE_BUDGET" -gt 35 ]; then
  echo "== bench: torch.compile reduce-overhead fp16, batch 1 (budget ${COMPILE_BUDGET} s)"
  "$PY" bench/resnet_torch.py --device cuda --dtype f16 --modes compile-ro --cases 1x224 --min-time 1 \
    --compile-budget-s "$COMPILE_BUDGET" --json "$OUT/bench.json" || status=1
fi
"$PY" bench/resnet_report.py "$OUT/bench.json" --targets \
  --title "ResNet-152 on $(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1), $(date -u +%Y-%m-%d)" \
  | tee "$OUT/bench.md" || status=1

# Last, as it is optional: what cuDNN's runtime-compiled fused engines would bring
# (each compiles for 0.1-2 s while planning, so not the default).
if [ "$(left)" -gt 60 ]; then
  echo "== profile: Hilum fp16 64x224 with runtime-compiled cuDNN engines allowed ($(left) s left)"
  rm -f "$OUT/profile_rtc.txt"
  HILUM_CUDNN_RTC=1 timeout $(( $(left) - 5 )) "$BENCH" --device cuda --dtype f16 --cases 64x224 --profile \
    --profile-out "$OUT/profile_rtc.txt" || echo "(RTC profile did not finish)"
  grep -E "^# (whole|sum of|convolutions with)" "$OUT/profile_rtc.txt" 2>/dev/null || true
else
  echo "(no time left for the runtime-compiled profile)"
fi
exit $status
