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
JOB=train_vision_export
# shellcheck source=scripts/gpu/training_job.sh
source "$(dirname "${BASH_SOURCE[0]}")/training_job.sh"
D=/tmp/vision-export
rm -rf "$D" && mkdir -p "$D"
export_shards "$D/part" "$SEEDS"
wait_exports
echo "export: $SECONDS s"
python3 scripts/train/merge_exports.py --out "$D/train" "$D"/part-*
echo "merged: $SECONDS s"
# What is left of the budget, less ~60 s for the validation pass and saving.
left=$((BUDGET - SECONDS - 60))
((left > 60)) || { echo "no time left to train ($left s)"; exit 1; }
python3 scripts/train/train_vision.py --export "$D/train" --out "$OUT/vision" --device cuda \
  --batch 512 --steps "$STEPS" --max-seconds "$left"
echo "done: $SECONDS s"
