"""The model zoo (issue 11): exports torchvision and timm architectures for torchc and records PyTorch's side.

  python3 bench/zoo.py --out DIR [--shard i/n] [--only a,b] [--jobs 8] [--phase all|export|reference]
  python3 bench/zoo.py --list [--shard i/n]

Runs on the GPU machine (torch 2.11, torchvision, timm; no network: random weights only, `weights=None`,
`weights_backbone=None`). For each architecture of ZOO below, seeded:
  export phase (CPU):   DIR/<name>.pt2 (torch.export, eval mode, fp32), two seeded inputs DIR/<name>.in<k>.npy;
  reference phase (GPU): PyTorch eager fp32 outputs with TF32 off (DIR/<name>.in<k>.out<j>.npy, the oracle),
                         PyTorch's own fp16 outputs (channels-last) and whether they miss the fp16 bar (inf/NaN, or
                         more than 1e-2 off: random weights can overflow or underflow fp16), eager fp16
                         latency (CUDA events, median), and how much the output moves between the two inputs.
Everything known about a model goes into DIR/<name>.json; DIR/zoo-index.json lists the whole zoo in order (the
TypeScript runner bench/zoo.bench.ts shards with the same rule: the model at position p belongs to shard p % n).
A model whose build, export or reference fails is recorded there (stage, exception class, message) and the run
goes on. --jobs N exports N models at a time in subprocesses (export is CPU work); the reference phase then runs
on each visible GPU in parallel (--gpus), one process per GPU. docs/zoo.md has the whole procedure.
"""

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import traceback
import warnings

warnings.filterwarnings("ignore")

FP16_TOLERANCE = 1e-2  # the zoo's fp16 bar (bench/zoo-classify.ts has the same)
CASES = 2  # seeded inputs per model: a match on one input can be a stale-input accident (DESIGN.md, lessons)

