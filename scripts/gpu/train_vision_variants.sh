#!/usr/bin/env bash
# Several image-branch recipes side by side on the H200 machine, on the same
# data: the training seeds (SEEDS, as scripts/train/export_data.sh) are exported
# there by Hilum itself (the h200-e2e runtime of scripts/gpu/pack_e2e.sh, the
# CPU detector, SHARDS processes in parallel), packed by pack_gpu_data.py with
# the committed sample (every nodule patch; per study the 8 strongest and 8
# random other candidates), and train_vision.py trains one ResNet per variant,
# all at once on the one GPU (each run is bound by kernel launches, so they
# share it well).
#
# VARIANTS is a ';'-separated list of NAME:ARGS (ARGS for train_vision.py),
# for example "w8e60:--epochs 60;w12e120:--width 12 --epochs 120". Writes
# $OUT/NAME.safetensors for each, $OUT/training_logs.json (each run's
# training_log.json by NAME) and one log of everything,
# $OUT/train_vision_variants.log; with $DONE set, touches that file at the end
# (the job may run in the background, started by setsid, when it needs more
# than one command's time: then $OUT is a folder of the machine's own, and a
# later command copies it to the tool's $OUT).
#
#   run(carry=[".e2e"], command="VARIANTS='...' bash scripts/gpu/train_vision_variants.sh")
#     (env: SEEDS, SHARDS, VARIANTS, OUT, DONE)
# The tree and .e2e (28 MB) together exceed the 64 MiB a call may carry: move
# resources/models/text/model.safetensors (24 MB; not needed here) out of the checkout for the call, and back after it.
set -euo pipefail
OUT=${OUT:-out}
SEEDS=${SEEDS:-1000-1399}
SHARDS=${SHARDS:-16}
VARIANTS=${VARIANTS:?VARIANTS: NAME:ARGS;NAME:ARGS...}
JOB=train_vision_variants
# shellcheck source=scripts/gpu/training_job.sh
source "$(dirname "${BASH_SOURCE[0]}")/training_job.sh"
parse_variants "$VARIANTS"  # before the long export: a bad name stops the job at once
D=/tmp/vision-variants
rm -rf "$D" && mkdir -p "$D"
export_merged "$D/train" "$SEEDS"
python3 scripts/train/pack_gpu_data.py --train "$D/train" --vision-only --raw --hard 8 --easy 8 --out "$D/gpu"
echo "packed: $SECONDS s"
for k in "${!variant_names[@]}"; do
  name=${variant_names[$k]} args=${variant_args[$k]}
  # shellcheck disable=SC2086 # ARGS is a list of options
  python3 scripts/train/train_vision.py --data "$D/gpu" --out "$D/$name" --device cuda $args \
    >"$D/$name.log" 2>&1 &
  started "$name"
done
collect() {
  cp "$D/$1/resnet.safetensors" "$OUT/$1.safetensors"
  cat "$D/$1/training_log.json"
}
wait_jobs collect "$D"
python3 - "$D" "$OUT/training_logs.json" "${job_names[@]}" <<'PY'
import json, os, sys
d, out, names = sys.argv[1], sys.argv[2], sys.argv[3:]
logs = {}
for n in names:
    p = os.path.join(d, n, "training_log.json")
    if os.path.exists(p):
        with open(p) as f:
            logs[n] = json.load(f)
with open(out, "w") as f:
    json.dump(logs, f, indent=2)
PY
end_job
