/**
 * The generated int8 implicit-GEMM convolution (src/backends/cuda/codegen/conv-int8-igemm.ts) against cuDNN's
 * int8 and fp16 convolutions on ResNet-50's layers (and EfficientNet-B0's 1×1 layers whose input channels are a
 * multiple of 16) at batch 128: `bash scripts/gpu.sh bench igemm-sweep`. IGEMM_SWEEP_MODELS=resnet50 (default;
 * `resnet50,efficientnet_b0` for both) picks the models.
 *
 * Per layer: cuDNN fp16 (NHWC, bias + ReLU, fp16 out, every candidate timed), cuDNN int8 with fp16 out and with
 * int8 out (the engine's ConvStep.quantizeOutput), and the generated kernel in each candidate configuration with
 * fp16 out and int8 out, all on the same random int8 activations and weights, per-channel scales and biases. Before
 * any timing, each generated output is compared with cuDNN int8's of the same output type as the build compares
 * them (igemm-conv-select.ts outputMismatch: fp16 within 1e-2 of the largest value, int8 within one step on at most
 * 0.1% of values). A mismatch fails the run and that kernel is not timed.
 * Timing as the int8 speed choice times (device/graph-timing.ts): CUDA graphs of 8 calls, alternating with cuDNN
 * fp16, median per call. A table per layer and the models' weighted totals close the run.
 *
 * Floors and prediction, written before any measurement (H100 SXM 80 GB, 3.35 TB/s, cuDNN 9.19 int8 at 0.52× fp16
 * on the deep 3×3 layers, i.e. ~1.4 int8 TOP/s: wgmma kernels). The generated kernel is mma.sync (about half of
 * wgmma's int8 rate), so:
 *  - compute-bound layers (3×3 from layer 2 on, the deep 1×1s): 1.5–2.5× slower than cuDNN int8; it stays there;
 *  - memory-bound 56×56 layers, where cuDNN int8 is 1.1× fp16: l1 1×1 64→256 (floor 69 µs fp16 out, 38 µs int8
 *    out; cuDNN int8 108 µs) 75–90 µs fp16 out and 45–60 µs int8 out; l1 1×1 64→64 (floor 23/15 µs; cuDNN 41 µs)
 *    25–35 µs; l1 3×3 64→64 (29.6 GOP: ~50 µs at 600 TOP/s; cuDNN 88.5 µs) 55–75 µs;
 *  - best of cuDNN int8 and generated per layer, int8 out: ResNet-50's convolutions ~0.62–0.70× cuDNN fp16
 *    (session 15: cuDNN int8 alone 0.81×, best of int8/fp16/fp8 0.77×).
 *
 * Without a GPU it compiles every kernel for sm_90 and prints registers and spills. Writes igemm-sweep.json and
 * igemm-sweep.md into $OUT.
 */
import {
  describeIgemmConfig,
  generateIgemmConvKernel,
  type IgemmConvConfig,
  type IgemmConvProblem,
  type IgemmOutput,
  igemmCandidates,
  igemmConvSupports,
  igemmGeometry,
} from "../../src/backends/cuda/codegen/conv-int8-igemm.js";
import { Cudnn } from "../../src/backends/cuda/device/conv.js";
import { timePairOnStream } from "../../src/backends/cuda/device/graph-timing.js";
import { DeviceBuffer, type Kernel, KernelArgs, launch } from "../../src/backends/cuda/device/index.js";
import { TimingScratch } from "../../src/backends/cuda/device/timing-scratch.js";
import { bindProblemScratch, outputElements, problemSpec } from "../../src/backends/cuda/int8-conv-timing.js";
import { outputMismatch } from "../../src/backends/cuda/igemm-conv-select.js";
import { buildCudnnConv, type CudnnConvPlan } from "../../src/backends/cuda/kernels/conv-cudnn.js";
import type { Int8ConvProblem } from "../../src/runtime/calibration-speed.js";
import { xorshift32 } from "../../src/util/random-input.js";
import { N, SHAPES, type Shape } from "./conv-layer-shapes.js";
import { compileVariants, firstLine, regsAndSpill, type SweepKernel, Sweep } from "./sweep-support.js";

