"""End-to-end table for bench/RESULTS.md from one device command: PyTorch's peers (fixtures/export_runtime.py
--peers → peers_e2e.json) and torchc (bench/e2e.bench.ts → e2e.json), measured on the same machine.

  python3 bench/e2e_report.py PEERS_E2E_JSON TORCHC_E2E_JSON
"""

import json
import sys

peers = json.load(open(sys.argv[1]))
ours = {r["batch"]: r for r in json.load(open(sys.argv[2]))}
mib = lambda b: f"{b / 2**20:.0f} MiB"
print(f"Card: **{peers['card']}**, torch {peers['torch']}. EfficientNet-B0 (timm, random weights), fp16; host fp32 in, host fp32 out.")
print("PyTorch: a fresh `.cuda()` of the pageable host tensor, cast to fp16 channels-last, the forward pass, `.float().cpu()`; host wall time per call, median of 200 (batch 1) or 50 (batch 128) calls.")
print("torchc: `await compiled.run([x])` (poll completion, the default), median of 400 / 40 calls; *plain* = an ordinary Float32Array, *pinned* = tensors from `allocateHostInputs()`/`allocateHostOutputs()`; *2 contexts* = `contexts: 2` with two calls always in flight (time per call at steady state).\n")
print("| batch | PyTorch CUDA graph e2e | PyTorch reduce-overhead e2e | torchc GPU only | torchc e2e plain | torchc e2e pinned in+out | torchc 2 contexts plain | torchc 2 contexts pinned |")
print("| --- | --- | --- | --- | --- | --- | --- | --- |")
for p in peers["runs"]:
    b = p["batch"]
    o = ours.get(b)
    if not o:
        continue
    s = o["strategies"]
    print(
        f"| {b} | {p['cuda_graph_e2e']['median_ms']:.3f} ms | {p['reduce_overhead_e2e']['median_ms']:.3f} ms | "
        f"{o['gpu']['medianMs']:.3f} ms | {s['poll']['median']:.3f} ms | {s['pollPinned']['median']:.3f} ms | "
        f"{o['pipelined']['plain']:.3f} ms | {o['pipelined']['pinned']:.3f} ms |"
    )
print("\nA/B in the same process: GPU only with today's defaults, with the image stem on cuDNN instead of the direct stem kernel (`TORCHC_DIRECT_STEM=0`), and with squeeze-excite's pooling summed by the depthwise kernel (`TORCHC_FOLD_SPATIAL_MEAN=1`; off by default); and batch 1 plain with the input's host copy on worker threads instead of the JS thread (the default below 1 MiB).\n")
print("| batch | GPU only (defaults) | GPU only (stem on cuDNN) | GPU only (SE pooling folded) | e2e plain (JS-thread copy, default) | e2e plain (worker-thread copy) |")
print("| --- | --- | --- | --- | --- | --- |")
for b, o in sorted(ours.items()):
    cell = lambda r, k: f"{r[k]:.3f}" if r else "—"
    print(
        f"| {b} | {o['gpu']['medianMs']:.3f} | {cell(o.get('gpuNoStem'), 'medianMs')} | {cell(o.get('gpuFold'), 'medianMs')} | "
        f"{o['strategies']['poll']['median']:.3f} | {cell(o.get('plainWorkerCopy'), 'median')} |"
    )
print("\nBatch 128, plain input: the host copy's piece size (worker threads; each piece's DMA queued as it lands).\n")
print("| batch | default (2 MiB) | 1 MiB | 4 MiB |")
print("| --- | --- | --- | --- |")
for b, o in sorted(ours.items()):
    ch = o.get("plainByChunk") or {}
    if ch:
        print(f"| {b} | {o['plain']['median']:.3f} | {ch['1MiB']['median']:.3f} | {ch['4MiB']['median']:.3f} |")
print("\nCompletion strategies (torchc e2e median, ms): plain input / pinned input and output. *poll* spins for up to 1 ms, then waits on a worker thread (default since session 10); *poll, spin only* spins for the whole wait (`TORCHC_POLL_SPIN_MS=1000000`).\n")
print("| batch | poll | poll, spin only | worker | hostfn |")
print("| --- | --- | --- | --- | --- |")
for b, o in sorted(ours.items()):
    s = o["strategies"]
    cell = lambda k: f"{s[k]['median']:.3f} / {s[k + 'Pinned']['median']:.3f}"
    spin = cell("pollSpin") if "pollSpin" in s else "—"
    print(f"| {b} | {cell('poll')} | {spin} | {cell('worker')} | {cell('hostfn')} |")
print("\nDevice memory: torchc `compiled.memory()` against PyTorch's `torch.cuda.max_memory_allocated()` for the same forward pass.\n")
print("| batch | torchc device total (1 context) | of which weights / activations / workspaces / I/O | each extra context | PyTorch CUDA graph | PyTorch reduce-overhead |")
print("| --- | --- | --- | --- | --- | --- |")
for p in peers["runs"]:
    b = p["batch"]
    o = ours.get(b)
    if not o:
        continue
    m = o["memory"]
    pc = m["perContext"]
    print(
        f"| {b} | {mib(m['deviceTotal'])} | {mib(m['weights'])} / {mib(m['activations'])} / {mib(m['workspaces'])} / {mib(m['io'])} | "
        f"{mib(pc['activations'] + pc['workspaces'] + pc['io'])} device + {mib(pc['pinnedHost'])} pinned | "
        f"{mib(p['cuda_graph_max_memory_allocated'])} | {mib(p['reduce_overhead_max_memory_allocated'])} |"
    )
