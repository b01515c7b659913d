"""The transformer benchmark's table for bench/RESULTS.md: PyTorch's record (bench/transformers.py →
transformers.peers.json) merged with torchc's (bench/transformers.bench.ts → transformers.json).

  python3 bench/transformers_report.py FILE|DIR [...] [--out table.md]

A directory stands for the transformers*.json in it; each file is told apart by its "kind". Runs are merged by
key (<model>_b<batch>): a later file wins, except that a finished torchc row is not replaced by a failed one.
Speed-up = torch.compile reduce-overhead median / torchc median, and the geometric mean is over every row that
has both. Standard library only.
"""

import argparse
import glob
import json
import math
import os
import sys

FP16_TOLERANCE = 1e-2  # issue 13's bar (bench/transformers-plan.ts has the same)
INSENSITIVE = 1e-3  # the reference moves less than this between the two inputs: a match proves little
PEERS, TORCHC = "torchc-transformers-peers", "torchc-transformers"


def load(paths):
    """(peers docs, torchc docs) in the order given."""
    peers, ours = [], []
    for p in paths:
        files = sorted(glob.glob(os.path.join(p, "transformers*.json"))) if os.path.isdir(p) else [p]
        for f in files:
            with open(f) as fh:
                d = json.load(fh)
            kind = d.get("kind") if isinstance(d, dict) else None
            if kind == PEERS:
                peers.append(d)
            elif kind == TORCHC:
                ours.append(d)
    if not peers and not ours:
        raise SystemExit(f"no transformer benchmark records (kind {PEERS} or {TORCHC}) in {', '.join(paths)}")
    return peers, ours


def merge_peers(docs):
    runs = {}
    for d in docs:
        for r in d.get("runs", []):
            runs[r["key"]] = r
    return runs


def merge_ours(docs):
    rows = {}
    for d in docs:
        for r in d.get("rows", []):
            old = rows.get(r["key"])
            if old is None or r.get("ok") or not old.get("ok"):
                rows[r["key"]] = r
    return rows


def median(m):
    """The median of a timing record, or None (absent, or an error)."""
    return m.get("median_ms") if isinstance(m, dict) and isinstance(m.get("median_ms"), (int, float)) else None


def ms(v):
    return f"{v:.3f}" if isinstance(v, (int, float)) else "—"


def secs(v):
    return f"{v:.1f}" if isinstance(v, (int, float)) else "—"


def peer_cell(m):
    if not isinstance(m, dict):
        return "—"
    if median(m) is not None:
        return ms(median(m))
    if m.get("timed_out"):
        return "timed out"
    if m.get("error"):
        return "crashed" if "crash" in m["error"] else "failed"
    return "—"


def torchc_latency(o):
    lat = (o or {}).get("latency") or {}
    return lat.get("medianMs") if isinstance(lat.get("medianMs"), (int, float)) else None


def speedup(peer, o):
    ro = median((peer or {}).get("reduce_overhead"))
    t = torchc_latency(o)
    return ro / t if ro and t else None


def within(o):
    if not o or not o.get("ok"):
        return False
    if "withinTolerance" in o:
        return bool(o["withinTolerance"])
    return isinstance(o.get("relErr"), (int, float)) and o["relErr"] <= FP16_TOLERANCE


def geomean(xs):
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else None


def order(peers, ours):
    """Rows in the order PyTorch's record lists them, then torchc-only ones."""
    return list(peers) + sorted(k for k in ours if k not in peers)


