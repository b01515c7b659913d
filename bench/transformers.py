"""The transformer benchmark's PyTorch side (issue 13): exports the models for torchc and measures PyTorch's peers.

  python3 bench/transformers.py [--out /tmp/torchc-transformers] [--models a,b] [--batches 1,64] [--max-autotune] [--list]
                                [--autotune-limit-s 420] [--budget-s 450] [--runs 100] [--no-warm-compile]
                                [--skip-reduce-overhead]

Runs on the GPU machine (torch 2.11, timm, torchvision; no network, random weights, seeded). Models (MODELS below):
timm vit_base_patch16_224 and deit_tiny_patch16_224, torchvision swin_t, a BERT-base-sized nn.TransformerEncoder
(ENCODER below: post-norm like BERT, GELU, batch_first, seq 128, no mask), and the CNN baselines torchvision
resnet50 and timm efficientnet_b0. For each model and batch, into --out:
  <key>.pt2                          torch.export (fp32, eval, torch.no_grad(); key = <model>_b<batch>)
  <key>.input<k>.npy, .output<k>.npy two seeded inputs and PyTorch eager fp32 outputs on the GPU, TF32 off
and in --out/transformers.peers.json (also copied to $OUT when set; an existing file is merged, run by run):
eager fp32, eager fp16, eager fp16 replayed as one CUDA graph, torch.compile mode="reduce-overhead" (cold compile
= the first call with fresh Inductor/Triton cache dirs; warm = compiling again after torch._dynamo.reset() with
the same dirs), and with --max-autotune mode="max-autotune" in a subprocess with its own time limit (a crash or
a time-out is recorded as such). CNNs run channels-last in fp16 (as bench/peers.py). Times: CUDA events around
each call after warm-up, median and p90 of --runs calls. A model that fails is recorded (stage, error) and the
run goes on; a run past --budget-s records the remaining models as skipped (split them with --models/--batches).
bench/transformers.bench.ts compiles the same files with torchc; bench/transformers_report.py merges both.
"""

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
warnings.filterwarnings("ignore")

# name -> (family, default batches, per-sample input shape). The encoder's input is (batch, seq, d_model).
ENCODER = {
    "d_model": 768,
    "nhead": 12,
    "dim_feedforward": 3072,
    "num_layers": 12,
    "seq": 128,
    "activation": "gelu",
    "norm_first": False,  # post-norm, as BERT
    "batch_first": True,
    "dropout": 0.0,
    "mask": None,
}
MODELS = {
    "vit_base_patch16_224": ("transformer", [1, 64], [3, 224, 224]),
    "deit_tiny_patch16_224": ("transformer", [1, 64, 128], [3, 224, 224]),
    "swin_t": ("transformer", [1, 64], [3, 224, 224]),
    "bert_encoder": ("transformer", [1, 8], [ENCODER["seq"], ENCODER["d_model"]]),
    "resnet50": ("cnn", [1, 128], [3, 224, 224]),
    "efficientnet_b0": ("cnn", [1, 128], [3, 224, 224]),
}
SOURCES = {
    "vit_base_patch16_224": "timm",
    "deit_tiny_patch16_224": "timm",
    "swin_t": "torchvision",
    "bert_encoder": "torch.nn.TransformerEncoder",
    "resnet50": "torchvision",
    "efficientnet_b0": "timm",
}
CASES = 2  # inputs per model: a match on one input can be a stale-input accident (DESIGN.md, lessons)
JSON_NAME = "transformers.peers.json"


def build(name):
    """The model in eval mode, fp32, on the CPU, seeded; returns (model, names of re-initialised modules)."""
    import torch
    from zoo import reinit_zero_weights

    torch.manual_seed(0)
    if name in ("vit_base_patch16_224", "deit_tiny_patch16_224", "efficientnet_b0"):
        import timm

        model = timm.create_model(name, pretrained=False)
    elif name in ("swin_t", "resnet50"):
        import torchvision

        model = getattr(torchvision.models, name)(weights=None)
    elif name == "bert_encoder":
        e = ENCODER
        layer = torch.nn.TransformerEncoderLayer(
            d_model=e["d_model"],
            nhead=e["nhead"],
            dim_feedforward=e["dim_feedforward"],
            dropout=e["dropout"],
            activation=e["activation"],
            batch_first=e["batch_first"],
            norm_first=e["norm_first"],
        )
        model = torch.nn.TransformerEncoder(layer, num_layers=e["num_layers"], enable_nested_tensor=False)
        # TransformerEncoder deep-copies one layer: draw each layer's weights anew so that the layers differ.
        for m in model.modules():
            if m is not model and hasattr(m, "reset_parameters"):
                m.reset_parameters()
            elif isinstance(m, torch.nn.MultiheadAttention):
                m._reset_parameters()
    else:
        raise SystemExit(f"unknown model {name}; choose from {', '.join(MODELS)}")
    return model.eval(), reinit_zero_weights(model)


