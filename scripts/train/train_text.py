"""Trains the demo text branch: tokenizer, general MoE base, medical LoRA.

  /usr/bin/python3 scripts/train/train_text.py --notes DATA/notes.jsonl --out resources/models/text

1. tokenizer.json: byte-level BPE (vocab --vocab) on the general corpus plus the
   training notes (so clinical words are single tokens);
2. the base model (OLMoE architecture, 64 experts, top-8) on the general corpus
   only (text_corpus.py: Python stdlib docstrings + synthetic report drafting);
3. the medical LoRA adapter (q/k/v/o and expert gate/up/down projections) on
   the training notes only, base frozen.
Deterministic given --seed (single-threaded CPU torch).
"""
import argparse
import json
import math
import os
import random
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bpe  # noqa: E402
import olmoe  # noqa: E402
import text_corpus  # noqa: E402


def read_notes(path):
    notes = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                notes.append(json.loads(line)["text"])
    return notes


def batches(seqs, seq_len, batch, pad_id, rng):
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
        yield torch.tensor(chunks[i:i + batch], dtype=torch.long)


def train_lm(model, seqs, params, steps, lr, seq_len, batch, use_lora, pad_id, seed, aux_coef, log):
    rng = random.Random(seed)
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01 if not use_lora else 0.0, betas=(0.9, 0.95))
    step = 0
    t0 = time.time()
    while step < steps:
        for x in batches(seqs, seq_len + 1, batch, pad_id, rng):
            lr_now = lr * min(1.0, (step + 1) / 50) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / steps)))
            for g in opt.param_groups:
                g["lr"] = lr_now
            logits, _, aux = model(x[:, :-1], use_lora=use_lora)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1))
            total = loss + (aux_coef * aux if not use_lora else 0.0)
            opt.zero_grad()
            total.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            if step % 50 == 0:
                log(f"  step {step}/{steps} loss {loss.item():.3f} aux {float(aux):.3f} ({time.time() - t0:.0f}s)")
            step += 1
            if step >= steps:
                break
    return loss.item()


@torch.no_grad()
def eval_loss(model, seqs, seq_len, use_lora, pad_id):
    rng = random.Random(0)
    losses = []
    for x in batches(seqs, seq_len + 1, 8, pad_id, rng):
        logits, _, _ = model(x[:, :-1], use_lora=use_lora)
        losses.append(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1)).item())
        if len(losses) >= 10:
            break
    return sum(losses) / max(1, len(losses))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--notes", required=True, help="notes.jsonl from hilum export-training-set (training seeds)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--vocab", type=int, default=4096)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--intermediate", type=int, default=64)
    ap.add_argument("--experts", type=int, default=64)
    ap.add_argument("--topk", type=int, default=8)
    ap.add_argument("--base-steps", type=int, default=1500)
    ap.add_argument("--lora-steps", type=int, default=600)
    ap.add_argument("--lora-r", type=int, default=8)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--reports", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    log = lambda s: print(s, flush=True)  # noqa: E731

    notes = read_notes(args.notes)
    general = text_corpus.general_corpus(seed=args.seed, n_reports=args.reports)
    log(f"general corpus: {len(general)} documents, {sum(map(len, general)) / 1e6:.2f} M chars; notes: {len(notes)}")

    # 1. tokenizer
    special = text_corpus.SPECIAL
    note_docs = [f"<|note|>\n{n}<|endoftext|>" for n in notes]
    vocab, merges = bpe.train(general + note_docs, args.vocab, special)
    tok = bpe.Tokenizer(vocab, merges, special)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "tokenizer.json"), "w") as f:
        json.dump(bpe.to_tokenizer_json(vocab, merges, special), f, ensure_ascii=False)
    log(f"tokenizer: {len(vocab)} tokens, {len(merges)} merges")

    eos, pad = vocab["<|endoftext|>"], vocab["<|pad|>"]
    general_ids = [tok.encode(d) for d in general]
    note_ids = [tok.encode(d) for d in note_docs]
    log(f"tokens: general {sum(map(len, general_ids))}, notes {sum(map(len, note_ids))}")

    # 2. base model on general text
    cfg = dict(vocab_size=len(vocab), hidden_size=args.hidden, intermediate_size=args.intermediate,
               num_hidden_layers=args.layers, num_attention_heads=args.heads, num_key_value_heads=args.heads,
               num_experts=args.experts, num_experts_per_tok=args.topk, max_position_embeddings=2048,
               rope_theta=10000.0, rms_norm_eps=1e-5, norm_topk_prob=False, pad_token_id=pad,
               bos_token_id=None, eos_token_id=eos)
    model = olmoe.OlmoeForCausalLM(cfg)
    log(f"base: {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters")
    train_lm(model, general_ids, list(model.parameters()), args.base_steps, 3e-3, args.seq, args.batch,
             False, pad, args.seed, 0.01, log)
    base_general = eval_loss(model, general_ids[-200:], args.seq, False, pad)
    base_notes = eval_loss(model, note_ids[-200:], args.seq, False, pad)
    log(f"base loss: general {base_general:.3f}, notes {base_notes:.3f}")
    gen_cfg = {"eos_token_id": eos, "pad_token_id": pad, "do_sample": False, "max_new_tokens": 128}
    olmoe.save_pretrained(model, args.out, generation_config=gen_cfg)

    # 3. medical LoRA on the notes
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    torch.manual_seed(args.seed + 1)
    model.add_lora(targets, args.lora_r, 2 * args.lora_r)
    for p in model.parameters():
        p.requires_grad_(False)
    lora_params = model.lora_parameters()
    for p in lora_params:
        p.requires_grad_(True)
    train_lm(model, note_ids, lora_params, args.lora_steps, 2e-3, args.seq, args.batch, True, pad,
             args.seed + 1, 0.0, log)
    lora_notes = eval_loss(model, note_ids[-200:], args.seq, True, pad)
    log(f"with medical LoRA: notes loss {lora_notes:.3f} (base {base_notes:.3f})")
    adapter_dir = os.path.join(args.out, "adapters", "medical")
    olmoe.save_adapter(model, adapter_dir, args.lora_r, 2 * args.lora_r, targets)
    with open(os.path.join(args.out, "training_log.json"), "w") as f:
        json.dump({"general_documents": len(general), "notes": len(notes), "vocab": len(vocab),
                   "base_loss_general": base_general, "base_loss_notes": base_notes,
                   "lora_loss_notes": lora_notes, "config": cfg, "args": vars(args)}, f, indent=2)


if __name__ == "__main__":
    main()
