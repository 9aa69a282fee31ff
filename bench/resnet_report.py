#!/usr/bin/env python3
"""Side-by-side table of ResNet benchmark results (JSON lines from bench_resnet
and bench/resnet_torch.py) as Markdown, with the ratios the targets are about.

  python3 bench/resnet_report.py bench.json [--title T] [--targets]
"""
import argparse
import json
from collections import OrderedDict


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("json")
    ap.add_argument("--title", default="ResNet inference")
    ap.add_argument("--targets", action="store_true", help="check the GPU targets (1.3x compile at 64x224, 3 ms at 1x224)")
    args = ap.parse_args()

    rows = [json.loads(line) for line in open(args.json) if line.strip()]
    impls = OrderedDict()
    cases = OrderedDict()
    for r in rows:
        impl = r["engine"] if r["impl"] == "hilum" else r["impl"]
        impls[impl] = True
        cases[(r["batch"], r["side"])] = True
    table = {}
    for r in rows:
        impl = r["engine"] if r["impl"] == "hilum" else r["impl"]
        table[(impl, r["batch"], r["side"])] = r

    hilum = [i for i in impls if not i.startswith("torch")]
    torch_impls = [i for i in impls if i.startswith("torch")]
    model = next((r.get("model") for r in rows if r["impl"] == "hilum"), "")
    out = [f"### {args.title}", "", f"Model: {model}. Images/s (higher is better); ms per batch in brackets.", ""]
    header = "| batch x side | " + " | ".join(impls) + " | " + " | ".join(
        f"{h} / {t}" for h in hilum for t in torch_impls) + " |"
    out.append(header)
    out.append("|" + "---|" * (1 + len(impls) + len(hilum) * len(torch_impls)))
    for (b, s) in cases:
        cells = []
        for i in impls:
            r = table.get((i, b, s))
            if r is None:
                cells.append("-")
            elif "images_per_s" in r:
                ips = r["images_per_s"]
                cells.append((f"{ips:,.0f}" if ips >= 100 else f"{ips:.3g}") + f" ({r['ms_per_batch']:.2f} ms)")
            else:
                cells.append(r.get("skipped") or r.get("error", "?")[:60])
        ratios = []
        for h in hilum:
            for t in torch_impls:
                a, c = table.get((h, b, s)), table.get((t, b, s))
                if a and c and "images_per_s" in a and "images_per_s" in c:
                    ratios.append(f"{a['images_per_s'] / c['images_per_s']:.2f}x")
                else:
                    ratios.append("-")
        out.append(f"| {b} x {s}^2 | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
    out.append("")
    for h in hilum:
        fr = [f"{b}x{s}: {table[(h, b, s)]['tflops']:.0f} TFLOP/s = {100 * table[(h, b, s)]['peak_fraction']:.1f} %"
              for (b, s) in cases if (h, b, s) in table and "tflops" in table[(h, b, s)]
              and table[(h, b, s)].get("peak_fraction")]
        if fr:
            out.append(f"{h} fraction of the dense fp16 tensor-core peak (989.5 TFLOP/s): " + "; ".join(fr) + ".")
    if args.targets and hilum:
        h = hilum[0]
        out.append("")
        r64, c64 = table.get((h, 64, 224)), table.get(("torch-compile", 64, 224))
        if r64 and c64 and "images_per_s" in r64 and "images_per_s" in c64:
            ratio = r64["images_per_s"] / c64["images_per_s"]
            out.append(f"Target >= 1.3x torch.compile at batch 64 / 224^2: {ratio:.2f}x "
                       f"({'met' if ratio >= 1.3 else 'NOT met'}).")
        r1 = table.get((h, 1, 224))
        if r1 and "ms_per_batch" in r1:
            out.append(f"Target batch-1 latency <= 3 ms: {r1['ms_per_batch']:.2f} ms "
                       f"({'met' if r1['ms_per_batch'] <= 3.0 else 'NOT met'}).")
    print("\n".join(out))


if __name__ == "__main__":
    main()