# (name, source, architecture, family, options). Input: timm's pretrained_cfg input size, torchvision 3x224x224,
# unless "input" says otherwise. Issue 11's nine failing models are all here (swin_t, mobilenet_v3_large, mnasnet1_0,
# efficientnet_v2_s, maxvit_t, convnextv2_atto, xcit_nano_12_p16_224, edgenext_xx_small, levit_128).
TV, TIMM = "torchvision", "timm"
ZOO = [
    # torchvision classification CNNs
    ("tv.resnet18", TV, "resnet18", "cnn", {}),
    ("tv.resnet50", TV, "resnet50", "cnn", {}),
    ("tv.resnext50_32x4d", TV, "resnext50_32x4d", "cnn", {}),
    ("tv.wide_resnet50_2", TV, "wide_resnet50_2", "cnn", {}),
    ("tv.mobilenet_v2", TV, "mobilenet_v2", "cnn", {}),
    ("tv.mobilenet_v3_small", TV, "mobilenet_v3_small", "cnn", {}),
    ("tv.mobilenet_v3_large", TV, "mobilenet_v3_large", "cnn", {}),
    ("tv.mnasnet1_0", TV, "mnasnet1_0", "cnn", {}),
    ("tv.efficientnet_b0", TV, "efficientnet_b0", "cnn", {}),
    ("tv.efficientnet_v2_s", TV, "efficientnet_v2_s", "cnn", {}),
    ("tv.regnet_y_400mf", TV, "regnet_y_400mf", "cnn", {}),
    ("tv.shufflenet_v2_x1_0", TV, "shufflenet_v2_x1_0", "cnn", {}),
    ("tv.squeezenet1_1", TV, "squeezenet1_1", "cnn", {}),
    ("tv.densenet121", TV, "densenet121", "cnn", {}),
    ("tv.googlenet", TV, "googlenet", "cnn", {}),
    ("tv.inception_v3", TV, "inception_v3", "cnn", {"input": [3, 299, 299]}),
    ("tv.alexnet", TV, "alexnet", "cnn", {}),
    ("tv.vgg11_bn", TV, "vgg11_bn", "cnn", {}),
    ("tv.convnext_tiny", TV, "convnext_tiny", "cnn", {}),
    # torchvision transformers and hybrids
    ("tv.swin_t", TV, "swin_t", "transformer", {}),
    ("tv.swin_v2_t", TV, "swin_v2_t", "transformer", {}),
    ("tv.maxvit_t", TV, "maxvit_t", "hybrid", {}),
    # torchvision's ViT zero-initialises its head (every output 0): re-initialised here, see reinit_zero_weights
    ("tv.vit_b_16", TV, "vit_b_16", "transformer", {}),
    # torchvision segmentation heads (random backbone too)
    ("tv.fcn_resnet50", TV, "segmentation.fcn_resnet50", "segmentation", {"input": [3, 256, 256]}),
    ("tv.deeplabv3_resnet50", TV, "segmentation.deeplabv3_resnet50", "segmentation", {"input": [3, 256, 256]}),
    ("tv.deeplabv3_mobilenet_v3_large", TV, "segmentation.deeplabv3_mobilenet_v3_large", "segmentation",
     {"input": [3, 256, 256]}),
    ("tv.lraspp_mobilenet_v3_large", TV, "segmentation.lraspp_mobilenet_v3_large", "segmentation",
     {"input": [3, 256, 256]}),
    # timm CNNs
    ("timm.efficientnet_b0", TIMM, "efficientnet_b0", "cnn", {}),
    ("timm.resnet50d", TIMM, "resnet50d", "cnn", {}),
    ("timm.regnety_002", TIMM, "regnety_002", "cnn", {}),
    ("timm.ghostnet_100", TIMM, "ghostnet_100", "cnn", {}),
    ("timm.mixnet_s", TIMM, "mixnet_s", "cnn", {}),
    ("timm.tf_efficientnet_lite0", TIMM, "tf_efficientnet_lite0", "cnn", {}),
    ("timm.rexnet_100", TIMM, "rexnet_100", "cnn", {}),
    ("timm.hrnet_w18_small", TIMM, "hrnet_w18_small", "cnn", {}),
    ("timm.dla34", TIMM, "dla34", "cnn", {}),
    ("timm.repvgg_a2", TIMM, "repvgg_a2", "cnn", {}),
    ("timm.convnext_atto", TIMM, "convnext_atto", "cnn", {}),
    ("timm.convnextv2_atto", TIMM, "convnextv2_atto", "cnn", {}),
    ("timm.mobilenetv4_conv_small", TIMM, "mobilenetv4_conv_small", "cnn", {}),
    ("timm.fastvit_t8", TIMM, "fastvit_t8", "hybrid", {}),
    # timm vision transformers
    ("timm.vit_tiny_patch16_224", TIMM, "vit_tiny_patch16_224", "transformer", {}),
    ("timm.vit_small_patch16_224", TIMM, "vit_small_patch16_224", "transformer", {}),
    ("timm.vit_base_patch16_224", TIMM, "vit_base_patch16_224", "transformer", {}),
    # position embeddings resampled in forward (antialiased bicubic, the _upsample_bicubic2d_aa)
    ("timm.vit_small_patch16_224.dyn256", TIMM, "vit_small_patch16_224", "transformer",
     {"kwargs": {"dynamic_img_size": True}, "input": [3, 256, 256]}),
    ("timm.deit_small_patch16_224", TIMM, "deit_small_patch16_224", "transformer", {}),
    ("timm.swin_tiny_patch4_window7_224", TIMM, "swin_tiny_patch4_window7_224", "transformer", {}),
    ("timm.cait_xxs24_224", TIMM, "cait_xxs24_224", "transformer", {}),
    ("timm.xcit_nano_12_p16_224", TIMM, "xcit_nano_12_p16_224", "transformer", {}),
    ("timm.pit_ti_224", TIMM, "pit_ti_224", "transformer", {}),
    ("timm.twins_svt_small", TIMM, "twins_svt_small", "transformer", {}),
    ("timm.pvt_v2_b0", TIMM, "pvt_v2_b0", "transformer", {}),
    ("timm.davit_tiny", TIMM, "davit_tiny", "transformer", {}),
    ("timm.crossvit_tiny_240", TIMM, "crossvit_tiny_240", "transformer", {}),
    ("timm.eva02_tiny_patch14_224", TIMM, "eva02_tiny_patch14_224", "transformer", {}),
    ("timm.levit_128", TIMM, "levit_128", "transformer", {}),
    ("timm.mixer_s16_224", TIMM, "mixer_s16_224", "mlp", {}),
    # timm hybrids (convolutions and attention)
    ("timm.edgenext_xx_small", TIMM, "edgenext_xx_small", "hybrid", {}),
    ("timm.mobilevit_xxs", TIMM, "mobilevit_xxs", "hybrid", {}),
    ("timm.mobilevitv2_050", TIMM, "mobilevitv2_050", "hybrid", {}),
    ("timm.efficientformer_l1", TIMM, "efficientformer_l1", "hybrid", {}),
    ("timm.efficientformerv2_s0", TIMM, "efficientformerv2_s0", "hybrid", {}),
    ("timm.poolformer_s12", TIMM, "poolformer_s12", "hybrid", {}),
    ("timm.coat_lite_tiny", TIMM, "coat_lite_tiny", "hybrid", {}),
    ("timm.tiny_vit_5m_224", TIMM, "tiny_vit_5m_224", "hybrid", {}),
    ("timm.maxvit_nano_rw_256", TIMM, "maxvit_nano_rw_256", "hybrid", {}),
    ("timm.coatnet_nano_rw_224", TIMM, "coatnet_nano_rw_224", "hybrid", {}),
    ("timm.efficientvit_b0", TIMM, "efficientvit_b0", "hybrid", {}),
    ("timm.convit_tiny", TIMM, "convit_tiny", "hybrid", {}),
]


