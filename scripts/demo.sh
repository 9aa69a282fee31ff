#!/usr/bin/env bash
# The main job on the embedded default: generate a phantom chest CT study and
# analyse it with the demo model bundle (resources/models/): findings.json,
# candidates.csv (LUNA16), report.pdf and a DICOM SR (TID 1500).
# Usage: scripts/demo.sh [BUILD_DIR] (default: build); output in $HILUM_DEMO_OUT (default: demo/)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BUILD_DIR=${1:-build}
OUT=${HILUM_DEMO_OUT:-demo}
HILUM="$BUILD_DIR/hilum"

mkdir -p "$OUT"
echo "demo: writing a phantom study (seed 7) to $OUT/study"
"$HILUM" phantom --out "$OUT/study" --seed 7
echo "demo: series found"
"$HILUM" info "$OUT/study/dicom"
echo "demo: analysing it with the demo model bundle and its referral note"
"$HILUM" analyze "$OUT/study/dicom" --clinical-text "$OUT/study/clinical.txt" --out "$OUT/analysis" --timings
echo "demo: the truth the phantom was generated with is $OUT/study/truth.csv; findings in $OUT/analysis/findings.json"
