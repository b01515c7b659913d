/**
 * cuDNN convolutions in fp16, int8 and FP8 E4M3 on the layers of ResNet-50 and EfficientNet-B0 at batch 128:
 * `bash scripts/gpu.sh bench conv-precision-sweep` (about a minute on an H100; no NVRTC). Issue 14 asks for
 * ResNet-50 batch 128 in int8 at ≤ 0.65× its fp16 time and EfficientNet-B0 in int8 or fp8 faster than fp16. Session
 * 9 measured cuDNN's int8 engines (4 on sm_90, against 41 for fp16) at half fp16's time on the deep ResNet layers and
 * 1.2–4× slower on the wide early ones; this says whether FP8 (cuDNN's Hopper fprop graph: FP8 x and w, fp32
 * accumulation, the same per-channel scale, bias and ReLU) does better, layer by layer and weighted by how often
 * each layer occurs in the model.
 *
 * Each problem is planned as the engine plans its convolutions (kernels/conv-cudnn.ts: NHWC, bias + ReLU, fp16
 * output, every candidate of the quantized graphs timed and the fastest kept, the float graph tuned too), bound to
 * scratch buffers of its sizes, and timed as the int8 speed choice times it (device/graph-timing.ts: calls captured
 * in CUDA graphs, rounds alternating with the fp16 plan, median per call). A precision cuDNN refuses is listed with
 * its reason. The residual add of a bottleneck's last convolution is left out (bias + ReLU for every layer).
 *
 * Prediction, written before any measurement (H100 SXM, cuDNN 9.19): FP8 at 0.55–0.7× fp16 on every ResNet layer
 * (runtime-compiled Hopper kernels with fp32 accumulation, where the int8 engines are pre-Hopper IMMA kernels), so
 * ResNet-50's convolutions ~0.6× in fp8 against ~0.8× for the best of int8 and fp16 per layer; EfficientNet-B0's
 * 1×1 convolutions (K ≤ 1152, memory-bound at batch 128) 0.7–0.9×. If FP8 is no better than int8 on the early
 * layers, neither library precision reaches issue 14's 0.65× and the next step is a generated int8/fp8 kernel.
 *
 * Without a GPU it says so in one line and exits 0. Writes conv-precision-sweep.json and .md into $OUT.
 */
import { CudaContext } from "../../src/backends/cuda/device/index.js";
import { timePairOnStream } from "../../src/backends/cuda/device/graph-timing.js";
import { Cudnn } from "../../src/backends/cuda/device/conv.js";
import { TimingScratch } from "../../src/backends/cuda/device/timing-scratch.js";
import { bindProblemScratch, outputElements, problemSpec } from "../../src/backends/cuda/int8-conv-timing.js";
import { buildCudnnConv, type CudnnConvPlan, type CudnnConvSpec } from "../../src/backends/cuda/kernels/conv-cudnn.js";
import type { Int8ConvProblem } from "../../src/runtime/calibration-speed.js";
import { N, SHAPES, type Shape } from "./conv-layer-shapes.js";
import { firstLine, Sweep } from "./sweep-support.js";

type Precision = "int8" | "fp8";

interface Row {
  readonly name: string;
  readonly model: Shape["model"];
  readonly count: number;
  fp16Ms?: number;
  int8Ms?: number;
  fp8Ms?: number;
  int8Error?: string;
  fp8Error?: string;
}

const sweep = new Sweep<Row>("conv-precision-sweep");
const TIMING = { perGraph: 8, replays: 3, rounds: 5 } as const;

function specOf(p: Int8ConvProblem, precision: Precision | "fp16"): CudnnConvSpec {
  if (precision === "fp16") return problemSpec(p, "float16", false);
  const s = problemSpec(p, "float16", true);
  return precision === "fp8" ? { ...s, fp8: true } : s;
}