def entry_dict(e, position):
    name, source, arch, family, opts = e
    return {"name": name, "position": position, "source": source, "arch": arch, "family": family, **opts}


def select(shard, only):
    """The deterministic subset: position p is in shard i/n when p % n == i (the runner uses the same rule)."""
    entries = [entry_dict(e, p) for p, e in enumerate(ZOO)]
    if shard:
        i, n = parse_shard(shard)
        entries = [e for e in entries if e["position"] % n == i]
    if only:
        wanted = set(only.split(","))
        unknown = wanted - {e["name"] for e in entries_all()}
        if unknown:
            raise SystemExit(f"--only: not in the zoo: {', '.join(sorted(unknown))}")
        entries = [e for e in entries if e["name"] in wanted]
    return entries


def entries_all():
    return [entry_dict(e, p) for p, e in enumerate(ZOO)]


def parse_shard(s):
    i, n = (int(v) for v in s.split("/"))
    if not (n >= 1 and 0 <= i < n):
        raise SystemExit(f"--shard {s}: expected i/n with 0 <= i < n")
    return i, n


# ------------------------------------------------------------------------------------------- building


def build(entry):
    """The model in eval mode, fp32 on the CPU, seeded; plus the input shape and what was re-initialised."""
    import torch

    torch.manual_seed(0)
    kwargs = dict(entry.get("kwargs", {}))
    if entry["source"] == TV:
        import torchvision

        if entry["arch"].startswith("segmentation."):
            fn = getattr(torchvision.models.segmentation, entry["arch"].split(".", 1)[1])

            class SegmentationOut(torch.nn.Module):
                """torchvision's segmentation models return {"out": …}; the zoo compares that one tensor."""

                def __init__(self, inner):
                    super().__init__()
                    self.inner = inner

                def forward(self, x):
                    return self.inner(x)["out"]

            model = SegmentationOut(fn(weights=None, weights_backbone=None, aux_loss=False, **kwargs))
        else:
            model = getattr(torchvision.models, entry["arch"])(weights=None, **kwargs)
        shape = entry.get("input", [3, 224, 224])
    else:
        import timm

        model = timm.create_model(entry["arch"], pretrained=False, **kwargs)
        shape = entry.get("input") or list(model.pretrained_cfg["input_size"])
    reinit = reinit_zero_weights(model)
    return model.eval(), [1, *shape], reinit


