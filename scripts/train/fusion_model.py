"""Fusion head of Hilum: the reference implementation (PyTorch).

Image tokens of each nodule candidate (the ResNet's spatial features, [N, k, c])
attend by multi-head cross-attention to the hidden states of the study's
clinical text ([T, d_text]); a small MLP on the pooled tokens gives two logits
per candidate: nodule and malignancy. The C++ engine (fusion/fusion_head.cpp)
computes exactly this; weights travel as this module's state_dict in a
safetensors file whose metadata key "hilum.fusion" holds the configuration.

Used by training (scripts/train/) and by the golden-file script
(tests/golden/fusion_golden.py). Works with PyTorch 1.13 (Debian) and 2.x.
"""

import json
import math
import struct

import torch
import torch.nn as nn
import torch.nn.functional as F

CONFIG_KEYS = ("image_channels", "image_tokens", "text_dim", "dim", "heads", "hidden")

# The extra frames `hilum export-training-set --patch-frames` cuts patches in (vision/patches.cpp,
# frame_axes): 45 degrees about z, x and y. The training and install scripts name them from here.
PATCH_FRAMES = ("rz45", "rx45", "ry45")


def _log_floor(v):
    return math.log(max(v, 1e-3))


def _as_is(v):
    return v


# The candidate detector's measurements the head may take beside the image
# tokens, by name: each a function of a labels.csv row of `hilum
# export-training-set`. vision/io/candidates.cpp (candidate_feature) computes
# the same from a Candidate at inference. Logarithms of the heavy-tailed ones.
# name -> (the labels.csv column it reads, the function of that column's value);
# exports older than a column lack it, and candidate_feature_matrix says so.
CANDIDATE_FEATURES = {
    "log_response": ("response", _log_floor),
    "contrast_hu": ("contrast_hu", _as_is),
    "blobness": ("blobness", _as_is),
    "isolation": ("isolation", _as_is),
    "log_score": ("score", _log_floor),
    "log_sigma_mm": ("scale_mm", _log_floor),
    # 1 for a candidate kept by a pleural cap's top-hat beyond the detector's quota.
    "pleural": ("pleural", _as_is),
    # 1 for a candidate found on the residue of the vessels' opening (a bulge on a vessel).
    "bulge": ("bulge", _as_is),
}


def candidate_feature_matrix(rows, names):
    """[N, F] float32 of the named features of labels.csv rows. ValueError names an
    unknown feature, or a column the export lacks."""
    import numpy as np
    for n in names:
        if n not in CANDIDATE_FEATURES:
            raise ValueError(f"unknown candidate feature {n!r} (known: {', '.join(CANDIDATE_FEATURES)})")
        if rows and CANDIDATE_FEATURES[n][0] not in rows[0]:
            raise ValueError(f"candidate feature {n!r} needs the column {CANDIDATE_FEATURES[n][0]!r}, "
                             "which this export's labels.csv lacks (export again with the current hilum)")
    cols = [CANDIDATE_FEATURES[n] for n in names]
    return np.array([[f(float(r[c])) for c, f in cols] for r in rows], dtype=np.float32).reshape(
        len(rows), len(names))


