#!/usr/bin/env python3
"""Tokenizer golden files with the Hugging Face tokenizers library (Python).

Twin of tokenizer_golden.mjs (which runs the same Rust crate through its npm
binding and wrote the committed files). Both read tokenizer_golden_spec.json.

  python3 tests/golden/tokenizer_golden.py --check tests/golden/tokenizers
      Loads the committed tokenizer.json files with this library and compares
      its ids and decodes with the committed expected.json (exit 1 on mismatch).
  python3 tests/golden/tokenizer_golden.py --out DIR
      Trains every style afresh (BpeTrainer on the embedded corpus, first
      num_merges merges kept), writes DIR/<style>/tokenizer.json and
      DIR/expected.json. Copy DIR over tests/golden/tokenizers to adopt them.
"""
import argparse
import json
import os
import pathlib
import sys
import tempfile

import tokenizers
from tokenizers import Tokenizer
from tokenizers.trainers import BpeTrainer

HERE = pathlib.Path(__file__).resolve().parent
SPEC = json.loads((HERE / "tokenizer_golden_spec.json").read_text(encoding="utf-8"))


def byte_level_alphabet():
    printable = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    chars, n = [], 0
    for b in range(256):
        if b in printable:
            chars.append(chr(b))
        else:
            chars.append(chr(256 + n))
            n += 1
    return chars


def empty_tokenizer(normalizer, pre_tokenizer):
    return {"version": "1.0", "truncation": None, "padding": None, "added_tokens": [],
            "normalizer": normalizer, "pre_tokenizer": pre_tokenizer, "post_processor": None, "decoder": None,
            "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                      "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                      "ignore_merges": False, "vocab": {}, "merges": []}}


def build_style(style, corpus_file):
    norm = style["train_normalizer"] if "train_normalizer" in style else style["normalizer"]
    pre = style["train_pre_tokenizer"] if "train_pre_tokenizer" in style else style["pre_tokenizer"]
    trainer_tok = Tokenizer.from_str(json.dumps(empty_tokenizer(norm, pre)))
    # The defaults of the Rust BpeTrainer (what the npm binding's train() uses).
    trainer_tok.train([corpus_file], trainer=BpeTrainer(vocab_size=30000, min_frequency=0, show_progress=False))
    trained = json.loads(trainer_tok.to_str())["model"]
    merges = [m if isinstance(m, list) else m.split(" ", 1) for m in trained["merges"]]
    products = {a + b for a, b in merges}
    alphabet = [t for t, _ in sorted(trained["vocab"].items(), key=lambda kv: kv[1]) if t not in products]

    vocab = {}

    def add(t):
        if t not in vocab:
            vocab[t] = len(vocab)

    for t in style.get("specials_in_vocab", []):
        add(t)
    if style.get("byte_fallback"):
        for b in range(256):
            add(f"<0x{b:02X}>")
    for t in (byte_level_alphabet() if style["byte_level"] else alphabet):
        add(t)
    kept = merges[:min(style["num_merges"], len(merges))]
    for a, b in kept:
        add(a + b)
    for t in style.get("extra_vocab", []):
        add(t)

    next_id = len(vocab)
    added = []
    for t in style["added_tokens"]:
        if t["content"] in vocab:
            tid = vocab[t["content"]]
        else:
            tid, next_id = next_id, next_id + 1
        added.append({"id": tid, **t})
    id_of = {t["content"]: t["id"] for t in added}
    post = json.loads(json.dumps(style["post_processor"]))

    def fill(p):
        if not p:
            return
        if p.get("type") == "TemplateProcessing":
            for st in p["special_tokens"].values():
                st["ids"] = [id_of.get(t, vocab.get(t)) for t in st["tokens"]]
        for q in p.get("processors", []):
            fill(q)

    fill(post)
    m = style["model"]
    return {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
            "normalizer": style["normalizer"], "pre_tokenizer": style["pre_tokenizer"], "post_processor": post,
            "decoder": style["decoder"],
            "model": {"type": "BPE", "dropout": None, "unk_token": m["unk_token"], "continuing_subword_prefix": None,
                      "end_of_word_suffix": None, "fuse_unk": m["fuse_unk"], "byte_fallback": m["byte_fallback"],
                      "ignore_merges": m["ignore_merges"], "vocab": vocab,
                      "merges": [f"{a} {b}" for a, b in kept] if style["merges_format"] == "strings" else kept}}