def reinit_zero_weights(model):
    """Zero-initialised weights make a random-weight check trivial (torchvision's ViT head, timm's Mixer head:
    every output 0) or cut a branch off (a zero norm scale at the end of a residual block). Linear weights that
    are all zero get trunc-normal(0.02), norm scales that are all zero get ones; returns the module names."""
    import torch

    changed = []
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for name, m in model.named_modules():
            w = getattr(m, "weight", None)
            if not isinstance(w, torch.Tensor) or w.numel() == 0 or bool(w.any()):
                continue
            if isinstance(m, torch.nn.Linear):
                w.copy_((torch.randn(w.shape, generator=g) * 0.02).clamp_(-0.04, 0.04))
                changed.append(name)
            elif isinstance(m, (torch.nn.modules.batchnorm._NormBase, torch.nn.LayerNorm, torch.nn.GroupNorm)):
                w.fill_(1.0)
                changed.append(name)
    return changed


def make_inputs(shape):
    import torch

    return [torch.randn(*shape, generator=torch.Generator().manual_seed(1 + k)) for k in range(CASES)]


def weight_digest(model):
    """A cheap fingerprint of the weights: the reference phase rebuilds the model and must get the same ones."""
    import torch

    with torch.no_grad():
        return float(sum(p.double().abs().sum() for p in model.state_dict().values() if p.is_floating_point()))


# --------------------------------------------------------------------------------------------- phases


class ModelTimeout(Exception):
    pass


def _alarm(signum, frame):
    raise ModelTimeout("the per-model time limit ran out")


def failure(stage, e):
    lines = [ln for ln in str(e).strip().splitlines() if ln.strip()]
    return {
        "ok": False,
        "stage": stage,
        "error_class": type(e).__name__,
        "message": " | ".join(lines[:6])[:1500],
        "traceback_tail": traceback.format_exc().strip().splitlines()[-3:],
    }


def files_of(name):
    """File names inside --out; the reference phase fills in the outputs."""
    cases = [{"input": f"{name}.in{k}.npy", "outputs": [], "outputs_fp16": []} for k in range(CASES)]
    return {"pt2": f"{name}.pt2", "cases": cases}


def read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def finite_or_none(v):
    """JSON has no inf/NaN (Node's JSON.parse rejects Python's NaN): non-finite numbers become null; the counts of
    non-finite values are recorded beside them."""
    if isinstance(v, float) and (v != v or v in (float("inf"), float("-inf"))):
        return None
    if isinstance(v, dict):
        return {k: finite_or_none(x) for k, x in v.items()}
    if isinstance(v, list):
        return [finite_or_none(x) for x in v]
    return v


