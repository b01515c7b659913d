"""Measures torchc's peers on the GPU machine and exports the benchmark models for torchc.

  python3 bench/peers.py --out DIR [--models efficientnet_b0,resnet50] [--batches 1,128] [--max-autotune]

For each model and batch it writes DIR/<model>_b<batch>.pt2 (torch.export, fp32, random weights, seeded),
DIR/<model>_b<batch>.input.npy and .output.npy (PyTorch eager fp32 output, the correctness oracle), and
records in DIR/peers.json: PyTorch eager fp32 and fp16 (channels-last), eager fp16 replayed as one CUDA graph,
torch.compile mode="reduce-overhead" (channels-last fp16), and with --max-autotune torch.compile
mode="max-autotune" in a subprocess (it has crashed with illegal memory accesses here: a crash is recorded
as such and the run goes on). Times are per forward pass, CUDA events around each call after warm-up;
median and p90 over the timed runs.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import warnings

import numpy as np
import torch

warnings.filterwarnings("ignore")


def build(name):
    torch.manual_seed(0)
    if name == "efficientnet_b0":
        import timm

        return timm.create_model("efficientnet_b0", pretrained=False).eval()
    if name == "resnet50":
        import torchvision

        return torchvision.models.resnet50(weights=None).eval()
    raise SystemExit(f"unknown model {name}")


def time_cuda(fn, warmup=20, runs=100):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(runs):
        a = torch.cuda.Event(enable_timing=True)
        b = torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    times.sort()
    return {"median_ms": statistics.median(times), "p90_ms": times[int(0.9 * (len(times) - 1))], "runs": runs}


def cuda_graph_of(fn, x):
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(3):
            fn(x)
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        out = fn(x)
    return g, out


def peers_for(name, batch, out_dir, max_autotune, only_max_autotune=False):
    res = {"model": name, "batch": batch}
    if only_max_autotune:
        res["compile_max_autotune"] = max_autotune_subprocess(name, batch)
        print(json.dumps(res), flush=True)
        return res
    model = build(name)
    x = torch.randn(batch, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    # The torchc inputs: an fp32 export (torchc chooses precision itself) and PyTorch's fp32 output.
    stem = os.path.join(out_dir, f"{name}_b{batch}")
    with torch.no_grad():
        ep = torch.export.export(model, (x,))
    torch.export.save(ep, stem + ".pt2")
    np.save(stem + ".input.npy", x.numpy())
    gpu32 = model.cuda()
    xg = x.cuda()
    with torch.inference_mode():
        # The correctness oracle is true fp32: TF32 off for this one pass (PyTorch's cuDNN default allows TF32,
        # which alone is ~1e-3 away from fp32). Eager fp32 is then timed with PyTorch's defaults.
        tf32 = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
        ref = gpu32(xg)
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = tf32
        np.save(stem + ".output.npy", ref.float().cpu().numpy())
        res["eager_fp32"] = time_cuda(lambda: gpu32(xg))
        m16 = build(name).cuda().half().to(memory_format=torch.channels_last)
        x16 = xg.half().contiguous(memory_format=torch.channels_last)
        res["eager_fp16"] = time_cuda(lambda: m16(x16))
        out16 = m16(x16).float()
        res["eager_fp16_rel_err"] = float((out16 - ref).abs().max() / ref.abs().max())
        g, _ = cuda_graph_of(m16, x16)
        res["eager_fp16_cuda_graph"] = time_cuda(g.replay)
    del g
    t0 = time.time()
    try:
        cm = torch.compile(m16, mode="reduce-overhead")
        with torch.inference_mode():
            for _ in range(3):
                cm(x16)
            torch.cuda.synchronize()
            res["compile_reduce_overhead_s"] = time.time() - t0
            res["compile_reduce_overhead"] = time_cuda(lambda: cm(x16))
    except Exception as e:  # recorded, never fatal
        res["compile_reduce_overhead"] = {"error": f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"}
    if max_autotune:
        res["compile_max_autotune"] = max_autotune_subprocess(name, batch)
    print(json.dumps(res), flush=True)
    return res


def max_autotune_subprocess(name, batch, limit_s=420):
    code = (
        "import sys,time,json,torch;sys.path.insert(0,%r);import peers as P\n"
        "m=P.build(%r).cuda().half().to(memory_format=torch.channels_last)\n"
        "x=torch.randn(%d,3,224,224,device='cuda').half().contiguous(memory_format=torch.channels_last)\n"
        "t0=time.time();cm=torch.compile(m,mode='max-autotune')\n"
        "with torch.inference_mode():\n"
        "  [cm(x) for _ in range(3)];torch.cuda.synchronize();c=time.time()-t0\n"
        "  r=P.time_cuda(lambda: cm(x));r['compile_s']=c;print('RESULT'+json.dumps(r))\n"
    ) % (os.path.dirname(os.path.abspath(__file__)), name, batch)
    try:
        p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=limit_s)
    except subprocess.TimeoutExpired:
        return {"error": f"did not finish within {limit_s} s (device command limit)"}
    for line in p.stdout.splitlines():
        if line.startswith("RESULT"):
            return json.loads(line[6:])
    tail = (p.stderr or p.stdout).strip().splitlines()[-1:] or ["no output"]
    return {"error": f"crashed (exit {p.returncode}): {tail[0][:200]}"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--models", default="efficientnet_b0,resnet50")
    ap.add_argument("--batches", default="1,128")
    ap.add_argument("--max-autotune", action="store_true")
    ap.add_argument("--only-max-autotune", action="store_true", help="measure only torch.compile max-autotune (it takes minutes)")
    ap.add_argument("--json-name", default="peers.json")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    torch.backends.cudnn.benchmark = True
    results = {
        "card": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d"),
        "runs": [],
    }
    for name in a.models.split(","):
        for batch in (int(b) for b in a.batches.split(",")):
            results["runs"].append(peers_for(name, batch, a.out, a.max_autotune, a.only_max_autotune))
            torch.cuda.empty_cache()
    with open(os.path.join(a.out, a.json_name), "w") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
