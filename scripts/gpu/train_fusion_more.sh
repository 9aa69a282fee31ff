#!/usr/bin/env bash
# The demo bundle's fusion head trained on more studies, on the H200 machine:
# the training seeds (SEEDS, as scripts/train/export_data.sh) and EXTRA_SEEDS
# more phantoms are exported there by Hilum itself (the h200-e2e runtime of
# scripts/gpu/pack_e2e.sh, the CPU detector, SHARDS processes per range in
# parallel) and merged into one export; train_fusion.py then trains the head
# on every candidate of it with the committed image and text branches
# (resources/models/; image tokens by the PyTorch ResNet in float32, which the
# C++ engine matches to 1e-4), the detector's measurements and single-study
# note groups, as the fusion-cpu stage of scripts/train/train_bundle.sh does on
# all 400 training seeds. The validation seeds (1360-1399) stay out of
# training. One run per STEPS entry (a ';'-separated list), side by side.
# Writes $OUT/fusion-STEPS.safetensors, $OUT/fusion-STEPS.json (its training
# log) and $OUT/golden-STEPS.tar (the parity golden), and one log,
# $OUT/train_fusion_more.log; with $DONE set, touches that file at the end
# (the job may run in the background, started by setsid: then $OUT is a folder
# of the machine's own, and a later command copies it to the tool's $OUT).
#
#   run(carry=[".e2e"], command="bash scripts/gpu/train_fusion_more.sh")
#     (env: SEEDS, EXTRA_SEEDS, STEPS, SHARDS, OUT, DONE)
# The tree and .e2e (28 MB) together exceed the 64 MiB a call may carry: move
# tests/golden/ except resnet_golden.py (6 MB; train_vision.py imports that one) out of the checkout for the call, and back after it.
set -euo pipefail
OUT=${OUT:-out}
SEEDS=${SEEDS:-1000-1399}
EXTRA_SEEDS=${EXTRA_SEEDS:-2050-2449}
STEPS=${STEPS:-4000}
SHARDS=${SHARDS:-16}
JOB=train_fusion_more
# shellcheck source=scripts/gpu/training_job.sh
source "$(dirname "${BASH_SOURCE[0]}")/training_job.sh"
D=/tmp/fusion-more
rm -rf "$D" && mkdir -p "$D"
export_merged "$D/all" "$SEEDS" "$EXTRA_SEEDS"
steps_list=()
IFS=';' read -ra steps_list <<<"$STEPS"
for st in "${steps_list[@]}"; do
  [[ $st =~ ^[0-9]+$ ]] || { echo "STEPS entry '$st' is not a number"; exit 2; }
  mkdir -p "$D/b$st"
  cp -r resources/models/vision resources/models/text "$D/b$st/"
  python3 scripts/train/train_fusion.py --data "$D/all" --export "$D/all" --bundle "$D/b$st" --device cuda \
    --pool-notes 0 --note-groups 32 --pos-fraction 0.25 --steps "$st" --batch 512 --golden "$D/b$st/golden" \
    --features log_response,contrast_hu,blobness,isolation,log_score,log_sigma_mm >"$D/b$st.log" 2>&1 &
  started "b$st"
done
collect() {
  local st=${1#b}
  cp "$D/$1/fusion/fusion_head.safetensors" "$OUT/fusion-$st.safetensors"
  cp "$D/$1/fusion/training_log.json" "$OUT/fusion-$st.json"
  tar -C "$D/$1" -cf "$OUT/golden-$st.tar" golden
}
wait_jobs collect "$D"
end_job
