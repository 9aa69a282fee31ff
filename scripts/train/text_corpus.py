"""The general text corpus for the demo text model.

Two sources, both free to use and both produced on this machine:
  1. docstrings of the Python 3.11 standard library in /usr/lib/python3.11
     (PSF License 2.0): general technical English prose;
  2. synthetic report-drafting and question-answer examples generated here from
     random structured nodule findings, in the prompt format that Hilum's
     narrative drafter and assistant use (app/narrative.cpp):
        <|findings|> ...structured lines... <|impression|> ...draft...<|endoftext|>
        <|findings|> ... <|question|> ... <|answer|> ...<|endoftext|>
No clinical notes are in this corpus: they are the medical adapter's data.
"""
import ast
import pathlib
import random

SPECIAL = ["<|endoftext|>", "<|pad|>", "<|findings|>", "<|impression|>", "<|question|>", "<|answer|>", "<|note|>"]

LOBES = ["right upper lobe", "right middle lobe", "right lower lobe", "left upper lobe", "lingula",
         "left lower lobe"]
TYPES = ["solid", "part-solid", "ground-glass"]


def python_docstrings(root="/usr/lib/python3.11", min_len=80):
    out = []
    for p in sorted(pathlib.Path(root).rglob("*.py")):
        parts = set(p.parts)
        if {"test", "tests", "idlelib", "site-packages", "dist-packages", "lib2to3"} & parts:
            continue
        try:
            tree = ast.parse(p.read_text(encoding="utf-8"))
        except Exception:
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                d = ast.get_docstring(node)
                if d and len(d) >= min_len:
                    out.append(d.strip())
    return out


def lung_rads(kind, mean, solid):
    if kind == "solid":
        return "2" if mean < 6 else "3" if mean < 8 else "4A" if mean < 15 else "4B"
    if kind == "part-solid":
        if mean < 6:
            return "2"
        return "3" if solid < 6 else "4A" if solid < 8 else "4B"
    return "2" if mean < 30 else "3"


def random_findings(rng):
    n = rng.choice([0, 1, 1, 1, 2, 2, 3])
    items = []
    for i in range(n):
        kind = rng.choice(TYPES)
        long_ax = round(rng.uniform(3, 30), 1)
        short_ax = round(long_ax * rng.uniform(0.6, 1.0), 1)
        mean = round((long_ax + short_ax) / 2, 1)
        solid = round(mean * rng.uniform(0.2, 0.7), 1) if kind == "part-solid" else (mean if kind == "solid" else 0.0)
        items.append({
            "id": i + 1, "lobe": rng.choice(LOBES), "type": kind, "long": long_ax, "short": short_ax,
            "mean": mean, "solid": solid, "volume": int(3.14159 / 6 * long_ax * short_ax * short_ax),
            "prob": round(rng.uniform(0.5, 0.99), 2), "malig": round(rng.uniform(0.01, 0.95), 2),
            "rads": lung_rads(kind, mean, solid),
        })
    return items


def findings_block(items):
    if not items:
        return "No nodule found."
    lines = []
    for f in items:
        solid = f", solid component {f['solid']} mm" if f["type"] == "part-solid" else ""
        lines.append(f"Nodule {f['id']}: {f['lobe']}, {f['type']}, {f['long']} x {f['short']} mm "
                     f"(mean {f['mean']} mm){solid}, volume {f['volume']} mm3, probability {f['prob']}, "
                     f"malignancy {f['malig']}, Lung-RADS {f['rads']}.")
    return "\n".join(lines)


MANAGEMENT = {
    "1": "continue annual screening with low-dose CT in 12 months",
    "2": "continue annual screening with low-dose CT in 12 months",
    "3": "low-dose CT in 6 months",
    "4A": "low-dose CT in 3 months; PET/CT may be considered if there is a solid component of 8 mm or more",
    "4B": "diagnostic chest CT with or without contrast, PET/CT and/or tissue sampling",
}


def impression(items, rng):
    if not items:
        return "No pulmonary nodule identified. Lung-RADS 1. Recommendation: " + MANAGEMENT["1"] + "."
    parts = []
    worst = max(items, key=lambda f: ["1", "2", "3", "4A", "4B"].index(f["rads"]))
    for f in items:
        verb = rng.choice(["measuring", "of", "with dimensions of"])
        parts.append(f"{f['id']}. {f['type'].capitalize()} nodule in the {f['lobe']} {verb} {f['long']} x "
                     f"{f['short']} mm (Lung-RADS {f['rads']}).")
    parts.append(f"Overall Lung-RADS {worst['rads']}. Recommendation: {MANAGEMENT[worst['rads']]}.")
    return " ".join(parts)


QUESTIONS = [
    ("How many nodules were found?", lambda it: f"{len(it)} nodule{'s' if len(it) != 1 else ''} {'was' if len(it) == 1 else 'were'} found."),
    ("What is the largest nodule?", lambda it: (lambda f: f"Nodule {f['id']} in the {f['lobe']}, {f['long']} x {f['short']} mm.")(max(it, key=lambda f: f["long"])) if it else "There is no nodule."),
    ("What is the Lung-RADS category?", lambda it: "Lung-RADS " + (max((f["rads"] for f in it), key=["1", "2", "3", "4A", "4B"].index) if it else "1") + "."),
    ("Where is nodule 1?", lambda it: f"Nodule 1 is in the {it[0]['lobe']}." if it else "There is no nodule."),
    ("What type is nodule 1?", lambda it: f"Nodule 1 is {it[0]['type']}." if it else "There is no nodule."),
    ("What follow-up is recommended?", lambda it: "Recommendation: " + MANAGEMENT[max((f["rads"] for f in it), key=["1", "2", "3", "4A", "4B"].index) if it else "1"] + "."),
]


def report_examples(n, seed):
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        items = random_findings(rng)
        block = findings_block(items)
        if rng.random() < 0.6:
            out.append(f"<|findings|>\n{block}\n<|impression|>\n{impression(items, rng)}<|endoftext|>")
        else:
            q, a = rng.choice(QUESTIONS)
            out.append(f"<|findings|>\n{block}\n<|question|>\n{q}\n<|answer|>\n{a(items)}<|endoftext|>")
    return out


def write_docstrings(path):
    """The docstrings of this machine's Python 3.11 as JSON (xz when path ends in .xz)."""
    import json
    import lzma
    strings = python_docstrings()
    opener = lzma.open if str(path).endswith(".xz") else open
    with opener(path, "wt", encoding="utf-8") as f:
        json.dump(strings, f)
    return len(strings)


def general_corpus(seed=0, n_reports=20000, docstrings_file=None):
    """docstrings_file: a JSON list of docstrings (write_docstrings()), for machines
    without /usr/lib/python3.11 (the GPU machine); default: read them here."""
    if docstrings_file:
        import json
        import lzma
        opener = lzma.open if str(docstrings_file).endswith(".xz") else open
        with opener(docstrings_file, "rt", encoding="utf-8") as f:
            strings = json.load(f)
    else:
        strings = python_docstrings()
    if not strings:
        raise SystemExit("general corpus: no Python docstrings found (need /usr/lib/python3.11 or a docstrings file)")
    docs = [d + "<|endoftext|>" for d in strings]
    docs += report_examples(n_reports, seed)
    random.Random(seed).shuffle(docs)
    return docs
