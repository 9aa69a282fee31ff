#!/usr/bin/env bash
# Times `hilum eval froc` against the Python reference of the LUNA16 procedure
# (tests/golden/froc_reference.py) on a LUNA16-sized synthetic set (888 scans,
# ~1200 nodules, 100 marks per scan plus the hits, excluded findings), with the
# challenge's 1000 bootstrap samples, and checks that both give the same numbers.
#
#   bench/eval_froc_vs_reference.sh [BUILD_DIR]     (default: build)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BUILD=${1:-build}
HILUM="$BUILD/app/hilum"
[ -x "$HILUM" ] || { echo "no $HILUM; build the hilum target first" >&2; exit 2; }
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

/usr/bin/python3 - "$WORK" <<'EOF'
import sys
import numpy as np
d = sys.argv[1]
rng = np.random.default_rng(16)
scans = [f"1.3.6.1.4.1.14519.5.2.1.6279.{i}" for i in range(888)]
with open(f"{d}/seriesuids.csv", "w") as f:
    f.writelines(s + "\n" for s in scans)
ann, exc, cand = [], [], []
for _ in range(1186):
    s = scans[rng.integers(len(scans))]
    c = rng.uniform(-150, 150, 3)
    dia = 3 + 25 * rng.uniform() * rng.uniform()
    ann.append((s, *c, dia))
    if rng.uniform() < 0.85:
        cand.append((s, *(c + rng.normal(0, 1, 3)), 0.5 + 0.5 * rng.uniform()))
for _ in range(1000):
    s = scans[rng.integers(len(scans))]
    c = rng.uniform(-150, 150, 3)
    exc.append((s, *c, -1.0))
    cand.append((s, *(c + rng.normal(0, 1, 3)), rng.uniform()))
for s in scans:
    for _ in range(100):
        cand.append((s, *rng.uniform(-150, 150, 3), rng.uniform() * rng.uniform()))
def write(name, head, rows):
    with open(f"{d}/{name}", "w") as f:
        f.write(head + "\n")
        for r in rows:
            f.write(r[0] + "," + ",".join(f"{v:.4f}" for v in r[1:]) + "\n")
write("annotations.csv", "seriesuid,coordX,coordY,coordZ,diameter_mm", ann)
write("annotations_excluded.csv", "seriesuid,coordX,coordY,coordZ,diameter_mm", exc)
write("candidates.csv", "seriesuid,coordX,coordY,coordZ,probability", cand)
print(f"{len(scans)} scans, {len(ann)} nodules, {len(exc)} excluded findings, {len(cand)} candidates")
EOF

now() { date +%s.%N; }
t0=$(now)
"$HILUM" -q eval froc --annotations "$WORK/annotations.csv" --seriesuids "$WORK/seriesuids.csv" \
  --candidates "$WORK/candidates.csv" --excluded "$WORK/annotations_excluded.csv" \
  --bootstrap 1000 --seed 1 --out "$WORK/hilum"
t1=$(now)
/usr/bin/python3 tests/golden/froc_reference.py "$WORK/annotations.csv" "$WORK/seriesuids.csv" \
  "$WORK/candidates.csv" --excluded "$WORK/annotations_excluded.csv" --bootstrap 1000 --seed 1 > "$WORK/ref.json"
t2=$(now)

/usr/bin/python3 - "$WORK/hilum/metrics.json" "$WORK/ref.json" "$t0" "$t1" "$t2" <<'EOF'
import json, sys
h, r = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
t0, t1, t2 = map(float, sys.argv[3:6])
worst = max(abs(a - b) for k in ("sensitivity_mean", "sensitivity_low", "sensitivity_high")
            for a, b in zip(h["bootstrap"][k], r["bootstrap"][k]))
worst = max(worst, abs(h["cpm"] - r["cpm"]), *(abs(a - b) for a, b in zip(h["sensitivities"], r["sensitivities"])))
print(f"CPM hilum {h['cpm']:.6f}  reference {r['cpm']:.6f}  largest difference (CPM, sensitivities, bands) {worst:.1e}")
print(f"hilum eval froc --bootstrap 1000: {t1 - t0:.2f} s   Python reference: {t2 - t1:.2f} s   "
      f"ratio {(t2 - t1) / (t1 - t0):.1f}x")
sys.exit(0 if worst < 1e-9 else 1)
EOF