def write_json(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(finite_or_none(obj), f, indent=1, allow_nan=False)
    os.replace(tmp, path)


def versions():
    v = {"python": sys.version.split()[0]}
    for mod in ("torch", "torchvision", "timm"):
        try:
            v[mod] = __import__(mod).__version__
        except Exception as e:  # recorded, not fatal
            v[mod] = f"not importable: {type(e).__name__}"
    return v


def export_one(entry, out, limit_s):
    import numpy as np
    import torch

    name = entry["name"]
    rec = {**entry, "files": None, "versions": versions()}
    stage = "build"
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(limit_s)
    t0 = time.time()
    try:
        model, shape, reinit = build(entry)
        rec["input_shape"] = shape
        rec["params"] = int(sum(p.numel() for p in model.parameters()))
        rec["reinitialised"] = reinit
        rec["weight_digest"] = weight_digest(model)
        xs = make_inputs(shape)
        stage = "export"
        with torch.no_grad():
            ep = torch.export.export(model, (xs[0],))
        stage = "save"
        files = files_of(name)
        torch.export.save(ep, os.path.join(out, files["pt2"]))
        for k, x in enumerate(xs):
            np.save(os.path.join(out, files["cases"][k]["input"]), x.numpy())
        rec["files"] = files
        rec["export"] = {
            "ok": True,
            "seconds": round(time.time() - t0, 2),
            "graph_nodes": sum(1 for n in ep.graph.nodes if n.op == "call_function"),
            "pt2_bytes": os.path.getsize(os.path.join(out, files["pt2"])),
        }
    except BaseException as e:  # noqa: BLE001 (skip and record; only Ctrl-C stops the run)
        if isinstance(e, KeyboardInterrupt):
            raise
        rec["export"] = failure(stage, e)
    finally:
        signal.alarm(0)
    write_json(os.path.join(out, f"{name}.json"), rec)
    status = "ok" if rec["export"]["ok"] else f"FAILED at {stage}: {rec['export']['error_class']}"
    print(f"export {name}: {status} ({time.time() - t0:.1f} s)", flush=True)
    return rec


def time_cuda(fn, device, warmup=10, runs=50):
    """CUDA events around each call after warm-up (host wall time on the CPU, for --device cpu dry runs)."""
    import torch

    if device == "cpu":
        warmup, runs = 1, 3
    for _ in range(warmup):
        fn()
    if device != "cpu":
        torch.cuda.synchronize()
    times = []
    for _ in range(runs):
        if device == "cpu":
            t = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t) * 1000)
            continue
        a = torch.cuda.Event(enable_timing=True)
        b = torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    times.sort()
    return {"median_ms": statistics.median(times), "p90_ms": times[int(0.9 * (len(times) - 1))], "runs": runs}


def leaves(out):
    import torch

    return [t for t in torch.utils._pytree.tree_leaves(out) if isinstance(t, torch.Tensor)]


def rel_err(a, ref):
    import torch

    denom = float(ref.abs().max())
    diff = float((a.float() - ref).abs().max())
    if diff != diff:  # NaN in the output
        return float("inf")
    return diff / denom if denom > 0 else (0.0 if diff == 0 else float("inf"))


