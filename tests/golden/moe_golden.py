#!/usr/bin/env python3
"""Regenerates the text-engine golden files in tests/golden/moe/ (one folder per case).

Runs where transformers 5.x, peft and torch are installed (the GPU machine; the
computation itself runs on the CPU in float32, so it is deterministic):

    python3 tests/golden/moe_golden.py --out tests/golden/moe

For every case it builds a tiny random model of one family with transformers,
rounds its weights to bfloat16 (so the bf16 safetensors hold them exactly),
saves it with save_pretrained, wraps it in a PEFT LoRA adapter with random
non-zero weights, and writes:

    <case>/config.json, generation_config.json, model.safetensors   the base model
    <case>/lora/adapter_config.json, adapter_model.safetensors       the adapter
    <case>/logits.npy, logits_lora.npy    float32 (T, vocab) for the prompt
    <case>/greedy.json                    {"prompt": [...], "base": [...], "lora": [...]}
                                          8 greedy tokens, argmax of full recomputes
    <case>/meta.json                      versions and what the case exercises

tests/model/test_moe_golden.cpp compares the C++ engine against these files
(CPU fp32: relative error <= 1e-4, identical greedy tokens; CUDA bf16 in
tests/cuda/test_moe_golden_cuda.cpp: top-1 agreement, relative error <= 2e-2).
"""

import argparse
import copy
import json
import os
import shutil
import sys
import traceback

import numpy as np
import torch

import transformers
from transformers import AutoModelForCausalLM

try:
    import peft
    from peft import LoraConfig, get_peft_model
except ImportError:  # the base goldens are still useful without peft
    peft = None

VOCAB = 256
PROMPT_LEN = 11
GREEDY_TOKENS = 8


def log(*args):
    print("[moe_golden]", *args, flush=True)


def rope(kind="default", **extra):
    params = {"rope_type": kind, "rope_theta": 10000.0}
    params.update(extra)
    return params


# name -> (config class name, config kwargs, LoRA target_modules, LoRA target_parameters, notes)
def cases():
    common = dict(vocab_size=VOCAB, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                  max_position_embeddings=256, rms_norm_eps=1e-5, tie_word_embeddings=False,
                  bos_token_id=1, eos_token_id=2, pad_token_id=0)
    experts = ["mlp.experts.gate_up_proj", "mlp.experts.down_proj"]
    return [
        ("llama", "LlamaConfig",
         dict(common, num_key_value_heads=2, intermediate_size=96, hidden_act="silu", tie_word_embeddings=True,
              rope_parameters=rope()),
         ["q_proj", "v_proj", "gate_proj", "down_proj"], None, "dense GQA, rotate_half RoPE, tied embeddings"),
        ("qwen2", "Qwen2Config",
         dict(common, num_key_value_heads=2, intermediate_size=96, use_sliding_window=False,
              rope_parameters=rope(rope_theta=1000000.0)),
         ["q_proj", "k_proj", "v_proj", "o_proj"], None, "q/k/v biases, sliding window off"),
        ("mixtral", "MixtralConfig",
         dict(common, num_key_value_heads=2, intermediate_size=16, num_local_experts=8,
              num_experts_per_tok=2, sliding_window=None, rope_parameters=rope()),
         ["q_proj", "v_proj"], experts, "softmax top-2, renormalised; block_sparse_moe names"),
        ("olmoe", "OlmoeConfig",
         dict(common, num_key_value_heads=4, intermediate_size=16, num_experts=8, num_experts_per_tok=2,
              norm_topk_prob=False, rope_parameters=rope()),
         ["q_proj", "v_proj", "o_proj"], experts, "q/k RMSNorm over the whole projection"),
        ("olmoe_64x8", "OlmoeConfig",
         dict(common, num_key_value_heads=4, intermediate_size=8, num_experts=64, num_experts_per_tok=8,
              norm_topk_prob=False, num_hidden_layers=1, rope_parameters=rope()),
         ["q_proj", "v_proj"], experts, "64 experts, top-8 (OLMoE's routing width)"),
        ("olmoe_fused", "OlmoeConfig",
         dict(common, num_key_value_heads=2, intermediate_size=16, num_experts=8, num_experts_per_tok=2,
              norm_topk_prob=True, rope_parameters=rope()),
         ["q_proj"], experts, "saved with save_original_format=False: fused 3-D expert tensors"),
        ("qwen2_moe", "Qwen2MoeConfig",
         dict(common, num_key_value_heads=2, intermediate_size=96, moe_intermediate_size=16,
              shared_expert_intermediate_size=32, num_experts=8, num_experts_per_tok=2, norm_topk_prob=True,
              decoder_sparse_step=1, mlp_only_layers=[], use_sliding_window=False, rope_parameters=rope()),
         ["q_proj", "v_proj", "gate_proj", "shared_expert_gate"], experts,
         "shared expert with sigmoid gate, renormalised top-2"),
        ("deepseek_v2", "DeepseekV2Config",
         dict(common, num_key_value_heads=4, intermediate_size=96, moe_intermediate_size=16, q_lora_rank=32,
              kv_lora_rank=16, qk_nope_head_dim=16, qk_rope_head_dim=8, v_head_dim=16, n_routed_experts=8,
              n_shared_experts=1, num_experts_per_tok=2, first_k_dense_replace=1, topk_method="group_limited_greedy",
              n_group=4, topk_group=2, routed_scaling_factor=1.0, norm_topk_prob=False, num_hidden_layers=3,
              rope_parameters=rope()),
         ["q_a_proj", "q_b_proj", "kv_b_proj", "o_proj"], experts,
         "MLA with q_lora_rank, group-limited greedy routing, one dense layer"),
        ("deepseek_v2_plain_q", "DeepseekV2Config",
         dict(common, num_key_value_heads=4, intermediate_size=96, moe_intermediate_size=16, q_lora_rank=None,
              kv_lora_rank=16, qk_nope_head_dim=16, qk_rope_head_dim=8, v_head_dim=16, n_routed_experts=8,
              n_shared_experts=2, num_experts_per_tok=2, first_k_dense_replace=0, topk_method="greedy",
              routed_scaling_factor=2.0, norm_topk_prob=False, rope_parameters=rope()),
         ["q_proj", "kv_a_proj_with_mqa", "o_proj"], experts, "MLA without q_lora_rank, greedy routing"),
        ("deepseek_v3", "DeepseekV3Config",
         dict(common, num_key_value_heads=4, intermediate_size=96, moe_intermediate_size=16, q_lora_rank=32,
              kv_lora_rank=16, qk_nope_head_dim=16, qk_rope_head_dim=8, v_head_dim=16, n_routed_experts=8,
              n_shared_experts=1, num_experts_per_tok=2, first_k_dense_replace=1, n_group=4, topk_group=2,
              routed_scaling_factor=2.5, norm_topk_prob=True, topk_method="noaux_tc", num_hidden_layers=3,
              rope_interleave=True,
              rope_parameters=rope("yarn", factor=4.0, original_max_position_embeddings=64, beta_fast=32.0,
                                   beta_slow=1.0, mscale=1.0, mscale_all_dim=1.0)),
         ["q_b_proj", "kv_b_proj", "o_proj"], experts,
         "sigmoid + e_score_correction_bias, noaux_tc groups, YaRN with mscale"),
    ]