interface Variant extends SweepKernel {
  readonly config: IgemmConvConfig;
  readonly output: IgemmOutput;
  readonly problem: IgemmConvProblem;
}

interface Row {
  readonly name: string;
  readonly model: Shape["model"];
  readonly count: number;
  fp16Us?: number;
  /** cuDNN int8, fp16 and int8 out. */
  cudnnF16Us?: number;
  cudnnI8Us?: number;
  /** The best generated configuration per output type, and its label. */
  genF16Us?: number;
  genF16?: string;
  genI8Us?: number;
  genI8?: string;
  error?: string;
}

const sweep = new Sweep<Row>("igemm-sweep");
const TIMING = { perGraph: 8, replays: 3, rounds: 5 } as const;

function problemOf(p: Int8ConvProblem, output: IgemmOutput): IgemmConvProblem {
  return {
    n: p.n,
    h: p.h,
    w: p.w,
    c: p.c,
    k: p.k,
    r: p.r,
    s: p.s,
    stride: p.stride,
    padding: p.padding,
    dilation: p.dilation,
    output,
    bias: p.bias,
    epilogue: p.relu ? [{ kind: "act", fn: "relu" }] : [],
  };
}

/** Random int8 operands and per-channel scales that keep outputs within int8's range mostly (some saturate). */
function operands(p: Int8ConvProblem) {
  const bits = xorshift32(0x9e3779b9);
  const next = () => bits() / 2 ** 32;
  const xs = p.n * p.c * p.h * p.w;
  const x = new Int8Array(xs);
  for (let i = 0; i < xs; i++) x[i] = Math.floor(next() * 256) - 128;
  const w = Int8Array.from({ length: p.k * p.c * p.r * p.s }, () => Math.floor(next() * 256) - 128);
  const typical = 74 * 74 * Math.sqrt(p.c * p.r * p.s);
  const scale = Float32Array.from({ length: p.k }, () => ((0.5 + next()) * 60) / typical);
  const bias = Float32Array.from({ length: p.k }, () => (next() - 0.5) * 10);
  return { x, w, scale, bias };
}

/** Every candidate configuration of the layer, with fp16 and with int8 output. */
function variantsOf(p: Int8ConvProblem): Variant[] {
  const all: Variant[] = [];
  for (const output of ["float16", "int8"] as const) {
    const problem = problemOf(p, output);
    for (const config of igemmCandidates(problem))
      all.push({
        label: `${describeIgemmConfig(config)} ${output === "int8" ? "i8" : "f16"}-out`,
        kernel: generateIgemmConvKernel(`igemm_${all.length}`, problem, config),
        symbol: "",
        config,
        output,
        problem,
      });
  }
  return all;
}

