#!/usr/bin/env python3
"""Writes the ResNet golden files that tests/vision/net compares Hilum against.

Two narrow torchvision ResNets with random weights and non-trivial batch-norm
statistics, evaluated in float64 by PyTorch (eval mode):

  basic       ResNet-18 topology (BasicBlock, layers 2-2-2-2), width 8, 10 classes,
              input 2x3x48x40
  bottleneck  ResNet-50 topology (Bottleneck, layers 3-4-6-3), width 4, 7 classes,
              input 3x3x57x45 (odd sizes exercise padding and stride rounding)
  slab        Bottleneck, layers 1-1-1-1, width 8, 2 classes, nine input channels
              (slab patches, vision/patches.h), input 3x9x64x64: a stem whose
              channels are no multiple of 8 (the CUDA engine pads them)

For each: <name>_weights.safetensors (the torchvision state_dict, float32,
num_batches_tracked included), <name>_input.npy, <name>_logits.npy,
<name>_features.npy (global-average-pooled, N x C), <name>_spatial.npy (the
last stage, N x C x h x w), and for the bottleneck a config JSON.

The reference outputs are computed in float64 from the float32 weights, so
they are the exact answer for the stored weights and input, not PyTorch's own
float32 rounding.

Run with PyTorch + torchvision (Debian: python3-torch python3-torchvision):
  /usr/bin/python3 tests/golden/resnet_golden.py [--out tests/golden/resnet]
"""
import argparse
import json
import os
import struct

import numpy as np
import torch
import torch.nn as nn
import torchvision
from torchvision.models.resnet import BasicBlock, Bottleneck


class NarrowResNet(torchvision.models.resnet.ResNet):
    """torchvision's ResNet with a configurable stem/stage width.

    torchvision fixes the first stage at 64 channels; this builds the same
    modules (and so the same state_dict names) with `width` instead, using
    torchvision's own _make_layer and forward."""

    def __init__(self, block, layers, width=64, num_classes=1000, in_channels=3, width_per_group=64):
        nn.Module.__init__(self)
        self._norm_layer = nn.BatchNorm2d
        self.inplanes = width
        self.dilation = 1
        self.groups = 1
        self.base_width = width_per_group
        self.conv1 = nn.Conv2d(in_channels, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, width, layers[0])
        self.layer2 = self._make_layer(block, width * 2, layers[1], stride=2)
        self.layer3 = self._make_layer(block, width * 4, layers[2], stride=2)
        self.layer4 = self._make_layer(block, width * 8, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(width * 8 * block.expansion, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")


def randomize_batchnorm(model, gen):
    """Non-trivial inference statistics, moderate enough that a deep net stays finite."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.weight.copy_(0.6 + 0.8 * torch.rand(c, generator=gen))
                m.bias.copy_(0.2 * torch.randn(c, generator=gen))
                m.running_mean.copy_(0.3 * torch.randn(c, generator=gen))
                m.running_var.copy_(0.5 + torch.rand(c, generator=gen))
        model.fc.bias.copy_(0.1 * torch.randn(model.fc.out_features, generator=gen))


SAFETENSORS_DTYPES = {torch.float32: ("F32", "<f4"), torch.float16: ("F16", "<f2"),
                      torch.bfloat16: ("BF16", None), torch.int64: ("I64", "<i8")}


def write_safetensors(path, tensors):
    """Minimal safetensors writer (no dependency on the safetensors package)."""
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        t = t.detach().cpu().contiguous()
        dtype, np_dtype = SAFETENSORS_DTYPES[t.dtype]
        if t.dtype == torch.bfloat16:
            data = t.view(torch.int16).numpy().astype("<i2").tobytes()
        else:
            data = t.numpy().astype(np_dtype).tobytes()
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    tmp = str(path) + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def reference_outputs(model, x):
    """Logits, pooled features and last-stage map in float64."""
    m = model.double().eval()
    with torch.no_grad():
        x = x.double()
        h = m.maxpool(m.relu(m.bn1(m.conv1(x))))
        h = m.layer4(m.layer3(m.layer2(m.layer1(h))))
        features = torch.flatten(m.avgpool(h), 1)
        logits = m.fc(features)
        # The same answer through torchvision's own forward.
        assert torch.allclose(m(x), logits)
    return logits.float(), features.float(), h.float()


def make_golden(out, name, block, layers, width, num_classes, input_shape, seed, config=None):
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = NarrowResNet(block, layers, width=width, num_classes=num_classes, in_channels=input_shape[1])
    randomize_batchnorm(model, gen)
    model.eval()
    state = {k: v.float() if v.is_floating_point() else v for k, v in model.state_dict().items()}
    x = torch.randn(*input_shape, generator=gen)
    write_safetensors(os.path.join(out, f"{name}_weights.safetensors"), state)
    # Evaluate exactly the stored float32 weights.
    model.load_state_dict(state)
    logits, features, spatial = reference_outputs(model, x)
    np.save(os.path.join(out, f"{name}_input.npy"), x.numpy().astype(np.float32))
    np.save(os.path.join(out, f"{name}_logits.npy"), logits.numpy())
    np.save(os.path.join(out, f"{name}_features.npy"), features.numpy())
    np.save(os.path.join(out, f"{name}_spatial.npy"), spatial.numpy())
    if config is not None:
        with open(os.path.join(out, f"{name}_config.json"), "w") as f:
            json.dump(config, f, indent=2)
            f.write("\n")
    print(f"{name}: logits {tuple(logits.shape)} features {tuple(features.shape)} "
          f"spatial {tuple(spatial.shape)} |logits| {logits.abs().max().item():.3g}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "resnet"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}")
    make_golden(args.out, "basic", BasicBlock, [2, 2, 2, 2], width=8, num_classes=10,
                input_shape=(2, 3, 48, 40), seed=1234)
    make_golden(args.out, "bottleneck", Bottleneck, [3, 4, 6, 3], width=4, num_classes=7,
                input_shape=(3, 3, 57, 45), seed=4321,
                config={"depth": 50, "width": 4, "num_classes": 7, "in_channels": 3})
    make_golden(args.out, "slab", Bottleneck, [1, 1, 1, 1], width=8, num_classes=2,
                input_shape=(3, 9, 64, 64), seed=2468)


if __name__ == "__main__":
    main()
