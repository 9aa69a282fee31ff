#!/usr/bin/env bash
# Text-engine benchmarks on the GPU machine, side by side with transformers:
#   scripts/gpu/bench_moe.sh BUILD_DIR OUT_DIR
# Writes OUT_DIR/bench_moe.json (Google Benchmark) and OUT_DIR/bench_torch.json.
set -u
cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 2
BUILD=${1:-build-gpu}
OUTDIR=${2:-${OUT:-out}}
mkdir -p "$OUTDIR"
if [ -x "$BUILD/bench/bench_moe" ]; then
  echo "=== bench_moe (CUDA engine, random bf16 weights)"
  timeout 240 "$BUILD/bench/bench_moe" --benchmark_filter='Cuda' \
    --benchmark_out="$OUTDIR/bench_moe.json" --benchmark_out_format=json || echo "bench_moe failed ($?)"
else
  echo "bench_moe was not built"
fi
echo "=== transformers reference"
PYTHONUNBUFFERED=1 timeout 150 python3 bench/moe_torch.py --models "${TORCH_MODELS:-olmoe}" --out "$OUTDIR/bench_torch.json" || echo "moe_torch.py failed ($?)"
