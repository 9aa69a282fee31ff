#!/usr/bin/env bash
# Smoke test of the GPU machine set-up: the carried dependencies, the
# gpu-machine build and the CTest suite there. Results in $OUT/smoke.log.
set -uo pipefail
source scripts/gpu/env.sh
LOG=$OUT/smoke.log
{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  nvcc --version | tail -1
  python3 -c "import torch, torchvision, transformers, tokenizers; print(torch.__version__, torchvision.__version__, transformers.__version__, tokenizers.__version__)"
  python3 -c "import peft; print('peft', peft.__version__)"
  cmake --version | head -1
  ls /usr/include/x86_64-linux-gnu/cudnn*.h | head -3
  cmake --preset gpu-machine -DHILUM_BUILD_BENCH=OFF 2>&1 | tail -5
  cmake --build build-gpu -j16 2>&1 | tail -5
  ctest --test-dir build-gpu -j16 2>&1 | tail -8
} >"$LOG" 2>&1
cat "$LOG"
