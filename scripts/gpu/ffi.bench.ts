/**
 * Micro-benchmarks of the native layer on the GPU: launch overhead, CUDA graph replay, cuBLASLt linears,
 * cuDNN convolutions (EfficientNet/ResNet-like shapes) and the LibTorch dispatcher. Each measurement is
 * independent (one failing does not stop the others). Prints a table and writes ffi-bench.json into
 * $TORCHC_BENCH_OUT (default: the current folder).
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  BlasLt,
  CudaContext,
  Cudnn,
  DeviceBuffer,
  KernelArgs,
  LibTorch,
  Stream,
  arg,
  buildConvPlan,
  buildKernels,
  captureGraph,
  launch,
  timeOnStream,
} from "../../src/backends/cuda/device/index.js";
import type { ConvSpec } from "../../src/backends/cuda/device/index.js";

interface Row {
  name: string;
  value?: number;
  unit?: string;
  extra?: Record<string, unknown>;
  error?: string;
}

const rows: Row[] = [];
function measure(name: string, f: () => Omit<Row, "name">): void {
  try {
    rows.push({ name, ...f() });
  } catch (e) {
    rows.push({ name, error: (e as Error).message.split("\n")[0] });
  }
  const r = rows.at(-1)!;
  console.log(`${name.padEnd(52)} ${r.error ? `FAILED: ${r.error}` : `${r.value?.toFixed(3)} ${r.unit}  ${r.extra ? JSON.stringify(r.extra) : ""}`}`);
}

const ctx = CudaContext.get(0);
console.log(`device: ${ctx.info.name} (${ctx.arch}), driver ${ctx.info.driverVersion}`);
const stream = Stream.create();
const SRC = 'extern "C" __global__ void empty_kernel() {}';

measure("cuLaunchKernel host time (empty kernel)", () => {
  const { kernels } = buildKernels(SRC, ["empty_kernel"]);
  const args = new KernelArgs([]);
  for (let i = 0; i < 200; i++) launch(kernels.empty_kernel, { grid: 1, block: 32, stream }, args);
  stream.synchronize();
  const reps = 5000;
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) launch(kernels.empty_kernel, { grid: 1, block: 32, stream }, args);
  const us = ((performance.now() - t0) * 1000) / reps;
  stream.synchronize();
  args.free();
  return { value: us, unit: "µs/launch" };
});

measure("CUDA graph of 100 empty kernels, replay", () => {
  const { kernels } = buildKernels(SRC, ["empty_kernel"]);
  const args = new KernelArgs([]);
  const graph = captureGraph(stream, () => {
    for (let i = 0; i < 100; i++) launch(kernels.empty_kernel, { grid: 1, block: 32, stream }, args);
  });
  const ms = timeOnStream(stream, () => graph.launch(stream), { warmup: 10, reps: 100 });
  graph.destroy();
  args.free();
  return { value: ms * 1000, unit: "µs/replay", extra: { nodes: graph.nodeCount } };
});

const lt = BlasLt.create();
for (const [m, k, n] of [
  [1, 1280, 1000],
  [128, 1280, 1000],
  [8192, 1024, 1024],
] as const) {
  measure(`cuBLASLt fp16 linear+bias M=${m} K=${k} N=${n}`, () => {
    const x = DeviceBuffer.alloc(m * k * 2).fill(0);
    const w = DeviceBuffer.alloc(n * k * 2).fill(0);
    const b = DeviceBuffer.alloc(n * 2).fill(0);
    const y = DeviceBuffer.alloc(m * n * 2);
    const ms = timeOnStream(stream, () =>
      lt.linear({ x, weight: w, bias: b, out: y, m, inFeatures: k, outFeatures: n, dtype: "float16", stream }),
    );
    for (const buf of [x, w, b, y]) buf.free();
    return { value: ms * 1000, unit: "µs", extra: { tflops: +((2 * m * n * k) / (ms * 1e-3) / 1e12).toFixed(1) } };
  });
}
lt.destroy();

const cudnn = Cudnn.create();
const convs: [string, ConvSpec][] = [
  ["effnet stem 3x3 s2 32ch bs128 +bias+silu", { layout: "NHWC", dtype: "float16", n: 128, c: 3, h: 224, w: 224, k: 32, r: 3, s: 3, stride: 2, padding: 1, bias: true, activation: "silu" }],
  ["effnet dw 3x3 s2 96ch 112² bs128 +bias+silu", { layout: "NHWC", dtype: "float16", n: 128, c: 96, h: 112, w: 112, k: 96, r: 3, s: 3, stride: 2, padding: 1, groups: 96, bias: true, activation: "silu" }],
  ["effnet pw 1x1 96→24 56² bs128 +bias", { layout: "NHWC", dtype: "float16", n: 128, c: 96, h: 56, w: 56, k: 24, r: 1, s: 1, bias: true }],
  ["resnet 3x3 64ch 56² bs128 +bias+relu", { layout: "NHWC", dtype: "float16", n: 128, c: 64, h: 56, w: 56, k: 64, r: 3, s: 3, padding: 1, bias: true, activation: "relu" }],
  ["resnet 3x3 64ch 56² bs1 +bias+relu", { layout: "NHWC", dtype: "float16", n: 1, c: 64, h: 56, w: 56, k: 64, r: 3, s: 3, padding: 1, bias: true, activation: "relu" }],
];
for (const [name, spec] of convs) {
  measure(`cuDNN ${name}`, () => {
    const t0 = performance.now();
    const plan = buildConvPlan(cudnn, spec);
    const buildMs = performance.now() - t0;
    const g = plan.geometry;
    const io = {
      x: DeviceBuffer.alloc(g.x.bytes).fill(0),
      w: DeviceBuffer.alloc(g.w.bytes).fill(0),
      bias: spec.bias ? DeviceBuffer.alloc(g.b.bytes).fill(0) : null,
      y: DeviceBuffer.alloc(g.y.bytes),
    };
    const ms = timeOnStream(stream, () => plan.execute(io, stream));
    plan.destroy();
    for (const b of Object.values(io)) b?.free();
    return { value: ms * 1000, unit: "µs", extra: { engine: plan.engineIndex, tried: plan.configsTried, buildMs: Math.round(buildMs), ws: plan.workspaceBytes } };
  });
}
cudnn.destroy();

measure("LibTorch dispatcher aten::relu (new handle + call + delete)", () => {
  const torch = LibTorch.load();
  const buf = DeviceBuffer.alloc(1024 * 4).fill(0);
  const x = torch.wrap(buf, { sizes: [1024], dtype: "float32" });
  for (let i = 0; i < 50; i++) torch.callTensor("aten::relu", "", [arg.tensor(x)]).delete();
  const reps = 1000;
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) torch.callTensor("aten::relu", "", [arg.tensor(x)]).delete();
  const us = ((performance.now() - t0) * 1000) / reps;
  ctx.synchronize();
  x.delete();
  buf.free();
  return { value: us, unit: "µs/call (host)" };
});

stream.destroy();
const out = join(process.env.TORCHC_BENCH_OUT ?? ".", "ffi-bench.json");
writeFileSync(out, JSON.stringify({ device: ctx.info, when: new Date().toISOString(), rows }, null, 2));
console.log(`wrote ${out}`);
process.exitCode = rows.some((r) => r.error) ? 1 : 0;
