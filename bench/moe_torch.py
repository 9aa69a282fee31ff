#!/usr/bin/env python3
"""transformers' side of the text-engine benchmark (bench/bench_moe.cpp), on the GPU.

Random bf16 weights at a published geometry (no download), then:
  prefill  : tokens/s of one forward pass over a 512-token prompt
  decode   : tokens/s of greedy generation (64 new tokens after a 128-token
             prompt, minus the time of the prompt's forward pass), batch 1 and 16

    python3 bench/moe_torch.py --out bench_torch.json [--models olmoe,v2lite]
"""

import argparse
import json
import sys
import time

import torch
import transformers
from transformers import AutoModelForCausalLM

OLMOE = dict(model_type="olmoe", vocab_size=50304, hidden_size=2048, intermediate_size=1024, num_hidden_layers=16,
             num_attention_heads=16, num_key_value_heads=16, num_experts=64, num_experts_per_tok=8,
             norm_topk_prob=False, max_position_embeddings=4096, rms_norm_eps=1e-5, tie_word_embeddings=False)
V2LITE = dict(model_type="deepseek_v2", vocab_size=102400, hidden_size=2048, intermediate_size=10944,
              moe_intermediate_size=1408, num_hidden_layers=27, num_attention_heads=16, num_key_value_heads=16,
              n_shared_experts=2, n_routed_experts=64, num_experts_per_tok=6, routed_scaling_factor=1.0,
              kv_lora_rank=512, q_lora_rank=None, qk_rope_head_dim=64, v_head_dim=128, qk_nope_head_dim=128,
              topk_method="greedy", first_k_dense_replace=1, max_position_embeddings=163840, rms_norm_eps=1e-6,
              tie_word_embeddings=False,
              rope_scaling={"type": "yarn", "factor": 40, "original_max_position_embeddings": 4096, "beta_fast": 32,
                            "beta_slow": 1, "mscale": 0.707, "mscale_all_dim": 0.707})


def build(spec):
    spec = dict(spec)
    model_type = spec.pop("model_type")
    cfg = transformers.AutoConfig.for_model(model_type, **spec)
    with torch.device("cuda"):
        model = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16)
    return model.eval()


def timed(fn, reps):
    fn()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - t0) / reps


@torch.no_grad()
def run(name, spec, results):
    print(f"[moe_torch] building {name}", flush=True)
    model = build(spec)
    vocab = spec["vocab_size"]
    if name == "olmoe":
        ids = torch.randint(0, vocab, (1, 512), device="cuda")
        t = timed(lambda: model(input_ids=ids, use_cache=False), 5)
        results.append({"model": name, "phase": "prefill", "batch": 1, "tokens": 512, "tok_per_s": 512 / t})
        print("[moe_torch]", results[-1], flush=True)
    for batch in ([1, 16] if name == "olmoe" else [1]):
        prompt = torch.randint(0, vocab, (batch, 128), device="cuda")
        gen = dict(do_sample=False, pad_token_id=0, eos_token_id=None)
        new = 64
        t_prompt = timed(lambda: model.generate(prompt, max_new_tokens=1, min_new_tokens=1, **gen), 1)
        t_all = timed(lambda: model.generate(prompt, max_new_tokens=new, min_new_tokens=new, **gen), 1)
        rate = batch * (new - 1) / max(t_all - t_prompt, 1e-9)
        results.append({"model": name, "phase": "decode", "batch": batch, "tokens": new, "tok_per_s": rate})
        print("[moe_torch]", results[-1], flush=True)
    del model
    torch.cuda.empty_cache()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="bench_torch.json")
    ap.add_argument("--models", default="olmoe,v2lite")
    args = ap.parse_args()
    results = []
    specs = {"olmoe": OLMOE, "v2lite": V2LITE}
    for name in args.models.split(","):
        try:
            run(name, specs[name], results)
        except Exception as e:  # noqa: BLE001 - report and keep going
            print(f"[moe_torch] {name} failed: {e!r}", flush=True)
    meta = {"torch": torch.__version__, "transformers": transformers.__version__,
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
    with open(args.out, "w") as f:
        json.dump({"meta": meta, "results": results}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