def reference_one(entry, out, limit_s, device="cuda"):
    import numpy as np
    import torch

    name = entry["name"]
    path = os.path.join(out, f"{name}.json")
    rec = read_json(path)
    if not rec or not rec.get("export", {}).get("ok"):
        print(f"reference {name}: skipped (not exported)", flush=True)
        return rec
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(limit_s)
    t0 = time.time()
    stage = "build"
    try:
        model, shape, _ = build(entry)
        if abs(weight_digest(model) - rec["weight_digest"]) > 1e-9 * max(1.0, abs(rec["weight_digest"])):
            raise RuntimeError("rebuilding the model gave other weights than the exported ones (seeding)")
        xs = [torch.from_numpy(np.load(os.path.join(out, c["input"]))) for c in rec["files"]["cases"]]
        stage = "fp32"
        # The oracle is true fp32: TF32 off (cuDNN's default allows it, ~1e-3 away from fp32).
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.benchmark = True
        gpu = model.to(device)
        refs = []
        with torch.inference_mode():
            for k, x in enumerate(xs):
                outs = [o.float().cpu() for o in leaves(gpu(x.to(device)))]
                refs.append(outs)
                names = [f"{name}.in{k}.out{j}.npy" for j in range(len(outs))]
                for f, o in zip(names, outs):
                    np.save(os.path.join(out, f), o.numpy())
                rec["files"]["cases"][k]["outputs"] = names
        del gpu
        stage = "fp16"
        m16 = build(entry)[0].to(device).half().to(memory_format=torch.channels_last)
        errs, nonfinite = [], 0
        with torch.inference_mode():
            x16s = [x.to(device).half().contiguous(memory_format=torch.channels_last) for x in xs]
            for k, x16 in enumerate(x16s):
                outs = [o.float().cpu() for o in leaves(m16(x16))]
                names = [f"{name}.in{k}.out{j}.fp16.npy" for j in range(len(outs))]
                for f, o in zip(names, outs):
                    np.save(os.path.join(out, f), o.numpy())
                rec["files"]["cases"][k]["outputs_fp16"] = names
                nonfinite += sum(int((~torch.isfinite(o)).sum()) for o in outs)
                errs += [rel_err(o, r) for o, r in zip(outs, refs[k])]
            stage = "timing"
            fp16_time = time_cuda(lambda: m16(x16s[0]), device)
        # How much the output moves between the two inputs, relative to its size: near 0 means a match
        # would prove little (DESIGN.md, lessons).
        sensitivity = min(rel_err(a, b) for a, b in zip(refs[0], refs[1])) if CASES > 1 else None
        rec["reference"] = {
            "ok": True,
            "card": torch.cuda.get_device_name(0) if device == "cuda" else "cpu (dry run: no timing worth reading)",
            "seconds": round(time.time() - t0, 2),
            "eager_fp16": fp16_time,
            "fp16_rel_err": max(errs) if errs else None,
            "fp16_nonfinite": nonfinite,
            "fp16_overflow": nonfinite > 0,
            # PyTorch's own fp16 misses the fp16 bar on these random weights: inf/NaN, or (torchvision's
            # mobilenet_v2: logits ~1e-9) values that underflow fp16. torchc's fp16 is then judged in fp32.
            "fp16_fails_bar": nonfinite > 0 or max(errs, default=0.0) > FP16_TOLERANCE,
            "input_sensitivity": sensitivity,
            "output_shapes": [list(o.shape) for o in refs[0]],
        }
    except BaseException as e:  # noqa: BLE001
        if isinstance(e, KeyboardInterrupt):
            raise
        rec["reference"] = failure(stage, e)
    finally:
        signal.alarm(0)
        if device == "cuda":
            torch.cuda.empty_cache()
    write_json(path, rec)
    r = rec["reference"]
    status = (
        f"fp16 eager {r['eager_fp16']['median_ms']:.3f} ms, PyTorch fp16 err {r['fp16_rel_err']:.1e}"
        + (" (inf/NaN)" if r["fp16_overflow"] else "")
        + (": misses the fp16 bar, torchc's fp16 is judged in fp32" if r["fp16_fails_bar"] else "")
        if r["ok"]
        else f"FAILED at {r['stage']}: {r['error_class']}"
    )
    print(f"reference {name}: {status} ({time.time() - t0:.1f} s)", flush=True)
    return rec


# --------------------------------------------------------------------------------------- orchestration


def spread(names, parts, argv_for, env_for, label):
    """Runs argv_for(subset) for `parts` round-robin subsets of names at once; returns when all are done."""
    procs = []
    for k in range(parts):
        subset = names[k::parts]
        if subset:
            procs.append(subprocess.Popen(argv_for(subset), env={**os.environ, **env_for(k)}))
    rcs = [p.wait() for p in procs]
    if any(rcs):
        print(f"{label}: a worker exited with {rcs} (its models are recorded as far as it got)", flush=True)


