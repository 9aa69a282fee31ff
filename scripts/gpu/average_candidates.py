#!/usr/bin/env python3
"""The candidates of several `hilum batch` runs of the same studies, scored by
the mean of their nodule logits: an ensemble of bundles, measured without
building it. The runs must share their candidates (the same detector, hence the
same rows in the same order of each candidates.csv); their bundles differ.

    average_candidates.py --out ENS RUN_A RUN_B [RUN_C ...]

writes ENS/candidates.csv (LUNA16 columns, probability = sigmoid of the mean
logit) and links ENS/<study> to RUN_A/<study> for every study folder with a
findings.json, so `hilum eval batch --batch ENS` scores the ensemble's CPM from
candidates.csv. Its malignancy AUC is then RUN_A's own (from RUN_A's findings),
not the ensemble's. One line naming the file and the problem on bad input, exit 2,
and nothing written.
"""
import argparse
import csv
import math
import os
import sys
import tempfile

COLUMNS = ["seriesuid", "coordX", "coordY", "coordZ", "probability"]


def fail(msg):
    print(f"average_candidates: {msg}", file=sys.stderr)
    sys.exit(2)


def read(run):
    path = os.path.join(run, "candidates.csv")
    try:
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
    except OSError as e:
        fail(f"{path}: {e.strerror}")
    if not rows or rows[0] != COLUMNS:
        fail(f"{path}: the header is not {','.join(COLUMNS)}")
    out = []
    for n, r in enumerate(rows[1:], start=2):
        if len(r) != 5:
            fail(f"{path}: line {n} has {len(r)} fields, not 5")
        try:
            p = float(r[4])
        except ValueError:
            fail(f"{path}: line {n}: probability '{r[4]}' is not a number")
        if not 0 <= p <= 1:
            fail(f"{path}: line {n}: probability {p} is outside [0, 1]")
        out.append((tuple(r[:4]), p))
    return path, out


def logit(p):
    p = min(max(p, 1e-12), 1 - 1e-12)
    return math.log(p / (1 - p))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("runs", nargs="+")
    args = ap.parse_args()
    if len(args.runs) < 2:
        fail("name at least two runs")
    runs = [read(r) for r in args.runs]
    first_path, first = runs[0]
    for path, rows in runs[1:]:
        if len(rows) != len(first):
            fail(f"{path}: {len(rows)} candidates, {first_path} has {len(first)}")
        for n, ((key, _), (key0, _)) in enumerate(zip(rows, first), start=2):
            if key != key0:
                fail(f"{path}: line {n} is another candidate than in {first_path} ({','.join(key)})")
    os.makedirs(args.out, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=args.out, prefix=".candidates.")
    with os.fdopen(fd, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(COLUMNS)
        for i, (key, _) in enumerate(first):
            z = sum(logit(rows[i][1]) for _, rows in runs) / len(runs)
            w.writerow(list(key) + [f"{1 / (1 + math.exp(-z)):.6g}"])
    os.replace(tmp, os.path.join(args.out, "candidates.csv"))
    for entry in sorted(os.listdir(args.runs[0])):
        study = os.path.join(os.path.abspath(args.runs[0]), entry)
        link = os.path.join(args.out, entry)
        if os.path.isfile(os.path.join(study, "findings.json")) and not os.path.lexists(link):
            os.symlink(study, link)
    print(f"average_candidates: {len(first)} candidates, mean logit of {len(runs)} runs -> {args.out}")


if __name__ == "__main__":
    main()
