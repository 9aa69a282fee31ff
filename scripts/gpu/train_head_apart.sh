#!/usr/bin/env bash
# The fusion head trained on studies the image branch never saw, on the H200
# machine. Until now the head learnt from the image tokens of the ResNet's own
# training studies, where the ResNet is surer than on any new study (it has
# fitted those nodules); a head trained there learns to trust the tokens more
# than they deserve. Here the training seeds (SEEDS) train the image branch
# (VARIANTS, as scripts/gpu/train_vision_variants.sh: every nodule patch and
# per study the 8 strongest and 8 random other candidates) and a second,
# disjoint range of phantoms (APART_SEEDS) trains the head, with the image
# tokens of that ResNet: out of sample, as on a patient's study.
#
# VISION_SEEDS (a range; none by default) adds phantoms exported with
# VISION_ARGS (export-training-set options, e.g. "--nodules 4 --nodule-sites
# juxtavascular=1") to the image branch's training only, packed as the
# training seeds are.
#
# Heads trained, one per entry of HEADS (';'-separated NAME:VISION:DATA):
#   VISION  committed (resources/models/vision) or a VARIANTS name;
#   DATA    apart (APART_SEEDS only; validation on APART_VAL) or seen (SEEDS
#           only, the committed recipe; validation on 1360-1399).
# Every head is the fusion-cpu recipe of scripts/train/train_bundle.sh (every
# candidate, the detector's six measurements, 4,000 steps of 512), run on the GPU.
# Writes $OUT/NAME.safetensors for each VARIANTS entry and $OUT/heads.tar (each
# head's fusion/ folder and its parity golden, by NAME), one log,
# $OUT/train_head_apart.log; with $DONE set, touches that file at the end.
#
#   run(carry=[".e2e"], command="DONE=... OUT=... setsid bash scripts/gpu/train_head_apart.sh &")
#     (env: SEEDS, APART_SEEDS, APART_VAL, VISION_SEEDS, VISION_ARGS, VARIANTS, HEADS, STEPS, SHARDS, OUT,
#      DONE)
# The tree and .e2e (28 MB) together exceed the 64 MiB a call may carry: move
# tests/golden/ except resnet_golden.py (train_vision.py imports it) out of the
# checkout for the call, and back after it.
set -euo pipefail
OUT=${OUT:-out}
SEEDS=${SEEDS:-1000-1399}
APART_SEEDS=${APART_SEEDS:-2050-2449}
APART_VAL=${APART_VAL:-2400-2449}
VISION_SEEDS=${VISION_SEEDS:-}
VISION_ARGS=${VISION_ARGS:-}
VARIANTS=${VARIANTS:-w12:--width 12 --epochs 120}
HEADS=${HEADS:-committed-apart:committed:apart;w12-apart:w12:apart;w12-seen:w12:seen}
STEPS=${STEPS:-4000}
SHARDS=${SHARDS:-16}
JOB=train_head_apart
# shellcheck source=scripts/gpu/training_job.sh
source "$(dirname "${BASH_SOURCE[0]}")/training_job.sh"
parse_variants "$VARIANTS"
vision_names=("${variant_names[@]}") vision_args=("${variant_args[@]}")
heads=() need_apart=0
IFS=';' read -ra heads <<<"$HEADS"
for h in "${heads[@]}"; do  # before the long export: a bad entry stops the job at once
  IFS=':' read -r name vision data <<<"$h"
  [[ $name =~ ^[A-Za-z0-9_-]+$ ]] || { echo "head name '$name': letters, digits, _ and - only"; exit 2; }
  [[ $data == apart || $data == seen ]] || { echo "head $name: data '$data' is neither apart nor seen"; exit 2; }
  [[ $vision == committed || " ${vision_names[*]} " == *" $vision "* ]] ||
    { echo "head $name: vision '$vision' is neither committed nor a VARIANTS name"; exit 2; }
  [[ $data == apart ]] && need_apart=1
done
D=/tmp/head-apart
rm -rf "$D" && mkdir -p "$D"
export_merged "$D/seen" "$SEEDS"
((need_apart)) && export_merged "$D/apart" "$APART_SEEDS"  # only when a head trains on it
vision_train=("$D/seen")
if [[ -n $VISION_SEEDS ]]; then
  EXPORT_ARGS=$VISION_ARGS export_merged "$D/vision-extra" "$VISION_SEEDS"
  vision_train+=("$D/vision-extra")
fi
python3 scripts/train/pack_gpu_data.py --train "${vision_train[@]}" --vision-only --raw --hard 8 --easy 8 \
  --out "$D/gpu"
echo "packed: $SECONDS s"

# 1. The image branches.
for k in "${!vision_names[@]}"; do
  name=${vision_names[$k]}
  # shellcheck disable=SC2086 # ARGS is a list of options
  python3 scripts/train/train_vision.py --data "$D/gpu" --out "$D/$name" --device cuda ${vision_args[$k]} \
    >"$D/$name.log" 2>&1 &
  started "$name"
done
collect_vision() {
  cp "$D/$1/resnet.safetensors" "$OUT/$1.safetensors"
  cat "$D/$1/training_log.json"
}
wait_jobs collect_vision "$D"
((jobs_rc == 0)) || end_job
job_names=() job_pids=()

# 2. The heads, side by side.
for h in "${heads[@]}"; do
  IFS=':' read -r name vision data <<<"$h"
  b="$D/head-$name"
  mkdir -p "$b" && cp -r resources/models/text "$b/"
  if [[ $vision == committed ]]; then cp -r resources/models/vision "$b/"; else
    mkdir -p "$b/vision" && cp "$D/$vision/resnet.safetensors" "$D/$vision/training_log.json" "$b/vision/"
  fi
  if [[ $data == apart ]]; then val=$APART_VAL; else val=1360-1399; fi
  python3 scripts/train/train_fusion.py --data "$D/$data" --export "$D/$data" --bundle "$b" --device cuda \
    --val-seeds "$val" --pool-notes 0 --note-groups 32 --pos-fraction 0.25 --steps "$STEPS" --batch 512 \
    --golden "$b/golden" --features log_response,contrast_hu,blobness,isolation,log_score,log_sigma_mm \
    >"$D/head-$name.log" 2>&1 &
  started "head-$name"
done
collect_head() { :; }
wait_jobs collect_head "$D"
parts=()
for h in "${heads[@]}"; do parts+=("head-${h%%:*}/fusion" "head-${h%%:*}/golden"); done
tar -C "$D" -cf "$OUT/heads.tar" "${parts[@]}"
end_job