def make_config(class_name, kwargs):
    cls = getattr(transformers, class_name)
    try:
        return cls(**kwargs)
    except TypeError:
        # Older releases spell rope_parameters as rope_scaling + rope_theta.
        kw = dict(kwargs)
        rp = kw.pop("rope_parameters")
        kw["rope_theta"] = rp.pop("rope_theta")
        if rp.get("rope_type", "default") != "default":
            kw["rope_scaling"] = rp
        return cls(**kw)


def randomize(model, gen):
    """Weights large enough that routing decisions have clear margins."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight") or "layernorm" in name:
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=gen))
            elif "embed_tokens" in name:
                p.copy_(0.5 * torch.randn(p.shape, generator=gen))
            elif name.endswith(".mlp.gate.weight"):  # routers: decisive top-k margins
                p.copy_(0.5 * torch.randn(p.shape, generator=gen))
            else:
                fan_in = p.shape[-1] if p.dim() >= 2 else 16
                p.copy_(torch.randn(p.shape, generator=gen) * (0.6 / fan_in ** 0.5))
        for name, b in model.named_buffers():
            if name.endswith("e_score_correction_bias"):
                b.copy_(0.05 * torch.randn(b.shape, generator=gen))
        # Round every weight to bfloat16 so the bf16 checkpoint holds it exactly.
        for p in model.parameters():
            p.copy_(p.to(torch.bfloat16).to(torch.float32))
        for name, b in model.named_buffers():
            if name.endswith("e_score_correction_bias"):
                b.copy_(b.to(torch.bfloat16).to(torch.float32))


@torch.no_grad()
def logits_of(model, ids):
    out = model(input_ids=torch.tensor([ids]), use_cache=False)
    return out.logits[0].float().numpy()


@torch.no_grad()
def greedy(model, ids, n):
    seq = list(ids)
    new = []
    for _ in range(n):
        nxt = int(np.argmax(logits_of(model, seq)[-1]))
        new.append(nxt)
        seq.append(nxt)
    return new


def save_model(model, path, fused):
    """Saves the weights as bfloat16 without touching the float32 model (its
    rotary buffers must stay float32 for the LoRA run that follows)."""
    state = {k: v.detach().to(torch.bfloat16) for k, v in model.state_dict().items()}
    if fused:
        model.save_pretrained(path, state_dict=state, save_original_format=False)
    else:
        model.save_pretrained(path, state_dict=state)


def swap_flags(pm):
    flags = {}
    for name, module in pm.named_modules():
        if hasattr(module, "_did_swap_in_out_features"):
            flags[name] = bool(module._did_swap_in_out_features)
    return flags


def run_case(out_root, index, name, class_name, kwargs, targets, target_params, notes):
    path = os.path.join(out_root, name)
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    torch.manual_seed(1000 + index)
    gen = torch.Generator().manual_seed(1000 + index)
    config = make_config(class_name, kwargs)
    model = AutoModelForCausalLM.from_config(config, attn_implementation="eager")
    model = model.to(torch.float32).eval()
    if hasattr(model, "set_experts_implementation"):
        try:
            model.set_experts_implementation("eager")
        except Exception as e:  # noqa: BLE001 - informational only
            log(name, "set_experts_implementation('eager') failed:", e)
    randomize(model, gen)
    prompt = [int(v) for v in torch.randint(3, VOCAB, (PROMPT_LEN,), generator=gen)]
    base_logits = logits_of(model, prompt)
    base_greedy = greedy(model, prompt, GREEDY_TOKENS)
    save_model(model, path, fused=name.endswith("_fused"))
    np.save(os.path.join(path, "logits.npy"), base_logits.astype(np.float32))
    meta = {
        "case": name, "notes": notes, "model_type": config.model_type, "prompt": prompt,
        "torch": torch.__version__, "transformers": transformers.__version__,
        "peft": getattr(peft, "__version__", None), "lora": False,
    }
    greedy_json = {"prompt": prompt, "base": base_greedy}
    if peft is not None:
        lcfg = dict(r=4, lora_alpha=8, lora_dropout=0.0, bias="none", target_modules=targets,
                    init_lora_weights=True)
        pm = None
        if target_params:
            spare = copy.deepcopy(model)  # get_peft_model edits the model in place
            try:
                pm = get_peft_model(model, LoraConfig(target_parameters=target_params, **lcfg))
            except Exception as e:  # noqa: BLE001 - older peft: no expert LoRA
                log(name, "expert LoRA (target_parameters) unavailable:", repr(e))
                model, pm = spare, None
        if pm is None:
            pm = get_peft_model(model, LoraConfig(**lcfg))
        with torch.no_grad():
            for pname, p in pm.named_parameters():
                if "lora_A" in pname or "lora_B" in pname:
                    p.copy_(0.3 * torch.randn(p.shape, generator=gen) / max(p.shape[-1], 1) ** 0.5)
        pm.eval()
        lora_logits = logits_of(pm, prompt)
        greedy_json["lora"] = greedy(pm, prompt, GREEDY_TOKENS)
        pm.save_pretrained(os.path.join(path, "lora"))
        for extra in ("README.md",):
            p = os.path.join(path, "lora", extra)
            if os.path.exists(p):
                os.remove(p)
        np.save(os.path.join(path, "logits_lora.npy"), lora_logits.astype(np.float32))
        meta["lora"] = True
        meta["lora_targets"] = targets
        meta["lora_target_parameters"] = target_params
        meta["peft_swapped_expert_axes"] = swap_flags(pm)
        delta = float(np.abs(lora_logits - base_logits).max())
        meta["lora_max_logit_change"] = delta
        log(name, "LoRA changes logits by up to", round(delta, 4))
    with open(os.path.join(path, "greedy.json"), "w") as f:
        json.dump(greedy_json, f, indent=1)
    with open(os.path.join(path, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    # Show the saved tensor names of the first layer (helps when a format changes).
    try:
        from safetensors import safe_open
        with safe_open(os.path.join(path, "model.safetensors"), "pt") as f:
            names = sorted(k for k in f.keys() if ".layers.1." in k)
        log(name, "layer-1 tensors:", ", ".join(n.split(".layers.1.")[1] for n in names[:12]),
            "..." if len(names) > 12 else "")
    except Exception:  # noqa: BLE001
        pass
    log(name, "ok; prompt", prompt[:4], "... greedy", base_greedy)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "moe"))
    ap.add_argument("--only", default="", help="comma-separated case names")
    args = ap.parse_args()
    torch.set_num_threads(min(8, os.cpu_count() or 1))
    torch.use_deterministic_algorithms(True, warn_only=True)
    os.makedirs(args.out, exist_ok=True)
    log("torch", torch.__version__, "transformers", transformers.__version__,
        "peft", getattr(peft, "__version__", "missing"))
    only = set(filter(None, args.only.split(",")))
    failures = 0
    for i, (name, cls, kw, targets, tparams, notes) in enumerate(cases()):
        if only and name not in only:
            continue
        try:
            run_case(args.out, i, name, cls, kw, targets, tparams, notes)
        except Exception:  # noqa: BLE001 - keep going; report at the end
            failures += 1
            log(name, "FAILED")
            traceback.print_exc()
            shutil.rmtree(os.path.join(args.out, name), ignore_errors=True)
    total = 0
    for root, _, files in os.walk(args.out):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    log("wrote", args.out, "(%.2f MB)" % (total / 1e6), "failures:", failures)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