function runShape(cudnn: Cudnn, s: Shape): void {
  const row: Row = { name: s.name, model: s.model, count: s.count };
  sweep.rows.push(row);
  const why = igemmConvSupports(problemOf(s.p, "int8"));
  if (why) {
    row.error = why;
    sweep.say(`${s.model} ${s.name}: generated kernel refuses: ${why}`);
    return;
  }
  const { module, variants } = compileVariants(sweep, variantsOf(s.p), (v) => `  ${v.label}: ${regsAndSpill(v)}`);
  if (!module) return;
  const bench = new TimingScratch();
  const plans: CudnnConvPlan[] = [];
  const buffers: DeviceBuffer[] = [];
  try {
    const host = operands(s.p);
    const ys = outputElements(s.p);
    const [x, w, scale, bias] = [host.x, host.w, host.scale, host.bias].map((a) => {
      const b = DeviceBuffer.from(a);
      buffers.push(b);
      return b;
    });
    const out = (bytes: number) => {
      const b = DeviceBuffer.alloc(bytes);
      buffers.push(b);
      return b;
    };
    // cuDNN: fp16 (its own scratch data), int8 → fp16 and int8 → int8 on the operands above
    const fp16 = buildCudnnConv(cudnn, problemSpec(s.p, "float16", false), { tune: true });
    if (!fp16.ok) throw new Error(`cuDNN fp16 refused: ${fp16.reason}`);
    plans.push(fp16.plan);
    bindProblemScratch(bench, fp16.plan, s.p, "float16", out(ys * 2).ptr, bench.buffer(Math.max(256, fp16.plan.workspaceBytes), 0).ptr);
    const cudnnInt8 = new Map<IgemmOutput, { plan: CudnnConvPlan; y: DeviceBuffer }>();
    for (const output of ["float16", "int8"] as const) {
      const spec = { ...problemSpec(s.p, "float16", true), ...(output === "int8" ? { int8Output: true as const } : {}) };
      const built = buildCudnnConv(cudnn, spec, { tune: true });
      if (!built.ok) {
        sweep.say(`  cuDNN int8 (${output} out) refused: ${firstLine(new Error(built.reason))}`);
        continue;
      }
      plans.push(built.plan);
      const y = out(ys * (output === "int8" ? 1 : 2));
      const ws = bench.buffer(Math.max(256, built.plan.workspaceBytes), 0).ptr;
      built.plan.bind({ x: x.ptr, w: w.ptr, scale: scale.ptr, bias: bias.ptr, y: y.ptr, extra: [] }, ws);
      cudnnInt8.set(output, { plan: built.plan, y });
    }
    bench.stream.synchronize();
    fp16.plan.tune(bench.stream);
    for (const { plan } of cudnnInt8.values()) plan.tune(bench.stream);
    const vsFp16 = (run: () => void) =>
      timePairOnStream(bench.stream, [() => fp16.plan.execute(bench.stream), run], TIMING);
    for (const [output, { plan }] of cudnnInt8) {
      const t = vsFp16(() => plan.execute(bench.stream));
      row.fp16Us = Math.min(row.fp16Us ?? Infinity, t.ms[0] * 1000);
      if (output === "int8") row.cudnnI8Us = t.ms[1] * 1000;
      else row.cudnnF16Us = t.ms[1] * 1000;
    }
    for (const v of variants) {
      const kernel: Kernel = module.kernel(v.symbol);
      if (v.kernel.sharedBytes > 48 * 1024) kernel.setMaxDynamicSharedBytes(v.kernel.sharedBytes);
      const y = out(ys * (v.output === "int8" ? 1 : 2));
      const args = new KernelArgs(v.kernel.params.map(() => "ptr" as const));
      const ptrs: Record<string, bigint> = { x: x.ptr, w: w.ptr, scale: scale.ptr, bias: bias.ptr, y: y.ptr };
      v.kernel.params.forEach((q, j) => args.set(j, ptrs[q.tensor]));
      const run = () =>
        launch(kernel, { grid: v.kernel.grid, block: v.kernel.block, sharedBytes: v.kernel.sharedBytes, stream: bench.stream, programmatic: false }, args);
      try {
        run();
        bench.stream.synchronize();
        const ref = cudnnInt8.get(v.output);
        if (ref) {
          const bad = outputMismatch(v.output, y, ref.y, ys);
          if (typeof bad === "string") {
            sweep.failed(s.name, v.label, new Error(bad));
            continue;
          }
        }
        const t = vsFp16(run);
        row.fp16Us = Math.min(row.fp16Us ?? Infinity, t.ms[0] * 1000);
        const us = t.ms[1] * 1000;
        sweep.say(`  ${v.label}: ${us.toFixed(1)} µs (grid ${igemmGeometry(v.problem, v.config).ctas})`);
        if (v.output === "int8" && us < (row.genI8Us ?? Infinity)) [row.genI8Us, row.genI8] = [us, v.label];
        if (v.output === "float16" && us < (row.genF16Us ?? Infinity)) [row.genF16Us, row.genF16] = [us, v.label];
      } catch (e) {
        sweep.failed(s.name, v.label, e);
      }
    }
    const f = (v?: number) => (v === undefined ? "—" : `${v.toFixed(1)} µs`);
    sweep.say(
      `${s.model} ${s.name} ×${s.count}: fp16 ${f(row.fp16Us)}; fp16 out: cuDNN int8 ${f(row.cudnnF16Us)}, generated ${f(row.genF16Us)}; int8 out: cuDNN ${f(row.cudnnI8Us)}, generated ${f(row.genI8Us)}`,
    );
  } finally {
    // the stream first: on an error path work may still run against the buffers and the module
    try {
      bench.release();
    } catch (e) {
      sweep.say(`  scratch release: ${firstLine(e)}`);
    }
    for (const p of plans) p.destroy();
    for (const b of buffers) b.free();
    module.unload();
  }
}

