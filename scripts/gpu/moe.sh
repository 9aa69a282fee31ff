#!/usr/bin/env bash
# The text engine's GPU job (issue 4), from the repository root of the GPU
# machine; results go to $OUT (at most 8 files come back):
#   moe.log             everything below, step by step
#   moe_golden.tar.gz   tests/golden/moe/ regenerated with transformers + peft
#                       (unpack in tests/golden/ and commit)
#   bench_moe.json      CUDA engine throughput (OLMoE-1B-7B, DeepSeek-V2-Lite geometry)
#   bench_torch.json    transformers' throughput on the same geometries
# Each step runs even when an earlier one failed; the whole job stays well
# under 10 minutes.
set -u
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
OUT=${OUT:-$PWD/out}
source scripts/gpu/env.sh  # the carried Debian build dependencies (.gpu-deps)
mkdir -p "$OUT"
exec > >(tee -a "$OUT/moe.log") 2>&1
step() { echo; echo "=== $(date +%T) $*"; }
export PYTHONUNBUFFERED=1

step "environment"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 | head -3
python3 -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)' 2>&1
python3 -c 'import peft; print("peft", peft.__version__)' 2>&1

step "golden files (tests/golden/moe_golden.py)"
timeout 180 python3 tests/golden/moe_golden.py --out tests/golden/moe || echo "golden script failed ($?)"
tar -czf "$OUT/moe_golden.tar.gz" -C tests/golden moe && ls -l "$OUT/moe_golden.tar.gz"

step "build (cmake --preset gpu-machine)"
BUILD=build-gpu
timeout 120 cmake --preset gpu-machine -DHILUM_BUILD_BENCH=ON > "$OUT/cmake_configure.txt" 2>&1 ||
  { echo "configure failed"; tail -30 "$OUT/cmake_configure.txt"; }
rm -f "$OUT/cmake_configure.txt"
timeout 300 cmake --build "$BUILD" -j16 --target test_model test_cuda hilum 2>&1 | tail -30
timeout 120 cmake --build "$BUILD" -j16 --target bench_moe 2>&1 | tail -10

step "GPU tests (ctest -L gpu)"
timeout 150 ctest --test-dir "$BUILD" -L gpu --output-on-failure 2>&1 | tail -60 || echo "gpu tests failed"

step "CPU parity against the new goldens"
timeout 120 "$BUILD/tests/test_model" --gtest_filter='MoeGolden*:Families*' 2>&1 | tail -40 || echo "golden parity failed"

step "benchmarks"
scripts/gpu/bench_moe.sh "$BUILD" "$OUT"

step "done"
ls -l "$OUT"
