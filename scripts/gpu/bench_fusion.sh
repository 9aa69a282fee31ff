#!/usr/bin/env bash
# GPU machine: builds the CUDA parts (preset gpu-machine), runs the
# cross-attention conformance test and the fusion-head golden test, then times
# the Hilum kernel beside PyTorch SDPA on the same shapes and writes the ratio.
#
#   OUT=/some/dir scripts/gpu/bench_fusion.sh
#
# Files in $OUT (5): build.log, conformance.txt (ctest output),
# hilum_attention.jsonl, torch_sdpa.jsonl, bench_fusion.md (the side-by-side
# table and ratios). Exit status: that of the conformance tests.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
: "${OUT:?set OUT to the output folder}"
mkdir -p "$OUT"
source scripts/gpu/env.sh
PY=${PYTHON:-python3}

cmake --preset gpu-machine >"$OUT/build.log" 2>&1 &&
  cmake --build build-gpu -j "$(nproc)" --target test_cuda test_fusion cross_attention_bench >>"$OUT/build.log" 2>&1
build_rc=$?
if [ $build_rc -ne 0 ]; then
  echo "bench_fusion: build failed (see $OUT/build.log)"
  tail -40 "$OUT/build.log"
  exit 1
fi

ctest --test-dir build-gpu -R "CrossAttention|FusionHead|FusionWeights" --output-on-failure >"$OUT/conformance.txt" 2>&1
test_rc=$?
tail -5 "$OUT/conformance.txt"

build-gpu/bench/cross_attention_bench --iters 200 --all-kernels | tee "$OUT/hilum_attention.jsonl"
"$PY" bench/cross_attention_torch.py --iters 200 | tee "$OUT/torch_sdpa.jsonl"

"$PY" - "$OUT" <<'PYEOF'
import json, sys, datetime, os
out = sys.argv[1]
rows = [json.loads(l) for f in ("hilum_attention.jsonl", "torch_sdpa.jsonl")
        for l in open(os.path.join(out, f)) if l.strip().startswith("{")]
def get(impl, dtype):
    return next((r for r in rows if r["impl"] == impl and r["dtype"] == dtype), None)
lines = ["# Cross-attention: Hilum CUDA kernel vs PyTorch SDPA", "",
         f"date: {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC; device: {rows[0]['device'] if rows else '?'}",
         "shape: 256 candidates x 16 heads x 49 image tokens x 512 text tokens x head dim 64", "",
         "| impl | dtype | ms | TFLOP/s |", "|---|---|---|---|"]
for r in rows:
    lines.append(f"| {r['impl']} | {r['dtype']} | {r['ms']:.4f} | {r['tflops']:.1f} |")
lines.append("")
for dtype in ("f16", "bf16"):
    h = get("hilum tensor-core", dtype)
    for base in ("sdpa per-candidate", "sdpa flattened"):
        b = get(base, dtype)
        if h and b:
            lines.append(f"- {dtype}: hilum / {base} speed ratio = {b['ms'] / h['ms']:.2f}x")
text = "\n".join(lines) + "\n"
open(os.path.join(out, "bench_fusion.md"), "w").write(text)
print(text)
PYEOF
exit $test_rc
