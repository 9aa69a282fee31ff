"""A pure-PyTorch OLMoE (the architecture of allenai/OLMoE-1B-7B), with the
parameter names and config.json of Hugging Face transformers' OlmoeForCausalLM,
so that a checkpoint saved here loads in transformers and in Hilum unchanged.

Also a PEFT-compatible LoRA wrapper (adapter_config.json +
adapter_model.safetensors with `base_model.model.` keys).

Maths per layer (pre-norm):
  h = x + o_proj(attn(rope(q_norm(q_proj(n1(x)))), rope(k_norm(k_proj(n1(x)))), v_proj(n1(x))))
  y = h + sum_{e in top-k} p_e * down_e(silu(gate_e(n2(h))) * up_e(n2(h)))
with p = softmax(router(n2(h))) over all experts (top-k probabilities not
renormalised: norm_topk_prob = false), RMSNorm eps 1e-5, RoPE rotate_half.
"""
import json
import math
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

import st_io


class RMSNorm(nn.Module):
    def __init__(self, n, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.eps = eps

    def forward(self, x):
        dt = x.dtype
        x = x.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x.to(dt)


class LoRALinear(nn.Module):
    """nn.Linear with an optional LoRA branch: y = W x + (alpha / r) * B(A(x))."""

    def __init__(self, in_f, out_f, bias=False):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_f, in_f))
        self.bias = nn.Parameter(torch.zeros(out_f)) if bias else None
        nn.init.normal_(self.weight, std=0.02)
        self.lora_A = None
        self.lora_B = None
        self.scaling = 0.0

    def add_lora(self, r, alpha, use_rslora=False):
        self.lora_A = nn.Parameter(torch.empty(r, self.weight.shape[1]))
        self.lora_B = nn.Parameter(torch.zeros(self.weight.shape[0], r))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.scaling = alpha / (math.sqrt(r) if use_rslora else r)

    def forward(self, x, use_lora=True):
        y = F.linear(x, self.weight, self.bias)
        if use_lora and self.lora_A is not None:
            y = y + self.scaling * F.linear(F.linear(x, self.lora_A), self.lora_B)
        return y


def rope_cache(seq_len, dim, theta, device):
    inv = 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.float32, device=device) / dim))
    t = torch.arange(seq_len, dtype=torch.float32, device=device)
    f = torch.outer(t, inv)
    emb = torch.cat([f, f], dim=-1)
    return emb.cos(), emb.sin()


def rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([-x2, x1], dim=-1)


