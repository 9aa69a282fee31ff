"""Image tokens of every patch of an export, computed by Hilum's own C++ image
branch (`hilum resnet --spatial`, the built-in CPU engine): [N, 4, C] float16,
for training the fusion head on all candidates without a GPU.

  /usr/bin/python3 scripts/train/image_tokens.py --export train-data/train \
      --weights resources/models/vision/resnet.safetensors --out train-data/tokens.npy
"""
import argparse
import json
import os
import struct
import subprocess
import tempfile

import numpy as np

MEAN, STD = 0.5, 0.25


def resnet_input_channels(weights):
    """The input channels of the ResNet in a safetensors file (its conv1.weight), from
    the header alone: 3, 6 for a net taking zoomed patches, or 9 for slab patches."""
    with open(weights, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    if "conv1.weight" not in header:
        raise SystemExit(f"{weights}: no conv1.weight (not a ResNet)")
    return int(header["conv1.weight"]["shape"][1])


def planes_for(patches, in_channels, where="patches"):
    """Patches [N, C, S, S] as a ResNet taking `in_channels` reads them: as they are
    when C matches; for a three-channel net the middle planes of a slab (channels
    1, 4, 7 of nine, `export-training-set --patch-slab`) or the planes at the
    base spacing of a zoomed export (channels 0, 2, 4 of six, `--patch-zoom`).
    SystemExit naming `where` otherwise."""
    c = patches.shape[1]
    if c == in_channels:
        return patches
    if c == 9 and in_channels == 3:
        return patches[:, 1::3]
    if c == 6 and in_channels == 3:
        return patches[:, 0::2]
    raise SystemExit(f"{where}: {c}-channel patches, but the ResNet takes {in_channels} "
                     "(nine need an export made with --patch-slab, six one made with --patch-zoom)")


def run_resnet(patches_u8, weights, hilum, tmp, *flags):
    """`hilum resnet FLAGS` (the built-in CPU engine) on uint8 patches [n, C, S, S],
    normalised as in training; its output array. `tmp` is a scratch folder. A
    refusal by hilum (its one-line error is on stderr) ends the script with 2."""
    x_path, y_path = os.path.join(tmp, "x.npy"), os.path.join(tmp, "y.npy")
    np.save(x_path, (np.asarray(patches_u8).astype(np.float32) / 255.0 - MEAN) / STD)
    try:
        subprocess.run([hilum, "-q", "resnet", "--weights", weights, "--input", x_path, "--out", y_path,
                        "--device", "cpu", "--cpu-engine", "reference", *flags], check=True)
    except subprocess.CalledProcessError as e:
        raise SystemExit(2) from e
    return np.load(y_path)


def spatial_tokens(patches_u8, weights, hilum, tmp, view="identity"):
    """Image tokens [n, k, C] float32 of uint8 patches [n, 3 or 9, S, S] by `hilum resnet
    --spatial`, token index y*w + x; of the patches' test-time augmentation view
    `view` (taken by hilum itself: vision/patches.h patch_view)."""
    maps = run_resnet(patches_u8, weights, hilum, tmp, "--spatial", "--view", view)  # [n, C, h, w]
    return maps.reshape(maps.shape[0], maps.shape[1], -1).transpose(0, 2, 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--export", required=True)
    ap.add_argument("--weights", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--hilum", default="build/hilum")
    ap.add_argument("--chunk", type=int, default=8192)
    args = ap.parse_args()
    patches = planes_for(np.load(os.path.join(args.export, "patches.npy"), mmap_mode="r"),
                         resnet_input_channels(args.weights), args.export)
    n = patches.shape[0]
    out = None
    with tempfile.TemporaryDirectory() as tmp:
        for s in range(0, n, args.chunk):
            tok = spatial_tokens(patches[s:s + args.chunk], args.weights, args.hilum, tmp)
            if out is None:
                out = np.lib.format.open_memmap(args.out + ".tmp.npy", mode="w+", dtype=np.float16,
                                                shape=(n, tok.shape[1], tok.shape[2]))
            out[s:s + len(tok)] = tok.astype(np.float16)
            print(f"image tokens: {min(s + args.chunk, n)}/{n}", flush=True)
    out.flush()
    del out
    os.replace(args.out + ".tmp.npy", args.out)


if __name__ == "__main__":
    main()
