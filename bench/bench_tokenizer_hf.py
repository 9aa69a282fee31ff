#!/usr/bin/env python3
"""The Hugging Face tokenizers library (Python) on the text and tokenizer files
of bench_tokenizer.cpp; prints JSON timings. Runs where `tokenizers` is
installed (the GPU machine): python3 bench/bench_tokenizer_hf.py"""
import json
import pathlib
import statistics
import time

import tokenizers

root = pathlib.Path(__file__).resolve().parent.parent
golden = root / "tests" / "golden"
corpus = json.loads((golden / "tokenizer_golden_spec.json").read_text(encoding="utf-8"))["long_text"]
text = "".join(f"Section {k}:\n{corpus}\n" for k in range(200))
out = {"library": f"tokenizers {tokenizers.__version__} (Python)", "bytes": len(text.encode()), "styles": {}}
for style in ["olmoe", "llama3", "qwen2", "deepseek_v3", "mixtral"]:
    tok = tokenizers.Tokenizer.from_file(str(golden / "tokenizers" / style / "tokenizer.json"))
    times = []
    for _ in range(7):
        t0 = time.perf_counter()
        ids = tok.encode(text, add_special_tokens=False).ids
        times.append((time.perf_counter() - t0) * 1000)
    out["styles"][style] = {"encode_ms": statistics.median(times[1:]), "tokens": len(ids)}
print(json.dumps(out))
