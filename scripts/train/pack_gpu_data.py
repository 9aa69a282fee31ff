"""Packs the exported training set into the compact form the GPU machine gets
(its runs carry at most 64 MB of the tree): every nodule patch (detector hits
and truth-centred patches), per study the --hard strongest non-nodule
candidates plus --easy others drawn at random, xz-compressed; labels as one
.npz; the training notes plus the notes-only seeds as notes.jsonl.

  /usr/bin/python3 scripts/train/pack_gpu_data.py --train train-data/train \
      --notes train-data/notes/notes.jsonl --out train-data/gpu

Several --train folders are packed as one (their studies numbered on, in the
order given): scripts/gpu/train_vision_more.sh adds phantoms with extra
nodules to the image branch's data that way, with --vision-only (patches and
labels, no notes) and --raw (patches.u8 uncompressed: the data stays on the
GPU machine, where compressing it would only cost time).
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
    ap.add_argument("--train", required=True, nargs="+", help="merged hilum export-training-set folder(s)")
    ap.add_argument("--notes", nargs="*", default=[], help="extra notes.jsonl (notes-only seeds)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--hard", default="8", help="strongest non-nodule candidates per study (a list: per --train folder)")
    ap.add_argument("--easy", default="8", help="random other candidates per study (a list: per --train folder)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--vision-only", action="store_true", help="patches and labels only (no notes)")
    ap.add_argument("--raw", action="store_true", help="patches.u8 uncompressed instead of patches.u8.xz")
    ap.add_argument("--frames", action="store_true",
                    help="also the same patches cut in the exports' extra frames (export-training-set "
                         "--patch-frames), as patches_<frame>.u8[.xz]; every --train folder must have them")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    per_folder = lambda v: [int(x) for x in v.split(",")] * (len(args.train) if "," not in v else 1)  # noqa: E731
    hard_of, easy_of = per_folder(args.hard), per_folder(args.easy)
    if len(hard_of) != len(args.train) or len(easy_of) != len(args.train):
        raise SystemExit("--hard/--easy: one number, or one per --train folder")
    slabs, zooms, spacings = set(), set(), set()
    for folder in args.train:
        with open(os.path.join(folder, "manifest.json")) as f:
            geometry = json.load(f).get("patches", {})
        slabs.add(float(geometry.get("slab_mm", 0)))
        zooms.add(float(geometry.get("zoom_spacing_mm", 0)))
        spacings.add(float(geometry.get("spacing_mm", 0.7)))
    if len(slabs) != 1:
        raise SystemExit(f"--train: the exports' patches differ in slab_mm ({sorted(slabs)}); pack alike ones")
    if len(zooms) != 1 or len(spacings) != 1:
        raise SystemExit(f"--train: the exports' patches differ in zoom_spacing_mm ({sorted(zooms)}) or "
                         f"spacing_mm ({sorted(spacings)}); pack alike ones")
    arrays, where, rows, by_study, offset = [], [], [], {}, 0  # where[i]: (array, row) of patch i
    for folder in args.train:
        arrays.append(np.load(os.path.join(folder, "patches.npy"), mmap_mode="r"))
        with open(os.path.join(folder, "labels.csv"), newline="") as f:
            part = list(csv.DictReader(f))
        if len(part) != arrays[-1].shape[0]:
            raise SystemExit(f"{folder}: labels.csv has {len(part)} rows, patches.npy {arrays[-1].shape[0]}")
        n_studies = 0
        for j, r in enumerate(part):
            n_studies = max(n_studies, int(r["study"]) + 1)
            r["study"] = str(int(r["study"]) + offset)
            by_study.setdefault(int(r["study"]), []).append(len(rows))
            where.append((len(arrays) - 1, j))
            rows.append(r)
        offset += n_studies
    keep, weight = [], {}
    for s in sorted(by_study):
        idx = by_study[s]
        pos = [i for i in idx if rows[i]["is_nodule"] == "1"]
        neg = sorted((i for i in idx if rows[i]["is_nodule"] == "0"), key=lambda i: int(rows[i]["candidate"]))
        folder = where[idx[0]][0]  # every patch of a study comes from one export
        n_hard, n_easy = hard_of[folder], easy_of[folder]
        hard, rest = neg[:n_hard], neg[n_hard:]
        easy = rng.sample(rest, min(n_easy, len(rest)))
        for i in easy:  # inverse sampling rate: the loss sees every easy negative of the study
            weight[i] = len(rest) / len(easy)
        keep.extend(sorted(pos + hard + easy))
    os.makedirs(args.out, exist_ok=True)
    frames = []
    if args.frames:
        per = []
        for folder in args.train:
            with open(os.path.join(folder, "manifest.json")) as f:
                per.append(json.load(f).get("patches", {}).get("extra_frames", []))
        frames = per[0]
        if not frames or any(p != frames for p in per):
            raise SystemExit("--frames: every --train folder needs the same extra frames (export-training-set "
                             f"--patch-frames); they have {per}")

    def write(name, source):
        sel = np.stack([source[where[i][0]][where[i][1]] for i in keep])
        if args.raw:
            sel.tofile(os.path.join(args.out, name + ".u8"))
        else:
            with lzma.open(os.path.join(args.out, name + ".u8.xz"), "wb", preset=6) as f:
                f.write(sel.tobytes())
        return sel.shape

    shape = write("patches", arrays)
    for fr in frames:
        write("patches_" + fr, [np.load(os.path.join(folder, f"patches_{fr}.npy"), mmap_mode="r")
                                for folder in args.train])

    def col(name, conv, default):
        return np.array([conv(rows[i][name]) if rows[i][name] != "" else default for i in keep])

    np.savez(os.path.join(args.out, "labels.npz"), shape=np.array(shape), frames=np.array(frames, dtype=str),
             slab_mm=np.array(next(iter(slabs))), zoom_spacing_mm=np.array(next(iter(zooms))),
             spacing_mm=np.array(next(iter(spacings))),
             study=col("study", int, -1), seed=col("seed", int, -1), is_nodule=col("is_nodule", int, 0),
             malignant=col("malignant", int, 0),
             weight=np.array([weight.get(i, 1.0) for i in keep], dtype=np.float32),
             detector=np.array([rows[i]["source"] == "detector" for i in keep]),
             diameter_mm=col("diameter_mm", float, 0.0), image_logit=col("image_logit", float, np.nan))
    n_pos = int(sum(rows[i]["is_nodule"] == "1" for i in keep))
    if args.vision_only:  # what the packed patches came from, for train_vision.py's log
        sources = []
        for folder in args.train:
            with open(os.path.join(folder, "manifest.json")) as f:
                m = json.load(f)
            sources.append({"seeds": m["seeds"], "phantom": m.get("phantom", {}), "hard": hard_of[len(sources)],
                            "easy": easy_of[len(sources)]})
        with open(os.path.join(args.out, "pack_manifest.json"), "w") as f:
            json.dump({"sources": sources}, f, indent=2)
        print(f"packed {len(keep)} patches ({n_pos} nodule, {len(keep) - n_pos} other) of {len(by_study)} studies "
              f"-> {args.out}")
        return
    if len(args.train) != 1:
        raise SystemExit("--train: one folder unless --vision-only (the notes come from it)")
    train = args.train[0]
    n_notes = 0
    with open(os.path.join(args.out, "notes.jsonl"), "w") as out:
        for path in [os.path.join(train, "notes.jsonl")] + args.notes:
            with open(path) as f:
                for line in f:
                    if line.strip():
                        out.write(line if line.endswith("\n") else line + "\n")
                        n_notes += 1
    import text_corpus  # the general corpus's docstrings travel too (no Python 3.11 there)
    n_doc = text_corpus.write_docstrings(os.path.join(args.out, "docstrings.json.xz"))
    print(f"docstrings: {n_doc}")
    with open(os.path.join(train, "manifest.json")) as f:
        m = json.load(f)
    with open(os.path.join(args.out, "export_manifest.json"), "w") as f:
        json.dump(m, f, indent=2)
    print(f"packed {len(keep)} patches ({n_pos} nodule, {len(keep) - n_pos} other) of {len(by_study)} studies, "
          f"{n_notes} notes -> {args.out} "
          f"({os.path.getsize(os.path.join(args.out, 'patches.u8.xz')) / 1e6:.1f} MB patches)")


if __name__ == "__main__":
    main()
