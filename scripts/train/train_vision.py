"""Trains the demo image branch: a narrow ResNet-152 (torchvision topology,
Bottleneck 3-8-36-3, stem width --width) on the candidate patches packed by
pack_gpu_data.py. Two outputs: fc[0] is the nodule logit (BCE, nodules weighted
2, every negative 1), fc[1] regresses the
phantom's image_logit of a nodule (size, type, margin), which teaches the
spatial features what the fusion head later reads for malignancy.
The weights are saved as torchvision's state_dict in safetensors
(vision/resnet.safetensors), which Hilum's C++ ResNet loads.

  python3 scripts/train/train_vision.py --data train-data/gpu --out BUNDLE/vision --device cuda

--export DIR trains on every patch of an export-training-set folder instead
(labels.csv, patches.npy: all candidates of every study, the truth patches
too), --steps batches with --pos-fraction nodules each: the hard negatives the
packed sample leaves out (vessel crossings, pleural bumps) are all seen. This
is the route scripts/gpu/train_vision_export.sh takes on the GPU machine.
"""
import argparse
import json
import lzma
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "golden"))
import st_io  # noqa: E402
from resnet_golden import Bottleneck, NarrowResNet  # noqa: E402
from train_text import parse_ranges  # noqa: E402,F401 (train_fusion imports it from here too)
from write_manifest import finite  # noqa: E402 (NaN metrics, a validation set without both classes -> null)

MEAN, STD = 0.5, 0.25  # manifest: network_input = (u8 / 255 - mean) / std


def load_data(data_dir, frames=False):
    """Packed patches and labels (pack_gpu_data.py). With frames, the patches are
    [F, N, 3, S, S]: the scanner's axes first, then each extra frame packed."""
    lab = dict(np.load(os.path.join(data_dir, "labels.npz")))
    shape = tuple(int(x) for x in lab.pop("shape"))
    packed = [str(f) for f in lab.pop("frames", [])]  # pack_gpu_data.py --frames
    names = ["patches"] + ([f"patches_{f}" for f in packed] if frames else [])
    if frames and not packed:
        raise SystemExit(f"{data_dir}: no extra frames packed (pack_gpu_data.py --frames)")

    def one(name):
        raw = os.path.join(data_dir, name + ".u8")  # pack_gpu_data.py --raw
        if os.path.exists(raw):
            return np.fromfile(raw, dtype=np.uint8).reshape(shape)
        with lzma.open(os.path.join(data_dir, name + ".u8.xz")) as f:
            return np.frombuffer(f.read(), dtype=np.uint8).reshape(shape)

    if not frames:
        return one("patches"), lab
    return np.stack([one(n) for n in names]), lab


