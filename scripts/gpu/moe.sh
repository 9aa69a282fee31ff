#!/usr/bin/env bash
# The text engine's GPU job (issue 4), from the repository root of the GPU
# machine (carry .gpu-deps, made by scripts/gpu/fetch_deps.sh):
#   bash scripts/gpu/moe.sh [--regen-goldens]
# Results go to $OUT (at most 8 files come back; this job writes 5, 6 with
# --regen-goldens):
#   summary.txt         tests passed/failed and tok/s against transformers and the targets
#   moe.log             everything below, step by step
#   gpu_tests.txt       the full `ctest -L gpu --output-on-failure` output
#   bench_moe.json      CUDA engine throughput (OLMoE-1B-7B, DeepSeek-V2-Lite geometry)
#   bench_torch.json    transformers' throughput on the same geometry
#   moe_golden.tar.gz   (--regen-goldens only) tests/golden/moe/ regenerated
#                       with transformers + peft: unpack in tests/golden/ and commit
# The golden files are committed, so by default they are not regenerated.
# Each step runs even when an earlier one failed; the job takes about 4 minutes.
set -u
cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 2
REGEN=0
for arg in "$@"; do
  case "$arg" in
    --regen-goldens) REGEN=1 ;;
    *) echo "usage: $0 [--regen-goldens]" >&2; exit 2 ;;
  esac
done
OUT=${OUT:-$PWD/out}
source scripts/gpu/env.sh  # the carried Debian build dependencies (.gpu-deps)
mkdir -p "$OUT"
exec > >(tee -a "$OUT/moe.log") 2>&1
START=$(date +%s)
step() { echo; echo "=== $(date +%T) (+$(( $(date +%s) - START ))s) $*"; }
export PYTHONUNBUFFERED=1

step "environment"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 | head -3
python3 -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)' 2>&1
git log --oneline -1 2>/dev/null || true

if [ "$REGEN" = 1 ]; then
  step "golden files (tests/golden/moe_golden.py)"
  python3 -c 'import peft; print("peft", peft.__version__)' 2>&1
  timeout 180 python3 tests/golden/moe_golden.py --out tests/golden/moe || echo "golden script failed ($?)"
  tar -czf "$OUT/moe_golden.tar.gz" -C tests/golden moe && ls -l "$OUT/moe_golden.tar.gz"
fi

step "build (cmake --preset gpu-machine; test_model test_cuda bench_moe)"
BUILD=build-gpu
timeout 120 cmake --preset gpu-machine -DHILUM_BUILD_BENCH=ON > "$OUT/cmake_configure.txt" 2>&1 ||
  { echo "configure failed"; tail -30 "$OUT/cmake_configure.txt"; }
rm -f "$OUT/cmake_configure.txt"
timeout 420 cmake --build "$BUILD" -j16 --target test_model test_cuda bench_moe > "$OUT/build.txt" 2>&1 ||
  { echo "build failed"; grep -E "error|Error" "$OUT/build.txt" | head -40; }
tail -3 "$OUT/build.txt"
rm -f "$OUT/build.txt"

step "GPU tests (ctest -L gpu; full output in gpu_tests.txt)"
timeout 300 ctest --test-dir "$BUILD" -L gpu --output-on-failure > "$OUT/gpu_tests.txt" 2>&1
echo "ctest exit status $?"
grep -E "tests passed|tests failed|\(Failed\)|\(Timeout\)|\(SEGFAULT\)|\(Subprocess aborted\)|Not Run" \
  "$OUT/gpu_tests.txt" | head -40
# The first lines of every failure (which kernel, where, how far off).
grep -E "Failure$|^Expected|^  Actual|Which is|: rel |departure|layers 0\.\.|largest difference|error:" \
  "$OUT/gpu_tests.txt" | head -60

step "CPU parity against the committed goldens"
timeout 120 "$BUILD/tests/test_model" --gtest_filter='MoeGolden*:Families*' 2>&1 | tail -4 ||
  echo "golden parity failed"

step "benchmarks"
scripts/gpu/bench_moe.sh "$BUILD" "$OUT"

step "summary"
python3 scripts/gpu/moe_summary.py "$OUT" | tee "$OUT/summary.txt"

step "done"
ls -l "$OUT"
