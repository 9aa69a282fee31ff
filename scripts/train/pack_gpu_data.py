"""Packs the exported training set into the compact form the GPU machine gets
(its runs carry at most 64 MB of the tree): every nodule patch (detector hits
and truth-centred patches), per study the --hard strongest non-nodule
candidates plus --easy others drawn at random, xz-compressed; labels as one
.npz; the training notes plus the notes-only seeds as notes.jsonl.

  /usr/bin/python3 scripts/train/pack_gpu_data.py --train train-data/train \
      --notes train-data/notes/notes.jsonl --out train-data/gpu
"""
import argparse
import csv
import json
import lzma
import os
import random

import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--train", required=True, help="merged hilum export-training-set folder")
    ap.add_argument("--notes", nargs="*", default=[], help="extra notes.jsonl (notes-only seeds)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--hard", type=int, default=8)
    ap.add_argument("--easy", type=int, default=8)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    patches = np.load(os.path.join(args.train, "patches.npy"), mmap_mode="r")
    with open(os.path.join(args.train, "labels.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    if len(rows) != patches.shape[0]:
        raise SystemExit(f"{args.train}: labels.csv has {len(rows)} rows, patches.npy {patches.shape[0]}")
    by_study = {}
    for i, r in enumerate(rows):
        by_study.setdefault(int(r["study"]), []).append(i)
    keep, weight = [], {}
    for s in sorted(by_study):
        idx = by_study[s]
        pos = [i for i in idx if rows[i]["is_nodule"] == "1"]
        neg = sorted((i for i in idx if rows[i]["is_nodule"] == "0"), key=lambda i: int(rows[i]["candidate"]))
        hard, rest = neg[:args.hard], neg[args.hard:]
        easy = rng.sample(rest, min(args.easy, len(rest)))
        for i in easy:  # inverse sampling rate: the loss sees every easy negative of the study
            weight[i] = len(rest) / len(easy)
        keep.extend(sorted(pos + hard + easy))
    sel = np.ascontiguousarray(patches[keep])
    os.makedirs(args.out, exist_ok=True)
    with lzma.open(os.path.join(args.out, "patches.u8.xz"), "wb", preset=6) as f:
        f.write(sel.tobytes())

    def col(name, conv, default):
        return np.array([conv(rows[i][name]) if rows[i][name] != "" else default for i in keep])

    np.savez(os.path.join(args.out, "labels.npz"), shape=np.array(sel.shape), study=col("study", int, -1),
             seed=col("seed", int, -1), is_nodule=col("is_nodule", int, 0), malignant=col("malignant", int, 0),
             weight=np.array([weight.get(i, 1.0) for i in keep], dtype=np.float32),
             detector=np.array([rows[i]["source"] == "detector" for i in keep]),
             diameter_mm=col("diameter_mm", float, 0.0), image_logit=col("image_logit", float, np.nan))
    n_notes = 0
    with open(os.path.join(args.out, "notes.jsonl"), "w") as out:
        for path in [os.path.join(args.train, "notes.jsonl")] + args.notes:
            with open(path) as f:
                for line in f:
                    if line.strip():
                        out.write(line if line.endswith("\n") else line + "\n")
                        n_notes += 1
    import text_corpus  # the general corpus's docstrings travel too (no Python 3.11 there)
    n_doc = text_corpus.write_docstrings(os.path.join(args.out, "docstrings.json.xz"))
    print(f"docstrings: {n_doc}")
    with open(os.path.join(args.train, "manifest.json")) as f:
        m = json.load(f)
    with open(os.path.join(args.out, "export_manifest.json"), "w") as f:
        json.dump(m, f, indent=2)
    n_pos = int(sum(rows[i]["is_nodule"] == "1" for i in keep))
    print(f"packed {len(keep)} patches ({n_pos} nodule, {len(keep) - n_pos} other) of {len(by_study)} studies, "
          f"{n_notes} notes -> {args.out} "
          f"({os.path.getsize(os.path.join(args.out, 'patches.u8.xz')) / 1e6:.1f} MB patches)")


if __name__ == "__main__":
    main()
