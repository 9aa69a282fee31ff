#!/usr/bin/env python3
"""PyTorch side of the ResNet benchmarks (bench_resnet is the Hilum side).

Times torchvision's ResNet (random weights; speed does not depend on them) at
the same (batch, side) cases, in the modes a PyTorch user would pick:

  GPU: eager (channels_last, cudnn.benchmark=True, fp16/bf16) and torch.compile
  CPU: eager (fp32, channels_last) and TorchScript frozen (conv-BN folded, oneDNN)

Prints a table and appends one JSON object per (mode, case) to --json.
torch.compile is slow to compile ResNet-152 (tens of seconds per shape): cases
are compiled in the order given until --compile-budget-s is spent; the rest
are reported as skipped.

  python3 bench/resnet_torch.py --device cuda --dtype f16 --cases 64x224,1x224 --modes eager,compile
  /usr/bin/python3 bench/resnet_torch.py --device cpu --threads 2 --cases 1x224 --modes eager,frozen
"""
import argparse
import json
import os
import sys
import time

import torch
import torchvision

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "golden"))
from resnet_golden import NarrowResNet  # noqa: E402
from torchvision.models.resnet import BasicBlock, Bottleneck  # noqa: E402

LAYERS = {18: (BasicBlock, [2, 2, 2, 2]), 34: (BasicBlock, [3, 4, 6, 3]), 50: (Bottleneck, [3, 4, 6, 3]),
          101: (Bottleneck, [3, 4, 23, 3]), 152: (Bottleneck, [3, 8, 36, 3])}
COMPILE_MODES = {"compile": "default", "compile-ro": "reduce-overhead", "compile-max": "max-autotune-no-cudagraphs"}
DTYPES = {"f16": torch.float16, "bf16": torch.bfloat16, "f32": torch.float32}


def build_model(depth, width, classes):
    if width == 64:
        return getattr(torchvision.models, f"resnet{depth}")(num_classes=classes)
    block, layers = LAYERS[depth]
    return NarrowResNet(block, layers, width=width, num_classes=classes)


def gflop_per_image(model, side):
    """Counts 2 x multiply-adds of the convolutions and the fc layer with hooks."""
    flops = [0]

    def hook(m, inp, out):
        if isinstance(m, torch.nn.Conv2d):
            k = m.kernel_size[0] * m.kernel_size[1] * m.in_channels // m.groups
            flops[0] += 2 * k * out.numel()
        elif isinstance(m, torch.nn.Linear):
            flops[0] += 2 * m.in_features * out.numel()

    hooks = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    with torch.no_grad():
        model(torch.zeros(1, 3, side, side))
    for h in hooks:
        h.remove()
    return flops[0] / 1e9