class FusionHead(nn.Module):
    def __init__(self, image_channels, image_tokens, text_dim, dim, heads, hidden, candidate_features=()):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        self.config = dict(image_channels=image_channels, image_tokens=image_tokens, text_dim=text_dim,
                           dim=dim, heads=heads, hidden=hidden)
        self.candidate_features = list(candidate_features)
        f = len(self.candidate_features)
        if f:
            self.config["candidate_features"] = self.candidate_features
            # Standardisation of the features (the training set's mean and 1 / std).
            self.register_buffer("feature_mean", torch.zeros(f))
            self.register_buffer("feature_scale", torch.ones(f))
        self.heads = heads
        self.image_proj = nn.Linear(image_channels, dim)
        self.image_pos = nn.Parameter(torch.zeros(image_tokens, dim))
        self.image_norm = nn.LayerNorm(dim, eps=1e-5)
        self.text_norm = nn.LayerNorm(text_dim, eps=1e-5)
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(text_dim, dim)
        self.v_proj = nn.Linear(text_dim, dim)
        self.o_proj = nn.Linear(dim, dim)
        self.fused_norm = nn.LayerNorm(dim, eps=1e-5)
        self.head = nn.Sequential(nn.Linear(2 * dim + f, hidden), nn.GELU(), nn.Linear(hidden, 2))
        nn.init.normal_(self.image_pos, std=0.02)

    def forward(self, image_tokens, text_states, text_mask=None, study_index=None, features=None):
        """Logits [N, 2] (nodule, malignancy).

        image_tokens: [N, k, c].
        text_states:  [T, d_text] (one study) or [S, T, d_text] (a batch of studies).
        text_mask:    [S, T] bool, True for real tokens (None: all real).
        study_index:  [N] long, the study of each candidate (None: all study 0).
        features:     [N, F] the candidate features named in the configuration (raw values).
        A study without any real token contributes no text term (as in C++ with T = 0).
        """
        n, k, _ = image_tokens.shape
        if text_states.dim() == 2:
            text_states = text_states.unsqueeze(0)
        s, t_len, _ = text_states.shape
        if study_index is None:
            study_index = torch.zeros(n, dtype=torch.long, device=image_tokens.device)
        if text_mask is None:
            text_mask = torch.ones(s, t_len, dtype=torch.bool, device=image_tokens.device)

        x = self.image_norm(self.image_proj(image_tokens) + self.image_pos)
        y = x
        if t_len > 0:
            t = self.text_norm(text_states)
            d = x.shape[-1]
            hd = d // self.heads
            q = self.q_proj(x).view(n, k, self.heads, hd).transpose(1, 2)                  # [N, H, k, hd]
            kt = self.k_proj(t).view(s, t_len, self.heads, hd).transpose(1, 2)[study_index]  # [N, H, T, hd]
            vt = self.v_proj(t).view(s, t_len, self.heads, hd).transpose(1, 2)[study_index]
            mask = text_mask[study_index]                                                  # [N, T]
            has_text = mask.any(dim=1)
            safe = mask | ~has_text[:, None]  # all-masked rows attend to everything, then get zeroed
            a = attention(q, kt, vt, safe[:, None, None, :])
            a = a.transpose(1, 2).reshape(n, k, d)
            a = self.o_proj(a) * has_text[:, None, None].to(a.dtype)
            y = x + a
        y = self.fused_norm(y)
        parts = [x.mean(dim=1), y.mean(dim=1)]
        if self.candidate_features:
            if features is None or features.shape != (n, len(self.candidate_features)):
                raise ValueError(f"the head needs features [N, {len(self.candidate_features)}]: "
                                 f"{', '.join(self.candidate_features)}")
            parts.append((features.to(x.dtype) - self.feature_mean) * self.feature_scale)
        return self.head(torch.cat(parts, dim=-1))


def attention(q, k, v, mask):
    """softmax(q k^T / sqrt(hd)) v with a boolean mask (True = attend)."""
    if hasattr(F, "scaled_dot_product_attention"):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    scores = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


def image_tokens_from_feature_maps(maps):
    """[N, C, h, w] -> [N, h*w, C], token index y*w + x (as fusion/fusion_head.h)."""
    n, c, h, w = maps.shape
    return maps.reshape(n, c, h * w).transpose(1, 2).contiguous()


_DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.int64: "I64"}


def save_safetensors(path, tensors, metadata=None):
    """Minimal safetensors writer (no dependency on the safetensors package)."""
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        t = t.detach().cpu().contiguous()
        data = t.view(torch.uint8).numpy().tobytes() if t.dtype == torch.bfloat16 else t.numpy().tobytes()
        header[name] = {"dtype": _DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def save_fusion_head(model, path):
    save_safetensors(path, model.state_dict(), {"hilum.fusion": json.dumps(model.config), "format": "pt"})


def load_fusion_head(path):
    """Reads a file written by save_fusion_head (F32/F16 tensors)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    config = json.loads(header.pop("__metadata__")["hilum.fusion"])
    model = FusionHead(**{k: config[k] for k in CONFIG_KEYS}, candidate_features=config.get("candidate_features", ()))
    import numpy as np
    dt = {"F32": np.float32, "F16": np.float16}
    state = {}
    for name, e in header.items():
        b, end = e["data_offsets"]
        arr = np.frombuffer(data[b:end], dtype=dt[e["dtype"]]).reshape(e["shape"])
        state[name] = torch.from_numpy(arr.astype(np.float32))
    model.load_state_dict(state)
    return model
