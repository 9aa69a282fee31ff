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
#
#   scripts/train/train_bundle.sh [export|pack|train|install PARTS_DIR|all]
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA=${DATA:-train-data}
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
  export | pack | train) ;;
  *) echo "usage: $0 [export|pack|train|install PARTS_DIR [MACHINE]|all]" >&2; exit 2 ;;
esac