def make_inputs(name, batch):
    import torch

    shape = [batch, *MODELS[name][2]]
    return [torch.randn(*shape, generator=torch.Generator().manual_seed(1 + k)) for k in range(CASES)]


@contextlib.contextmanager
def mha_fastpath(enabled):
    """nn.TransformerEncoderLayer's inference fast path (aten._transformer_encoder_layer_fwd) off during export, so
    that the exported graph holds the ops the layer is made of; PyTorch's eager peers keep it (users get it)."""
    import torch

    mha = getattr(torch.backends, "mha", None)
    if mha is None or not hasattr(mha, "set_fastpath_enabled"):
        yield
        return
    old = mha.get_fastpath_enabled()
    mha.set_fastpath_enabled(enabled)
    try:
        yield
    finally:
        mha.set_fastpath_enabled(old)


@contextlib.contextmanager
def inductor_cache(dir_):
    """torch.compile with its on-disk caches (Inductor's FX graph and autotune caches, Triton's kernels) in dir_
    and Dynamo's in-process state reset: a first compile there is cold, a second one warm."""
    import torch

    old = {k: os.environ.get(k) for k in ("TORCHINDUCTOR_CACHE_DIR", "TRITON_CACHE_DIR")}
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = dir_
    os.environ["TRITON_CACHE_DIR"] = os.path.join(dir_, "triton")
    torch._dynamo.reset()
    with contextlib.suppress(Exception):  # an in-memory cache clear where this torch has one
        import torch._inductor.utils

        torch._inductor.utils.clear_inductor_caches()
    try:
        yield
    finally:
        torch._dynamo.reset()
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def fp16_model(name, model):
    """The fp16 peer on the GPU: channels-last for CNNs (bench/peers.py), contiguous for the transformers."""
    import torch

    m16 = model.cuda().half()
    return m16.to(memory_format=torch.channels_last) if MODELS[name][0] == "cnn" else m16


def fp16_input(name, x):
    import torch

    x16 = x.cuda().half()
    return x16.contiguous(memory_format=torch.channels_last) if MODELS[name][0] == "cnn" else x16


def error_of(e):
    lines = [ln for ln in str(e).strip().splitlines() if ln.strip()] or [""]
    return f"{type(e).__name__}: {lines[0][:300]}"


def peer(measure_fn):
    """One peer's measurement, or {"error": ...}: a peer that fails costs its own cell, not the model's row."""
    import torch

    try:
        return measure_fn()
    except Exception as e:  # recorded, never fatal
        traceback.print_exc()
        with contextlib.suppress(Exception):
            torch.cuda.synchronize()
        return {"error": error_of(e)}


def first_output(out):
    from zoo import leaves

    return leaves(out)[0]


def reduce_overhead(m16, x16, runs, warm, cache_root, key):
    """torch.compile mode="reduce-overhead": cold compile (first call), ready (three calls: the CUDA graph is
    recorded by then), latency, and a warm compile with the same cache dirs."""
    import torch
    from zoo import time_cuda

    res = {}
    d = os.path.join(cache_root, key + ".reduce-overhead")
    with inductor_cache(d), torch.inference_mode():
        t0 = time.time()
        cm = torch.compile(m16, mode="reduce-overhead")
        y = cm(x16)
        torch.cuda.synchronize()
        res["compile_s"] = time.time() - t0
        for _ in range(2):
            y = cm(x16)
        torch.cuda.synchronize()
        res["ready_s"] = time.time() - t0
        res["output"] = first_output(y).float().clone()
        res.update(time_cuda(lambda: cm(x16), "cuda", warmup=10, runs=runs))
        del cm, y
    if warm:
        with inductor_cache(d), torch.inference_mode():
            t0 = time.time()
            cm = torch.compile(m16, mode="reduce-overhead")
            cm(x16)
            torch.cuda.synchronize()
            res["warm_compile_s"] = time.time() - t0
            del cm
    return res


