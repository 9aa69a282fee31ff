#!/usr/bin/env bash
# Exports the demo bundle's training data from phantoms through the C++
# pipeline (hilum export-training-set): patches, labels and notes of the
# training seeds (JOBS parallel shards, merged), plus notes only of the extra
# note seeds. Parts whose stamp (hilum binary + arguments) is unchanged are
# kept, so a re-run after an interruption continues where it stopped.
# NOTES_ONLY=1 writes only the notes (train-notes/ and notes/).
#
#   scripts/train/export_data.sh            (env: DATA, HILUM, JOBS, TRAIN_SEEDS, NOTE_SEEDS)
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA=${DATA:-train-data}
HILUM=${HILUM:-build/hilum}
JOBS=${JOBS:-2}
TRAIN_SEEDS=${TRAIN_SEEDS:-1000-1399}
NOTE_SEEDS=${NOTE_SEEDS:-100000-104999}
PY=${PY:-/usr/bin/python3}
mkdir -p "$DATA"
binsum=$(sha256sum "$HILUM" | cut -c1-16)

# run_part DIR ARGS... : export into DIR unless DIR/.stamp matches.
run_part() {
  local dir=$1; shift
  local stamp="$binsum $*"
  if [[ -f $dir/.stamp && "$(cat "$dir/.stamp")" == "$stamp" ]]; then
    echo "export: $dir is up to date"; return 0
  fi
  rm -f "$dir/.stamp"
  echo "export: $dir <- $*"
  "$HILUM" -q export-training-set --out "$dir" "$@" > "$dir.log" 2>&1
  echo "$stamp" > "$dir/.stamp"
  tail -1 "$dir.log"
}

# Notes alone first (seconds): the text branch needs nothing else.
mkdir -p "$DATA/notes" "$DATA/train-notes"
run_part "$DATA/train-notes" --seeds "$TRAIN_SEEDS" --notes-only
run_part "$DATA/notes" --seeds "$NOTE_SEEDS" --notes-only
[[ ${NOTES_ONLY:-0} == 1 ]] && exit 0

first=${TRAIN_SEEDS%-*}; last=${TRAIN_SEEDS#*-}
n=$((last - first + 1))
pids=(); parts=()
for ((j = 0; j < JOBS; j++)); do
  a=$((first + j * n / JOBS)); b=$((first + (j + 1) * n / JOBS - 1))
  ((b >= a)) || continue
  part="$DATA/export/part-$a-$b"; mkdir -p "$part"; parts+=("$part")
  run_part "$part" --seeds "$a-$b" --negatives -1 &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
"$PY" scripts/train/merge_exports.py --out "$DATA/train" "${parts[@]}"
