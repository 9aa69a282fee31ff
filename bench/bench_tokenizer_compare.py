#!/usr/bin/env python3
"""Side by side: hilum's tokenizer (bench_tokenizer) and the Hugging Face
tokenizers library on the same 1 MB text and tokenizer.json files, in one run.

  bench/bench_tokenizer_compare.py --bench build/bench/bench_tokenizer --hf node   # npm binding (here)
  bench/bench_tokenizer_compare.py --bench build-gpu/bench/bench_tokenizer --hf python  # GPU machine

Prints a Markdown table (also written to --out when given) with the ratio."""
import argparse
import datetime
import json
import pathlib
import platform
import subprocess
import sys

root = pathlib.Path(__file__).resolve().parent.parent
ap = argparse.ArgumentParser()
ap.add_argument("--bench", required=True)
ap.add_argument("--hf", choices=["node", "python"], required=True)
ap.add_argument("--python", default="python3", help="interpreter that has tokenizers (with --hf python)")
ap.add_argument("--out")
a = ap.parse_args()

styles = ["olmoe", "llama3", "qwen2", "deepseek_v3", "mixtral"]
cmd = [a.bench, "--benchmark_format=json", "--benchmark_filter=BM_Encode/", "--benchmark_repetitions=5",
       "--benchmark_report_aggregates_only=true"]
ours = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
ours_ms = {}
for b in ours["benchmarks"]:
    if b.get("aggregate_name") == "median":
        style = b["run_name"].split("/")[1]
        ours_ms[style] = b["real_time"]  # unit: ms
hf_cmd = (["node", str(root / "bench" / "bench_tokenizer_hf.mjs")] if a.hf == "node"
          else [a.python, str(root / "bench" / "bench_tokenizer_hf.py")])
hf = json.loads(subprocess.run(hf_cmd, check=True, capture_output=True, text=True).stdout)

lines = [f"Encode of {hf['bytes'] / 1e6:.2f} MB (no special tokens), median wall time; {hf['library']} vs hilum.",
         f"Command: {' '.join(sys.argv)}; {datetime.date.today()}; {platform.node()} ({platform.processor() or platform.machine()}).",
         "", "| style | tokens | hilum ms | HF ms | hilum tokens/s | HF tokens/s | speed-up (HF ms / hilum ms) |",
         "|---|---:|---:|---:|---:|---:|---:|"]
for s in styles:
    h = hf["styles"][s]
    o = ours_ms[s]
    lines.append(f"| {s} | {h['tokens']} | {o:.1f} | {h['encode_ms']:.1f} | {h['tokens'] / o * 1e3 / 1e6:.2f} M "
                 f"| {h['tokens'] / h['encode_ms'] * 1e3 / 1e6:.2f} M | {h['encode_ms'] / o:.2f} |")
report = "\n".join(lines)
print(report)
if a.out:
    pathlib.Path(a.out).write_text(report + "\n")
