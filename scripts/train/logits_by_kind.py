"""How the image branch ranks each kind of nodule among a study set's other
candidates: the ResNet's nodule logit (fc[0], by `hilum resnet`) of every patch
of an export-training-set folder made with --no-truth-patches, then per nodule
kind (type x juxtavascular / juxtapleural / isolated) how many detector hits
score below the K-th strongest non-nodule patch (K = --per-scan x studies: that
many false positives per scan).

  build/hilum -q export-training-set --seeds 900000-900024 --out DIR --negatives -1 \\
      --no-truth-patches --no-sizing
  /usr/bin/python3 scripts/train/logits_by_kind.py --export DIR \\
      --weights resources/models/vision/resnet.safetensors
"""
import argparse
import collections
import csv
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from image_tokens import run_resnet  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--export", required=True)
    ap.add_argument("--weights", required=True)
    ap.add_argument("--hilum", default="build/hilum")
    ap.add_argument("--per-scan", type=float, default=1.0, help="false positives per scan of the threshold")
    args = ap.parse_args()
    with open(os.path.join(args.export, "labels.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    with open(os.path.join(args.export, "nodules.csv"), newline="") as f:
        nodules = {(r["seed"], r["nodule"]): r for r in csv.DictReader(f)}
    patches = np.load(os.path.join(args.export, "patches.npy"), mmap_mode="r")
    with tempfile.TemporaryDirectory() as tmp:
        logit = run_resnet(patches, args.weights, args.hilum, tmp)[:, 0]
    studies = len({r["study"] for r in rows})
    others = np.sort([logit[i] for i, r in enumerate(rows) if r["is_nodule"] == "0"])[::-1]
    k = int(args.per_scan * studies)
    threshold = others[k] if k < len(others) else -np.inf
    by_kind = collections.defaultdict(list)
    for i, r in enumerate(rows):
        if r["is_nodule"] == "1" and r["source"] == "detector":
            n = nodules[(r["seed"], r["nodule"])]
            where = "jv" if n["juxtavascular"] == "1" else "jp" if n["juxtapleural"] == "1" else "iso"
            by_kind[f"{r['type']} {where}"].append(logit[i])
    print(f"{studies} studies, {len(others)} other candidates; threshold: the {k}-th strongest other, "
          f"logit {threshold:.2f} ({args.per_scan:g} per scan)")
    for kind, v in sorted(by_kind.items()):
        print(f"  {kind:18s} {len(v):3d} hits, median logit {np.median(v):6.2f}, "
              f"{sum(x < threshold for x in v)} below the threshold")
    below = sum(x < threshold for v in by_kind.values() for x in v)
    print(f"  all                {sum(len(v) for v in by_kind.values()):3d} hits, {below} below the threshold")


if __name__ == "__main__":
    main()
