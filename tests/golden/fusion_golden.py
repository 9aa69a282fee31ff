#!/usr/bin/env python3
"""Writes the fusion-head golden files in tests/golden/fusion/ (committed):

  weights.safetensors   a tiny FusionHead with random weights (state_dict names)
  image_tokens.npy      f32 [N, k, c]
  text_states.npy       f32 [T, d_text]
  logits.npy            f32 [N, 2]   forward with the text
  logits_no_text.npy    f32 [N, 2]   forward with an empty note (T = 0)
  features/             the same with a head that also takes candidate features:
                        weights.safetensors, features.npy (f32 [N, F], raw values),
                        logits.npy and logits_no_text.npy (image tokens and text as above)

tests/fusion/test_fusion_head.cpp loads them and compares (relative L2 <= 1e-5).
Run from the repository root:  /usr/bin/python3 tests/golden/fusion_golden.py
Deterministic (fixed seed, float64 reference computation rounded to float32).
"""

import os
import sys

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "scripts", "train"))
from fusion_model import FusionHead, save_fusion_head  # noqa: E402

OUT = os.path.join(ROOT, "tests", "golden", "fusion")


def main():
    torch.manual_seed(1234)
    n, k, c, t, text_dim, dim, heads, hidden = 5, 9, 24, 7, 20, 32, 4, 16
    model = FusionHead(image_channels=c, image_tokens=k, text_dim=text_dim, dim=dim, heads=heads, hidden=hidden)
    # Non-trivial norms and biases so that every tensor matters.
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    model.eval()
    image = torch.randn(n, k, c)
    text = torch.randn(t, text_dim)
    os.makedirs(OUT, exist_ok=True)
    save_fusion_head(model, os.path.join(OUT, "weights.safetensors"))
    model64 = model.double()
    with torch.no_grad():
        logits = model64(image.double(), text.double()).float()
        logits_empty = model64(image.double(), torch.zeros(0, text_dim, dtype=torch.float64)).float()
    np.save(os.path.join(OUT, "image_tokens.npy"), image.numpy())
    np.save(os.path.join(OUT, "text_states.npy"), text.numpy())
    np.save(os.path.join(OUT, "logits.npy"), logits.numpy())
    np.save(os.path.join(OUT, "logits_no_text.npy"), logits_empty.numpy())
    print("wrote", OUT, "logits", logits.numpy().round(4).tolist())

    # A head that also takes three candidate features (standardised inside).
    names = ["log_score", "blobness", "contrast_hu"]
    fmodel = FusionHead(image_channels=c, image_tokens=k, text_dim=text_dim, dim=dim, heads=heads, hidden=hidden,
                        candidate_features=names)
    with torch.no_grad():
        for p in fmodel.parameters():
            p.add_(0.1 * torch.randn_like(p))
        fmodel.feature_mean.copy_(torch.tensor([6.0, 0.7, 300.0]))
        fmodel.feature_scale.copy_(torch.tensor([0.8, 5.0, 0.01]))
    fmodel.eval()
    feats = torch.stack([6.0 + torch.randn(n), 0.7 + 0.2 * torch.randn(n), 300.0 + 100.0 * torch.randn(n)], dim=1)
    fout = os.path.join(OUT, "features")
    os.makedirs(fout, exist_ok=True)
    save_fusion_head(fmodel, os.path.join(fout, "weights.safetensors"))
    f64 = fmodel.double()
    with torch.no_grad():
        flogits = f64(image.double(), text.double(), features=feats.double()).float()
        flogits_empty = f64(image.double(), torch.zeros(0, text_dim, dtype=torch.float64),
                            features=feats.double()).float()
    np.save(os.path.join(fout, "features.npy"), feats.numpy())
    np.save(os.path.join(fout, "logits.npy"), flogits.numpy())
    np.save(os.path.join(fout, "logits_no_text.npy"), flogits_empty.numpy())
    print("wrote", fout, "logits", flogits.numpy().round(4).tolist())


if __name__ == "__main__":
    main()
