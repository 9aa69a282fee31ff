#!/usr/bin/env python3
"""Full-size ResNet-152 parity on the GPU machine: PyTorch/torchvision against `hilum resnet`.

  prepare  WORK         writes WORK/resnet152.safetensors, inputs and PyTorch references
  compare  WORK OUT     compares WORK/hilum_*.npy with the references, writes OUT/parity.{json,md}

The network is torchvision.models.resnet152() (random init, seed 0) with
batch-norm statistics calibrated on random images (train-mode passes, as a
trained network has them) and each bottleneck's last batch-norm scale times 0.3.
Why: a random ResNet-152 with unit-scale residual branches is numerically
chaotic (PyTorch's own fp16 run differs from its fp32 run by ~40 % there, see
docs/resnet.md), and with uncalibrated statistics fp16 overflows; neither says
anything about an engine. Inputs: 4x3x224x224 and 8x3x64x64, standard normal.

References: PyTorch fp32 on the GPU with TF32 off (the brief's bar: Hilum CPU
fp32 within 1e-4, CUDA fp16/bf16 within 1e-2 relative L2), plus float64 and
PyTorch's own fp16/bf16 (channels_last) for context.
"""
import copy
import json
import os
import sys
import time

import numpy as np
import torch
import torchvision

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "golden"))
from resnet_golden import write_safetensors  # noqa: E402

CASES = {"224": (4, 224), "64": (8, 64)}
TOL = {"cpu-f32": 1e-4, "cuda-f16": 1e-2, "cuda-bf16": 1e-2}


def calibrated_resnet152(device):
    torch.manual_seed(0)
    model = torchvision.models.resnet152().to(device)
    model.train()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None  # cumulative average over the calibration batches
    gen = torch.Generator(device="cpu").manual_seed(1)
    with torch.no_grad():
        for side in (224, 64):
            for _ in range(2):
                model(torch.randn(16, 3, side, side, generator=gen).to(device))
        for layer in (model.layer1, model.layer2, model.layer3, model.layer4):
            for block in layer:
                block.bn3.weight.mul_(0.3)
    return model.eval()


def forward_parts(model, x):
    m = model
    h = m.maxpool(m.relu(m.bn1(m.conv1(x))))
    h = m.layer4(m.layer3(m.layer2(m.layer1(h))))
    f = torch.flatten(m.avgpool(h), 1)
    return m.fc(f), f


def rel_l2(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def prepare(work):
    os.makedirs(work, exist_ok=True)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    t0 = time.time()
    model = calibrated_resnet152(device)
    state = {k: v.detach().float().cpu() for k, v in model.state_dict().items()}
    write_safetensors(os.path.join(work, "resnet152.safetensors"), state)
    context = {}
    gen = torch.Generator(device="cpu").manual_seed(2)
    for name, (batch, side) in CASES.items():
        x = torch.randn(batch, 3, side, side, generator=gen)
        np.save(os.path.join(work, f"input_{name}.npy"), x.numpy())
        with torch.no_grad():
            logits, feats = forward_parts(model, x.to(device))
            np.save(os.path.join(work, f"torch_f32_logits_{name}.npy"), logits.float().cpu().numpy())
            np.save(os.path.join(work, f"torch_f32_features_{name}.npy"), feats.float().cpu().numpy())
            m64 = copy.deepcopy(model).double()
            l64, f64 = forward_parts(m64, x.to(device).double())
            np.save(os.path.join(work, f"torch_f64_logits_{name}.npy"), l64.cpu().numpy())
            del m64
            ctx = {"torch_f32_vs_f64_logits": rel_l2(logits.cpu().numpy(), l64.cpu().numpy())}
            for label, dt in (("f16", torch.float16), ("bf16", torch.bfloat16)):
                if device.type != "cuda":
                    break
                mh = copy.deepcopy(model).to(dtype=dt, memory_format=torch.channels_last)
                lh, _ = forward_parts(mh, x.to(device, dt).contiguous(memory_format=torch.channels_last))
                ctx[f"torch_{label}_vs_f32_logits"] = rel_l2(lh.float().cpu().numpy(), logits.cpu().numpy())
                del mh
        context[name] = ctx
    with open(os.path.join(work, "torch_context.json"), "w") as f:
        json.dump({"torch": torch.__version__, "torchvision": torchvision.__version__,
                   "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
                   "seconds": time.time() - t0, "cases": context}, f, indent=1)
    print(f"prepared {work} in {time.time() - t0:.1f} s: {json.dumps(context)}")


def compare(work, out):
    with open(os.path.join(work, "torch_context.json")) as f:
        context = json.load(f)
    rows, ok = [], True
    for name in CASES:
        for run in ("cpu-f32", "cuda-f16", "cuda-bf16"):
            row = {"case": f"{CASES[name][0]}x3x{CASES[name][1]}x{CASES[name][1]}", "run": run, "tolerance": TOL[run]}
            for what in ("logits", "features"):
                path = os.path.join(work, f"hilum_{run}_{what}_{name}.npy")
                if not os.path.exists(path):
                    row[what] = None
                    continue
                got = np.load(path)
                ref = np.load(os.path.join(work, f"torch_f32_{what}_{name}.npy"))
                row[what] = rel_l2(got, ref) if got.shape == ref.shape else f"shape {got.shape} vs {ref.shape}"
                if what == "logits" and got.shape == ref.shape:
                    row["logits_vs_f64"] = rel_l2(got, np.load(os.path.join(work, f"torch_f64_logits_{name}.npy")))
                    row["top1_agree"] = float(np.mean(got.argmax(1) == ref.argmax(1)))
            passed = all(isinstance(row.get(w), float) and row[w] <= TOL[run] for w in ("logits", "features"))
            row["pass"] = passed
            ok = ok and passed
            rows.append(row)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "parity.json"), "w") as f:
        json.dump({"rows": rows, "torch_context": context, "all_pass": ok}, f, indent=1)
    lines = ["| input | Hilum run | logits rel L2 vs torch fp32 | features rel L2 | vs float64 | top-1 agree | bound | pass |",
             "|---|---|---|---|---|---|---|---|"]
    fmt = lambda v: f"{v:.2e}" if isinstance(v, float) else str(v)  # noqa: E731
    for r in rows:
        lines.append(f"| {r['case']} | {r['run']} | {fmt(r.get('logits'))} | {fmt(r.get('features'))} | "
                     f"{fmt(r.get('logits_vs_f64'))} | {fmt(r.get('top1_agree'))} | {r['tolerance']:g} | "
                     f"{'yes' if r['pass'] else 'NO'} |")
    lines.append("")
    lines.append("PyTorch's own deviations for context: " + json.dumps(context["cases"]))
    with open(os.path.join(out, "parity.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0 if ok else 1


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "prepare":
        prepare(sys.argv[2])
    elif len(sys.argv) >= 4 and sys.argv[1] == "compare":
        sys.exit(compare(sys.argv[2], sys.argv[3]))
    else:
        print(__doc__)
        sys.exit(2)
