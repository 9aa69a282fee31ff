#!/usr/bin/env bash
# Installs the image branch and fusion head of one scripts/gpu/train_frames.sh
# variant as the demo bundle's (the text branch stays): NAME-resnet.safetensors,
# NAME-fusion.safetensors, NAME-logs.json and NAME-golden.tar from RESULTS_DIR
# go to resources/models/vision and fusion/ and the parity golden to
# tests/golden/bundle/; the test-time views are then scored on the validation
# studies by scripts/train/patch_views.py (the export VAL_EXPORT, made with
# `hilum export-training-set --seeds 1360-1399 --negatives -1 --no-sizing
# --patch-frames rz45,rx45,ry45`; VIEWS, the scanner's axes and the three frames
# unless given), and manifest.json is written last.
#
#   scripts/train/install_frames.sh RESULTS_DIR NAME VAL_EXPORT [MACHINE]   (env: VIEWS, HILUM)
set -euo pipefail
cd "$(dirname "$0")/../.."
results=$1 name=$2 val=$3 machine=${4:-}
for f in "$name-resnet.safetensors" "$name-fusion.safetensors" "$name-logs.json" "$name-golden.tar"; do
  [[ -f $results/$f ]] || { echo "install_frames: $results has no $f" >&2; exit 2; }
done
frames=$(/usr/bin/python3 -c 'import sys; sys.path.insert(0, "scripts/train"); import fusion_model
print(" ".join(fusion_model.PATCH_FRAMES))')
frames_csv=${frames// /,}
VIEWS=${VIEWS:-identity,$frames_csv}  # the scanner's axes and the extra frames
for f in $frames; do
  [[ ",$VIEWS," != *",$f,"* || -f $val/patches_$f.npy ]] ||
    { echo "install_frames: $val has no patches_$f.npy (--patch-frames $f)" >&2; exit 2; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tar -C "$tmp" -xf "$results/$name-golden.tar"
[[ -f $tmp/golden/logits_with_note.npy ]] || { echo "install_frames: $name-golden.tar has no golden/" >&2; exit 2; }
cp "$results/$name-resnet.safetensors" resources/models/vision/resnet.safetensors
cp "$results/$name-fusion.safetensors" resources/models/fusion/fusion_head.safetensors
/usr/bin/python3 - "$results/$name-logs.json" <<'PY'
import json, sys
logs = json.load(open(sys.argv[1]))
for part in ("vision", "fusion"):
    with open(f"resources/models/{part}/training_log.json", "w") as f:
        json.dump(logs[part], f, indent=2)
        f.write("\n")
PY
rm -rf tests/golden/bundle && mv "$tmp/golden" tests/golden/bundle
/usr/bin/python3 scripts/train/patch_views.py --export "$val" --bundle resources/models --views "$VIEWS" \
  --hilum "${HILUM:-build/hilum}"
/usr/bin/python3 scripts/train/write_manifest.py --bundle resources/models --machine "$machine" --command \
  "scripts/train/train_bundle.sh (the text branch, as before); the image branch and the fusion head by \
scripts/gpu/train_frames.sh on one H200 (variant $name), installed by scripts/train/install_frames.sh"
