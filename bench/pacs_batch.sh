#!/usr/bin/env bash
# `hilum batch --from-pacs` against the same batch from local folders: K phantom
# studies in a local Orthanc, analysed with a given model bundle, wall time of
# the whole command (median of RUNS), for C-GET and C-MOVE, with and without
# --store-results, one and two jobs. The difference to `--input` is what the
# PACS round trip (C-FIND, retrieve into OUT/.inbox, C-STORE of SR and PDF)
# costs per study.
#
#   bench/pacs_batch.sh BUNDLE_DIR [BUILD_DIR] [STUDIES] [SLICES] [RUNS]
#                                   (defaults: build 4 30 3)
#
# Needs: Orthanc, curl, bc, /usr/bin/python3 (bench/local_orthanc.sh). Prints a Markdown table on stdout.
set -euo pipefail

BUNDLE=$(realpath "${1:?usage: bench/pacs_batch.sh BUNDLE_DIR [BUILD_DIR] [STUDIES] [SLICES] [RUNS]}")
BUILD=${2:-build}
STUDIES=${3:-4}
SLICES=${4:-30}
RUNS=${5:-3}
HILUM=$(realpath "$BUILD/hilum")
WORK=$(mktemp -d /tmp/hilum_pacs_batch_bench.XXXXXX)
. "$(dirname "$0")/local_orthanc.sh"
trap 'stop_local_orthanc; rm -rf "$WORK"' EXIT

start_local_orthanc "$WORK"
cat > "$WORK/pacs.json" <<EOF
{"nodes": {"bench": {"ae_title": "ORTHANC", "host": "127.0.0.1", "port": $DICOM_PORT, "storage_port": $SCP_PORT}}}
EOF

mkdir -p "$WORK/in"
for i in $(seq 1 "$STUDIES"); do
  "$HILUM" -q phantom --out "$WORK/in/study$i" --seed $((100 + i)) --slices "$SLICES" --nodules 2 > /dev/null
done
"$HILUM" -q pacs store --config "$WORK/pacs.json" "$WORK/in" > /dev/null

COMMON=(--model-bundle "$BUNDLE" --min-probability 0 --max-findings 2)
PACS=(--from-pacs --pacs-config "$WORK/pacs.json" --query "patient-id=PHANTOM-1*")

median_of_runs() {  # command...; prints the median wall time in seconds
  local times=() t
  for _ in $(seq 1 "$RUNS"); do
    rm -rf "$WORK/out"
    t=$(wall_seconds "$@" --out "$WORK/out") || { echo "failed: $*" >&2; exit 1; }
    times+=("$t")
  done
  median "${times[@]}"
}

echo "| run | jobs | wall for $STUDIES studies s | per study s | vs --input |"
echo "|---|---:|---:|---:|---:|"
for jobs in 1 2; do
  base=$(median_of_runs "$HILUM" -q batch --input "$WORK/in" --jobs "$jobs" "${COMMON[@]}")
  printf '| --input (local folders) | %d | %.2f | %.2f | 1.00 |\n' "$jobs" "$base" "$(echo "$base / $STUDIES" | bc -l)"
  for variant in "get" "get --store-results" "move" "move --store-results"; do
    read -r method store <<< "$variant"
    t=$(median_of_runs "$HILUM" -q batch "${PACS[@]}" --retrieve "$method" ${store:+$store} --jobs "$jobs" "${COMMON[@]}")
    printf '| --from-pacs --retrieve %s | %d | %.2f | %.2f | %.2f |\n' "$variant" "$jobs" "$t" \
      "$(echo "$t / $STUDIES" | bc -l)" "$(echo "$t / $base" | bc -l)"
  done
done
