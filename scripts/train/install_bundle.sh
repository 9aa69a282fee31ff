#!/usr/bin/env bash
# Installs a bundle trained by scripts/gpu/train_bundle.sh (its split tar parts
# in PARTS_DIR) as the demo bundle: resources/models/ (replaced), the parity
# golden to tests/golden/bundle/, manifest.json written last.
#
#   scripts/train/install_bundle.sh PARTS_DIR [MACHINE]
set -euo pipefail
cd "$(dirname "$0")/../.."
parts=$1
machine=${2:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat "$parts"/bundle.tar.part-* | tar -C "$tmp" -xf -
for p in vision/resnet.safetensors fusion/fusion_head.safetensors text/model.safetensors text/tokenizer.json \
         text/adapters/medical/adapter_model.safetensors golden/logits_with_note.npy; do
  [[ -f $tmp/$p ]] || { echo "install_bundle: $parts: the bundle has no $p" >&2; exit 2; }
done
rm -rf tests/golden/bundle && mkdir -p tests/golden && mv "$tmp/golden" tests/golden/bundle
rm -rf resources/models && mkdir -p resources && cp -r "$tmp" resources/models && chmod -R a+rX resources/models
/usr/bin/python3 scripts/train/write_manifest.py --bundle resources/models --machine "$machine"
