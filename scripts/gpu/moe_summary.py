#!/usr/bin/env python3
"""Compact summary of the text engine's GPU job (scripts/gpu/moe.sh):

    python3 scripts/gpu/moe_summary.py OUT_DIR

Reads OUT_DIR/gpu_tests.txt (ctest output), OUT_DIR/bench_moe.json (Google
Benchmark, bench/bench_moe.cpp) and OUT_DIR/bench_torch.json
(bench/moe_torch.py) and prints the tests that passed and failed and a tok/s
table of every kernel choice against transformers and the issue's targets.
Missing inputs are reported, never fatal.
"""

import json
import os
import re
import sys

VARIANTS = ["first_gen", "fused", "fused_pdl", "fused_padded"]
# (label, bench model, phase, batch, transformers model, target text, target tok/s or None = beat transformers)
ROWS = [
    ("OLMoE-1B-7B prefill, 512 tokens", "olmoe_1b_7b", "prefill", 512, "olmoe", ">= 40,000", 40000.0),
    ("OLMoE-1B-7B decode, batch 1", "olmoe_1b_7b", "decode", 1, "olmoe", ">= 1,000", 1000.0),
    ("OLMoE-1B-7B decode, batch 16", "olmoe_1b_7b", "decode", 16, "olmoe", "> transformers", None),
    ("DeepSeek-V2-Lite decode, batch 1", "deepseek_v2_lite", "decode", 1, "v2lite", "reported", 0.0),
]


def load_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        print(f"  ({os.path.basename(path)}: {e})")
        return None


def tests(out):
    path = os.path.join(out, "gpu_tests.txt")
    try:
        text = open(path, errors="replace").read()
    except OSError as e:
        print(f"GPU tests: no output ({e})")
        return
    m = re.search(r"(\d+)% tests passed, (\d+) tests failed out of (\d+)", text)
    failed = re.findall(r"^\s*\d+ - (\S+) \((Failed|Timeout|SEGFAULT|Subprocess aborted|Not Run)\)", text, re.M)
    skipped = len(re.findall(r"\*\*\*Skipped|\(Skipped\)", text))
    if m:
        total, nfail = int(m.group(3)), int(m.group(2))
        print(f"GPU tests: {total - nfail}/{total} passed" + (f", {skipped} skipped" if skipped else ""))
    else:
        print("GPU tests: no ctest summary line (build failure or timeout?); see gpu_tests.txt")
    for name, why in failed:
        print(f"  FAILED {name} ({why})")


def bench_rates(out):
    data = load_json(os.path.join(out, "bench_moe.json"))
    rates = {}
    for b in (data or {}).get("benchmarks", []):
        parts = b.get("name", "").split("/")
        if len(parts) < 5 or parts[0] != "Cuda":
            continue
        model, phase, variant, arg = parts[1], parts[2], parts[3], parts[4]
        try:
            arg = int(arg)
        except ValueError:
            continue
        key = (model, phase, arg, variant)
        if b.get("error_occurred"):
            rates[key] = "error: " + str(b.get("error_message", ""))[:60]
        elif "tok/s" in b:
            rates[key] = float(b["tok/s"])
            if variant == "fused_pdl" and b.get("pdl", 1) == 0:
                print(f"  note: {b['name']} fell back to plain launches (programmatic launch refused)")
    return rates


def torch_rates(out):
    data = load_json(os.path.join(out, "bench_torch.json"))
    rates = {}
    for r in (data or {}).get("results", []):
        n = r["tokens"] if r["phase"] == "prefill" else r["batch"]
        rates[(r["model"], r["phase"], n)] = float(r["tok_per_s"])
    return rates


def fmt(v):
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    return f"{v:,.0f}"


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "out"
    print("== text engine on the GPU (scripts/gpu/moe.sh)")
    tests(out)
    hil = bench_rates(out)
    ref = torch_rates(out)
    print()
    print("tok/s (random bf16 weights; first_gen = first-generation kernels, fused = fused decode /")
    print("tensor-core prefill (the default), fused_pdl = fused with programmatic dependent launch,")
    print("fused_padded = tensor-core attention with padded cuBLAS expert GEMMs)")
    head = f"{'':34}" + "".join(f"{v:>13}" for v in VARIANTS) + f"{'transformers':>14}{'best/HF':>9}  target"
    print(head)
    for label, model, phase, n, tmodel, target_text, target in ROWS:
        vals = [hil.get((model, phase, n, v)) for v in VARIANTS]
        nums = [v for v in vals if isinstance(v, float)]
        best = max(nums) if nums else None
        hf = ref.get((tmodel, phase, n))
        ratio = f"{best / hf:.1f}x" if best and hf else "-"
        if best is None:
            verdict = "no result"
        elif target is None:
            verdict = "MET" if hf and best > hf else ("not met" if hf else "no transformers number")
        elif target == 0.0:
            verdict = "reported"
        else:
            verdict = "MET" if best >= target else "not met"
        cells = "".join(f"{fmt(v)[:12]:>13}" for v in vals)
        print(f"{label:34}{cells}{fmt(hf):>14}{ratio:>9}  {target_text} -> {verdict}")
    errors = [(k, v) for k, v in hil.items() if isinstance(v, str)]
    for k, v in errors:
        print(f"  {'/'.join(map(str, k))}: {v}")


if __name__ == "__main__":
    main()
