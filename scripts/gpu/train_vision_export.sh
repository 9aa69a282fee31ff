#!/usr/bin/env bash
# The demo bundle's image branch trained on every candidate, on the H200
# machine: the training seeds are exported there by Hilum itself (the
# h200-e2e runtime of scripts/gpu/pack_e2e.sh, the CPU detector as in
# scripts/train/export_data.sh, SHARDS processes in parallel), merged, and
# train_vision.py --export trains the narrow ResNet-152 on all of them on the
# GPU, its schedule fitted into the time the job has left (BUDGET seconds in
# all). Writes $OUT/vision/resnet.safetensors, training_log.json and the log.
#
#   run(carry=[".e2e"], command="bash scripts/gpu/train_vision_export.sh")   (env: SEEDS, SHARDS, BUDGET, STEPS)
set -euo pipefail
OUT=${OUT:-out}
SEEDS=${SEEDS:-1000-1399}
SHARDS=${SHARDS:-16}
BUDGET=${BUDGET:-540}
STEPS=${STEPS:-4000}
mkdir -p "$OUT"
exec > >(tee "$OUT/train_vision_export.log") 2>&1
# shellcheck source=scripts/gpu/e2e_runtime.sh
source "$(dirname "${BASH_SOURCE[0]}")/e2e_runtime.sh"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
echo "cores: $(nproc); $("$H" --version)"
D=/tmp/vision-export
rm -rf "$D" && mkdir -p "$D"
first=${SEEDS%-*}; last=${SEEDS#*-}; n=$((last - first + 1))
pids=() parts=()
for ((j = 0; j < SHARDS; j++)); do
  a=$((first + j * n / SHARDS)); b=$((first + (j + 1) * n / SHARDS - 1))
  ((b >= a)) || continue
  parts+=("$D/part-$a-$b")
  HILUM_NUM_THREADS=1 ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS=1 \
    "$H" -q export-training-set --seeds "$a-$b" --out "$D/part-$a-$b" --negatives -1 --no-sizing &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
echo "export: $SECONDS s"
python3 scripts/train/merge_exports.py --out "$D/train" "${parts[@]}"
echo "merged: $SECONDS s"
# What is left of the budget, less ~60 s for the validation pass and saving.
left=$((BUDGET - SECONDS - 60))
((left > 60)) || { echo "no time left to train ($left s)"; exit 1; }
python3 scripts/train/train_vision.py --export "$D/train" --out "$OUT/vision" --device cuda \
  --batch 512 --steps "$STEPS" --max-seconds "$left"
echo "done: $SECONDS s"
