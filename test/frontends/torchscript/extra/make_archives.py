"""Writes TorchScript archives of real torchvision / timm networks and of scripted models with Python control
flow, with inputs and PyTorch's outputs, for test/frontends/torchscript/extra.test.ts (too large to commit).

Run where PyTorch 2.11, torchvision and timm are installed:  python3 make_archives.py OUTDIR
Each group lands in OUTDIR/<group>.tar (at most 16 MiB each) with a manifest.json; the test reads the extracted
folder named by $TORCHC_EXTRA_TORCHSCRIPT. Weights are random (seeded); nothing is downloaded.
"""

import io
import json
import os
import sys
import tarfile
import traceback
from typing import Dict, List, Optional

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

OUT = sys.argv[1] if len(sys.argv) > 1 else "extra_out"
os.makedirs(OUT, exist_ok=True)
torch.manual_seed(0)


class Ctrl(nn.Module):
    """Python control flow TorchScript keeps: module containers, a data-dependent while loop with a counter,
    a data-dependent early return, lists of tensors, shape checks that raise."""

    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(8, 8) for _ in range(3)])
        self.heads = nn.ModuleDict({"pos": nn.Linear(8, 4), "neg": nn.Linear(8, 4)})
        self.scale = 0.5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2:
            raise ValueError("expected 2D input, got {}D".format(x.dim()))
        outs: List[torch.Tensor] = []
        for i, layer in enumerate(self.layers):
            x = torch.relu(layer(x)) + i * self.scale
            outs.append(x)
        y = torch.cat(outs, dim=1)
        n = 0
        while bool(y.abs().max() > 1.0) and n < 20:
            y = y * 0.5
            n += 1
        z = y[:, :8] + y[:, 8:16] - y[:, 16:] * float(n)
        if bool(z.mean() > 0):
            return self.heads["pos"](z)
        return torch.tanh(self.heads["neg"](z)) * x.shape[1]


class SegHead(nn.Module):
    """Resizing by the input's own shape, padding, chunk/stack, channel shuffle, Optional arguments."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 8, 3, padding=1)
        self.proj = nn.Conv2d(8, 2, 1)

    def shuffle(self, x: torch.Tensor, groups: int) -> torch.Tensor:
        b, c, h, w = x.size()
        x = x.view(b, groups, c // groups, h, w).transpose(1, 2).contiguous()
        return x.view(b, -1, h, w)

    def forward(self, x: torch.Tensor, scale: Optional[float] = None) -> torch.Tensor:
        size = x.shape[-2:]
        y = F.relu(self.conv(F.pad(x, [1, 1, 1, 1])))
        y = self.shuffle(y, 2)
        a, b = torch.chunk(y, 2, dim=1)
        y = torch.stack([a, b], dim=0).sum(0)
        y = F.adaptive_avg_pool2d(y, (size[0] // 2, size[1] // 2))
        y = F.interpolate(y, size=[int(size[0]), int(size[1])], mode="bilinear", align_corners=False)
        if scale is not None:
            y = y * scale
        return self.proj(torch.cat([y, y], dim=1)[:, :8])


def npy(t: torch.Tensor) -> bytes:
    buf = io.BytesIO()
    np.save(buf, t.detach().contiguous().cpu().numpy())
    return buf.getvalue()


groups: Dict[str, List[dict]] = {}
files: Dict[str, Dict[str, bytes]] = {}


def add(group: str, name: str, kind: str, model: nn.Module, inputs: List[torch.Tensor], cases: Optional[List[torch.Tensor]] = None):
    try:
        model = model.eval()
        with torch.no_grad():
            mod = torch.jit.trace(model, tuple(inputs), check_trace=False) if kind == "traced" else torch.jit.script(model)
        buf = io.BytesIO()
        torch.jit.save(mod, buf)
        fs = files.setdefault(group, {})
        fs[f"{name}.{kind}.pt"] = buf.getvalue()
        entry = {"name": name, "archive": f"{name}.{kind}.pt", "kind": kind, "cases": []}
        for i, x in enumerate(cases or [inputs[0]]):
            with torch.no_grad():
                y = model(x)
            stem = f"{name}.{kind}.{i}"
            fs[f"{stem}.input.npy"] = npy(x)
            fs[f"{stem}.output.npy"] = npy(y)
            entry["cases"].append({"input": f"{stem}.input.npy", "output": f"{stem}.output.npy"})
        groups.setdefault(group, []).append(entry)
        print(f"ok   {group}/{name} ({kind}): {len(buf.getvalue()) / 1e6:.1f} MB", flush=True)
    except Exception as e:
        print(f"FAIL {group}/{name} ({kind}): {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}", flush=True)
        traceback.print_exc(limit=2)


import torchvision  # noqa: E402

img = torch.randn(1, 3, 64, 64)
add("tv_mobilenet", "tv_mobilenet_v3_small", "scripted", torchvision.models.mobilenet_v3_small(), [img])
add("tv_shufflenet", "tv_shufflenet_v2_x0_5", "scripted", torchvision.models.shufflenet_v2_x0_5(), [img])
add("tv_shufflenet", "tv_shufflenet_v2_x0_5", "traced", torchvision.models.shufflenet_v2_x0_5(), [img])
add("tv_squeezenet", "tv_squeezenet1_1", "scripted", torchvision.models.squeezenet1_1(), [img])
add("tv_squeezenet", "tv_squeezenet1_1", "traced", torchvision.models.squeezenet1_1(), [img])
add("tv_mnasnet", "tv_mnasnet0_5", "scripted", torchvision.models.mnasnet0_5(), [img])

try:
    import timm

    add("timm_mnv3", "timm_mobilenetv3_small_050", "scripted", timm.create_model("mobilenetv3_small_050", scriptable=True), [img])
    add("timm_mnv3", "timm_mobilenetv3_small_050", "traced", timm.create_model("mobilenetv3_small_050"), [img])
    add("timm_lcnet", "timm_lcnet_050", "scripted", timm.create_model("lcnet_050", scriptable=True), [img])
except Exception as e:  # timm missing or failing as a whole
    print(f"FAIL timm: {e}", flush=True)

try:
    from torchvision.models.efficientnet import EfficientNet, _efficientnet_conf

    setting, last = _efficientnet_conf("efficientnet_b0", width_mult=0.25, depth_mult=0.25)
    eff = EfficientNet(setting, dropout=0.2, last_channel=last, num_classes=10)
    add("custom", "tv_efficientnet_mini", "scripted", eff, [img])
    add("custom", "tv_efficientnet_mini", "traced", eff, [img])
except Exception as e:
    print(f"FAIL efficientnet: {e}", flush=True)

x = torch.randn(3, 8)
add("custom", "ctrl", "scripted", Ctrl(), [x], cases=[x, x * 4.0, -x, torch.zeros(3, 8)])
add("custom", "seg_head", "scripted", SegHead(), [torch.randn(1, 4, 12, 10)])

for group, entries in groups.items():
    with tarfile.open(os.path.join(OUT, f"{group}.tar"), "w") as tar:
        for fname, data in list(files[group].items()) + [("manifest.json", json.dumps(entries, indent=1).encode())]:
            info = tarfile.TarInfo(f"{group}/{fname}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    print(group, os.path.getsize(os.path.join(OUT, f"{group}.tar")) / 1e6, "MB", flush=True)
