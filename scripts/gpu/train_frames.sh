#!/usr/bin/env bash
# The image branch and the fusion head trained on patches cut in rotated
# frames, on the H200 machine. The training seeds (SEEDS, as
# scripts/train/export_data.sh) are exported there by Hilum itself (the
# h200-e2e runtime of scripts/gpu/pack_e2e.sh, the CPU detector, SHARDS
# processes) with `--patch-frames rz45,rx45,ry45`: every candidate's three
# planes also in three frames turned 45 degrees about z, x and y (with the
# scanner's axes, the nine planes of Setio et al. 2016 and three more).
# pack_gpu_data.py packs the committed sample (every nodule patch; per study
# the 8 strongest and 8 random other candidates) in all four frames, and
# train_vision.py --frames trains one ResNet per VARIANTS entry, each batch's
# patches in frames drawn at random. Then train_fusion.py --frames trains the
# fusion head of each on every candidate of the export (image tokens of all
# four frames by the PyTorch ResNet in float32; the committed text branch;
# the detector's measurements; single-study note groups; as
# train_fusion_more.sh), each candidate shown in a random frame.
#
# Writes $OUT/NAME-resnet.safetensors, $OUT/NAME-fusion.safetensors,
# $OUT/NAME-golden.tar (the head's parity golden) and $OUT/NAME-logs.json (both
# training logs), and one log of everything, $OUT/train_frames.log; with $DONE
# set, touches that file at the end (started by setsid when it needs more than
# one command's time: then $OUT is a folder of the machine's own, and a later
# command copies it to the tool's $OUT).
#
#   run(carry=[".e2e"], command="bash scripts/gpu/train_frames.sh")
#     (env: SEEDS, SHARDS, VARIANTS "NAME:train_vision.py ARGS;...", STEPS, OUT, DONE)
# The tree and .e2e (28 MB) together exceed the 64 MiB a call may carry: move
# tests/golden/ except resnet_golden.py (6 MB; train_vision.py imports that
# one) out of the checkout for the call, and back after it.
set -euo pipefail
OUT=${OUT:-out}
SEEDS=${SEEDS:-1000-1399}
SHARDS=${SHARDS:-16}
VARIANTS=${VARIANTS:-f60:--epochs 60}
STEPS=${STEPS:-4000}
JOB=train_frames
EXPORT_ARGS="--patch-frames $(python3 -c 'import sys; sys.path.insert(0, "scripts/train"); import fusion_model
print(",".join(fusion_model.PATCH_FRAMES))')"
# shellcheck source=scripts/gpu/training_job.sh
source "$(dirname "${BASH_SOURCE[0]}")/training_job.sh"
parse_variants "$VARIANTS"  # before the long export: a bad name stops the job at once
D=/tmp/train-frames
rm -rf "$D" && mkdir -p "$D"
export_merged "$D/train" "$SEEDS"
python3 scripts/train/pack_gpu_data.py --train "$D/train" --vision-only --raw --frames --hard 8 --easy 8 \
  --out "$D/gpu"
echo "packed: $SECONDS s"
for k in "${!variant_names[@]}"; do
  name=${variant_names[$k]} args=${variant_args[$k]}
  (
    set -e
    mkdir -p "$D/$name"
    cp -r resources/models/text "$D/$name/"
    # shellcheck disable=SC2086 # ARGS is a list of options
    python3 scripts/train/train_vision.py --data "$D/gpu" --out "$D/$name/vision" --device cuda --frames $args
    python3 scripts/train/train_fusion.py --data "$D/train" --export "$D/train" --bundle "$D/$name" --device cuda \
      --frames --pool-notes 0 --note-groups 32 --pos-fraction 0.25 --steps "$STEPS" --batch 512 \
      --golden "$D/$name/golden" --features log_response,contrast_hu,blobness,isolation,log_score,log_sigma_mm
  ) >"$D/$name.log" 2>&1 &
  started "$name"
done
collect() {
  cp "$D/$1/vision/resnet.safetensors" "$OUT/$1-resnet.safetensors"
  cp "$D/$1/fusion/fusion_head.safetensors" "$OUT/$1-fusion.safetensors"
  tar -C "$D/$1" -cf "$OUT/$1-golden.tar" golden
  python3 -c 'import json, sys; json.dump({"vision": json.load(open(sys.argv[1])), "fusion": json.load(open(sys.argv[2]))}, open(sys.argv[3], "w"), indent=2)' \
    "$D/$1/vision/training_log.json" "$D/$1/fusion/training_log.json" "$OUT/$1-logs.json"
}
wait_jobs collect "$D"
end_job
