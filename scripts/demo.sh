#!/usr/bin/env bash
# The main job on the embedded default: generate a phantom chest CT study and
# run Hilum on it. Usage: scripts/demo.sh [BUILD_DIR] (default: build)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BUILD_DIR=${1:-build}
OUT=${HILUM_DEMO_OUT:-demo}
HILUM="$BUILD_DIR/hilum"

mkdir -p "$OUT"
echo "demo: writing a phantom study (seed 7) to $OUT/study"
"$HILUM" phantom --out "$OUT/study" --seed 7
echo "demo: series found"
"$HILUM" info "$OUT/study"
