"""PyTorch peers for the CUDA backend's EfficientNet-B0 numbers, on the same card in the same run:
eager fp16 channels-last, and the same replayed as one CUDA graph, at batch 1 and 128 (random weights)."""
import json, os, sys, time
import torch, timm

def bench(fn, reps):
    for _ in range(10): fn()
    torch.cuda.synchronize()
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    out = []
    for _ in range(3):
        s.record()
        for _ in range(reps): fn()
        e.record(); torch.cuda.synchronize()
        out.append(s.elapsed_time(e) / reps)
    return sorted(out)[1]

res = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__}
m = timm.create_model("efficientnet_b0", pretrained=False).cuda().eval().half().to(memory_format=torch.channels_last)
with torch.no_grad():
    for bs in (1, 128):
        x = torch.randn(bs, 3, 224, 224, device="cuda", dtype=torch.half).to(memory_format=torch.channels_last)
        res[f"eager_fp16_bs{bs}"] = bench(lambda: m(x), 50 if bs == 1 else 20)
        s = torch.cuda.Stream(); s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            for _ in range(3): m(x)
        torch.cuda.current_stream().wait_stream(s)
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g): m(x)
        res[f"graph_fp16_bs{bs}"] = bench(lambda: g.replay(), 200 if bs == 1 else 20)
line = json.dumps(res)
print("[peer]", line)
out = os.environ.get("OUT")
if out:
    open(os.path.join(out, "peer.json"), "w").write(line)
