"""Merges folders written by `hilum export-training-set` on disjoint seed ranges
into one folder with the same files (patches.npy, labels.csv, notes.jsonl,
nodules.csv, studies.csv, manifest.json, and the patches_<frame>.npy of
--patch-frames). Studies are renumbered in seed order.

  /usr/bin/python3 scripts/train/merge_exports.py --out DIR PART1 PART2 ...
"""
import argparse
import csv
import io
import json
import os

import numpy as np


def read_csv(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("parts", nargs="+")
    args = ap.parse_args()
    parts = []
    for p in args.parts:
        with open(os.path.join(p, "manifest.json")) as f:
            parts.append((json.load(f)["seeds"][0], p))
    parts.sort()
    manifests = []
    for _, p in parts:
        with open(os.path.join(p, "manifest.json")) as f:
            manifests.append(json.load(f))
    for a, b in zip(manifests, manifests[1:]):
        if a["seeds"][1] >= b["seeds"][0]:
            raise SystemExit(f"overlapping seed ranges {a['seeds']} and {b['seeds']}")
        for key in ("patches", "candidates", "labels", "phantom"):
            if key in a and a.get(key, {}) != b.get(key, {}) and key != "patches":
                raise SystemExit(f"parts differ in '{key}'")
    os.makedirs(args.out, exist_ok=True)
    offset = 0
    tables = {"labels.csv": None, "nodules.csv": None, "studies.csv": None}
    rows = {k: [] for k in tables}
    notes = []
    # Patch arrays by file name: patches.npy and those of the extra frames (patches_<frame>.npy).
    names = [n for n in ["patches.npy"] + [f"patches_{f}.npy" for f in manifests[0].get("patches", {}).get(
        "extra_frames", [])] if os.path.exists(os.path.join(parts[0][1], n))]
    arrays = {n: [] for n in names}
    for (_, p), m in zip(parts, manifests):
        n_studies = m["counts"]["studies"]
        for name in tables:
            if not os.path.exists(os.path.join(p, name)):
                continue
            header, body = read_csv(os.path.join(p, name))
            if tables[name] is None:
                tables[name] = header
            elif tables[name] != header:
                raise SystemExit(f"{p}/{name}: header differs")
            si = header.index("study")
            for r in body:
                r[si] = str(int(r[si]) + offset)
                rows[name].append(r)
        with open(os.path.join(p, "notes.jsonl")) as f:
            for line in f:
                if line.strip():
                    d = json.loads(line)
                    d["study"] += offset
                    notes.append(json.dumps(d, ensure_ascii=False, separators=(",", ":")))
        for n in names:
            if not os.path.exists(os.path.join(p, n)):
                raise SystemExit(f"{p}: {n} is missing (the first part has it)")
            arrays[n].append(np.load(os.path.join(p, n), mmap_mode="r"))
        offset += n_studies
    for name, header in tables.items():
        if header is None:
            continue
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows[name])
        with open(os.path.join(args.out, name + ".tmp"), "w") as f:
            f.write(buf.getvalue())
        os.replace(os.path.join(args.out, name + ".tmp"), os.path.join(args.out, name))
    with open(os.path.join(args.out, "notes.jsonl.tmp"), "w") as f:
        f.write("\n".join(notes) + "\n")
    os.replace(os.path.join(args.out, "notes.jsonl.tmp"), os.path.join(args.out, "notes.jsonl"))
    merged = dict(manifests[0])
    merged["seeds"] = [manifests[0]["seeds"][0], manifests[-1]["seeds"][1]]
    merged["merged_from"] = [m["seeds"] for m in manifests]
    counts = {}
    for m in manifests:
        for k, v in m["counts"].items():
            counts[k] = counts.get(k, 0) + v
    if "mean_candidates_per_study" in counts:
        counts["mean_candidates_per_study"] = sum(
            m["counts"]["mean_candidates_per_study"] * m["counts"]["studies"] for m in manifests) / counts["studies"]
    merged["counts"] = counts
    total = 0
    for n, parts_of in arrays.items():
        total = sum(a.shape[0] for a in parts_of)
        out = np.lib.format.open_memmap(os.path.join(args.out, n + ".tmp"), mode="w+", dtype=np.uint8,
                                        shape=(total,) + parts_of[0].shape[1:])
        at = 0
        for a in parts_of:
            out[at:at + a.shape[0]] = a
            at += a.shape[0]
        out.flush()
        del out
        os.replace(os.path.join(args.out, n + ".tmp"), os.path.join(args.out, n))
        merged["patches"]["shape"][0] = total
    with open(os.path.join(args.out, "manifest.json"), "w") as f:
        json.dump(merged, f, indent=2)
        f.write("\n")
    print(f"merged {len(parts)} parts: {offset} studies" + (f", {total} patches" if arrays else ""))


if __name__ == "__main__":
    main()
