#!/usr/bin/env bash
# Held-out evaluation of the demo bundle (resources/models/), on phantoms it
# never saw (seeds 900000 and up):
#   - hilum batch with the studies' clinical notes (fused) and with
#     --no-clinical-text (image only), then hilum eval batch on both:
#     LUNA16 FROC/CPM and the malignancy ROC AUC with DeLong intervals;
#   - the paired DeLong test fused vs image only on the same nodules;
#   - wall and CPU time of `hilum analyze` on one 300-slice study.
#
#   bench/eval_demo_bundle.sh            (env: HILUM, N studies [50], FIRST seed [900000], JOBS [2], OUT,
#                                         BUNDLE [the default bundle], PHANTOMS: a folder of an
#                                         earlier run whose in/ and truth.csv are reused)
set -euo pipefail
cd "$(dirname "$0")/.."
HILUM=${HILUM:-build/hilum}
N=${N:-50}
JOBS=${JOBS:-2}
OUT=${OUT:-bench/out/eval-demo}
PY=${PY:-/usr/bin/python3}
first=${FIRST:-900000}
MB=()
[[ -n ${BUNDLE:-} ]] && MB=(--model-bundle "$BUNDLE")
rm -rf "$OUT"; mkdir -p "$OUT"
if [[ -n ${PHANTOMS:-} ]]; then
  ln -s "$(realpath "$PHANTOMS/in")" "$OUT/in"; cp "$PHANTOMS/truth.csv" "$OUT/truth.csv"
else
mkdir -p "$OUT/in"
for ((s = first; s < first + N; s++)); do
  "$HILUM" -q phantom --out "$OUT/in/s$s" --seed "$s"
done
"$PY" - "$OUT" <<'PYEOF'
import csv, glob, os, sys
out = sys.argv[1]
rows, header = [], None
for p in sorted(glob.glob(os.path.join(out, "in", "*", "truth.csv"))):
    with open(p, newline="") as f:
        r = list(csv.reader(f))
    header = r[0]; rows += r[1:]
    os.makedirs(os.path.join(out, "truth"), exist_ok=True)  # out of the folders the batch reads
    os.rename(p, os.path.join(out, "truth", os.path.basename(os.path.dirname(p)) + ".csv"))
with open(os.path.join(out, "truth.csv"), "w", newline="") as f:
    w = csv.writer(f); w.writerow(header); w.writerows(rows)
print(f"truth: {len(rows)} nodules in {len(glob.glob(os.path.join(out, 'in', '*')))} studies")
PYEOF
fi
t0=$(date +%s.%N)
"$HILUM" -q batch --input "$OUT/in" --out "$OUT/fused" --jobs "$JOBS" "${MB[@]}"
t1=$(date +%s.%N)
"$HILUM" -q batch --input "$OUT/in" --out "$OUT/image" --jobs "$JOBS" --no-clinical-text "${MB[@]}"
t2=$(date +%s.%N)
echo "batch wall time: fused $(echo "$t1 - $t0" | bc) s, image-only $(echo "$t2 - $t1" | bc) s for $N studies, $JOBS jobs"
for run in fused image; do
  echo "== $run"
  # By subgroup too: the phantom's truth names each nodule's type and site.
  "$HILUM" eval batch --batch "$OUT/$run" --truth "$OUT/truth.csv" --out "$OUT/$run/eval" \
    --by juxtavascular --by juxtapleural --by type --by diameter_mm:6,8,15
done
"$PY" - "$OUT" <<'PYEOF'
import csv, os, sys
out = sys.argv[1]
def load(run):
    with open(os.path.join(out, run, "eval", "malignancy_scores.csv"), newline="") as f:
        return {(r["seriesuid"], r["coordX"], r["coordY"], r["coordZ"]): r for r in csv.DictReader(f)}
a, b = load("fused"), load("image")
if set(a) != set(b):
    raise SystemExit("the two runs evaluated different nodules")
with open(os.path.join(out, "paired.csv"), "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["seriesuid", "malignant", "fused", "image"])
    for k in sorted(a):
        w.writerow([k[0], a[k]["malignant"], a[k]["malignancy"], b[k]["malignancy"]])
print(f"paired: {len(a)} nodules")
PYEOF
echo "== paired DeLong, fused vs image only"
"$HILUM" eval roc --csv "$OUT/paired.csv" --label-col malignant --compare fused,image --out "$OUT/paired"

echo "== one 300-slice study, end to end on this machine ($(nproc) cores)"
"$HILUM" -q phantom --out "$OUT/s300" --seed 900999 --slices 300
/usr/bin/time -f "time: %e s wall, %U s user, %S s system, %M KB max RSS" \
  "$HILUM" -q analyze "${MB[@]}" "$OUT/s300/dicom" --clinical-text "$OUT/s300/clinical.txt" --out "$OUT/s300/out" --timings
