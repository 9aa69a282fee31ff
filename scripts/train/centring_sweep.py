"""How much a ResNet's nodule logit depends on where the patch is centred.

For every true nodule of the given phantom seeds: the logit of the patch cut at
the nodule's centre, and of the six cut 1 mm away along +-x, +-y, +-z (lowest and
mean of the six). bench/RESULTS.md, "The image branch trained on patches cut off
the nodule's centre", was made with it:

  /usr/bin/python3 scripts/train/centring_sweep.py --seeds 900463,900387 \
      [--weights resources/models/vision/resnet.safetensors] [--hilum build/hilum] [--offset-mm 1]

The phantoms come from `hilum phantom`, their volumes from `hilum volume`, the
logits from `hilum resnet` (image_tokens.run_resnet). The patches are cut here in
NumPy with the geometry of vision/patches.cpp (three planes, and with a six-channel
ResNet the same planes again at 0.35 mm; trilinear, air outside, lung window,
uint8): within one grey level of `export-training-set`'s truth patches. Only
volumes in the scanner's axes (an identity direction) are cut.
"""

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from image_tokens import resnet_input_channels, run_resnet  # noqa: E402

PLANES = (((1, 0, 0), (0, 1, 0)), ((1, 0, 0), (0, 0, -1)), ((0, 1, 0), (0, 0, -1)))  # axial, coronal, sagittal


def trilinear(v, x, y, z):
    """HU at continuous voxel indices (x, y, z) of a (z, y, x) volume; -1000 outside."""
    x0, y0, z0 = np.floor(x).astype(int), np.floor(y).astype(int), np.floor(z).astype(int)
    fx, fy, fz = x - x0, y - y0, z - z0
    out = np.zeros(x.shape)
    for dz in (0, 1):
        for dy in (0, 1):
            for dx in (0, 1):
                xi, yi, zi = x0 + dx, y0 + dy, z0 + dz
                inside = (xi >= 0) & (xi < v.shape[2]) & (yi >= 0) & (yi < v.shape[1]) & (zi >= 0) & (zi < v.shape[0])
                val = np.where(inside, v[np.clip(zi, 0, v.shape[0] - 1), np.clip(yi, 0, v.shape[1] - 1),
                                         np.clip(xi, 0, v.shape[2] - 1)], -1000.0)
                out += (fx if dx else 1 - fx) * (fy if dy else 1 - fy) * (fz if dz else 1 - fz) * val
    return out


def cut(v, meta, centre_mm, spacings, size=64, level=-600, width=1500):
    """uint8 [3 * len(spacings), size, size]: each plane at each spacing (channel order of patches.h)."""
    s, o = np.array(meta["spacing"]), np.array(meta["origin"])
    c = (np.asarray(centre_mm) - o) / s
    half = (size - 1) / 2
    r, col = np.mgrid[0:size, 0:size]
    dv, du = r - half, col - half
    out = []
    for u, w in PLANES:
        for sp in spacings:
            su, sv = np.array(u) * sp / s, np.array(w) * sp / s
            hu = trilinear(v, c[0] + du * su[0] + dv * sv[0], c[1] + du * su[1] + dv * sv[1],
                           c[2] + du * su[2] + dv * sv[2])
            out.append(np.rint(np.clip((hu - (level - width / 2)) / width, 0, 1) * 255).astype(np.uint8))
    return np.stack(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", required=True, help="comma-separated phantom seeds")
    ap.add_argument("--weights", default="resources/models/vision/resnet.safetensors")
    ap.add_argument("--hilum", default="build/hilum")
    ap.add_argument("--offset-mm", type=float, default=1.0)
    args = ap.parse_args()
    channels = resnet_input_channels(args.weights)
    spacings = {3: (0.7,), 6: (0.7, 0.35)}.get(channels)
    if spacings is None:
        raise SystemExit(f"{args.weights}: a {channels}-channel ResNet (this script cuts 3 or 6 channels)")
    print("seed,diameter_mm,type,juxtavascular,juxtapleural,centre,lowest_off,mean_off")
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds.split(","):
            d = os.path.join(tmp, seed)
            subprocess.run([args.hilum, "-q", "phantom", "--seed", seed, "--out", d], check=True)
            subprocess.run([args.hilum, "-q", "volume", os.path.join(d, "dicom"), "--out", os.path.join(d, "v.npy"),
                            "--meta", os.path.join(d, "m.json")], check=True)
            v = np.load(os.path.join(d, "v.npy"))
            with open(os.path.join(d, "m.json")) as f:
                meta = json.load(f)
            if [round(x, 6) for x in meta["direction"]] != [1, 0, 0, 0, 1, 0, 0, 0, 1]:
                raise SystemExit(f"seed {seed}: the volume is not in the scanner's axes")
            with open(os.path.join(d, "truth.csv"), newline="") as f:
                truth = list(csv.DictReader(f))
            for t in truth:
                c = np.array([float(t[k]) for k in ("coordX", "coordY", "coordZ")])
                patches = [cut(v, meta, c, spacings)]
                for axis in range(3):
                    for sign in (-1, 1):
                        e = np.zeros(3)
                        e[axis] = sign * args.offset_mm
                        patches.append(cut(v, meta, c + e, spacings))
                logit = run_resnet(np.stack(patches), args.weights, args.hilum, tmp)[:, 0]
                print(f"{seed},{t['diameter_mm']},{t['type']},{t['juxtavascular']},{t['juxtapleural']},"
                      f"{logit[0]:.1f},{logit[1:].min():.1f},{logit[1:].mean():.1f}")


if __name__ == "__main__":
    main()
