#!/usr/bin/env bash
# ResNet on the CPU, Hilum and PyTorch side by side in one run: Hilum's oneDNN
# and reference engines against PyTorch eager and TorchScript-frozen (Debian's
# python3-torch), fp32, same threads, same shapes:
#   ResNet-152 at batch 1 and 8 on 224x224 and batch 64 on 64x64, and the
#   narrow ResNet-152 (width 8) of the demo bundle at batch 64 on 64x64.
#
#   bench/resnet_cpu_compare.sh [BUILD_DIR] [OUT_DIR]   (defaults: build, /tmp/hilum_resnet_cpu)
# Env: THREADS (default: all cores), MIN_TIME (seconds per case, default 3).
# Prints the Markdown tables for bench/RESULTS.md; JSON lines in OUT_DIR.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BUILD=${1:-build}
OUT=${2:-/tmp/hilum_resnet_cpu}
THREADS=${THREADS:-$(nproc)}
MIN_TIME=${MIN_TIME:-3}
PY=/usr/bin/python3
mkdir -p "$OUT"
rm -f "$OUT"/full.json "$OUT"/narrow.json
export HILUM_NUM_THREADS=$THREADS OMP_NUM_THREADS=$THREADS
# oneDNN (Hilum) and PyTorch both run on GNU OpenMP, whose spinning threads
# collapse on a shared, oversubscribed machine (10x slower at batch 1 here);
# passive waiting is set for both sides alike. Override with OMP_WAIT_POLICY=active.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}

echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $(lscpu | sed -n 's/^Model name: *//p' | head -1), $THREADS threads," \
     "load average $(cut -d' ' -f1-3 /proc/loadavg), OMP_WAIT_POLICY=$OMP_WAIT_POLICY"
FULL=1x224,8x224,64x64
for engine in onednn reference; do
  "$BUILD/bench/bench_resnet" --device cpu --cpu-engine "$engine" --depth 152 --cases "$FULL" \
    --min-time "$MIN_TIME" --min-iters 3 --json "$OUT/full.json"
  "$BUILD/bench/bench_resnet" --device cpu --cpu-engine "$engine" --depth 152 --width 8 --classes 2 --cases 64x64 \
    --min-time "$MIN_TIME" --min-iters 3 --json "$OUT/narrow.json"
done
"$PY" bench/resnet_torch.py --device cpu --threads "$THREADS" --modes eager,frozen --depth 152 --cases "$FULL" \
  --min-time "$MIN_TIME" --min-iters 3 --json "$OUT/full.json"
"$PY" bench/resnet_torch.py --device cpu --threads "$THREADS" --modes eager,frozen --depth 152 --width 8 --classes 2 \
  --cases 64x64 --min-time "$MIN_TIME" --min-iters 3 --json "$OUT/narrow.json"
echo
"$PY" bench/resnet_report.py "$OUT/full.json" --title "ResNet-152, CPU fp32, $THREADS threads"
echo
"$PY" bench/resnet_report.py "$OUT/narrow.json" --title "Narrow ResNet-152 (width 8, demo bundle), CPU fp32, $THREADS threads"
