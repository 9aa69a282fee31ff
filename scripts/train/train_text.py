"""Trains the demo text branch: tokenizer, general MoE base, medical LoRA.

  /usr/bin/python3 scripts/train/train_text.py --notes TRAIN/notes.jsonl NOTES/notes.jsonl \
      --val-seeds 1360-1399,104800-104999 --out BUNDLE/text

1. tokenizer.json: byte-level BPE (vocab --vocab) on the general corpus plus the
   training notes (so clinical words are single tokens);
2. the base model (OLMoE architecture, 64 experts, top-8) on the general corpus
   only (text_corpus.py: Python stdlib docstrings + synthetic report drafting),
   packed 128-token chunks, next-token loss + load-balancing loss;
3. the medical LoRA adapter (q/k/v/o and expert gate/up/down projections) on
   the training notes only, base frozen. Each note is one sequence exactly as
   Hilum encodes it at inference ("<|note|>\\n" + text + "<|endoftext|>", from
   position 0). Objective: next-token loss on the note plus (--risk-weight) a
   risk-factor read-out: a linear probe on the final hidden state of the
   <|endoftext|> token regresses the note's risk factors (age, sex, smoking,
   prior cancer, family history, emphysema, haemoptysis, weight loss and the
   phantom's note_logit), so that the hidden states the fusion head reads carry
   them. The probe itself is not part of the bundle.
Notes whose seed is in --val-seeds are never trained on; they give the
validation numbers in training_log.json.
Deterministic given --seed and the thread count.
"""
import argparse
import json
import math
import os
import random
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bpe  # noqa: E402
import olmoe  # noqa: E402
import text_corpus  # noqa: E402

NOTE_PREFIX, NOTE_SUFFIX = "<|note|>\n", "<|endoftext|>"
DEV = torch.device("cpu")  # set by --device


def read_notes(paths):
    """All notes.jsonl records, in file order, one per seed (first wins)."""
    out, seen = [], set()
    for path in paths:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                d = json.loads(line)
                if d["seed"] in seen:
                    continue
                seen.add(d["seed"])
                out.append(d)
    return out


def parse_ranges(text):
    """"A-B,C-D,E" -> set of ints."""
    out = set()
    for part in filter(None, (text or "").split(",")):
        a, _, b = part.partition("-")
        out.update(range(int(a), int(b or a) + 1))
    return out


RISK_NAMES = ["note_logit/2", "(age-64)/8", "female", "never_smoker", "current_smoker", "pack_years/30",
              "min(years_since_quit,20)/10", "prior_lung_cancer", "prior_other_cancer", "family_history",
              "emphysema", "haemoptysis", "weight_loss"]


def risk_targets(d):
    p = d["profile"]
    site = p.get("prior_cancer_site", "")
    return [d["note_logit"] / 2, (p["age"] - 64) / 8, float(p["sex"] == "F"), float(p["never_smoker"]),
            float(p["current_smoker"]), p["pack_years"] / 30, min(p["years_since_quit"], 20) / 10,
            float(site == "lung"), float(bool(site) and site != "lung"), float(p["family_history"]),
            float(p["emphysema"]), float(p["haemoptysis"]), float(p["weight_loss"])]


def batches(seqs, seq_len, batch, rng):
    """Packs token sequences into [batch, seq_len] chunks (concatenate + cut)."""
    stream = []
    order = list(range(len(seqs)))
    rng.shuffle(order)
    for i in order:
        stream.extend(seqs[i])
    n = len(stream) // seq_len
    chunks = [stream[i * seq_len:(i + 1) * seq_len] for i in range(n)]
    rng.shuffle(chunks)
    for i in range(0, len(chunks) - batch + 1, batch):
        yield torch.tensor(chunks[i:i + batch], dtype=torch.long, device=DEV)


def lr_at(step, steps, lr, warmup=50, elapsed=0.0, max_seconds=0.0):
    """Warm-up then cosine to 10 %; with a time budget the cosine follows whichever of
    steps and time runs out first, so a run stopped by the budget still anneals."""
    frac = step / steps
    if max_seconds:
        frac = max(frac, elapsed / max_seconds)
    return lr * min(1.0, (step + 1) / warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, frac))))