def visible_gpus():
    if "CUDA_VISIBLE_DEVICES" in os.environ:
        return [g for g in os.environ["CUDA_VISIBLE_DEVICES"].split(",") if g.strip()]
    try:
        p = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30)
        return [str(i) for i, ln in enumerate(p.stdout.splitlines()) if ln.startswith("GPU ")]
    except (OSError, subprocess.SubprocessError):
        return []


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="/tmp/torchc-zoo")
    ap.add_argument("--shard", help="i/n: the models at positions p with p %% n == i")
    ap.add_argument("--only", help="comma-separated zoo names")
    ap.add_argument("--phase", choices=["all", "export", "reference"], default="all")
    ap.add_argument("--jobs", type=int, default=1, help="export this many models at a time (subprocesses)")
    ap.add_argument("--gpus", help="comma-separated GPU ids for the reference phase (default: all visible)")
    ap.add_argument("--model-timeout", type=int, default=300, help="seconds per model and phase")
    ap.add_argument("--skip-existing", action="store_true", help="keep models whose json says the phase is done")
    ap.add_argument("--list", action="store_true", help="print the selected names and exit")
    ap.add_argument("--device", default="cuda", help="cpu: a dry run of the reference phase without a GPU")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)  # a subprocess of --jobs/--gpus
    a = ap.parse_args()
    entries = select(a.shard, a.only)
    if a.list:
        for e in entries:
            print(f"{e['position']:3d} {e['name']:40s} {e['family']}")
        print(f"{len(entries)} of {len(ZOO)} models", file=sys.stderr)
        return
    os.makedirs(a.out, exist_ok=True)
    if not a.worker:
        write_json(os.path.join(a.out, "zoo-index.json"), {"models": entries_all(), "count": len(ZOO)})

    def done(e, key):
        rec = read_json(os.path.join(a.out, f"{e['name']}.json"))
        return bool(rec and rec.get(key, {}).get("ok"))

    me = [sys.executable, os.path.abspath(__file__), "--out", a.out, "--model-timeout", str(a.model_timeout),
          "--device", a.device, "--worker"]
    t0 = time.time()
    if a.phase in ("all", "export"):
        todo = [e for e in entries if not (a.skip_existing and done(e, "export"))]
        if a.jobs > 1 and len(todo) > 1 and not a.worker:
            # Export is CPU work: N processes, the cores shared among them, no GPU.
            threads = max(1, (os.cpu_count() or 8) // a.jobs)
            spread([e["name"] for e in todo], a.jobs,
                   lambda s: [*me, "--phase", "export", "--only", ",".join(s)],
                   lambda k: {"OMP_NUM_THREADS": str(threads), "CUDA_VISIBLE_DEVICES": ""}, "export")
        else:
            for e in todo:
                export_one(e, a.out, a.model_timeout)
        print(f"export phase: {time.time() - t0:.0f} s", flush=True)
    if a.phase in ("all", "reference"):
        todo = [e for e in entries if not (a.skip_existing and done(e, "reference"))]
        gpus = a.gpus.split(",") if a.gpus else visible_gpus() if a.device == "cuda" else []
        if len(gpus) > 1 and len(todo) > 1 and not a.worker:
            # One process per GPU, so that each times its eager fp16 alone on its card.
            spread([e["name"] for e in todo], len(gpus),
                   lambda s: [*me, "--phase", "reference", "--only", ",".join(s)],
                   lambda k: {"CUDA_VISIBLE_DEVICES": gpus[k]}, "reference")
        else:
            for e in todo:
                reference_one(e, a.out, a.model_timeout, a.device)
        print(f"export and reference: {time.time() - t0:.0f} s", flush=True)
    recs = [read_json(os.path.join(a.out, f"{e['name']}.json")) or {} for e in entries]
    bad = [(r.get("name"), k, r[k]) for r in recs for k in ("export", "reference") if r.get(k) and not r[k]["ok"]]
    print(f"{len(entries)} models; {len(bad)} failures on PyTorch's side:", flush=True)
    for name, k, f in bad:
        print(f"  {name}: {k} {f['stage']}: {f['error_class']}: {f['message'][:200]}", flush=True)


if __name__ == "__main__":
    main()