function runShape(cudnn: Cudnn, s: Shape): void {
  const row: Row = { name: s.name, model: s.model, count: s.count };
  sweep.rows.push(row);
  const bench = new TimingScratch();
  const plans: Partial<Record<Precision | "fp16", CudnnConvPlan>> = {};
  try {
    for (const precision of ["fp16", "int8", "fp8"] as const) {
      const built = buildCudnnConv(cudnn, specOf(s.p, precision), { tune: true });
      if (!built.ok) {
        if (precision === "fp16") throw new Error(`fp16 refused: ${built.reason}`);
        row[`${precision}Error`] = built.reason.slice(0, 160);
        continue;
      }
      plans[precision] = built.plan;
      const y = bench.buffer(outputElements(s.p) * 2, 0).ptr;
      const workspace = bench.buffer(Math.max(256, built.plan.workspaceBytes), 0).ptr;
      bindProblemScratch(bench, built.plan, s.p, precision === "fp16" ? "float16" : precision, y, workspace);
    }
    CudaContext.current().synchronize();
    const fp16 = plans.fp16 as CudnnConvPlan;
    fp16.tune(bench.stream);
    for (const precision of ["int8", "fp8"] as const) {
      const q = plans[precision];
      if (!q) continue;
      try {
        q.tune(bench.stream);
        const t = timePairOnStream(bench.stream, [() => fp16.execute(bench.stream), () => q.execute(bench.stream)], TIMING);
        row.fp16Ms = row.fp16Ms === undefined ? t.ms[0] : Math.min(row.fp16Ms, t.ms[0]);
        row[`${precision}Ms`] = t.ms[1];
      } catch (e) {
        row[`${precision}Error`] = sweep.failed(s.name, precision, e);
      }
    }
    if (row.fp16Ms === undefined) {
      const t = timePairOnStream(bench.stream, [() => fp16.execute(bench.stream), () => fp16.execute(bench.stream)], TIMING);
      row.fp16Ms = t.ms[0];
    }
    const f = (v?: number) => (v === undefined ? "—" : `${(v * 1000).toFixed(1)} µs`);
    sweep.say(
      `${s.model} ${s.name} ×${s.count}: fp16 ${f(row.fp16Ms)}, int8 ${f(row.int8Ms)}${row.int8Error ? ` (${row.int8Error})` : ""}, fp8 ${f(row.fp8Ms)}${row.fp8Error ? ` (${row.fp8Error})` : ""}`,
    );
  } finally {
    for (const plan of Object.values(plans)) plan?.destroy();
    try {
      bench.release();
    } catch (e) {
      sweep.say(`  scratch release: ${firstLine(e)}`);
    }
  }
}

function summary(): string[] {
  const out: string[] = [
    "| model | layer | × | fp16 µs | int8 µs | fp8 µs | int8 / fp16 | fp8 / fp16 |",
    "| --- | --- | --- | --- | --- | --- | --- | --- |",
  ];
  const us = (v?: number) => (v === undefined ? "—" : (v * 1000).toFixed(1));
  const ratio = (v?: number, b?: number) => (v === undefined || !b ? "—" : (v / b).toFixed(2));
  for (const r of sweep.rows)
    out.push(
      `| ${r.model} | ${r.name} | ${r.count} | ${us(r.fp16Ms)} | ${us(r.int8Ms)} | ${us(r.fp8Ms)} | ${ratio(r.int8Ms, r.fp16Ms)} | ${ratio(r.fp8Ms, r.fp16Ms)} |`,
    );
  out.push("", "Weighted by occurrences (each layer's time × how often it occurs), ms per forward pass of these convolutions:", "");
  out.push("| model | fp16 | int8 (fp16 where refused) | fp8 (fp16 where refused) | best per layer of the three |");
  out.push("| --- | --- | --- | --- | --- |");
  for (const model of ["resnet50", "efficientnet_b0"] as const) {
    const rows = sweep.rows.filter((r) => r.model === model && r.fp16Ms !== undefined);
    const sum = (pick: (r: Row) => number) => rows.reduce((a, r) => a + r.count * pick(r), 0);
    const fp16 = sum((r) => r.fp16Ms as number);
    const int8 = sum((r) => r.int8Ms ?? (r.fp16Ms as number));
    const fp8 = sum((r) => r.fp8Ms ?? (r.fp16Ms as number));
    const best = sum((r) => Math.min(r.fp16Ms as number, r.int8Ms ?? Infinity, r.fp8Ms ?? Infinity));
    const cell = (v: number) => `${v.toFixed(3)} (${(v / fp16).toFixed(2)}×)`;
    out.push(`| ${model} | ${fp16.toFixed(3)} | ${cell(int8)} | ${cell(fp8)} | ${cell(best)} |`);
  }
  return out;
}

if (!sweep.gpu) {
  sweep.say("conv-precision-sweep: no GPU, nothing to time");
} else {
  const cudnn = Cudnn.create();
  const only = process.env.CONV_PRECISION_MODELS?.split(",");
  sweep.runShapes(
    SHAPES.filter((s) => !only || only.includes(s.model)),
    (s) => runShape(cudnn, s),
  );
  cudnn.destroy();
  sweep.finish(
    `## cuDNN convolutions at batch ${N}: fp16 against int8 and FP8 E4M3 (bias + ReLU, fp16 out; µs per call in CUDA graphs)`,
    summary(),
    "every precision cuDNN accepted ran",
  );
}