def timed(fn, x, sync, min_time, min_iters):
    """Mean seconds per call over at least min_time and min_iters calls."""
    iters, start = 0, time.perf_counter()
    while True:
        fn(x)
        iters += 1
        if iters >= min_iters:
            sync()
            elapsed = time.perf_counter() - start
            if elapsed >= min_time:
                return elapsed / iters, iters


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    ap.add_argument("--dtype", default=None, choices=list(DTYPES))
    ap.add_argument("--modes", default=None,
                    help="eager, compile (torch.compile default mode), compile-ro (reduce-overhead: CUDA graphs), "
                         "compile-max (max-autotune-no-cudagraphs), frozen (TorchScript, CPU); "
                         "default eager,compile on the GPU, eager,frozen on the CPU")
    ap.add_argument("--cases", default="1x224,64x224,256x224,256x64,1024x64")
    ap.add_argument("--depth", type=int, default=152)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--classes", type=int, default=1000)
    ap.add_argument("--min-time", type=float, default=2.0)
    ap.add_argument("--min-iters", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0: PyTorch's default)")
    ap.add_argument("--compile-budget-s", type=float, default=300.0)
    ap.add_argument("--peak-tflops", type=float, default=989.5)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    cuda = args.device == "cuda"
    dtype = DTYPES[args.dtype or ("f16" if cuda else "f32")]
    modes = (args.modes or ("eager,compile" if cuda else "eager,frozen")).split(",")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if cuda:
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    device = torch.device(args.device)
    model = build_model(args.depth, args.width, args.classes).eval()
    gflops = {}
    model = model.to(device=device, dtype=dtype, memory_format=torch.channels_last)
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    name = f"resnet{args.depth}" + ("" if args.width == 64 else f"-w{args.width}")
    print(f"# torch {torch.__version__}, torchvision {torchvision.__version__}, {name} {args.device} {dtype}, "
          f"threads {torch.get_num_threads()}" + (f", {torch.cuda.get_device_name()}" if cuda else ""))
    print(f"{'mode':<14} {'case':<10} {'iters':>6} {'first_s':>9} {'ms/batch':>10} {'images/s':>10} {'TFLOP/s':>8} "
          f"{'peak_frac':>9}")
    out = open(args.json, "a") if args.json else None
    compile_spent = 0.0
    cases = [tuple(int(v) for v in c.split("x")) for c in args.cases.split(",")]
    for mode in modes:
        compiled = None
        for batch, side in cases:
            if side not in gflops:
                gflops[side] = gflop_per_image(build_model(args.depth, args.width, args.classes).eval(), side)
            record = {"impl": f"torch-{mode}", "torch": torch.__version__, "model": name, "device": args.device,
                      "dtype": str(dtype).replace("torch.", ""), "batch": batch, "side": side,
                      "threads": torch.get_num_threads()}
            if mode.startswith("compile") and compile_spent > args.compile_budget_s:
                record["skipped"] = f"compile budget of {args.compile_budget_s:.0f} s spent"
                print(f"{mode:<14} {batch}x{side:<7} skipped ({record['skipped']})")
                if out:
                    out.write(json.dumps(record) + "\n")
                    out.flush()
                continue
            x = torch.randn(batch, 3, side, side, device=device, dtype=dtype).contiguous(
                memory_format=torch.channels_last)
            try:
                with torch.inference_mode():
                    t0 = time.perf_counter()
                    if mode == "eager":
                        fn = model
                    elif mode in COMPILE_MODES:
                        if compiled is None:
                            compiled = torch.compile(model, mode=COMPILE_MODES[mode], dynamic=False)
                        fn = compiled
                    elif mode == "frozen":
                        fn = torch.jit.freeze(torch.jit.trace(model, x))
                    else:
                        raise ValueError(f"unknown mode {mode}")
                    for _ in range(3):  # first call compiles / plans; the others warm up
                        fn(x)
                    sync()
                    first = time.perf_counter() - t0
                    if mode in COMPILE_MODES:
                        compile_spent += first
                    sec, iters = timed(fn, x, sync, args.min_time, args.min_iters)
            except Exception as e:  # a failing mode must not stop the others
                record["error"] = f"{type(e).__name__}: {e}"[:300]
                print(f"{mode:<14} {batch}x{side:<7} failed: {record['error']}")
                if out:
                    out.write(json.dumps(record) + "\n")
                    out.flush()
                continue
            ips = batch / sec
            tflops = gflops[side] * ips / 1e3
            frac = tflops / args.peak_tflops if cuda else 0.0
            record.update({"iters": iters, "first_call_s": first, "ms_per_batch": sec * 1e3, "images_per_s": ips,
                           "gflop_per_image": gflops[side], "tflops": tflops, "peak_fraction": frac})
            print(f"{mode:<14} {batch}x{side:<7} {iters:>6} {first:>9.2f} {sec * 1e3:>10.3f} {ips:>10.1f} "
                  f"{tflops:>8.2f} {frac:>9.4f}", flush=True)
            if out:
                out.write(json.dumps(record) + "\n")
                out.flush()
            del x
            if cuda:
                torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
