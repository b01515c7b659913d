"""Writes bench/RESULTS.md from one benchmark run: peers.json (bench/peers.py) and torchc's *.torchc_*.json.

  python3 bench/report.py WORKDIR > RESULTS.md
"""

import glob
import json
import os
import sys

work = sys.argv[1]
peers = json.load(open(os.path.join(work, "peers.json")))
# torch.compile max-autotune takes minutes per model, so it is measured by a second command on the same machine
# (bench/peers.py --only-max-autotune --json-name autotune.json) and merged here.
autotune_file = os.path.join(work, "autotune.json")
autotune = json.load(open(autotune_file)) if os.path.exists(autotune_file) else None
if autotune:
    for a in autotune["runs"]:
        for r in peers["runs"]:
            if (r["model"], r["batch"]) == (a["model"], a["batch"]):
                r["compile_max_autotune"] = a["compile_max_autotune"]


def fmt(entry):
    if entry is None:
        return "—"
    if "error" in entry:
        return f"failed: {entry['error']}"
    return f"{entry['median_ms']:.3f} ms (p90 {entry['p90_ms']:.3f})"


def torchc(model, batch, p):
    f = os.path.join(work, f"{model}_b{batch}.torchc_{p}.json")
    if not os.path.exists(f):
        return None
    return json.load(open(f))


lines = [
    "# Benchmark results",
    "",
    f"Card: **{peers['card']}**, torch {peers['torch']}, date {peers['date']}. One run of `bash scripts/gpu.sh benchmark`"
    " (bench/run.sh): every number below was measured in that run on that card.",
    "Latency of one forward pass, CUDA events, median (p90) over 100 (peers) or 200 (torchc) runs after warm-up;"
    " random weights, 224×224 inputs. fp16 peers run channels-last. torchc times its whole compiled module"
    " (one CUDA graph replay when the model is one engine). The fp32 oracle is PyTorch eager fp32 with TF32 off;"
    " eager fp32 is timed with PyTorch's defaults.",
    ("torch.compile max-autotune was measured by a second command on the same machine, card "
     + autotune["card"] + "; where it says 'not run', it was not attempted (several minutes per model and batch)."
     if autotune else "torch.compile max-autotune: not run in this benchmark (several minutes per model and batch)."),
    "",
    "| model | batch | eager fp32 | eager fp16 | eager fp16 CUDA graph | torch.compile reduce-overhead | torch.compile max-autotune | torchc fp32 | torchc fp16 | torchc fp16 error vs eager fp32 |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
]
ratios = []
for r in peers["runs"]:
    m, b = r["model"], r["batch"]
    t32, t16 = torchc(m, b, "fp32"), torchc(m, b, "fp16")

    def tc(t):
        if t is None:
            return "did not run"
        return f"{t['medianMs']:.3f} ms (p90 {t['p90Ms']:.3f})"

    err = "—"
    if t16 and t16.get("checks"):
        err = f"{t16['checks'][0]['relative']:.1e}"
    ma = r.get("compile_max_autotune")
    ro_s = r.get("compile_reduce_overhead_s")
    ro = fmt(r.get("compile_reduce_overhead")) + (" (compile %.0f s)" % ro_s if ro_s else "")
    mat = (fmt(ma) if ma else "not run") + (" (compile %.0f s)" % ma["compile_s"] if ma and "compile_s" in ma else "")
    t16s = tc(t16) + (" (compile %.1f s)" % (t16["compileMs"] / 1000) if t16 else "")
    lines.append(
        f"| {m} | {b} | {fmt(r.get('eager_fp32'))} | {fmt(r.get('eager_fp16'))} | {fmt(r.get('eager_fp16_cuda_graph'))} | "
        f"{ro} | {mat} | {tc(t32)} | {t16s} | {err} |"
    )
    if t16:
        row = [m, b]
        for key in ("eager_fp16", "eager_fp16_cuda_graph", "compile_reduce_overhead"):
            e = r.get(key)
            row.append(f"{e['median_ms'] / t16['medianMs']:.2f}×" if e and "median_ms" in e else "—")
        ratios.append(row)

lines += [
    "",
    "## torchc fp16 speed-up over each peer (peer time / torchc time; above 1 means torchc is faster)",
    "",
    "| model | batch | vs eager fp16 | vs eager fp16 CUDA graph | vs torch.compile reduce-overhead |",
    "| --- | --- | --- | --- | --- |",
]
for row in ratios:
    lines.append("| " + " | ".join(str(x) for x in row) + " |")
checks = []
for f in sorted(glob.glob(os.path.join(work, "*.torchc_*.json"))):
    t = json.load(open(f))
    for c in t.get("checks", []):
        checks.append(f"- {os.path.basename(f)}: max|err|/max|ref| = {c['relative']:.2e} (tolerance {c['tolerance']}) {'ok' if c['ok'] else 'FAILS'}")
lines += ["", "## torchc correctness in the same run (against PyTorch eager fp32 on the same input)", ""] + (checks or ["- none recorded"])
print("\n".join(lines))
