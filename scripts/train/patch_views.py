"""Chooses the demo bundle's test-time augmentation on the validation studies:
the fusion head's nodule logit of every validation candidate (seeds --val-seeds
of an export-training-set folder, no note) for each view of its patch
(identity, flip_x, flip_y, transpose: every plane mirrored or transposed alike,
as the image branch was trained; taken by `hilum resnet --view`, the C++ code
`hilum analyze` uses; and rz45, rx45, ry45: the patches cut in a rotated frame,
from the export's patches_<frame>.npy, `export-training-set --patch-frames`), image tokens from Hilum's own C++ image branch
(`hilum resnet --spatial`), and the LUNA16 CPM of each view and of the views'
mean logit. Writes BUNDLE/fusion/patch_views.json; write_manifest.py copies it
into manifest.json's "inference", which `hilum analyze` reads.

  /usr/bin/python3 scripts/train/patch_views.py --export train-data/train --bundle resources/models

With --report-only it scores any export (for example fresh seeds made with
`hilum export-training-set --negatives -1 --no-truth-patches --no-sizing`) and
writes nothing; it then also prints the CPM of the ResNet's own nodule logit and
of the candidate detector's score (identity view), for comparison:

  /usr/bin/python3 scripts/train/patch_views.py --export DIR --bundle resources/models \
      --val-seeds 2000-2049 --report-only

--compare prints the CPM of the mean over subsets of the views as well (one run
of the image branch per view), for example the four flips against the four flips
and three rotated frames on an export made with --patch-frames rz45,rx45,ry45:

  /usr/bin/python3 scripts/train/patch_views.py --export DIR --bundle resources/models \
      --val-seeds 901750-901799 --report-only \
      --views identity,flip_x,flip_y,transpose,rz45,rx45,ry45 \
      --compare "identity,flip_x,flip_y,transpose;identity,rz45,rx45,ry45"
"""
import argparse
import csv
import json
import os
import sys
import tempfile

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import fusion_model  # noqa: E402
from image_tokens import planes_for, resnet_input_channels, run_resnet, spatial_tokens  # noqa: E402
from train_vision import froc_cpm, load_export, parse_ranges  # noqa: E402

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--export", required=True)
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--views", default="identity,flip_x,flip_y,transpose")
    ap.add_argument("--val-seeds", default="1360-1399")
    ap.add_argument("--hilum", default="build/hilum")
    ap.add_argument("--compare", default="",
                    help="';'-separated subsets of --views: the validation CPM of each subset's mean logit too")
    ap.add_argument("--save-logits", default="",
                    help="NPZ: each view's fusion nodule logit of the validation candidates, with their labels.csv rows")
    ap.add_argument("--report-only", action="store_true",
                    help="print the CPMs (and those of the ResNet logit and the detector score); write nothing")
    args = ap.parse_args()
    views = args.views.split(",")
    subsets = [c.split(",") for c in args.compare.split(";") if c]
    for sub in subsets:
        if not set(sub) <= set(views):
            raise SystemExit(f"--compare {','.join(sub)}: every view must be among --views {args.views}")
    head = fusion_model.load_fusion_head(os.path.join(args.bundle, "fusion", "fusion_head.safetensors")).eval()
    weights = os.path.join(args.bundle, "vision", "resnet.safetensors")
    in_channels = resnet_input_channels(weights)
    patches, lab, nodules = load_export(args.export)
    patches = planes_for(patches, in_channels, args.export)
    with open(os.path.join(args.export, "labels.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    vi = np.nonzero(np.isin(lab["seed"], sorted(parse_ranges(args.val_seeds))) & lab["detector"])[0]
    feats = None
    if head.candidate_features:
        try:
            feats = torch.from_numpy(fusion_model.candidate_feature_matrix([rows[i] for i in vi],
                                                                           head.candidate_features))
        except ValueError as e:
            raise SystemExit(f"{os.path.join(args.export, 'labels.csv')}: {e}")
    frames = {}  # view name -> the patches it reads, and the patch view taken of them

    def source(v):
        if v in fusion_model.PATCH_FRAMES:
            path = os.path.join(args.export, f"patches_{v}.npy")
            if not os.path.exists(path):
                raise SystemExit(f"view {v}: {path} is missing (export-training-set --patch-frames {v})")
            return planes_for(np.load(path, mmap_mode="r"), in_channels, args.export)[vi], "identity"
        return patches[vi], v

    x0 = patches[vi]
    logits, by_view = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for v in views:  # one patch per view first: hilum refuses an unknown name before the long runs
            frames[v] = source(v)
            run_resnet(frames[v][0][:1], weights, args.hilum, tmp, "--view", frames[v][1])
        for v in views:
            x, pv = frames[v]
            tokens = torch.from_numpy(np.ascontiguousarray(spatial_tokens(x, weights, args.hilum, tmp, view=pv)))
            with torch.no_grad():
                logits[v] = head(tokens, torch.zeros(0, head.config["text_dim"]), features=feats)[:, 0].numpy()
            by_view[v] = round(froc_cpm(logits[v], lab["seed"][vi], lab["nodule"][vi], lab["is_nodule"][vi],
                                        nodules)[0], 4)
            print(f"view {v}: validation CPM {by_view[v]}", flush=True)
        if args.report_only:
            others = {"resnet nodule logit": run_resnet(x0, weights, args.hilum, tmp)[:, 0],
                      "detector score": np.log([float(rows[i]["score"]) + 1e-9 for i in vi])}
            for name, score in others.items():
                c, sens = froc_cpm(score, lab["seed"][vi], lab["nodule"][vi], lab["is_nodule"][vi], nodules)
                print(f"{name} (identity view): CPM {round(c, 4)}, sensitivity {[round(x, 3) for x in sens]}",
                      flush=True)
    if args.save_logits:
        np.savez(args.save_logits, rows=vi, **{f"logit_{v}": logits[v] for v in views})
    cpm, sens = froc_cpm(np.mean([logits[v] for v in views], axis=0), lab["seed"][vi], lab["nodule"][vi],
                         lab["is_nodule"][vi], nodules)
    out = {"patch_views": views,
           "what": "fusion logits averaged over these views of each candidate's patch (test-time augmentation)",
           "validation_cpm_no_note": round(cpm, 4), "validation_sensitivity_no_note": [round(s, 4) for s in sens],
           "validation_cpm_no_note_by_view": by_view, "validation_seeds": args.val_seeds,
           "script": "scripts/train/patch_views.py"}
    print(f"mean of {len(views)} views: validation CPM {out['validation_cpm_no_note']}, sensitivity "
          f"{out['validation_sensitivity_no_note']}", flush=True)
    for sub in subsets:
        c, s = froc_cpm(np.mean([logits[v] for v in sub], axis=0), lab["seed"][vi], lab["nodule"][vi],
                        lab["is_nodule"][vi], nodules)
        print(f"mean of {','.join(sub)}: validation CPM {round(c, 4)}, sensitivity {[round(x, 4) for x in s]}",
              flush=True)
    if args.report_only:
        return
    path = os.path.join(args.bundle, "fusion", "patch_views.json")
    with open(path + ".tmp", "w") as f:
        json.dump(out, f, indent=2)
        f.write("\n")
    os.replace(path + ".tmp", path)


if __name__ == "__main__":
    main()