def train_base(model, seqs, steps, lr, seq_len, batch, seed, aux_coef, log, max_seconds=0):
    rng = random.Random(seed)
    params = list(model.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01, betas=(0.9, 0.95))
    step, t0 = 0, time.time()
    while step < steps:
        for x in batches(seqs, seq_len + 1, batch, rng):
            for g in opt.param_groups:
                g["lr"] = lr_at(step, steps, lr, elapsed=time.time() - t0, max_seconds=max_seconds)
            logits, _, aux = model(x[:, :-1], use_lora=False)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1))
            opt.zero_grad()
            (loss + aux_coef * aux).backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            if step % 50 == 0:
                log(f"  base step {step}/{steps} loss {loss.item():.3f} aux {float(aux):.3f} ({time.time() - t0:.0f}s)")
            step += 1
            if max_seconds and time.time() - t0 > max_seconds:
                log(f"  base: stopped at step {step} (time budget {max_seconds:.0f}s)")
                steps = step
            if step >= steps:
                break


@torch.no_grad()
def packed_loss(model, seqs, seq_len, use_lora, max_batches=10):
    rng = random.Random(0)
    losses = []
    for x in batches(seqs, seq_len + 1, 8, rng):
        logits, _, _ = model(x[:, :-1], use_lora=use_lora)
        losses.append(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1)).item())
        if len(losses) >= max_batches:
            break
    return sum(losses) / max(1, len(losses))


def pad_batch(seqs, pad):
    n = max(len(s) for s in seqs)
    x = torch.full((len(seqs), n), pad, dtype=torch.long)
    for i, s in enumerate(seqs):
        x[i, :len(s)] = torch.tensor(s)
    lengths = torch.tensor([len(s) for s in seqs])
    return x.to(DEV), lengths.to(DEV)


def note_forward(model, probe, seqs, targets, pad, use_lora):
    """Next-token loss over the real tokens, and the risk read-out loss."""
    x, lengths = pad_batch(seqs, pad)
    logits, h, _ = model(x, use_lora=use_lora)
    T = x.shape[1]
    real = torch.arange(T, device=DEV)[None, :] < lengths[:, None]
    tgt = x[:, 1:].masked_fill(~real[:, 1:], -100)
    lm = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), tgt.reshape(-1), ignore_index=-100)
    last = h[torch.arange(len(seqs), device=DEV), lengths - 1]  # the <|endoftext|> token
    pred = probe(last)
    risk = F.mse_loss(pred, targets)
    return lm, risk, pred


def train_lora(model, probe, seqs, targets, steps, lr, batch, pad, seed, risk_weight, log, max_seconds=0):
    rng = random.Random(seed)
    params = model.lora_parameters() + list(probe.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0, betas=(0.9, 0.95))
    order = []
    t0 = time.time()
    for step in range(steps):
        if len(order) < batch:
            order = list(range(len(seqs)))
            rng.shuffle(order)
        idx, order = order[:batch], order[batch:]
        for g in opt.param_groups:
            g["lr"] = lr_at(step, steps, lr, elapsed=time.time() - t0, max_seconds=max_seconds)
        lm, risk, _ = note_forward(model, probe, [seqs[i] for i in idx], targets[idx], pad, True)
        opt.zero_grad()
        (lm + risk_weight * risk).backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if max_seconds and time.time() - t0 > max_seconds:
            log(f"  lora: stopped at step {step + 1} (time budget {max_seconds:.0f}s)")
            break
        if step % 50 == 0:
            log(f"  lora step {step}/{steps} lm {lm.item():.3f} risk {risk.item():.4f} ({time.time() - t0:.0f}s)")