def max_autotune(name, batch, limit_s, cache_root):
    """mode="max-autotune" in a child process (it has crashed with illegal memory accesses on this card) with a
    fresh cache dir and a time limit."""
    key = f"{name}_b{batch}"
    d = os.path.join(cache_root, key + ".max-autotune")
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": d, "TRITON_CACHE_DIR": os.path.join(d, "triton")}
    cmd = [sys.executable, os.path.abspath(__file__), "--autotune-child", f"{name}:{batch}"]
    t0 = time.time()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=limit_s, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out: did not finish within {limit_s} s", "timed_out": True}
    for line in p.stdout.splitlines():
        if line.startswith("RESULT"):
            return json.loads(line[len("RESULT") :])
    tail = ((p.stderr or "") + (p.stdout or "")).strip().splitlines()[-1:] or ["no output"]
    return {"error": f"crashed (exit {p.returncode}) after {time.time() - t0:.0f} s: {tail[0][:300]}"}


def autotune_child(spec):
    import torch
    from zoo import time_cuda

    name, batch = spec.split(":")
    torch.backends.cudnn.benchmark = True
    model, _ = build(name)
    m16 = fp16_model(name, model)
    x16 = fp16_input(name, make_inputs(name, int(batch))[0])
    with torch.inference_mode():
        t0 = time.time()
        cm = torch.compile(m16, mode="max-autotune")
        cm(x16)
        torch.cuda.synchronize()
        compile_s = time.time() - t0
        for _ in range(2):
            cm(x16)
        r = time_cuda(lambda: cm(x16), "cuda", warmup=10, runs=100)
    r["compile_s"] = compile_s
    print("RESULT" + json.dumps(r), flush=True)


def measure(name, batch, a, cache_root):
    """One model at one batch: export, reference, peers. Returns its record (a failure is recorded, not raised)."""
    import numpy as np
    import torch
    from peers import cuda_graph_of
    from zoo import failure, rel_err, time_cuda

    key = f"{name}_b{batch}"
    family, _, sample = MODELS[name]
    rec = {"key": key, "model": name, "source": SOURCES[name], "family": family, "batch": batch}
    rec["input_shape"] = [batch, *sample]
    stage = "build"
    t_start = time.time()
    try:
        model, rec["reinitialised"] = build(name)
        rec["params"] = int(sum(p.numel() for p in model.parameters()))
        xs = make_inputs(name, batch)
        stage = "export"
        t0 = time.time()
        with torch.no_grad(), mha_fastpath(False):
            ep = torch.export.export(model, (xs[0],))
        torch.export.save(ep, os.path.join(a.out, key + ".pt2"))
        rec["export_s"] = time.time() - t0
        rec["graph_nodes"] = sum(1 for n in ep.graph.nodes if n.op == "call_function")
        del ep
        files = {"pt2": key + ".pt2", "cases": []}
        stage = "reference"
        gpu32 = model.cuda()
        refs = []
        with torch.inference_mode():
            # The oracle is true fp32 (TF32 off for these passes only) through the layers the export holds (the
            # encoder's fused fast path off).
            tf32 = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
            torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
            try:
                with mha_fastpath(False):
                    for k, x in enumerate(xs):
                        ref = first_output(gpu32(x.cuda())).float()
                        refs.append(ref)
                        case = {"input": f"{key}.input{k}.npy", "output": f"{key}.output{k}.npy"}
                        np.save(os.path.join(a.out, case["input"]), x.numpy())
                        np.save(os.path.join(a.out, case["output"]), ref.cpu().numpy())
                        files["cases"].append(case)
            finally:
                torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = tf32
            rec["files"] = files
            # how much the output moves between the two inputs: a match proves little where it barely does
            rec["input_sensitivity"] = rel_err(refs[1], refs[0])
            x0 = xs[0].cuda()
            rec["eager_fp32"] = peer(lambda: time_cuda(lambda: gpu32(x0), "cuda", runs=a.runs))
        stage = "fp16"
        m16 = fp16_model(name, model)  # the same module, now fp16 (the fp32 copy is gone)
        x16 = fp16_input(name, xs[0])

        def eager16():
            r = time_cuda(lambda: m16(x16), "cuda", runs=a.runs)
            r["rel_err"] = rel_err(first_output(m16(x16)).float(), refs[0])
            return r

        def graph16():
            g, _ = cuda_graph_of(m16, x16)
            return time_cuda(g.replay, "cuda", runs=a.runs)

        def ro16():
            ro = reduce_overhead(m16, x16, a.runs, a.warm_compile, cache_root, key)
            ro["rel_err"] = rel_err(ro.pop("output"), refs[0])
            return ro

        with torch.inference_mode():
            rec["eager_fp16"] = peer(eager16)
            rec["eager_fp16_cuda_graph"] = peer(graph16)
        rec["reduce_overhead"] = {"skipped": "--skip-reduce-overhead"} if a.skip_reduce_overhead else peer(ro16)
        torch.cuda.empty_cache()
        if a.max_autotune:
            stage = "max-autotune"
            rec["max_autotune"] = max_autotune(name, batch, a.autotune_limit_s, cache_root)
        rec["ok"] = True
    except BaseException as e:  # noqa: BLE001 (recorded; only Ctrl-C stops the run)
        if isinstance(e, KeyboardInterrupt):
            raise
        rec["ok"] = False
        rec["failure"] = failure(stage, e)
        traceback.print_exc()
    finally:
        torch._dynamo.reset()
        torch.cuda.empty_cache()
    rec["seconds"] = time.time() - t_start
    return rec


