#!/usr/bin/env bash
# The image branch on the GPU machine, in one command (about 6-8 minutes):
#   1. configure (preset gpu-machine) and build only what is needed (ninja -j16)
#   2. GPU tests: ctest -L gpu (every cuda/ kernel and convolution family), and
#      the ResNet suite (CUDA goldens, the profile) whatever the first part gave
#   3. full ResNet-152 parity at 224x224 and 64x64: PyTorch fp32 against
#      `hilum resnet` on the CPU (fp32) and on CUDA (fp16, bf16)
#   4. the speed comparison with PyTorch and Hilum's layer-by-layer profile
#      (scripts/gpu/bench_resnet.sh)
# A failing test or parity check is recorded and the script goes on; the exit
# status is non-zero if anything failed.
#
#   scripts/gpu/resnet.sh [--no-tests] [--no-parity] [--no-bench]
#
# Writes to $OUT (default ./out, 8 files): resnet.log (everything), ctest.log,
# parity.json, parity.md, bench.json, bench.md, profile.txt, profile_rtc.txt.
# Run scripts/gpu/fetch_deps.sh here first and carry .gpu-deps (the GPU image
# lacks the build's C++ packages; scripts/gpu/env.sh unpacks them there).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT=$PWD
OUT=${OUT:-$ROOT/out}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/resnet.log") 2>&1

TESTS=1 PARITY=1 BENCH=1
for a in "$@"; do
  case "$a" in
    --no-tests) TESTS=0 ;;
    --no-parity) PARITY=0 ;;
    --no-bench) BENCH=0 ;;
    *) echo "resnet.sh: unknown option $a" >&2; exit 2 ;;
  esac
done

START=$(date +%s)
BUDGET=${HILUM_GPU_BUDGET_S:-560}  # the device tool stops a command at 600 s
elapsed() { echo $(( $(date +%s) - START )); }
step() { echo; echo "=== [$(elapsed) s] $*"; }
status=0
BUILD=build-gpu
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
JOBS=$(nproc 2>/dev/null || echo 16)
[ "$JOBS" -gt 16 ] && JOBS=16

step "machine"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1 || true
echo "cores: $(nproc)"; cmake --version | head -1; nvcc --version 2>/dev/null | tail -1 || true
"$PY" -c 'import torch, torchvision; print("torch", torch.__version__, "torchvision", torchvision.__version__, "cuda", torch.cuda.is_available())' || true
grep -h "define CUDNN_M[AI][JN]OR\|define CUDNN_PATCHLEVEL" /usr/include/x86_64-linux-gnu/cudnn_version*.h /usr/include/cudnn_version*.h 2>/dev/null | head -3 || true

# The build's C++ packages, carried in .gpu-deps/ (scripts/gpu/fetch_deps.sh).
source scripts/gpu/env.sh

step "configure (preset gpu-machine)"
TARGETS="hilum bench_resnet"
if cmake --preset gpu-machine; then
  [ "$TESTS" = 1 ] && TARGETS="$TARGETS test_cuda test_vision_net"
else
  echo "configure failed; retrying without the test suites (GTest missing?)"
  cmake --preset gpu-machine -DHILUM_BUILD_TESTS=OFF
  TESTS=0
fi

step "build: $TARGETS (-j$JOBS)"
cmake --build "$BUILD" -j"$JOBS" --target $TARGETS

if [ "$TESTS" = 1 ]; then
  step "GPU tests (ctest -L gpu) and the ResNet suite"
  if ! ctest --test-dir "$BUILD" -L gpu -E '^CudaConv\.' --output-on-failure --timeout 300 >"$OUT/ctest.log" 2>&1; then
    echo "GPU TESTS FAILED (see ctest.log)"
    status=1
  fi
  # The convolution families in full (what each chose is printed).
  if ! "$BUILD/tests/test_cuda" --gtest_filter='CudaConv.*' >>"$OUT/ctest.log" 2>&1; then
    echo "CONVOLUTION TESTS FAILED (see ctest.log)"
    status=1
  fi
  if ! "$BUILD/tests/test_vision_net" >>"$OUT/ctest.log" 2>&1; then
    echo "RESNET SUITE FAILED (see ctest.log)"
    status=1
  fi
  grep -E "tests passed|tests failed|^\[  (PASSED|FAILED|SKIPPED) |rel L2|whole forward" "$OUT/ctest.log" | head -80 || true
fi

if [ "$PARITY" = 1 ]; then
  step "ResNet-152 parity: PyTorch references"
  WORK=/tmp/hilum_resnet152
  HILUM="$BUILD/hilum"
  [ -x "$HILUM" ] || HILUM="$BUILD/app/hilum"
  if "$PY" scripts/gpu/resnet_parity.py prepare "$WORK"; then
    for case in 224 64; do
      for run in cpu-f32 cuda-f16 cuda-bf16; do
        device=${run%-*}
        dtype=${run#*-}
        for what in logits features; do
          flag=""
          [ "$what" = features ] && flag="--features"
          step "hilum resnet $run $what, input $case"
          if ! "$HILUM" -v resnet --weights "$WORK/resnet152.safetensors" --input "$WORK/input_$case.npy" \
               --out "$WORK/hilum_${run}_${what}_$case.npy" --device "$device" --dtype "$dtype" $flag; then
            echo "hilum resnet $run $what $case FAILED"
            status=1
          fi
        done
      done
    done
    step "ResNet-152 parity: comparison"
    "$PY" scripts/gpu/resnet_parity.py compare "$WORK" "$OUT" || { echo "PARITY CHECK FAILED"; status=1; }
  else
    echo "parity preparation FAILED"
    status=1
  fi
fi

if [ "$BENCH" = 1 ]; then
  left=$(( BUDGET - $(elapsed) ))
  step "benchmarks (${left} s left)"
  if [ "$left" -gt 90 ]; then
    HILUM_BENCH_BUDGET_S=$left OUT="$OUT" scripts/gpu/bench_resnet.sh "$BUILD" || status=1
  else
    echo "not enough time left for the benchmarks; run scripts/gpu/bench_resnet.sh on its own"
    status=1
  fi
fi

step "done (status $status)"
exit $status