function summary(): string[] {
  const us = (v?: number) => (v === undefined ? "—" : v.toFixed(1));
  const out = [
    "| model | layer | × | cuDNN fp16 | cuDNN int8→fp16 | gen int8→fp16 | cuDNN int8→int8 | gen int8→int8 | best gen (int8 out) |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ...sweep.rows.map(
      (r) =>
        `| ${r.model} | ${r.name} | ${r.count} | ${us(r.fp16Us)} | ${us(r.cudnnF16Us)} | ${us(r.genF16Us)} | ${us(r.cudnnI8Us)} | ${us(r.genI8Us)} | ${r.genI8 ?? r.error ?? "—"} |`,
    ),
    "",
    "Weighted by occurrences, ms per forward pass of these convolutions (fp16 where an int8 path is missing):",
    "",
    "| model | cuDNN fp16 | cuDNN int8→fp16 | cuDNN int8→int8 | best of cuDNN/gen int8→fp16 | best of cuDNN/gen int8→int8 |",
    "| --- | --- | --- | --- | --- | --- |",
  ];
  for (const model of ["resnet50", "efficientnet_b0"] as const) {
    const rows = sweep.rows.filter((r) => r.model === model && r.fp16Us !== undefined);
    if (rows.length === 0) continue;
    const sum = (pick: (r: Row) => number) => rows.reduce((a, r) => a + (r.count * pick(r)) / 1000, 0);
    const fp16 = sum((r) => r.fp16Us!);
    const cell = (v: number) => `${v.toFixed(3)} (${(v / fp16).toFixed(2)}×)`;
    const or = (...v: (number | undefined)[]) => Math.min(...v.map((x) => x ?? Infinity));
    out.push(
      `| ${model} | ${fp16.toFixed(3)} | ${cell(sum((r) => or(r.cudnnF16Us) === Infinity ? r.fp16Us! : or(r.cudnnF16Us)))} | ${cell(sum((r) => or(r.cudnnI8Us) === Infinity ? r.fp16Us! : or(r.cudnnI8Us)))} | ${cell(sum((r) => Math.min(r.fp16Us!, or(r.cudnnF16Us, r.genF16Us))))} | ${cell(sum((r) => Math.min(r.fp16Us!, or(r.cudnnI8Us, r.genI8Us))))} |`,
    );
  }
  return out;
}

const models = (process.env.IGEMM_SWEEP_MODELS ?? "resnet50").split(",");
const shapes = SHAPES.filter((s) => models.includes(s.model));
const cudnn = sweep.gpu ? Cudnn.create() : undefined;
sweep.runShapes(shapes, (s) => {
  if (cudnn) runShape(cudnn, s);
  // no GPU: compile only (registers and spills)
  else if (!igemmConvSupports(problemOf(s.p, "int8")))
    compileVariants(sweep, variantsOf(s.p), (v) => `  ${s.name} ${v.label}: ${regsAndSpill(v)}`);
});
cudnn?.destroy();
sweep.finish(
  `## int8 implicit-GEMM convolutions at batch ${N}: generated (mma.sync) against cuDNN int8 and fp16 (bias + ReLU; µs per call in CUDA graphs)`,
  summary(),
  "every generated kernel matched cuDNN int8 and ran",
);
