#!/usr/bin/env bash
# ResNet-152 speed on the GPU machine, Hilum and PyTorch side by side in one run:
# Hilum fp16 (cuDNN, fused epilogues, CUDA graphs) and bf16, PyTorch eager
# (channels_last, cudnn.benchmark, fp16) and torch.compile, at batch 1/64/256
# on 224x224 and 256/1024 on 64x64.
#
#   scripts/gpu/bench_resnet.sh [BUILD_DIR]     (default build-gpu; builds bench_resnet if missing)
#
# Env: OUT (default ./out), HILUM_BENCH_BUDGET_S (seconds for the whole script,
# default 300; torch.compile gets what is left after the other runs).
# Writes $OUT/bench.json (JSON lines) and $OUT/bench.md (the table for bench/RESULTS.md).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
BUILD=${1:-build-gpu}
OUT=${OUT:-$PWD/out}
mkdir -p "$OUT"
BUDGET=${HILUM_BENCH_BUDGET_S:-300}
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

echo "== bench: Hilum fp16 ($(left) s left)"
"$BUILD/bench/bench_resnet" --device cuda --dtype f16 --cases "$CASES" --min-time 1.5 --json "$OUT/bench.json" || status=1
echo "== bench: Hilum bf16 ($(left) s left)"
"$BUILD/bench/bench_resnet" --device cuda --dtype bf16 --cases 1x224,64x224 --min-time 1 --json "$OUT/bench.json" || status=1
echo "== bench: PyTorch eager fp16 ($(left) s left)"
"$PY" bench/resnet_torch.py --device cuda --dtype f16 --modes eager --cases "$CASES" --min-time 1.5 \
  --json "$OUT/bench.json" || status=1
# The target case first; batch 1 with CUDA graphs (reduce-overhead) is the fair latency comparison.
COMPILE_BUDGET=$(( $(left) - 60 ))
if [ "$COMPILE_BUDGET" -gt 30 ]; then
  echo "== bench: torch.compile fp16 (budget ${COMPILE_BUDGET} s)"
  "$PY" bench/resnet_torch.py --device cuda --dtype f16 --modes compile --cases 64x224,256x224,1x224,256x64,1024x64 \
    --min-time 1.5 --compile-budget-s "$COMPILE_BUDGET" --json "$OUT/bench.json" || status=1
fi
COMPILE_BUDGET=$(( $(left) - 20 ))
if [ "$COMPILE_BUDGET" -gt 40 ]; then
  echo "== bench: torch.compile reduce-overhead fp16, batch 1 (budget ${COMPILE_BUDGET} s)"
  "$PY" bench/resnet_torch.py --device cuda --dtype f16 --modes compile-ro --cases 1x224 --min-time 1.5 \
    --compile-budget-s "$COMPILE_BUDGET" --json "$OUT/bench.json" || status=1
fi
"$PY" bench/resnet_report.py "$OUT/bench.json" --targets \
  --title "ResNet-152 on $(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1), $(date -u +%Y-%m-%d)" \
  | tee "$OUT/bench.md" || status=1
exit $status
