#!/usr/bin/env bash
# Trains the demo model bundle (resources/models/) from nothing but Hilum itself:
#
#   1. export   phantoms of seeds 1000-1399 through the C++ inference pipeline
#               (hilum export-training-set: lung mask, candidates, patches,
#               labels, notes) and notes of seeds 100000-104999   [export_data.sh]
#   2. pack     a compact copy for the GPU machine (~45 MB)     [pack_gpu_data.py]
#   3. train    text branch + image branch, then the fusion head [scripts/gpu/train_bundle.sh]
#               On the GPU machine (the device tool, carry train-data/gpu):
#                 bash scripts/gpu/train_bundle.sh   (OUT=$OUT; ~6 min on an H200)
#               or here with DEVICE=cpu (hours on 2 cores).
#   4. install  resources/models/ + tests/golden/bundle/ + manifest.json
#                                                              [install_bundle.sh]
#   5. fusion-cpu  (what the committed bundle did last) the fusion head again,
#               on every one of the 120,791 candidates instead of the packed
#               sample: image tokens from the C++ image branch of the installed
#               bundle (image_tokens.py), then train_fusion.py --export --tokens
#               with single-study note groups and the detector's measurements
#               of each candidate (--features), here on the CPU (~15 min on 2
#               cores); replaces fusion/, the golden and manifest.json. Run
#               `export` first when the candidate detector has changed since
#               the last export: the head learns the detector's measurements.
#               Then patch_views.py measures the test-time augmentation on the
#               validation studies (fusion/patch_views.json -> manifest.json).
#   Order of the committed bundle: export, pack, train, install (2026-11-28),
#   then export again (2026-11-29, the current detector) and fusion-cpu.
#
#   Tried, not used: the image branch trained on every exported candidate
#   (scripts/gpu/train_vision_export.sh on the GPU machine); its fused head
#   ranked the validation studies' nodules worse (docs/demo-bundle.md).
#
#   scripts/train/train_bundle.sh [export|pack|train|install PARTS_DIR|all]
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA=${DATA:-train-data}
HILUM=${HILUM:-build/hilum}  # fusion-cpu: the hilum whose image branch makes the tokens
# fusion-cpu: the detector's measurements the head takes (fusion_model.CANDIDATE_FEATURES)
FEATURES=${FEATURES:-log_response,contrast_hu,blobness,isolation,log_score,log_sigma_mm}
stage=${1:-all}
case $stage in
  export | all) bash scripts/train/export_data.sh ;;&
  pack | all)
    /usr/bin/python3 scripts/train/pack_gpu_data.py --train "$DATA/train" --notes "$DATA/notes/notes.jsonl" \
      --out "$DATA/gpu" ;;&
  train | all)
    OUT=$DATA/bundle-parts DATA=$DATA/gpu DEVICE=${DEVICE:-cpu} PY=/usr/bin/python3 bash scripts/gpu/train_bundle.sh ;;&
  all) bash scripts/train/install_bundle.sh "$DATA/bundle-parts" "$(uname -n) (CPU)" ;;
  install) bash scripts/train/install_bundle.sh "${2:?install needs PARTS_DIR}" "${3:-}" ;;
  fusion-cpu)
    /usr/bin/python3 scripts/train/image_tokens.py --export "$DATA/train" \
      --weights resources/models/vision/resnet.safetensors --out "$DATA/tokens.npy" --hilum "$HILUM"
    work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
    cp -r resources/models/vision resources/models/text "$work/"
    OMP_NUM_THREADS=2 /usr/bin/python3 scripts/train/train_fusion.py --data "$DATA/gpu" --export "$DATA/train" \
      --tokens "$DATA/tokens.npy" --bundle "$work" --pool-notes 600 --note-groups 32 --pos-fraction 0.25 \
      --steps 4000 --batch 512 --golden "$work/golden" \
      --features "$FEATURES"
    rm -rf resources/models/fusion tests/golden/bundle
    cp -r "$work/fusion" resources/models/fusion && cp -r "$work/golden" tests/golden/bundle
    /usr/bin/python3 scripts/train/patch_views.py --export "$DATA/train" --bundle resources/models --hilum "$HILUM"
    /usr/bin/python3 scripts/train/write_manifest.py --bundle resources/models --machine "${2:-}" ;;
  export | pack | train) ;;
  *) echo "usage: $0 [export|pack|train|install PARTS_DIR [MACHINE]|fusion-cpu [MACHINE]|all]" >&2; exit 2 ;;
esac
