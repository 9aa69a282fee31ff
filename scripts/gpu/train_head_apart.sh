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
# Heads trained, one per entry of HEADS (';'-separated NAME:VISION:DATA[:FEATURES]):
#   VISION    committed (resources/models/vision) or a VARIANTS name;
#   DATA      apart (APART_SEEDS only; validation on APART_VAL) or seen (SEEDS
#             only, the committed recipe; validation on 1360-1399);
#   FEATURES  the detector's measurements the head takes (comma-separated;
#             by default the committed head's six; none: the image tokens and
#             the note only).
# Every head is the fusion-cpu recipe of scripts/train/train_bundle.sh (every
# candidate, 4,000 steps of 512), run on the GPU. With POOL_SEEDS (a seed range,
# e.g. 100000-104999) the notes of those seeds join the training notes and the
# head re-pairs studies with the first 600 of them, as the committed recipe does
# with its packed notes; without it, with the studies' own notes only.
# VARIANTS empty: no image branch is trained (heads on the committed ResNet).
# PATCH_VIEWS=1: scripts/train/patch_views.py measures each head's test-time
# views on its validation seeds (fusion/patch_views.json, in heads.tar).
# EVAL_SETS (seed ranges): then scripts/gpu/eval_sets.sh runs those held-out
# sets with the committed bundle and with each head in its place, and with its
# image branch when that is a VARIANTS one ($OUT/eval_sets.txt; POOLS, BY and
# PARALLEL pass on to it). EXPORT_ARGS (export-training-set options, e.g.
# "--patch-slab 2" or "--patch-zoom 0.35") go to every export: SEEDS and APART_SEEDS alike.
# Writes $OUT/NAME.safetensors for each VARIANTS entry and $OUT/heads.tar (each
# head's fusion/ folder and its parity golden, by NAME), one log,
# $OUT/train_head_apart.log; with $DONE set, touches that file at the end.
#
#   run(carry=[".e2e"], command="OUT=$OUT bash scripts/gpu/train_head_apart.sh")
#     (env: SEEDS, APART_SEEDS, APART_VAL, VISION_SEEDS, VISION_ARGS, VARIANTS, HEADS, STEPS, SHARDS,
#      POOL_SEEDS, PATCH_VIEWS, EVAL_SETS, OUT, DONE)
# REUSE_EXPORT=1 keeps the exports an earlier call left on a still-warm machine
# (the same SEEDS and EXPORT_ARGS: not checked) and trains from them.
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
VARIANTS=${VARIANTS-w12:--width 12 --epochs 120}
POOL_SEEDS=${POOL_SEEDS:-}
FEATURES_DEFAULT=log_response,contrast_hu,blobness,isolation,log_score,log_sigma_mm
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
  IFS=':' read -r name vision data features <<<"$h"
  [[ $name =~ ^[A-Za-z0-9_-]+$ ]] || { echo "head name '$name': letters, digits, _ and - only"; exit 2; }
  [[ $data == apart || $data == seen ]] || { echo "head $name: data '$data' is neither apart nor seen"; exit 2; }
  [[ $vision == committed || " ${vision_names[*]} " == *" $vision "* ]] ||
    { echo "head $name: vision '$vision' is neither committed nor a VARIANTS name"; exit 2; }
  [[ $data == apart ]] && need_apart=1
done
D=/tmp/head-apart
if [[ ${REUSE_EXPORT:-0} == 1 && -f $D/seen/labels.csv ]] && { ((!need_apart)) || [[ -f $D/apart/labels.csv ]]; }; then
  echo "reusing the exports in $D"
  find "$D" -mindepth 1 -maxdepth 1 ! -name seen ! -name apart -exec rm -rf {} +
else
  rm -rf "$D" && mkdir -p "$D"
  export_merged "$D/seen" "$SEEDS"
  ((need_apart)) && export_merged "$D/apart" "$APART_SEEDS"  # only when a head trains on it
