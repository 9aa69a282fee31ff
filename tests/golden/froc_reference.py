#!/usr/bin/python3
"""Clean-room reference of the LUNA16 FROC evaluation, for tests/app/test_eval_froc.cpp.

Written from the published procedure of the LUNA16 challenge's evaluation script
(noduleCADEvaluationLUNA16.py, read for its rules; no code taken from it), with
numpy only (no scikit-learn): the ROC step is re-derived here the way
sklearn.metrics.roc_curve computes it (score groups, drop_intermediate, a leading
(0, 0) point), and curves are read with numpy.interp as the script does.

    /usr/bin/python3 tests/golden/froc_reference.py ANNOTATIONS SERIESUIDS CANDIDATES \\
        [--excluded FILE] [--max-marks N] [--bootstrap N --seed S]

prints a JSON object with the same keys as hilum's metrics.json (cpm,
sensitivities, nodules_total, nodules_detected, false_positives, marks{...},
bootstrap{...}).

Where the published script is undefined we follow hilum's documented choices
(docs/evaluation.md): a curve with no detected nodule has sensitivity 0 (the
script gets NaN), a bootstrap sample without any nodule is skipped, and the
bootstrap draws scans with SplitMix64 (replayed here bit for bit) instead of
numpy's generator, so both programs draw the same samples.
"""
import argparse
import csv
import json
import math

import numpy as np

RATES = [0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0]
MASK64 = (1 << 64) - 1


class SplitMix64:
    def __init__(self, seed):
        self.state = seed & MASK64

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        return z ^ (z >> 31)

    def index(self, n):
        # Unbiased: reject draws at or above the largest multiple of n below 2^64.
        limit = (1 << 64) - ((1 << 64) % n)
        while True:
            x = self.next()
            if x < limit:
                return x % n


def read_table(path):
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = [r for r in csv.reader(f) if r and any(c.strip() for c in r)]
    header = [h.strip() for h in rows[0]]
    return [dict(zip(header, r)) for r in rows[1:]]


def read_findings(path, value_key):
    out = []
    for r in read_table(path):
        out.append((r["seriesuid"].strip(), float(r["coordX"]), float(r["coordY"]), float(r["coordZ"]),
                    float(r[value_key])))
    return out


def read_scans(path):
    with open(path, newline="", encoding="utf-8-sig") as f:
        uids = [r[0].strip() for r in csv.reader(f) if r and r[0].strip()]
    if uids and uids[0] == "seriesuid":
        uids = uids[1:]
    return uids


def hits(nodule, mark):
    diameter = nodule[4]
    if diameter < 0.0:
        diameter = 10.0
    radius = diameter / 2.0
    dx, dy, dz = nodule[1] - mark[1], nodule[2] - mark[2], nodule[3] - mark[3]
    return dx * dx + dy * dy + dz * dz < radius * radius


def roc_points(is_nodule, probs):
    """sklearn-style ROC counts: cumulative TPs and FPs at each distinct score,
    intermediate collinear points dropped, (0, 0) prepended."""
    if len(probs) == 0:
        return np.zeros(1), np.zeros(1)
    order = np.argsort(-probs, kind="mergesort")
    p = probs[order]
    y = is_nodule[order]
    last_of_group = np.r_[np.where(np.diff(p) != 0)[0], len(p) - 1]
    tps = np.cumsum(y)[last_of_group]
    fps = (1 + last_of_group) - tps
    if len(tps) > 2:
        keep = np.where(np.r_[True, np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), True])[0]
        tps, fps = tps[keep], fps[keep]
    return np.r_[0, tps].astype(float), np.r_[0, fps].astype(float)


def froc_curve(gt, probs, missed, n_images):
    """The script's computeFROC: missed nodules count in the total only."""
    total = float(np.sum(gt))
    if total == 0:
        return None
    local = ~missed
    detected = float(np.sum(gt[local]))
    n_fp = float(np.sum(local & (gt == 0)))
    tps, fps = roc_points(gt[local] == 1, probs[local])
    if n_fp == 0:  # the script's "no false positives" branch
        fp_rate = np.zeros(len(fps))
    else:
        fp_rate = (fps / n_fp) * n_fp / n_images
    if detected == 0:
        sens = np.zeros(len(tps))
    else:
        sens = (tps / detected) * detected / total
    return fp_rate, sens