def fnv1a(ids):
    h = 0x811C9DC5
    for i in ids:
        for k in range(4):
            h ^= (i >> (8 * k)) & 0xFF
            h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def expected_for(style, tok):
    cases = []
    for s in SPEC["cases"]:
        ids = tok.encode(s, add_special_tokens=True).ids
        cases.append({"text": s, "ids": ids, "ids_no_special": tok.encode(s, add_special_tokens=False).ids,
                      "decode": tok.decode(ids, skip_special_tokens=False),
                      "decode_skip_special": tok.decode(ids, skip_special_tokens=True)})
    decode_cases = []
    for tokens in style.get("decode_tokens", []):
        ids = [tok.token_to_id(t) for t in tokens]
        if any(i is None for i in ids):
            raise SystemExit(f"{style['name']}: a decode token is not in the vocabulary: {tokens}")
        decode_cases.append({"tokens": tokens, "ids": ids, "decode": tok.decode(ids, skip_special_tokens=False),
                             "decode_skip_special": tok.decode(ids, skip_special_tokens=True)})
    long_ids = tok.encode(SPEC["long_text"], add_special_tokens=True).ids
    return {"vocab_size": tok.get_vocab_size(with_added_tokens=True),
            "long_text": {"count": len(long_ids), "fnv1a": fnv1a(long_ids),
                          "decode_equal": tok.decode(long_ids, skip_special_tokens=True) == SPEC["long_text"]},
            "decode_cases": decode_cases, "cases": cases}


def write_expected(path, expected):
    d = lambda o: json.dumps(o, ensure_ascii=False, separators=(",", ":"))
    lines = [f'{{"generator": {d(expected["generator"])}, "styles": {{']
    names = list(expected["styles"])
    for k, name in enumerate(names):
        st = expected["styles"][name]
        lines.append(f' {d(name)}: {{"vocab_size": {st["vocab_size"]}, "long_text": {d(st["long_text"])},')
        lines.append('  "decode_cases": [')
        lines.append(",\n".join("   " + d(c) for c in st["decode_cases"]))
        lines.append("  ],")
        lines.append('  "cases": [')
        lines.append(",\n".join("   " + d(c) for c in st["cases"]))
        lines.append("  ]}" + ("," if k + 1 < len(names) else ""))
    lines.append("}}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def build(out):
    out.mkdir(parents=True, exist_ok=True)
    expected = {"generator": f"tokenizers {tokenizers.__version__} (Python)", "styles": {}}
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8") as f:
        f.write("\n".join(SPEC["corpus"]) + "\n")
        corpus_file = f.name
    try:
        for style in SPEC["styles"]:
            tj = build_style(style, corpus_file)
            text = json.dumps(tj, ensure_ascii=False, indent=1) + "\n"
            tok = Tokenizer.from_str(text)
            (out / style["name"]).mkdir(exist_ok=True)
            (out / style["name"] / "tokenizer.json").write_text(text, encoding="utf-8")
            expected["styles"][style["name"]] = expected_for(style, tok)
            print(f"{style['name']}: {len(tj['model']['vocab'])} vocab, {len(tj['model']['merges'])} merges")
    finally:
        os.unlink(corpus_file)
    write_expected(out / "expected.json", expected)
    print(f"wrote {out}/expected.json")


def check(directory):
    committed = json.loads((directory / "expected.json").read_text(encoding="utf-8"))
    print(f"committed: {committed['generator']}; checking with tokenizers {tokenizers.__version__} (Python)")
    failures = 0
    for style in SPEC["styles"]:
        name = style["name"]
        tok = Tokenizer.from_file(str(directory / name / "tokenizer.json"))
        got = expected_for(style, tok)
        want = committed["styles"][name]
        bad = []
        for key in ("vocab_size", "long_text"):
            if got[key] != want[key]:
                bad.append(f"{key}: {got[key]} != {want[key]}")
        for g, w in zip(got["cases"] + got["decode_cases"], want["cases"] + want["decode_cases"]):
            for key in ("ids", "ids_no_special", "decode", "decode_skip_special"):
                if key in w and g.get(key) != w[key]:
                    bad.append(f"{key} of {json.dumps(w.get('text', w.get('tokens')), ensure_ascii=False)[:80]}: "
                               f"{json.dumps(g.get(key), ensure_ascii=False)[:120]} != "
                               f"{json.dumps(w[key], ensure_ascii=False)[:120]}")
        failures += len(bad)
        print(f"{name}: {'OK' if not bad else f'{len(bad)} differences'}")
        for b in bad[:20]:
            print("   ", b)
    print("all equal" if failures == 0 else f"{failures} differences")
    return 0 if failures == 0 else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--out", type=pathlib.Path, help="write freshly trained tokenizers and expected.json here")
    g.add_argument("--check", type=pathlib.Path, help="compare the library with the files in this folder")
    a = ap.parse_args()
    if a.check:
        sys.exit(check(a.check))
    build(a.out)


if __name__ == "__main__":
    main()