fi
pool_notes=0
if [[ -n $POOL_SEEDS ]]; then  # the note pool: the training notes, then the pool seeds' (as pack_gpu_data.py)
  "$H" -q export-training-set --seeds "$POOL_SEEDS" --notes-only --out "$D/pool"
  for data in seen apart; do
    [[ -d $D/$data ]] && { mkdir -p "$D/notes-$data"; cat "$D/$data/notes.jsonl" "$D/pool/notes.jsonl" >"$D/notes-$data/notes.jsonl"; }
  done
  pool_notes=600
fi
if ((${#vision_names[@]})); then
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
fi

# 2. The heads, side by side.
for h in "${heads[@]}"; do
  IFS=':' read -r name vision data features <<<"$h"
  b="$D/head-$name"
  mkdir -p "$b" && cp -r resources/models/text "$b/"
  if [[ $vision == committed ]]; then cp -r resources/models/vision "$b/"; else
    mkdir -p "$b/vision" && cp "$D/$vision/resnet.safetensors" "$D/$vision/training_log.json" "$b/vision/"
  fi
  if [[ $data == apart ]]; then val=$APART_VAL; else val=1360-1399; fi
  notes=$D/$data
  [[ -n $POOL_SEEDS ]] && notes=$D/notes-$data
  features=${features:-$FEATURES_DEFAULT}
  [[ $features == none ]] && features=
  {
    python3 scripts/train/train_fusion.py --data "$notes" --export "$D/$data" --bundle "$b" --device cuda \
      --val-seeds "$val" --pool-notes "$pool_notes" --note-groups 32 --pos-fraction 0.25 --steps "$STEPS" \
      --batch 512 --golden "$b/golden" --features "$features" &&
      if [[ ${PATCH_VIEWS:-0} == 1 ]]; then
        python3 scripts/train/patch_views.py --export "$D/$data" --bundle "$b" --val-seeds "$val" --hilum "$H"
      fi
  } >"$D/head-$name.log" 2>&1 &
  started "head-$name"
done
collect_head() { :; }
wait_jobs collect_head "$D"
parts=()
for h in "${heads[@]}"; do parts+=("head-${h%%:*}/fusion" "head-${h%%:*}/golden" "head-${h%%:*}/vision"); done
tar -C "$D" -cf "$OUT/heads.tar" "${parts[@]}"
if [[ -n ${EVAL_SETS:-} ]] && ((jobs_rc == 0)); then
  # Each head in a copy of the committed bundle (its manifest, hence its test-time
  # views), with the image branch it was trained on: a variant's ResNet, and for a
  # slab or zoom net the manifest's inference.patch_slab_mm or patch_zoom_spacing_mm.
  eval_variants="committed="
  for h in "${heads[@]}"; do
    IFS=':' read -r name vision _ <<<"$h"
    rm -rf "$D/bundle-$name" && cp -r resources/models "$D/bundle-$name"
    rm -rf "$D/bundle-$name/fusion" && cp -r "$D/head-$name/fusion" "$D/bundle-$name/fusion"
    if [[ $vision != committed ]]; then
      rm -rf "$D/bundle-$name/vision" && cp -r "$D/head-$name/vision" "$D/bundle-$name/vision"
      python3 - "$D/bundle-$name" <<'PY'
import json, sys
b = sys.argv[1]
with open(f"{b}/vision/training_log.json") as f:
    log = json.load(f)
slab, zoom = float(log.get("patch_slab_mm", 0)), float(log.get("patch_zoom_spacing_mm", 0))
with open(f"{b}/manifest.json") as f:
    m = json.load(f)
m.setdefault("inference", {}).pop("patch_slab_mm", None)
m["inference"].pop("patch_zoom_spacing_mm", None)
if slab > 0:
    m["inference"]["patch_slab_mm"] = slab
if zoom > 0:
    m["inference"]["patch_zoom_spacing_mm"] = zoom
with open(f"{b}/manifest.json", "w") as f:
    json.dump(m, f, indent=2)
PY
    fi
    eval_variants+=";$name=HILUM_MODEL_BUNDLE=$D/bundle-$name"
  done
  SETS=$EVAL_SETS VARIANTS=$eval_variants GTEST_FILTER=-* OUT=$OUT bash scripts/gpu/eval_sets.sh
fi
end_job