class Attention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        H, nh, nkv = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
        self.nh, self.nkv, self.hd = nh, nkv, H // nh
        self.q_proj = LoRALinear(H, nh * self.hd)
        self.k_proj = LoRALinear(H, nkv * self.hd)
        self.v_proj = LoRALinear(H, nkv * self.hd)
        self.o_proj = LoRALinear(nh * self.hd, H)
        self.q_norm = RMSNorm(nh * self.hd, cfg["rms_norm_eps"])
        self.k_norm = RMSNorm(nkv * self.hd, cfg["rms_norm_eps"])

    def forward(self, x, cos, sin, mask, use_lora):
        B, T, _ = x.shape
        q = self.q_norm(self.q_proj(x, use_lora)).view(B, T, self.nh, self.hd).transpose(1, 2)
        k = self.k_norm(self.k_proj(x, use_lora)).view(B, T, self.nkv, self.hd).transpose(1, 2)
        v = self.v_proj(x, use_lora).view(B, T, self.nkv, self.hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if self.nkv != self.nh:
            k = k.repeat_interleave(self.nh // self.nkv, dim=1)
            v = v.repeat_interleave(self.nh // self.nkv, dim=1)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(self.hd) + mask
        att = att.float().softmax(-1).to(q.dtype)
        y = (att @ v).transpose(1, 2).reshape(B, T, self.nh * self.hd)
        return self.o_proj(y, use_lora)


class Expert(nn.Module):
    def __init__(self, H, I):
        super().__init__()
        self.gate_proj = LoRALinear(H, I)
        self.up_proj = LoRALinear(H, I)
        self.down_proj = LoRALinear(I, H)

    def forward(self, x, use_lora):
        return self.down_proj(F.silu(self.gate_proj(x, use_lora)) * self.up_proj(x, use_lora), use_lora)


class SparseMoe(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.E, self.k = cfg["num_experts"], cfg["num_experts_per_tok"]
        self.norm_topk = cfg.get("norm_topk_prob", False)
        self.gate = nn.Linear(cfg["hidden_size"], self.E, bias=False)
        nn.init.normal_(self.gate.weight, std=0.02)
        self.experts = nn.ModuleList([Expert(cfg["hidden_size"], cfg["intermediate_size"]) for _ in range(self.E)])

    dense = False  # True: every expert on every token, weighted by the (sparse) top-k weights

    def _dense_experts(self, flat, topi, topw, use_lora):
        """The same sum as the per-expert loop (unselected experts get weight 0),
        as a few batched products: many times faster on a GPU for small experts,
        where the loop's 64 gathers and host syncs per layer dominate."""
        def stacked(name):
            lin = [getattr(e, name) for e in self.experts]
            w = torch.stack([m.weight for m in lin])
            if use_lora and lin[0].lora_A is not None:
                return w, torch.stack([m.lora_A for m in lin]), torch.stack([m.lora_B for m in lin]), lin[0].scaling
            return w, None, None, 0.0

        def apply(x, name, spec):  # x [N, E, in] or [N, in] -> [N, E, out]
            w, a, b, sc = stacked(name)
            y = torch.einsum(spec[0], x, w)
            if a is not None:
                y = y + sc * torch.einsum("ner,eor->neo", torch.einsum(spec[1], x, a), b)
            return y

        g = apply(flat, "gate_proj", ("nh,eih->nei", "nh,erh->ner"))
        u = apply(flat, "up_proj", ("nh,eih->nei", "nh,erh->ner"))
        d = apply(F.silu(g) * u, "down_proj", ("nei,ehi->neh", "nei,eri->ner"))
        w = torch.zeros(flat.shape[0], self.E, dtype=d.dtype, device=d.device).scatter(1, topi, topw.to(d.dtype))
        return torch.einsum("ne,neh->nh", w, d)

    def forward(self, x, use_lora):
        B, T, H = x.shape
        flat = x.reshape(-1, H)
        logits = self.gate(flat)
        probs = logits.float().softmax(-1)
        topw, topi = probs.topk(self.k, dim=-1)
        if self.norm_topk:
            topw = topw / topw.sum(-1, keepdim=True)
        topw = topw.to(x.dtype)
        if self.dense:
            out = self._dense_experts(flat, topi, topw, use_lora)
        else:
            out = torch.zeros_like(flat)
            for e in range(self.E):
                rows, slot = (topi == e).nonzero(as_tuple=True)
                if rows.numel() == 0:
                    continue
                out.index_add_(0, rows, self.experts[e](flat[rows], use_lora) * topw[rows, slot, None])
        # Switch-style load-balancing loss (as transformers' load_balancing_loss_func).
        mask = F.one_hot(topi, self.E).float()            # [N, k, E]
        tokens_per_expert = mask.mean(0)                  # [k, E]
        router_prob = probs.mean(0)                       # [E]
        aux = (tokens_per_expert * router_prob.unsqueeze(0)).sum() * self.E
        return out.view(B, T, H), aux


class Layer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.self_attn = Attention(cfg)
        self.mlp = SparseMoe(cfg)
        self.input_layernorm = RMSNorm(cfg["hidden_size"], cfg["rms_norm_eps"])
        self.post_attention_layernorm = RMSNorm(cfg["hidden_size"], cfg["rms_norm_eps"])

    def forward(self, x, cos, sin, mask, use_lora):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask, use_lora)
        m, aux = self.mlp(self.post_attention_layernorm(x), use_lora)
        return x + m, aux


class Backbone(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg["vocab_size"], cfg["hidden_size"])
        nn.init.normal_(self.embed_tokens.weight, std=0.02)
        self.layers = nn.ModuleList([Layer(cfg) for _ in range(cfg["num_hidden_layers"])])
        self.norm = RMSNorm(cfg["hidden_size"], cfg["rms_norm_eps"])


class OlmoeForCausalLM(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.model = Backbone(cfg)
        self.lm_head = nn.Linear(cfg["hidden_size"], cfg["vocab_size"], bias=False)
        nn.init.normal_(self.lm_head.weight, std=0.02)

    def forward(self, ids, use_lora=True, attention_mask=None):
        """ids [B, T] -> (logits [B, T, V], final hidden states [B, T, H], aux loss).

        attention_mask [B, T] (1 = token, 0 = right padding) only masks keys; the
        causal mask already keeps padding after the real tokens out of their view.
        """
        B, T = ids.shape
        x = self.model.embed_tokens(ids)
        hd = self.cfg["hidden_size"] // self.cfg["num_attention_heads"]
        cos, sin = rope_cache(T, hd, self.cfg["rope_theta"], ids.device)
        mask = torch.full((T, T), float("-inf"), device=ids.device).triu(1)
        aux_total = 0.0
        for layer in self.model.layers:
            x, aux = layer(x, cos, sin, mask, use_lora)
            aux_total = aux_total + aux
        h = self.model.norm(x)
        return self.lm_head(h), h, aux_total / len(self.model.layers)

    # ---- Hugging Face layout ------------------------------------------------
    def hf_state_dict(self):
        sd = {}
        for name, p in self.named_parameters():
            if ".lora_" in name:
                continue
            sd[name] = p.detach()
        return sd

    def lora_state_dict(self):
        """PEFT key names: base_model.model.<module>.lora_A.weight / lora_B.weight."""
        sd = {}
        for name, mod in self.named_modules():
            if isinstance(mod, LoRALinear) and mod.lora_A is not None:
                sd[f"base_model.model.{name}.lora_A.weight"] = mod.lora_A.detach()
                sd[f"base_model.model.{name}.lora_B.weight"] = mod.lora_B.detach()
        return sd

    def add_lora(self, target_modules, r, alpha, use_rslora=False):
        for name, mod in self.named_modules():
            if isinstance(mod, LoRALinear) and name.split(".")[-1] in target_modules:
                mod.add_lora(r, alpha, use_rslora)

    def lora_parameters(self):
        return [p for n, p in self.named_parameters() if ".lora_" in n]


def hf_config(cfg):
    out = {
        "architectures": ["OlmoeForCausalLM"],
        "model_type": "olmoe",
        "attention_bias": False,
        "attention_dropout": 0.0,
        "clip_qkv": None,
        "hidden_act": "silu",
        "initializer_range": 0.02,
        "output_router_logits": False,
        "rope_scaling": None,
        "router_aux_loss_coef": 0.01,
        "tie_word_embeddings": False,
        "torch_dtype": "float32",
        "use_cache": True,
    }
    out.update(cfg)
    return out


def save_pretrained(model, out_dir, dtype=torch.float32, generation_config=None):
    os.makedirs(out_dir, exist_ok=True)
    sd = {k: v.to(dtype).contiguous() for k, v in model.hf_state_dict().items()}
    st_io.save_file(sd, os.path.join(out_dir, "model.safetensors"), {"format": "pt"})
    cfg = hf_config(model.cfg)
    cfg["torch_dtype"] = {torch.float32: "float32", torch.bfloat16: "bfloat16", torch.float16: "float16"}[dtype]
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
    if generation_config is not None:
        with open(os.path.join(out_dir, "generation_config.json"), "w") as f:
            json.dump(generation_config, f, indent=2, sort_keys=True)


def save_adapter(model, out_dir, r, alpha, target_modules, use_rslora=False, base_name="hilum-demo-text"):
    os.makedirs(out_dir, exist_ok=True)
    st_io.save_file({k: v.float().contiguous() for k, v in model.lora_state_dict().items()},
                    os.path.join(out_dir, "adapter_model.safetensors"), {"format": "pt"})
    cfg = {
        "peft_type": "LORA", "task_type": "CAUSAL_LM", "base_model_name_or_path": base_name,
        "r": r, "lora_alpha": alpha, "lora_dropout": 0.0, "use_rslora": use_rslora, "use_dora": False,
        "target_modules": sorted(target_modules), "bias": "none", "fan_in_fan_out": False,
        "inference_mode": True, "modules_to_save": None, "init_lora_weights": True,
    }
    with open(os.path.join(out_dir, "adapter_config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)


def load_pretrained(model_dir, adapter_dir=None):
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg_all = json.load(f)
    keys = ["vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
            "num_key_value_heads", "num_experts", "num_experts_per_tok", "max_position_embeddings",
            "rope_theta", "rms_norm_eps", "norm_topk_prob", "pad_token_id", "bos_token_id", "eos_token_id"]
    cfg = {k: cfg_all[k] for k in keys if k in cfg_all}
    model = OlmoeForCausalLM(cfg)
    sd = st_io.load_file(os.path.join(model_dir, "model.safetensors"))
    missing = model.load_state_dict({k: v.float() for k, v in sd.items()}, strict=False)
    assert not missing.unexpected_keys, missing.unexpected_keys
    if adapter_dir:
        with open(os.path.join(adapter_dir, "adapter_config.json")) as f:
            ac = json.load(f)
        model.add_lora(ac["target_modules"], ac["r"], ac["lora_alpha"], ac.get("use_rslora", False))
        asd = st_io.load_file(os.path.join(adapter_dir, "adapter_model.safetensors"))
        params = dict(model.named_parameters())
        for k, v in asd.items():
            name = k[len("base_model.model."):].replace(".lora_A.weight", ".lora_A").replace(".lora_B.weight", ".lora_B")
            params[name].data.copy_(v)
    return model
