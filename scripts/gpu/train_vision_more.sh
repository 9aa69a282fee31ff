#!/usr/bin/env bash
# The demo bundle's image branch trained on more nodules, on the H200 machine:
# the training seeds (SEEDS, as scripts/train/export_data.sh) and EXTRA_SEEDS
# phantoms with EXTRA_NODULES nodules each are exported there by Hilum itself
# (the h200-e2e runtime of scripts/gpu/pack_e2e.sh, the CPU detector, SHARDS
# processes per range in parallel), merged, packed by pack_gpu_data.py
# (every nodule patch; per study HARD strongest and EASY random other
# candidates, one number per range), and train_vision.py trains the narrow
# ResNet-152 on them with the committed recipe for EPOCHS epochs (validation
# seeds 1360-1399 held out as before). The extra phantoms only add data: solid juxtavascular nodules, the
# image branch's weakest kind (docs/demo-bundle.md), are a few dozen in the
# training seeds and several hundred more there.
# Writes $OUT/vision/resnet.safetensors, training_log.json and the log; with
# $DONE set, touches that file at the end (the job may run in the background,
# started by setsid, when it needs more than one command's time).
#
#   run(carry=[".e2e"], command="bash scripts/gpu/train_vision_more.sh")
#     (env: SEEDS, EXTRA_SEEDS, EXTRA_NODULES, HARD, EASY, SHARDS, EPOCHS, OUT, DONE)
set -euo pipefail
OUT=${OUT:-out}
SEEDS=${SEEDS:-1000-1399}
EXTRA_SEEDS=${EXTRA_SEEDS:-2000-2199}
EXTRA_NODULES=${EXTRA_NODULES:-8}
# Other candidates packed per study (strongest, random): the extra phantoms'
# nodules outnumber the training seeds' several times, so they bring more
# non-nodules too, or the image branch would see fewer vessels per nodule.
HARD=${HARD:-8,24}
EASY=${EASY:-8,24}
SHARDS=${SHARDS:-16}
EPOCHS=${EPOCHS:-40}
JOB=train_vision_more
# shellcheck source=scripts/gpu/training_job.sh
source "$(dirname "${BASH_SOURCE[0]}")/training_job.sh"
D=/tmp/vision-more
rm -rf "$D" && mkdir -p "$D"
export_shards "$D/train-part" "$SEEDS"
export_shards "$D/extra-part" "$EXTRA_SEEDS" --nodules "$EXTRA_NODULES"
wait_exports
echo "export: $SECONDS s"
python3 scripts/train/merge_exports.py --out "$D/train" "$D"/train-part-*
python3 scripts/train/merge_exports.py --out "$D/extra" "$D"/extra-part-*
python3 scripts/train/pack_gpu_data.py --train "$D/train" "$D/extra" --vision-only --raw \
  --hard "$HARD" --easy "$EASY" --out "$D/gpu"
echo "packed: $SECONDS s"
python3 scripts/train/train_vision.py --data "$D/gpu" --out "$OUT/vision" --device cuda --epochs "$EPOCHS" \
  > "$OUT/vision.log" 2>&1 || { tail -20 "$OUT/vision.log"; exit 1; }
tail -3 "$OUT/vision.log"
echo "done: $SECONDS s"
[[ -n ${DONE:-} ]] && touch "$DONE"
exit 0
