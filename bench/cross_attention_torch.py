#!/usr/bin/env python3
"""PyTorch side of the cross-attention benchmark: torch.nn.functional.
scaled_dot_product_attention on the fusion head's shapes, timed with CUDA events.
Prints one JSON object per line, like build-gpu/bench/cross_attention_bench.

Two layouts are measured:
  sdpa per-candidate  q [N, H, k, D], k/v [N, H, T, D] (the text's keys/values
                      repeated per candidate, contiguous): the issue's baseline
  sdpa flattened      q [1, H, N*k, D], k/v [1, H, T, D]: one long query
                      sequence, the formulation the Hilum kernel uses
FLOPs = 4 * N * k * T * H * D for both.
"""

import argparse
import json

import torch
import torch.nn.functional as F


def timed(fn, warmup, iters):
    for _ in range(warmup):
        fn()
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize()
    start.record()
    for _ in range(iters):
        fn()
    stop.record()
    torch.cuda.synchronize()
    return start.elapsed_time(stop) / iters


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--candidates", type=int, default=256)
    p.add_argument("--tokens", type=int, default=49)
    p.add_argument("--keys", type=int, default=512)
    p.add_argument("--heads", type=int, default=16)
    p.add_argument("--head-dim", type=int, default=64)
    p.add_argument("--iters", type=int, default=100)
    a = p.parse_args()
    n, k, t, h, d = a.candidates, a.tokens, a.keys, a.heads, a.head_dim
    flops = 4.0 * n * k * t * h * d
    dev = torch.device("cuda")
    name = torch.cuda.get_device_name(0)
    for dtype, label in ((torch.float16, "f16"), (torch.bfloat16, "bf16")):
        g = torch.Generator(device=dev).manual_seed(1)
        q = torch.rand(n, h, k, d, device=dev, dtype=dtype, generator=g) * 2 - 1
        kt = torch.rand(1, h, t, d, device=dev, dtype=dtype, generator=g) * 2 - 1
        vt = torch.rand(1, h, t, d, device=dev, dtype=dtype, generator=g) * 2 - 1
        k_rep, v_rep = kt.expand(n, h, t, d).contiguous(), vt.expand(n, h, t, d).contiguous()
        q_flat = q.transpose(0, 1).reshape(1, h, n * k, d).contiguous()
        runs = {
            "sdpa per-candidate": lambda: F.scaled_dot_product_attention(q, k_rep, v_rep),
            "sdpa flattened": lambda: F.scaled_dot_product_attention(q_flat, kt, vt),
        }
        with torch.no_grad():
            for impl, fn in runs.items():
                ms = timed(fn, 10, a.iters)
                print(json.dumps({"impl": impl, "dtype": label, "candidates": n, "tokens": k, "keys": t, "heads": h,
                                  "head_dim": d, "ms": round(ms, 5), "tflops": round(flops / (ms * 1e-3) / 1e12, 2),
                                  "device": name, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