def evaluate(args):
    scans = read_scans(args.seriesuids)
    scan_set = set(scans)
    nodules = read_findings(args.annotations, "diameter_mm")
    excluded = read_findings(args.excluded, "diameter_mm") if args.excluded else []
    marks = read_findings(args.candidates, "probability")

    stats = dict(read=len(marks), on_unlisted_scans=0, over_limit=0, on_excluded_findings=0, duplicate_hits=0,
                 hitting_several_nodules=0)
    per_scan_marks = {s: [] for s in scans}
    for m in marks:
        if m[0] in scan_set:
            per_scan_marks[m[0]].append(m)
        else:
            stats["on_unlisted_scans"] += 1

    entries = {s: [] for s in scans}  # scan -> list of (gt, prob, missed)
    total = detected = false_positives = 0
    for s in scans:
        cands = per_scan_marks[s]
        if args.max_marks > 0 and len(cands) > args.max_marks:
            cut = sorted((c[4] for c in cands), reverse=True)[args.max_marks]
            kept = [c for c in cands if c[4] > cut]
            stats["over_limit"] += len(cands) - len(kept)
            cands = kept
        remaining = set(range(len(cands)))
        for n in (x for x in nodules if x[0] == s):
            total += 1
            matched = [k for k, c in enumerate(cands) if hits(n, c)]
            for k in matched:
                if k in remaining:
                    remaining.discard(k)
                else:
                    stats["hitting_several_nodules"] += 1
            if matched:
                detected += 1
                stats["duplicate_hits"] += len(matched) - 1
                entries[s].append((1, max(cands[k][4] for k in matched), False))
            else:
                entries[s].append((1, -1e9, True))
        for e in (x for x in excluded if x[0] == s):
            for k, c in enumerate(cands):
                if k in remaining and hits(e, c):
                    remaining.discard(k)
                    stats["on_excluded_findings"] += 1
        for k in sorted(remaining):
            false_positives += 1
            entries[s].append((0, cands[k][4], False))

    def arrays(scan_list):
        rows = [e for s in scan_list for e in entries[s]]
        gt = np.array([r[0] for r in rows], dtype=float)
        prob = np.array([r[1] for r in rows], dtype=float)
        missed = np.array([r[2] for r in rows], dtype=bool)
        return gt, prob, missed

    curve = froc_curve(*arrays(scans), len(scans))
    sens = [float(np.interp(r, curve[0], curve[1])) for r in RATES]
    result = dict(cpm=float(np.mean(sens)), fp_rates=RATES, sensitivities=sens, scans=len(scans),
                  nodules_total=total, nodules_detected=detected, false_positives=false_positives, marks=stats,
                  curve_fps=curve[0].tolist(), curve_sensitivity=curve[1].tolist())

    if args.bootstrap > 0:
        rng = SplitMix64(args.seed)
        samples = []
        for _ in range(args.bootstrap):
            drawn = [scans[rng.index(len(scans))] for _ in range(len(scans))]
            c = froc_curve(*arrays(drawn), len(scans))
            if c is None:
                continue
            samples.append([float(np.interp(r, c[0], c[1])) for r in RATES])
        samples = np.array(samples).reshape(-1, len(RATES))
        pz = (1.0 - 0.95) / 2.0

        def band(v):
            v = np.sort(v)
            if len(v) == 0:
                return None, None, None
            return (float(np.sum(v) / len(v)), float(v[int(math.floor(pz * len(v)))]),
                    float(v[min(len(v) - 1, int(math.floor((1.0 - pz) * len(v))))]))

        cols = [band(samples[:, i]) for i in range(len(RATES))]
        cpm = band(np.mean(samples, axis=1) if len(samples) else np.zeros(0))
        result["bootstrap"] = dict(samples=args.bootstrap, used=len(samples), seed=args.seed,
                                   sensitivity_mean=[c[0] for c in cols], sensitivity_low=[c[1] for c in cols],
                                   sensitivity_high=[c[2] for c in cols], cpm_mean=cpm[0], cpm_low=cpm[1],
                                   cpm_high=cpm[2])
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("annotations")
    ap.add_argument("seriesuids")
    ap.add_argument("candidates")
    ap.add_argument("--excluded")
    ap.add_argument("--max-marks", type=int, default=100)
    ap.add_argument("--bootstrap", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    print(json.dumps(evaluate(ap.parse_args())))


if __name__ == "__main__":
    main()