@torch.no_grad()
def note_eval(model, probe, seqs, targets, pad, use_lora, batch=32):
    lms, preds = [], []
    for i in range(0, len(seqs), batch):
        lm, _, pred = note_forward(model, probe, seqs[i:i + batch], targets[i:i + batch], pad, use_lora)
        lms.append(lm.item() * len(seqs[i:i + batch]))
        preds.append(pred)
    pred = torch.cat(preds)
    r2 = 1 - ((pred - targets) ** 2).sum(0) / ((targets - targets.mean(0)) ** 2).sum(0).clamp_min(1e-9)
    return sum(lms) / len(seqs), {n: round(float(v), 4) for n, v in zip(RISK_NAMES, r2)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--notes", nargs="+", required=True, help="notes.jsonl files from hilum export-training-set")
    ap.add_argument("--val-seeds", default="", help="A-B[,C-D...]: seeds kept out of training (validation)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--vocab", type=int, default=4096)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--intermediate", type=int, default=64)
    ap.add_argument("--experts", type=int, default=64)
    ap.add_argument("--topk", type=int, default=8)
    ap.add_argument("--base-steps", type=int, default=1500)
    ap.add_argument("--lora-steps", type=int, default=1500)
    ap.add_argument("--lora-r", type=int, default=8)
    ap.add_argument("--lora-batch", type=int, default=16)
    ap.add_argument("--risk-weight", type=float, default=1.0)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--reports", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--base-seconds", type=float, default=0, help="stop the base training after this long (0: no limit)")
    ap.add_argument("--lora-seconds", type=float, default=0, help="stop the adapter training after this long (0: no limit)")
    ap.add_argument("--docstrings", default=None, help="JSON(.xz) list of the Python 3.11 docstrings "
                    "(text_corpus.write_docstrings); default: read /usr/lib/python3.11")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (training only; the weights are saved as float32)")
    args = ap.parse_args()
    global DEV
    DEV = torch.device(args.device)

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    log = lambda s: print(s, flush=True)  # noqa: E731
    t_start = time.time()

    val_seeds = parse_ranges(args.val_seeds)
    records = read_notes(args.notes)
    train_rec = [d for d in records if d["seed"] not in val_seeds]
    val_rec = [d for d in records if d["seed"] in val_seeds]
    general = text_corpus.general_corpus(seed=args.seed, n_reports=args.reports, docstrings_file=args.docstrings)
    docstrings = sum(1 for d in general if not d.startswith("<|findings|>"))
    log(f"general corpus: {len(general)} documents ({docstrings} docstrings), {sum(map(len, general)) / 1e6:.2f} M chars; "
        f"notes: {len(train_rec)} training, {len(val_rec)} validation")

    # 1. tokenizer
    special = text_corpus.SPECIAL
    note_docs = [NOTE_PREFIX + d["text"] + NOTE_SUFFIX for d in train_rec]
    t0 = time.time()
    vocab, merges = bpe.train(general + note_docs, args.vocab, special)
    tok = bpe.Tokenizer(vocab, merges, special)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "tokenizer.json"), "w") as f:
        json.dump(bpe.to_tokenizer_json(vocab, merges, special), f, ensure_ascii=False)
    log(f"tokenizer: {len(vocab)} tokens, {len(merges)} merges ({time.time() - t0:.0f}s)")

    eos, pad = vocab["<|endoftext|>"], vocab["<|pad|>"]
    rng = random.Random(args.seed)
    rng.shuffle(general)
    n_val_general = 200
    general_ids = [tok.encode(d) for d in general]
    general_train, general_val = general_ids[n_val_general:], general_ids[:n_val_general]
    note_ids = [tok.encode(NOTE_PREFIX + d["text"] + NOTE_SUFFIX) for d in train_rec]
    val_ids = [tok.encode(NOTE_PREFIX + d["text"] + NOTE_SUFFIX) for d in val_rec]
    note_t = torch.tensor([risk_targets(d) for d in train_rec], dtype=torch.float32, device=DEV)
    val_t = torch.tensor([risk_targets(d) for d in val_rec], dtype=torch.float32, device=DEV) if val_rec else None
    log(f"tokens: general {sum(map(len, general_ids))}, notes {sum(map(len, note_ids))} "
        f"(mean {sum(map(len, note_ids)) / max(1, len(note_ids)):.0f} per note)")

    # 2. base model on general text
    cfg = dict(vocab_size=len(vocab), hidden_size=args.hidden, intermediate_size=args.intermediate,
               num_hidden_layers=args.layers, num_attention_heads=args.heads, num_key_value_heads=args.heads,
               num_experts=args.experts, num_experts_per_tok=args.topk, max_position_embeddings=2048,
               rope_theta=10000.0, rms_norm_eps=1e-5, norm_topk_prob=False, pad_token_id=pad,
               bos_token_id=None, eos_token_id=eos)
    model = olmoe.OlmoeForCausalLM(cfg).to(DEV)
    if DEV.type == "cuda":  # all experts batched: the same sums, far fewer kernel launches and syncs
        for m in model.modules():
            if isinstance(m, olmoe.SparseMoe):
                m.dense = True
    n_params = sum(p.numel() for p in model.parameters())
    log(f"base: {n_params / 1e6:.2f} M parameters")
    t0 = time.time()
    train_base(model, general_train, args.base_steps, 3e-3, args.seq, args.batch, args.seed, 0.01, log,
               args.base_seconds)
    base_time = time.time() - t0
    model.eval()
    base_general = packed_loss(model, general_val, args.seq, False)
    log(f"base: general validation loss {base_general:.3f}")
    gen_cfg = {"eos_token_id": eos, "pad_token_id": pad, "do_sample": False, "max_new_tokens": 128}
    olmoe.save_pretrained(model.cpu(), args.out, generation_config=gen_cfg)
    model.to(DEV)

    # 3. medical LoRA on the notes
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    torch.manual_seed(args.seed + 1)
    model.add_lora(targets, args.lora_r, 2 * args.lora_r)
    model.to(DEV)
    probe = nn.Linear(args.hidden, len(RISK_NAMES)).to(DEV)
    for p in model.parameters():
        p.requires_grad_(False)
    for p in model.lora_parameters():
        p.requires_grad_(True)
    lora_params = sum(p.numel() for p in model.lora_parameters())
    metrics = {}
    if val_rec:
        # The base model with a probe fitted on its frozen states: what the adapter adds.
        base_lm, _ = note_eval(model, probe, val_ids, val_t, pad, False)
        metrics["base_note_validation_loss"] = round(base_lm, 4)
        log(f"base: note validation loss {base_lm:.3f}")
    t0 = time.time()
    model.train()
    train_lora(model, probe, note_ids, note_t, args.lora_steps, 2e-3, args.lora_batch, pad, args.seed + 1,
               args.risk_weight, log, args.lora_seconds)
    lora_time = time.time() - t0
    model.eval()
    if val_rec:
        lora_lm, r2 = note_eval(model, probe, val_ids, val_t, pad, True)
        metrics["lora_note_validation_loss"] = round(lora_lm, 4)
        metrics["risk_readout_validation_r2"] = r2
        log(f"medical LoRA: note validation loss {lora_lm:.3f}; risk read-out R2 {r2}")
    adapter_dir = os.path.join(args.out, "adapters", "medical")
    olmoe.save_adapter(model.cpu(), adapter_dir, args.lora_r, 2 * args.lora_r, targets)
    with open(os.path.join(args.out, "training_log.json"), "w") as f:
        json.dump({"general_documents": len(general), "docstrings": docstrings, "synthetic_reports": args.reports,
                   "general_tokens": sum(map(len, general_ids)), "training_notes": len(train_rec),
                   "training_note_tokens": sum(map(len, note_ids)), "validation_notes": len(val_rec),
                   "vocab": len(vocab), "base_parameters": n_params, "lora_parameters": lora_params,
                   "base_general_validation_loss": round(base_general, 4), **metrics,
                   "risk_targets": RISK_NAMES, "base_seconds": round(base_time), "lora_seconds": round(lora_time),
                   "total_seconds": round(time.time() - t_start), "config": cfg, "args": vars(args)},
                  f, indent=2)


if __name__ == "__main__":
    main()