def load_export(export_dir):
    """patches (memory-mapped) and the label arrays of an export-training-set folder."""
    import csv
    patches = np.load(os.path.join(export_dir, "patches.npy"), mmap_mode="r")
    with open(os.path.join(export_dir, "labels.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    col = lambda k, conv, d: np.array([conv(r[k]) if r[k] != "" else d for r in rows])  # noqa: E731
    lab = {"seed": col("seed", int, -1), "is_nodule": col("is_nodule", int, 0), "nodule": col("nodule", int, -1),
           "image_logit": col("image_logit", float, np.nan),
           "detector": np.array([r["source"] == "detector" for r in rows])}
    nodules = {}
    with open(os.path.join(export_dir, "nodules.csv"), newline="") as f:
        for r in csv.DictReader(f):
            nodules.setdefault(int(r["seed"]), {})[int(r["nodule"])] = float(r["diameter_mm"])
    return patches, lab, nodules


def froc_cpm(scores, seeds, nodule, is_nodule, nodules_by_seed):
    """LUNA16 CPM of candidate scores over the studies of `seeds` (their candidates
    only): sensitivity at 1/8 .. 8 false positives per scan, averaged. nodule: the
    true nodule each candidate hits (-1: none); nodules_by_seed: seed -> {index:
    diameter} of its true nodules. Nodules under 3 mm are irrelevant findings
    (LUNA16): candidates on them are neither hits nor false positives."""
    studies = sorted(set(int(s) for s in seeds))
    total = sum(1 for s in studies for d in nodules_by_seed.get(s, {}).values() if d >= 3)
    best, fps = {}, []
    for sc, se, nd, pos in zip(scores, seeds, nodule, is_nodule):
        if pos:
            if nodules_by_seed[int(se)][int(nd)] >= 3:
                best[(int(se), int(nd))] = max(best.get((int(se), int(nd)), -np.inf), sc)
        else:
            fps.append(sc)
    fps = np.sort(np.array(fps))[::-1]
    hits = np.array(list(best.values()))
    sens = []
    for rate in (0.125, 0.25, 0.5, 1, 2, 4, 8):
        n = int(rate * len(studies))
        threshold = fps[n] if n < len(fps) else -np.inf
        sens.append(float((hits > threshold).sum()) / max(total, 1))
    return float(np.mean(sens)), sens


def make_model(width, in_channels=3):
    m = NarrowResNet(Bottleneck, [3, 8, 36, 3], width=width, num_classes=2, in_channels=in_channels)
    # Each residual branch starts as zero (the last BN's scale), so the 50
    # blocks begin as identities: deep nets train stably (Goyal et al. 2017).
    for mod in m.modules():
        if isinstance(mod, Bottleneck):
            torch.nn.init.zeros_(mod.bn3.weight)
    return m


def normalise(u8):
    return (u8.float() / 255.0 - MEAN) / STD


def augment(x, gen, max_shift=3, zoom_ratio=2.0):
    """Flips (all three planes together), in-plane transposes, the three planes
    permuted (what a rotated nodule or vessel would show), shifts of up to
    max_shift px (one per batch), contrast/brightness jitter. Slab patches (nine
    channels: each plane with its neighbours, vision/patches.h) permute their
    planes with the neighbours, and half of them are mirrored along the normal
    (the neighbours swapped). Zoomed patches (six channels: each plane at the
    base spacing, then at a finer one) permute their planes with both scales, and
    the zoomed channels shift by zoom_ratio (base spacing / zoom spacing) times
    the base channels' pixels, so both show the same move in mm."""
    n, c = x.shape[0], x.shape[1]
    per = c // 3  # channels per plane: 1, 2 for a zoom, or 3 for a slab
    perm = torch.randperm(3, device=x.device, generator=gen)
    swap = torch.rand(n, device=x.device, generator=gen) < 0.5
    order = (perm[:, None] * per + torch.arange(per, device=x.device)).reshape(-1)
    x = torch.where(swap[:, None, None, None], x[:, order], x)
    if per == 3:  # (no draw for three planes: their generator stream stays the recipe's)
        mirror = torch.rand(n, device=x.device, generator=gen) < 0.5
        flipped = torch.tensor([2, 1, 0, 5, 4, 3, 8, 7, 6], device=x.device)
        x = torch.where(mirror[:, None, None, None], x[:, flipped], x)
    tr = torch.rand(n, device=x.device, generator=gen) < 0.5
    x = torch.where(tr[:, None, None, None], x.transpose(2, 3), x)
    flip_h = torch.rand(n, device=x.device, generator=gen) < 0.5
    flip_v = torch.rand(n, device=x.device, generator=gen) < 0.5
    x = torch.where(flip_h[:, None, None, None], x.flip(3), x)
    x = torch.where(flip_v[:, None, None, None], x.flip(2), x)
    dy, dx = (int(v) for v in torch.randint(-max_shift, max_shift + 1, (2,), generator=gen, device=x.device))
    if per == 2:
        zy, zx = round(dy * zoom_ratio), round(dx * zoom_ratio)
        x = torch.stack([torch.roll(x[:, 0::2], shifts=(dy, dx), dims=(2, 3)),
                         torch.roll(x[:, 1::2], shifts=(zy, zx), dims=(2, 3))], dim=2).reshape(x.shape)
    else:
        x = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
    scale = 1 + 0.1 * (torch.rand(n, 1, 1, 1, device=x.device, generator=gen) - 0.5)
    shift = 0.1 * (torch.rand(n, 1, 1, 1, device=x.device, generator=gen) - 0.5)
    return x * scale + shift


def auc(scores, labels):
    scores, labels = np.asarray(scores, float), np.asarray(labels, int)
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    s = scores[order]
    i = 0
    while i < len(s):  # average ranks of ties
        j = i
        while j + 1 < len(s) and s[j + 1] == s[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    n1 = labels.sum()
    n0 = len(labels) - n1
    if n1 == 0 or n0 == 0:
        return float("nan")
    return float((ranks[labels == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def train_step(model, opt, lr, x_u8, y_nod, y_il, weight, gen, dev, max_shift=3, zoom_ratio=2.0):
    """One optimiser step on a batch of u8 patches: the nodule BCE (weighted by
    `weight`, or a plain mean when it is None) plus half the smooth-L1 regression
    of the image logit on the batch's nodules. Returns (nodule loss, image-logit
    loss, total)."""
    for g in opt.param_groups:
        g["lr"] = lr
    x = augment(normalise(x_u8), gen, max_shift, zoom_ratio)
    with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda"):
        out = model(x).float()
    if weight is None:
        l_nod = F.binary_cross_entropy_with_logits(out[:, 0], y_nod)
    else:
        l_nod = (F.binary_cross_entropy_with_logits(out[:, 0], y_nod, reduction="none") * weight).sum() / weight.sum()
    pos = y_nod > 0
    l_il = F.smooth_l1_loss(out[pos, 1], y_il[pos]) if pos.any() else out.sum() * 0
    loss = l_nod + 0.5 * l_il
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return l_nod, l_il, loss


def packed_sources(data_dir):
    """{"trained_on": ...} from the pack_manifest.json pack_gpu_data.py --vision-only
    writes (which exports, how many other candidates of each study); {} without one."""
    path = os.path.join(data_dir, "pack_manifest.json")
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        sources = json.load(f)["sources"]

    def one(s):
        nodules = s["phantom"].get("nodules", -1)
        extra = f" with {nodules} nodules each" if nodules > 0 else ""
        return f"seeds {s['seeds'][0]}-{s['seeds'][1]}{extra} (N {s['hard']}, M {s['easy']})"

    return {"trained_on": "the packed sample (every nodule patch and, per study, the N strongest and M random "
                          "other candidates) of " + "; ".join(one(s) for s in sources)}


def save_model(model, out_dir, log):
    """vision/resnet.safetensors (torchvision names, f32) and training_log.json."""
    os.makedirs(out_dir, exist_ok=True)
    sd = {k: v.detach().float().cpu() if v.is_floating_point() else v.cpu() for k, v in model.state_dict().items()}
    st_io.save_file(sd, os.path.join(out_dir, "resnet.safetensors"), {"format": "pt"})
    with open(os.path.join(out_dir, "training_log.json"), "w") as f:
        json.dump(finite({"architecture": "ResNet-152 topology (Bottleneck 3-8-36-3)",
                          "parameters": sum(p.numel() for p in model.parameters()), **log}), f, indent=2,
                  allow_nan=False)


@torch.no_grad()
def predict(model, patches_u8, device, batch=512):
    model.eval()
    out = []
    for i in range(0, len(patches_u8), batch):
        x = normalise(torch.from_numpy(np.ascontiguousarray(patches_u8[i:i + batch])).to(device))
        out.append(model(x).float().cpu())
    return torch.cat(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="", help="packed data (pack_gpu_data.py); or --export")
    ap.add_argument("--out", required=True)
    ap.add_argument("--val-seeds", default="1360-1399")
    ap.add_argument("--width", type=int, default=8)
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--export", default="", help="train on every patch of this export folder instead of --data")
    ap.add_argument("--steps", type=int, default=0, help="--export: batches (0: --epochs over the packed data)")
    ap.add_argument("--pos-fraction", type=float, default=0.25, help="--export: nodule share of each batch")
    ap.add_argument("--max-shift", type=int, default=3, help="largest shift of the augmentation, in pixels")
    ap.add_argument("--frames", action="store_true",
                    help="--data packed with --frames: each patch of a batch is cut in one of the packed frames, "
                         "drawn at random (rotations of the three planes; validation on the scanner's axes)")
    ap.add_argument("--centre-planes", action="store_true",
                    help="slab or zoomed data (export-training-set --patch-slab, nine channels, or --patch-zoom, "
                         "six): train on the three planes through the centre at the base spacing only, as a "
                         "network without the slab or the zoom")
    ap.add_argument("--max-seconds", type=float, default=0,
                    help="--export: the learning-rate schedule ends after this many seconds of training if "
                         "that comes before --steps (0: no limit)")
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    dev = torch.device(args.device)
    t_start = time.time()
    if args.export:
        return train_on_export(args, dev, t_start)
    patches, lab = load_data(args.data, args.frames)
    framed = patches if args.frames else patches[None]  # [F, N, C, S, S]
    if args.centre_planes:
        if framed.shape[2] not in (6, 9):
            raise SystemExit(f"--centre-planes: {args.data} has {framed.shape[2]}-channel patches, not a slab's "
                             "nine or a zoom's six")
        framed = framed[:, :, 1::3] if framed.shape[2] == 9 else framed[:, :, 0::2]
    patches = framed[0]
    slab_mm = float(lab.get("slab_mm", 0)) if patches.shape[1] == 9 else 0.0
    zoom_mm = float(lab.get("zoom_spacing_mm", 0)) if patches.shape[1] == 6 else 0.0
    zoom_ratio = float(lab.get("spacing_mm", 0.7)) / zoom_mm if zoom_mm > 0 else 1.0
    val = np.isin(lab["seed"], sorted(parse_ranges(args.val_seeds)))
    tr = ~val
    y_nod = lab["is_nodule"].astype(np.float32)
    # Balanced for learning: every packed patch counts once, nodules twice. (The
    # inverse sampling weights in lab["weight"] would let the ~290 easy negatives
    # of a study drown its few nodules; the fusion head's nodule bias is
    # calibrated with them afterwards, train_fusion.py.)
    w = np.where(lab["is_nodule"] > 0, 2.0, 1.0).astype(np.float32)
    il = np.nan_to_num(lab["image_logit"].astype(np.float32), nan=0.0)
    print(f"vision: {tr.sum()} training patches ({int(y_nod[tr].sum())} nodule) in {len(framed)} frame(s), "
          f"{val.sum()} validation", flush=True)

    x_all = torch.from_numpy(np.ascontiguousarray(framed[:, tr])).to(dev)  # [F, n, 3, S, S]
    n_frames = x_all.shape[0]
    t_nod = torch.from_numpy(y_nod[tr]).to(dev)
    t_w = torch.from_numpy(w[tr]).to(dev)
    t_il = torch.from_numpy(il[tr]).to(dev)
    model = make_model(args.width, patches.shape[1]).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    n = x_all.shape[1]
    steps_per_epoch = max(1, n // args.batch)
    total = steps_per_epoch * args.epochs
    gen = torch.Generator(device=dev)
    gen.manual_seed(args.seed)
    step = 0
    for epoch in range(args.epochs):
        model.train()
        perm = torch.randperm(n, device=dev, generator=gen)
        tot = 0.0
        for b in range(steps_per_epoch):
            idx = perm[b * args.batch:(b + 1) * args.batch]
            lr = args.lr * min(1.0, (step + 1) / 100) * 0.5 * (1 + math.cos(math.pi * step / total))
            if n_frames > 1:
                x = x_all[torch.randint(n_frames, (len(idx),), device=dev, generator=gen), idx]
            else:  # (no draw: the generator's stream stays the one-frame recipe's)
                x = x_all[0, idx]
            _, _, loss = train_step(model, opt, lr, x, t_nod[idx], t_il[idx], t_w[idx], gen, dev,
                                    args.max_shift, zoom_ratio)
            tot += loss.item()
            step += 1
        if epoch % 5 == 0 or epoch == args.epochs - 1:
            print(f"  epoch {epoch} loss {tot / steps_per_epoch:.4f} ({time.time() - t_start:.0f}s)", flush=True)

    pred = predict(model, patches[val], dev).numpy()
    vpos = y_nod[val] > 0
    metrics = {
        "validation_nodule_auc": round(auc(pred[:, 0], y_nod[val]), 4),
        "validation_image_logit_corr": round(float(np.corrcoef(pred[vpos, 1], il[val][vpos])[0, 1]), 4),
        "validation_patches": int(val.sum()), "validation_nodules": int(vpos.sum()),
    }
    print(f"vision: {metrics}", flush=True)
    save_model(model, args.out, {"width": args.width, "in_channels": int(patches.shape[1]),
                                 "patch_slab_mm": slab_mm, "patch_zoom_spacing_mm": zoom_mm,
                                 "training_patches": int(tr.sum()),
                                 **packed_sources(args.data), **metrics,
                                 "seconds": round(time.time() - t_start), "args": vars(args)})


def train_on_export(args, dev, t_start):
    patches, lab, nodules = load_export(args.export)
    with open(os.path.join(args.export, "manifest.json")) as f:
        geometry = json.load(f)["patches"]
    slab_mm, zoom_mm = float(geometry.get("slab_mm", 0)), float(geometry.get("zoom_spacing_mm", 0))
    if args.centre_planes:
        if patches.shape[1] not in (6, 9):
            raise SystemExit(f"--centre-planes: {args.export} has {patches.shape[1]}-channel patches, not a slab's "
                             "nine or a zoom's six")
        patches = patches[:, 1::3] if patches.shape[1] == 9 else patches[:, 0::2]
        slab_mm = zoom_mm = 0.0
    zoom_ratio = float(geometry.get("spacing_mm", 0.7)) / zoom_mm if zoom_mm > 0 else 1.0
    val = np.isin(lab["seed"], sorted(parse_ranges(args.val_seeds)))
    tr = np.nonzero(~val)[0]
    y_nod = lab["is_nodule"].astype(np.float32)
    il = np.nan_to_num(lab["image_logit"].astype(np.float32), nan=0.0)
    pos_i = torch.from_numpy(tr[y_nod[tr] > 0]).to(dev)
    neg_i = torch.from_numpy(tr[y_nod[tr] == 0]).to(dev)
    print(f"vision: {len(tr)} training patches ({len(pos_i)} nodule), {int(val.sum())} validation "
          f"({time.time() - t_start:.0f}s)", flush=True)
    x_all = torch.from_numpy(np.ascontiguousarray(patches)).to(dev)  # u8 on the device (~12 KB a 3-plane patch)
    t_nod = torch.from_numpy(y_nod).to(dev)
    t_il = torch.from_numpy(il).to(dev)
    model = make_model(args.width, patches.shape[1]).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    gen = torch.Generator(device=dev)
    gen.manual_seed(args.seed)
    n_pos = max(1, int(args.batch * args.pos_fraction))
    total = args.steps
    t_train = time.time()
    done = 0
    for step in range(total):
        model.train()
        # Cosine schedule over the steps, or over --max-seconds when that comes first.
        progress = step / total
        if args.max_seconds:
            progress = max(progress, (time.time() - t_train) / args.max_seconds)
        if progress >= 1:
            print(f"  stopped at step {step}: --max-seconds {args.max_seconds:.0f} reached", flush=True)
            break
        lr = args.lr * min(1.0, (step + 1) / 100) * 0.5 * (1 + math.cos(math.pi * progress))
        idx = torch.cat([pos_i[torch.randint(len(pos_i), (n_pos,), device=dev, generator=gen)],
                         neg_i[torch.randint(len(neg_i), (args.batch - n_pos,), device=dev, generator=gen)]])
        l_nod, l_il, _ = train_step(model, opt, lr, x_all[idx], t_nod[idx], t_il[idx], None, gen, dev,
                                    args.max_shift, zoom_ratio)
        done = step + 1
        if step % 200 == 0 or step == total - 1:
            print(f"  step {step} nodule {l_nod.item():.4f} image logit {l_il.item():.4f} "
                  f"({time.time() - t_start:.0f}s)", flush=True)

    vi = np.nonzero(val)[0]
    pred = predict(model, x_all[vi].cpu().numpy() if dev.type != "cpu" else patches[vi], dev).numpy()
    vpos = y_nod[vi] > 0
    det = lab["detector"][vi]
    cpm, sens = froc_cpm(pred[det, 0], lab["seed"][vi][det], lab["nodule"][vi][det], lab["is_nodule"][vi][det],
                         nodules)
    metrics = {
        "validation_nodule_auc": round(auc(pred[:, 0], y_nod[vi]), 4),
        "validation_cpm": round(cpm, 4), "validation_sensitivity": [round(x, 4) for x in sens],
        "validation_image_logit_corr": round(float(np.corrcoef(pred[vpos, 1], il[vi][vpos])[0, 1]), 4),
        "validation_patches": int(len(vi)), "validation_nodules": int(vpos.sum()),
    }
    print(f"vision: {metrics}", flush=True)
    save_model(model, args.out, {
        "width": args.width, "in_channels": int(patches.shape[1]), "patch_slab_mm": slab_mm,
        "patch_zoom_spacing_mm": zoom_mm,
        "training_patches": int(len(tr)), "training_nodule_patches": int(len(pos_i)),
        "steps": done, "batch": args.batch,
        "trained_on": "every patch of the export (all candidates of each study and the truth patches)",
        **metrics, "seconds": round(time.time() - t_start), "args": vars(args)})


if __name__ == "__main__":
    main()
