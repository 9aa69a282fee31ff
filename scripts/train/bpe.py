"""A byte-level BPE tokenizer trainer that writes Hugging Face tokenizer.json.

Same scheme as GPT-2 / OLMoE: the GPT-2 pre-tokenizer regex, bytes mapped to
printable unicode characters, merges learned greedily by pair frequency. The
encode() here follows the tokenizers library's algorithm (lowest merge rank
first within each pre-token), so ids match what Hilum's C++ tokenizer and the
tokenizers library produce from the written tokenizer.json.
"""
import collections
import json

import regex

GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
_pat = regex.compile(GPT2_PATTERN)


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


BYTE_ENC = bytes_to_unicode()
BYTE_DEC = {c: b for b, c in BYTE_ENC.items()}


def pretokenize(text):
    return ["".join(BYTE_ENC[b] for b in piece.encode("utf-8")) for piece in _pat.findall(text)]


def train(texts, vocab_size, special_tokens):
    """Returns (vocab dict token->id, merges list of (a, b))."""
    words = collections.Counter()
    for t in texts:
        for w in pretokenize(t):
            words[w] += 1
    vocab = {}
    for tok in special_tokens:
        vocab[tok] = len(vocab)
    for b in range(256):
        vocab.setdefault(BYTE_ENC[b], len(vocab))
    seqs = {w: list(w) for w in words}
    pair_counts = collections.Counter()
    where = collections.defaultdict(set)
    for w, c in words.items():
        s = seqs[w]
        for a, b in zip(s, s[1:]):
            pair_counts[(a, b)] += c
            where[(a, b)].add(w)
    merges = []
    # Max-heap of (count, pair) with lazy deletion: stale entries are skipped
    # when their count no longer matches. Ties go to the smallest pair.
    import heapq
    heap = [(-c, p) for p, c in pair_counts.items()]
    heapq.heapify(heap)
    while len(vocab) < vocab_size and heap:
        negc, (a, b) = heapq.heappop(heap)
        c = pair_counts.get((a, b), 0)
        if c != -negc:
            continue
        if c < 2:
            break
        merges.append((a, b))
        new = a + b
        vocab.setdefault(new, len(vocab))
        touched = set()
        for w in list(where.pop((a, b), ())):
            s = seqs[w]
            cnt = words[w]
            for x, y in zip(s, s[1:]):
                pair_counts[(x, y)] -= cnt
                touched.add((x, y))
            out = []
            i = 0
            while i < len(s):
                if i + 1 < len(s) and s[i] == a and s[i + 1] == b:
                    out.append(new)
                    i += 2
                else:
                    out.append(s[i])
                    i += 1
            seqs[w] = out
            for x, y in zip(out, out[1:]):
                pair_counts[(x, y)] += cnt
                where[(x, y)].add(w)
                touched.add((x, y))
        pair_counts.pop((a, b), None)
        for p in touched:
            c2 = pair_counts.get(p, 0)
            if c2 <= 0:
                pair_counts.pop(p, None)
            elif p != (a, b):
                heapq.heappush(heap, (-c2, p))
    return vocab, merges


class Tokenizer:
    def __init__(self, vocab, merges, special_tokens):
        self.vocab = vocab
        self.inv = {i: t for t, i in vocab.items()}
        self.ranks = {m: i for i, m in enumerate(merges)}
        self.special = list(special_tokens)
        self._special_re = regex.compile("|".join(regex.escape(s) for s in sorted(self.special, key=len, reverse=True))) if self.special else None
        self.cache = {}

    def _bpe(self, word):
        if word in self.cache:
            return self.cache[word]
        parts = list(word)
        while len(parts) > 1:
            best = None
            for i in range(len(parts) - 1):
                r = self.ranks.get((parts[i], parts[i + 1]))
                if r is not None and (best is None or r < best[0]):
                    best = (r, i)
            if best is None:
                break
            _, i = best
            parts = parts[:i] + [parts[i] + parts[i + 1]] + parts[i + 2:]
        ids = [self.vocab[p] for p in parts]
        self.cache[word] = ids
        return ids

    def encode(self, text):
        ids = []
        pos = 0
        chunks = []
        if self._special_re is not None:
            for m in self._special_re.finditer(text):
                chunks.append((text[pos:m.start()], False))
                chunks.append((m.group(0), True))
                pos = m.end()
        chunks.append((text[pos:], False))
        for chunk, special in chunks:
            if special:
                ids.append(self.vocab[chunk])
            elif chunk:
                for w in pretokenize(chunk):
                    ids.extend(self._bpe(w))
        return ids

    def decode(self, ids):
        out = []
        for i in ids:
            t = self.inv[i]
            if t in self.special:
                out.append(t.encode())
            else:
                out.append(bytes(BYTE_DEC[c] for c in t))
        return b"".join(out).decode("utf-8", errors="replace")


def to_tokenizer_json(vocab, merges, special_tokens):
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [
            {"id": vocab[s], "content": s, "single_word": False, "lstrip": False, "rstrip": False,
             "normalized": False, "special": True}
            for s in special_tokens
        ],
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {
            "type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
            "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
            "vocab": vocab, "merges": [f"{a} {b}" for a, b in merges],
        },
    }