def report(peer_docs, our_docs):
    peers, ours = merge_peers(peer_docs), merge_ours(our_docs)
    keys = order(peers, ours)
    out = []
    head = peer_docs[-1] if peer_docs else {}
    v = head.get("versions") or {}
    out.append(
        f"Card: **{head.get('card', 'unknown')}**, torch {v.get('torch', '?')}, timm {v.get('timm', '?')}, "
        f"torchvision {v.get('torchvision', '?')}; PyTorch measured {head.get('date', '?')}. Random weights, fp16, "
        "GPU time per forward pass (CUDA events, median). torchc: `compiled.benchmark` (the captured forward pass "
        "replayed on device-resident inputs). Compile times in seconds: torchc cold = empty kernel and plan cache "
        "(TORCHC_CACHE_DIR), warm = the same compile again; torch.compile reduce-overhead cold = the first call with "
        "empty Inductor/Triton cache dirs, warm = again after `torch._dynamo.reset()`."
    )
    enc = head.get("encoder")
    if enc:
        out.append(
            f"\nEncoder: `nn.TransformerEncoder`, {enc.get('num_layers')} layers, d_model {enc.get('d_model')}, "
            f"{enc.get('nhead')} heads, feed-forward {enc.get('dim_feedforward')}, {enc.get('activation')}, "
            f"{'pre' if enc.get('norm_first') else 'post'}-norm, sequence {enc.get('seq')}, no mask; batch = "
            "sequences."
        )
    out.append("")
    out.append(
        "| model | batch | torchc | eager fp16 | eager fp16 CUDA graph | reduce-overhead | max-autotune | "
        "speed-up vs reduce-overhead | torchc error | torchc compile cold / warm | reduce-overhead compile cold / warm | "
        "torchc kernels |"
    )
    out.append("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    ups, ups_ok, slower, notes = [], [], [], []
    for k in keys:
        p = peers.get(k) or {}
        o = ours.get(k)
        model = p.get("model") or (o or {}).get("model", k)
        batch = p.get("batch") or (o or {}).get("batch", "?")
        if o is None:
            mine = "not run"
        elif not o.get("ok"):
            f = o.get("failure") or {}
            mine = f"failed ({f.get('stage', '?')})"
            notes.append(f"- {k}: torchc failed in {f.get('stage', '?')}: {f.get('message', '')[:300]}")
        else:
            mine = ms(torchc_latency(o))
        err = "—"
        if o and isinstance(o.get("relErr"), (int, float)):
            err = f"{o['relErr']:.1e}" + ("" if within(o) else " ✗")
        elif o and o.get("relErr") is None and o.get("ok"):
            err = "inf/NaN ✗"
        s = speedup(p, o)
        s_cell = "—"
        if s is not None:
            ups.append(s)
            if within(o):
                ups_ok.append(s)
            if s < 1:
                slower.append(k)
            s_cell = f"{s:.2f}×" + ("" if within(o) else " (wrong output)")
        ro = p.get("reduce_overhead") or {}
        if p.get("skipped"):
            notes.append(f"- {k}: PyTorch's side skipped ({p['skipped']})")
        elif p and not p.get("ok", True):
            f = p.get("failure") or {}
            notes.append(f"- {k}: PyTorch's side failed in {f.get('stage', '?')}: {f.get('message', '')[:300]}")
        for label, m in (("reduce-overhead", ro), ("max-autotune", p.get("max_autotune"))):
            if isinstance(m, dict) and m.get("error"):
                notes.append(f"- {k}: torch.compile {label}: {m['error'][:300]}")
        sens = p.get("input_sensitivity")
        if isinstance(sens, (int, float)) and sens < INSENSITIVE:
            notes.append(f"- {k}: PyTorch's output barely depends on the input ({sens:.1e}): a match proves little")
        compile_t = f"{secs((o or {}).get('compileColdS'))} / {secs((o or {}).get('compileWarmS'))}"
        compile_p = f"{secs(ro.get('compile_s'))} / {secs(ro.get('warm_compile_s'))}"
        kernels = ((o or {}).get("profile") or {}).get("kernels", "—")
        out.append(
            f"| {model} | {batch} | {mine} | {peer_cell(p.get('eager_fp16'))} | {peer_cell(p.get('eager_fp16_cuda_graph'))} | "
            f"{peer_cell(ro or None)} | {peer_cell(p.get('max_autotune'))} | {s_cell} | {err} | {compile_t} | {compile_p} | "
            f"{kernels} |"
        )
    out.append("")
    g = geomean(ups)
    if g is None:
        out.append("Geometric-mean speed-up over reduce-overhead: no row has both numbers.")
    else:
        line = f"Geometric-mean speed-up over reduce-overhead: **{g:.2f}×** over {len(ups)} rows"
        if len(ups_ok) != len(ups):
            go = geomean(ups_ok)
            line += f" ({len(ups) - len(ups_ok)} with wrong output; over the {len(ups_ok)} correct rows: "
            line += f"{go:.2f}×)" if go is not None else "none)"
        out.append(line + ".")
        out.append(f"Slower than reduce-overhead: {', '.join(slower) if slower else 'none'}.")
    if notes:
        out.append("\nNotes:\n")
        out.extend(notes)
    return "\n".join(out) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("paths", nargs="+")
    ap.add_argument("--out")
    a = ap.parse_args(argv)
    text = report(*load(a.paths))
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