def load_existing(path):
    try:
        with open(path) as f:
            d = json.load(f)
        return d if isinstance(d, dict) and d.get("kind") == "torchc-transformers-peers" else None
    except (OSError, ValueError):
        return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="/tmp/torchc-transformers")
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--batches", default="", help="batch sizes for every model (default: each model's own)")
    ap.add_argument("--runs", type=int, default=100, help="timed calls per measurement (at least 50)")
    ap.add_argument("--max-autotune", action="store_true")
    ap.add_argument("--autotune-limit-s", type=int, default=420)
    ap.add_argument("--budget-s", type=float, default=450, help="models not started by then are recorded as skipped")
    ap.add_argument("--no-warm-compile", dest="warm_compile", action="store_false")
    ap.add_argument(
        "--skip-reduce-overhead",
        action="store_true",
        help="export, reference and the eager peers only (torch.compile's compiles take most of a run's time)",
    )
    ap.add_argument("--list", action="store_true", help="print the runs as JSON lines and stop (no torch needed)")
    ap.add_argument("--autotune-child", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.autotune_child:
        autotune_child(a.autotune_child)
        return
    a.runs = max(50, a.runs)
    names = [n.strip() for n in a.models.split(",") if n.strip()]
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        raise SystemExit(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(MODELS)}")
    batches = [int(b) for b in a.batches.split(",") if b.strip()]
    jobs = [(n, b) for n in names for b in (batches or MODELS[n][1])]
    if a.list:
        for n, b in jobs:
            print(json.dumps({"key": f"{n}_b{b}", "model": n, "batch": b, "input_shape": [b, *MODELS[n][2]]}))
        return
    os.makedirs(a.out, exist_ok=True)

    import torch
    from zoo import versions, write_json

    torch.backends.cudnn.benchmark = True
    path = os.path.join(a.out, JSON_NAME)
    doc = load_existing(path) or {"kind": "torchc-transformers-peers", "runs": []}
    doc.update(
        {
            "card": torch.cuda.get_device_name(0),
            "versions": versions(),
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "encoder": ENCODER,
            "settings": {"runs": a.runs, "max_autotune": a.max_autotune, "autotune_limit_s": a.autotune_limit_s},
        }
    )
    cache_root = tempfile.mkdtemp(prefix="torchc-transformers-inductor-")
    # Dynamo and Inductor's one-time start-up (imports, the first CUDA graph pool), so that the first model's cold
    # compile is not charged with it (torchc's bench primes itself the same way).
    with contextlib.suppress(Exception), inductor_cache(os.path.join(cache_root, "prime")), torch.inference_mode():
        tiny = torch.nn.Linear(8, 8).cuda().half()
        torch.compile(tiny, mode="reduce-overhead")(torch.randn(2, 8, device="cuda").half())
        torch.cuda.synchronize()
    started = time.time()
    try:
        for name, batch in jobs:
            key = f"{name}_b{batch}"
            if time.time() - started > a.budget_s:
                rec = {"key": key, "model": name, "batch": batch, "ok": False, "skipped": f"budget of {a.budget_s:.0f} s spent"}
            else:
                print(f"== {key} (at {time.time() - started:.0f} s)", flush=True)
                rec = measure(name, batch, a, cache_root)
            doc["runs"] = [r for r in doc["runs"] if r.get("key") != key] + [rec]
            write_json(path, doc)
            if os.environ.get("OUT"):
                shutil.copy(path, os.path.join(os.environ["OUT"], JSON_NAME))
            brief = {k: rec.get(k) for k in ("key", "ok", "seconds", "skipped")}
            for k in ("eager_fp16", "eager_fp16_cuda_graph", "reduce_overhead", "max_autotune"):
                v = rec.get(k) or {}
                brief[k] = v.get("median_ms", v.get("error"))
            print(json.dumps(brief), flush=True)
    finally:
        shutil.rmtree(cache_root, ignore_errors=True)
    print(f"wrote {path} ({len(doc['runs'])} runs) in {time.time() - started:.0f} s", flush=True)


if __name__ == "__main__":
    main()
