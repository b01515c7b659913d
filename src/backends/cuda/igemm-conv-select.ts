/**
 * The build step that gives int8 convolutions (ConvStep.int8) the generated implicit-GEMM kernel
 * (codegen/conv-int8-igemm.ts) where it beats cuDNN's int8 graph. After the schedule is made (every int8 step has its
 * cuDNN plan and its int8 operands), each eligible step's problem gets the kernel's candidate configurations,
 * compiled in one NVRTC program through the kernel cache; each distinct problem is timed once on scratch buffers,
 * cuDNN (every candidate timed first, as the engine would) against the candidates in a tournament (graph-timed
 * pairs, lt-timed-choice.ts's 3% margin), and the winner is checked against cuDNN on the same pseudo-random
 * operands: fp16/fp32 outputs within 1e-2 of max |y|, int8 outputs within one step on at most 0.1% of values (a
 * value on a rounding boundary). A wrong kernel is refused and said.
 *
 * The chosen step then launches the generated kernel with the operands the cuDNN plan would have been bound to
 * (builder.ts's convOperands: x, the uploaded KRSC weight, scale, bias, y, the epilogue's tensors and channel
 * vectors); its cuDNN plan stays in the build for what packages and plan caches record, so a package loads with
 * cuDNN's plan (the choice is not saved yet).
 *
 * Opt-in until measured in whole models on a GPU: TORCHC_INT8_IGEMM=1 turns it on (with TORCHC_QUANT_KERNELS=1,
 * which makes int8 steps), "force" takes the first candidate without timing (still checked; for tests: a mismatch
 * or a failure fails the build).
 */
import { float16BitsToNumber, numberToFloat16Bits } from "../../ir/half.js";
import { roundHalfEven } from "../../ops/math.js";
import { xorshift32 } from "../../util/random-input.js";
import {
  describeIgemmConfig,
  generateIgemmConvKernel,
  type IgemmConvConfig,
  type IgemmConvProblem,
  type IgemmEpilogueOp,
  type IgemmOutput,
  igemmCandidates,
  igemmConvSupports,
  igemmGeometry,
  quantizeInverse,
} from "./codegen/conv-int8-igemm.js";
import type { GeneratedKernel } from "./codegen/element.js";
import { timePairOnStream } from "./device/graph-timing.js";
import { KernelCache } from "./device/kernel-cache.js";
import { KernelArgs, launch, type ParamType } from "./device/launch.js";
import type { DeviceBuffer } from "./device/memory.js";
import { buildKernels, type CudaModule, type Kernel } from "./device/module.js";
import type { Stream } from "./device/stream.js";
import { TimingScratch } from "./device/timing-scratch.js";
import type { ConvStep } from "./fuse/steps.js";
import { type QuantizeCopy, quantizeCopiesEnabled, quantizeCopyAfter } from "./igemm-quantize-copy.js";
import { INT8_CHOICE_TIMING } from "./int8-conv-timing.js";
import type { ConvOperands, CudnnConvPlan, CudnnConvSpec } from "./kernels/conv-cudnn.js";
import { assembleProgram } from "./kernels/generated.js";
import { tournament } from "./lt-timed-choice.js";
import type { EnginePlan } from "./plan.js";

export type IgemmSetting = "off" | "timed" | "force";

/** TORCHC_INT8_IGEMM: 1/timed, force, else off. */
export function igemmSetting(env: NodeJS.ProcessEnv = process.env): IgemmSetting {
  const v = env.TORCHC_INT8_IGEMM;
  if (v === "1" || v === "timed") return "timed";
  if (v === "force") return "force";
  return "off";
}

/** The generated kernel's problem for an int8 conv step's cuDNN spec, or why the step stays on cuDNN. */
export function igemmConvSite(spec: CudnnConvSpec): IgemmConvProblem | string {
  if (!spec.int8 || spec.fp8) return "not an int8 convolution";
  if (spec.layout !== "NHWC") return "an NCHW convolution";
  const [n, c, h, w] = spec.x;
  const [k, cPerGroup, r, s] = spec.w;
  if (cPerGroup !== c) return `${c / cPerGroup} groups`;
  const epilogue = spec.epilogue.map(
    (o): IgemmEpilogueOp => (o.kind === "act" ? { kind: "act", fn: o.fn } : { kind: o.kind, op: o.op }),
  );
  const p: IgemmConvProblem = {
    n,
    h,
    w,
    c,
    k,
    r,
    s,
    stride: spec.stride,
    padding: spec.padding,
    dilation: spec.dilation,
    output: spec.int8Output ? "int8" : spec.dtype,
    bias: spec.bias,
    epilogue,
    tensorType: spec.dtype,
    // the builder uploads an int8-out step's channel operands as float32 (builder.ts uploadWeights)
    channelType: spec.int8Output ? "float32" : spec.dtype,
  };
  const why = igemmConvSupports(p);
  if (why) return why;
  const g = igemmGeometry(p, { bm: 64, bn: 32, bk: 32, warpsM: 1, warpsN: 1, stages: 2 });
  if (spec.y[0] !== n || spec.y[1] !== k || spec.y[2] !== g.P || spec.y[3] !== g.Q)
    return `output [${spec.y.join(", ")}] is not the ${g.P}×${g.Q} map of the convolution`;
  return p;
}

/** A chosen kernel: its generated record (params, grid, block, shared bytes), the loaded symbol, its configuration. */
export interface IgemmConvKernel {
  readonly generated: GeneratedKernel;
  readonly kernel: Kernel;
  readonly problem: IgemmConvProblem;
  readonly config: IgemmConvConfig;
}

export interface IgemmConvLayerReport {
  readonly layer: string;
  readonly shape: string;
  readonly ran: "generated" | "cuDNN";
  readonly config?: string;
  /** GPU µs per call, timed on the build's scratch buffers. */
  readonly cudnnUs?: number;
  readonly generatedUs?: number;
  readonly reason?: string;
}

export interface IgemmConvSummary {
  readonly layers: readonly IgemmConvLayerReport[];
  /** Generated layers that also write the next layer's int8 input (a quantize kernel fewer each). */
  readonly copies: number;
  /** NVRTC (or kernel-cache) and timing time, ms. */
  readonly ms: number;
}

export interface IgemmConvChoices {
  readonly chosen: Map<ConvStep, IgemmConvKernel>;
  /** Chosen steps that also write their quantize's int8 output (that quantize step is then skipped). */
  readonly copies: Map<ConvStep, QuantizeCopy>;
  readonly summary: IgemmConvSummary;
  /** Holds every chosen kernel; unload it with the build's library plans. */
  readonly module: CudaModule | undefined;
}

interface Choice {
  readonly kernel?: IgemmConvKernel;
  readonly cudnnUs?: number;
  readonly generatedUs?: number;
  readonly reason?: string;
}

/** Candidate tilings the int8 speed probe compiles and times per problem (the best guesses first). */
const PROBE_CANDIDATES = 2;

const firstLine = (e: unknown) => (e instanceof Error ? e.message : String(e)).split("\n")[0];
const round = (us: number) => Math.round(us * 100) / 100;

/** Each int8 conv step whose generated kernel is faster than its cuDNN plan; undefined when off or none eligible. */
export function chooseIgemmConvs(
  plan: EnginePlan,
  convs: ReadonlyMap<ConvStep, CudnnConvPlan>,
  opts: { readonly setting: IgemmSetting; readonly kernelCache?: boolean | string },
  log: (message: string) => void,
): IgemmConvChoices | undefined {
  if (opts.setting === "off") return undefined;
  const t0 = performance.now();
  const layers: IgemmConvLayerReport[] = [];
  const { sites, copies } = collectSites(plan, convs, layers);
  if (sites.size === 0) return undefined;
  const problems = new Map<string, IgemmConvProblem>();
  for (const p of sites.values()) problems.set(igemmProblemKey(p), p);
  let compiled: ReturnType<typeof compileCandidates>;
  try {
    compiled = compileCandidates([...problems.values()], opts);
  } catch (e) {
    if (opts.setting === "force") throw e;
    log(`int8 implicit GEMM: compiling the generated kernels failed, cuDNN kept: ${firstLine(e)}`);
    return undefined;
  }
  const chosen = new Map<ConvStep, IgemmConvKernel>();
  try {
    chooseEach(sites, compiled.byProblem, convs, opts.setting, chosen, layers);
  } finally {
    // the module holds every chosen kernel; with none chosen (or a forced failure) nothing will launch from it
    if (chosen.size === 0) compiled.module.unload();
  }
  const ms = Math.round(performance.now() - t0);
  const written = new Map([...copies].filter(([step]) => chosen.has(step)));
  log(
    `int8 implicit GEMM: ${chosen.size}/${layers.length} int8 convolutions on the generated kernel, ${written.size} writing the next layer's int8 input (${ms} ms)`,
  );
  const module = chosen.size > 0 ? compiled.module : undefined;
  return { chosen, copies: written, summary: { layers, copies: written.size, ms }, module };
}

/**
 * The int8 steps the generated kernel can run (the others reported in `layers` with the reason), each with the
 * quantize of its float output it can write too (igemm-quantize-copy.ts; TORCHC_INT8_IGEMM_COPY=0: none).
 */
function collectSites(
  plan: EnginePlan,
  convs: ReadonlyMap<ConvStep, CudnnConvPlan>,
  layers: IgemmConvLayerReport[],
): { sites: Map<ConvStep, IgemmConvProblem>; copies: Map<ConvStep, QuantizeCopy> } {
  const sites = new Map<ConvStep, IgemmConvProblem>();
  const copies = new Map<ConvStep, QuantizeCopy>();
  const copying = quantizeCopiesEnabled();
  for (const [i, step] of plan.steps.entries()) {
    if (step.kind !== "conv" || !step.int8) continue;
    const cudnn = convs.get(step);
    if (!cudnn) continue;
    const site = igemmConvSite(cudnn.spec);
    if (typeof site === "string") {
      layers.push({ layer: step.layer.name, shape: "", ran: "cuDNN", reason: site });
      continue;
    }
    const copy = copying && site.output !== "int8" ? quantizeCopyAfter(plan, i) : undefined;
    if (
      copy === undefined ||
      typeof copy === "string" ||
      quantizeInverse(copy.layer.scale[0]) === undefined
    ) {
      sites.set(step, site);
      continue;
    }
    sites.set(step, { ...site, quantizedCopy: true });
    copies.set(step, copy);
  }
  return { sites, copies };
}

/** The timed (or forced) choice for each site, once per distinct problem; fills in `chosen` and `layers`. */
function chooseEach(
  sites: ReadonlyMap<ConvStep, IgemmConvProblem>,
  byProblem: ReadonlyMap<string, IgemmConvKernel[]>,
  convs: ReadonlyMap<ConvStep, CudnnConvPlan>,
  setting: IgemmSetting,
  chosen: Map<ConvStep, IgemmConvKernel>,
  layers: IgemmConvLayerReport[],
): void {
  const choices = new Map<string, Choice>();
  for (const [step, p] of sites) {
    const key = igemmProblemKey(p);
    if (!choices.has(key))
      choices.set(key, chooseSafely(p, byProblem.get(key) ?? [], convs.get(step)!, setting));
    const c = choices.get(key)!;
    const shape = describeProblem(p);
    const times = { cudnnUs: c.cudnnUs, generatedUs: c.generatedUs };
    if (!c.kernel) {
      layers.push({ layer: step.layer.name, shape, ran: "cuDNN", ...times, reason: c.reason });
      continue;
    }
    chosen.set(step, c.kernel);
    const config = describeIgemmConfig(c.kernel.config);
    layers.push({ layer: step.layer.name, shape, ran: "generated", config, ...times });
  }
}

/** Steps with equal keys share one timed choice and kernel: the key holds every field the kernel is made from. */
export function igemmProblemKey(p: IgemmConvProblem): string {
  return JSON.stringify(p);
}

function describeProblem(p: IgemmConvProblem): string {
  const out = p.output === "int8" ? "int8" : p.output === "float16" ? "fp16" : "fp32";
  return `${p.n}×${p.h}×${p.w}×${p.c} → ${p.k}, ${p.r}×${p.s}/${p.stride.join("×")}, ${out} out`;
}

/** Every candidate of every problem, in one NVRTC program (the kernel cache's). */
function compileCandidates(
  problems: readonly IgemmConvProblem[],
  opts: { readonly kernelCache?: boolean | string; readonly setting?: IgemmSetting; readonly first?: number },
): { module: CudaModule; byProblem: Map<string, IgemmConvKernel[]> } {
  const pending: { key: string; problem: IgemmConvProblem; config: IgemmConvConfig }[] = [];
  // forced, only the first candidate runs: the others are not compiled
  const count = opts.setting === "force" ? 1 : opts.first;
  for (const problem of problems)
    for (const config of igemmCandidates(problem).slice(0, count))
      pending.push({ key: igemmProblemKey(problem), problem, config });
  const generated = pending.map((k, i) => generateIgemmConvKernel(`igemm_conv_${i}`, k.problem, k.config));
  const program = assembleProgram(generated, new Set(["float16"]));
  const built = buildKernels(program.source, program.symbols, {
    cache: new KernelCache({ disk: opts.kernelCache ?? true }),
    name: "torchc_int8_igemm.cu",
  });
  const byProblem = new Map<string, IgemmConvKernel[]>();
  pending.forEach((k, i) => {
    const kernel = built.kernels[program.symbols[i]];
    // above 48 KiB a kernel must opt in to dynamic shared memory
    if (generated[i].sharedBytes > 48 * 1024) kernel.setMaxDynamicSharedBytes(generated[i].sharedBytes);
    const list = byProblem.get(k.key) ?? [];
    list.push({ generated: generated[i], kernel, problem: k.problem, config: k.config });
    byProblem.set(k.key, list);
  });
  return { module: built.module, byProblem };
}

/** choose(), a failure (not forced) kept as cuDNN with the reason. */
function chooseSafely(
  p: IgemmConvProblem,
  candidates: readonly IgemmConvKernel[],
  cudnn: CudnnConvPlan,
  setting: IgemmSetting,
): Choice {
  if (candidates.length === 0) return { reason: "no configuration of the generated kernel fits" };
  try {
    return choose(p, candidates, cudnn, setting);
  } catch (e) {
    if (setting === "force") throw e;
    return { reason: `timing or checking the generated kernel failed: ${firstLine(e)}` };
  }
}

/** Checks every candidate against cuDNN (forced: the first), then times cuDNN against those that agree. */
function choose(
  p: IgemmConvProblem,
  candidates: readonly IgemmConvKernel[],
  cudnn: CudnnConvPlan,
  setting: IgemmSetting,
): Choice {
  const bench = new TimingScratch();
  const args: KernelArgs[] = [];
  try {
    const ops = scratchOperands(p, bench, cudnn.workspaceBytes);
    bench.stream.synchronize();
    const s = bench.stream;
    cudnn.bind({ ...ops.conv, y: ops.yCudnn.ptr }, ops.workspace.ptr);
    // cuDNN's int8 candidates are timed first, as the engine's first launch would (they are shared by the
    // problem's layers: the engine then has nothing left to time)
    cudnn.tune(s, { perGraph: INT8_CHOICE_TIMING.perGraph, replays: INT8_CHOICE_TIMING.replays });
    const runCudnn = () => cudnn.execute(s);
    // every candidate is checked against cuDNN before any is timed (forced: the first only), so timing never
    // favours a wrong kernel
    const checked: { kernel: IgemmConvKernel; run: () => void }[] = [];
    const mismatches: string[] = [];
    for (const k of setting === "force" ? candidates.slice(0, 1) : candidates) {
      const a = igemmArgs(k, { ...ops.conv, y: ops.y.ptr }, scratchCopy(ops));
      args.push(a);
      const run = () => launchIgemm(k, a, s);
      const mismatch = compareWithCudnn(p, runCudnn, run, ops, s);
      if (mismatch) mismatches.push(`${describeIgemmConfig(k.config)}: ${mismatch}`);
      else checked.push({ kernel: k, run });
    }
    if (checked.length === 0) {
      const reason = `the generated kernel differs from cuDNN (${mismatches.join("; ")})`;
      if (setting === "force") throw new Error(`int8 implicit GEMM ${describeProblem(p)}: ${reason}`);
      return { reason };
    }
    if (setting === "force") return { kernel: checked[0].kernel };
    const runs = [runCudnn, ...checked.map((c) => c.run)];
    const t = tournament(
      runs.length,
      (best, i) => timePairOnStream(s, [runs[best], runs[i]], INT8_CHOICE_TIMING).ms,
    );
    const cudnnUs = round(t.firstMs * 1000);
    if (t.index === 0) return { cudnnUs, reason: "cuDNN was as fast or faster" };
    return { kernel: checked[t.index - 1].kernel, cudnnUs, generatedUs: round(t.chosenMs * 1000) };
  } finally {
    for (const a of args) a.free();
    bench.release();
  }
}

/**
 * The int8 speed probe's generated side (int8-conv-timing.ts): the best candidate's ms per call for `p` (its
 * timing's `other` ms alongside), each candidate timed in graph-timed pairs against `other`, a call that only
 * queues work on the stream it is given (the float plan the probe compares with). Undefined when the kernel does
 * not take the problem or no candidate ran.
 */
export function timeIgemmAgainst(
  p: IgemmConvProblem,
  other: (s: Stream) => void,
  opts: { readonly kernelCache?: boolean | string } = {},
): { readonly ms: number; readonly otherMs: number } | undefined {
  if (igemmConvSupports(p)) return undefined;
  // the probe times the first PROBE_CANDIDATES tilings only: it compiles a program for every int8 problem before
  // the build does (NVRTC's time grows with the kernels in a program); the build times them all
  const compiled = compileCandidates([p], { ...opts, first: PROBE_CANDIDATES });
  const bench = new TimingScratch();
  const args: KernelArgs[] = [];
  try {
    const ops = scratchOperands(p, bench, 0);
    bench.stream.synchronize();
    const s = bench.stream;
    let best: { ms: number; otherMs: number } | undefined;
    for (const k of compiled.byProblem.get(igemmProblemKey(p)) ?? []) {
      const a = igemmArgs(k, { ...ops.conv, y: ops.y.ptr }, scratchCopy(ops));
      args.push(a);
      const [otherMs, ms] = timePairOnStream(
        s,
        [() => other(s), () => launchIgemm(k, a, s)],
        INT8_CHOICE_TIMING,
      ).ms;
      if (Number.isFinite(ms) && (!best || ms < best.ms)) best = { ms, otherMs };
    }
    return best;
  } finally {
    for (const a of args) a.free();
    bench.release();
    compiled.module.unload();
  }
}

/**
 * The kernel's pointers in parameter order, from the operands cuDNN's plan takes (builder.ts's convOperands: x, w,
 * scale, bias, y, then one per epilogue op that reads memory, in order).
 */
export function igemmPointers(
  k: Pick<IgemmConvKernel, "generated" | "problem">,
  ops: ConvOperands,
  q?: bigint,
): bigint[] {
  const by: Record<string, bigint | undefined> = {
    x: ops.x,
    w: ops.w,
    scale: ops.scale,
    bias: ops.bias,
    y: ops.y,
    q,
  };
  let extra = 0;
  k.problem.epilogue.forEach((o, i) => {
    if (o.kind !== "act") by[`e${i}`] = ops.extra[extra++];
  });
  if (extra !== ops.extra.length)
    throw new Error(`int8 implicit GEMM: ${ops.extra.length} epilogue operands for ${extra} memory ops`);
  return k.generated.params.map((param) => {
    const v = by[param.tensor];
    // cp.async reads x and w 16 bytes at a time; the epilogue reads and writes up to 16 bytes at once
    if (v === undefined || v === 0n || v % 16n !== 0n)
      throw new Error(`int8 implicit GEMM operand '${param.tensor}' is missing or not 16-byte aligned`);
    return v;
  });
}

/** The kernel's arguments for one engine instance's (or the timing's) operands. */
export function igemmArgs(k: IgemmConvKernel, ops: ConvOperands, copy?: IgemmCopyArgs): KernelArgs {
  if (k.problem.quantizedCopy !== (copy !== undefined))
    throw new Error(
      "int8 implicit GEMM bound with a quantized copy its kernel was not made for (or without one)",
    );
  const pointers = igemmPointers(k, ops, copy?.q);
  const types = k.generated.params.map((): ParamType => "ptr");
  // the copy's qinv is the kernel's last argument, after the tensors
  const a = new KernelArgs(copy ? [...types, "f32"] : types);
  for (const [j, v] of pointers.entries()) a.set(j, v);
  if (copy) a.set(pointers.length, copy.inv);
  return a;
}

/** The int8 copy's operands: where q goes and qinv (quantizeInverse of the quantize's scale). */
export interface IgemmCopyArgs {
  readonly q: bigint;
  readonly inv: number;
}

/** The copy's scale in the build's check: |y| ≈ 30…130 on the scratch operands, so q both rounds and saturates. */
const CHECK_COPY_SCALE = 1;

function scratchCopy(ops: ScratchOperands): IgemmCopyArgs | undefined {
  return ops.q ? { q: ops.q.ptr, inv: quantizeInverse(CHECK_COPY_SCALE)! } : undefined;
}

/** One launch of a chosen kernel on `stream` (programmatic dependent launch as the engine's generated kernels). */
export function launchIgemm(k: IgemmConvKernel, args: KernelArgs, stream: Stream): void {
  const g = k.generated;
  launch(k.kernel, { grid: g.grid, block: g.block, sharedBytes: g.sharedBytes, stream }, args);
}

interface ScratchOperands {
  readonly conv: Omit<ConvOperands, "y">;
  readonly y: DeviceBuffer;
  /** The int8 copy of y (IgemmConvProblem.quantizedCopy). */
  readonly q?: DeviceBuffer;
  readonly yCudnn: DeviceBuffer;
  readonly workspace: DeviceBuffer;
  readonly yBytes: number;
}

/** xorshift bytes: int8 activations and weights over the whole range. */
function randomInt8(n: number, seed: number): Int8Array {
  const next = xorshift32(seed);
  return Int8Array.from({ length: n }, () => next() & 0xff);
}

function randomFloats(n: number, seed: number, lo: number, hi: number): Float32Array {
  const next = xorshift32(seed);
  return Float32Array.from({ length: n }, () => lo + ((hi - lo) * ((next() & 0xff) + 0.5)) / 256);
}

const ELEMENT = { float16: 2, float32: 4, int8: 1 } as const;

/** Scratch operands of the problem's sizes; scales put |acc · scale| near 60, so int8 outputs round and saturate. */
function scratchOperands(p: IgemmConvProblem, bench: TimingScratch, workspaceBytes: number): ScratchOperands {
  const g = igemmGeometry(p, { bm: 64, bn: 32, bk: 32, warpsM: 1, warpsN: 1, stages: 2 });
  const typical = 74 * 74 * Math.sqrt(g.Kg);
  const asType = (t: "float16" | "float32", v: Float32Array) =>
    t === "float32" ? v : Uint16Array.from(v, numberToFloat16Bits);
  const extra = p.epilogue.flatMap((o, i) => {
    if (o.kind === "act") return [];
    const n = o.kind === "tensor" ? g.M * p.k : p.k;
    const t = o.kind === "tensor" ? p.tensorType! : p.channelType!;
    // additions of y's order (|acc · scale| ≈ 30…90): a dropped or misplaced one shows in the check
    const v = randomFloats(n, 101 + i, o.op === "mul" ? 0.5 : -40, o.op === "mul" ? 1.5 : 40);
    return [bench.upload(asType(t, v)).ptr];
  });
  const yBytes = g.M * p.k * ELEMENT[p.output];
  return {
    conv: {
      x: bench.upload(randomInt8(p.n * p.h * p.w * p.c, 7)).ptr,
      w: bench.upload(randomInt8(p.k * g.Kg, 11)).ptr,
      scale: bench.upload(randomFloats(p.k, 13, 30 / typical, 90 / typical)).ptr,
      bias: p.bias ? bench.upload(randomFloats(p.k, 17, -5, 5)).ptr : undefined,
      extra,
    },
    y: bench.buffer(yBytes, 0),
    q: p.quantizedCopy ? bench.buffer(g.M * p.k, 0) : undefined,
    yCudnn: bench.buffer(yBytes, 0),
    workspace: bench.buffer(Math.max(256, workspaceBytes), 0),
    yBytes,
  };
}

/** Why the generated output disagrees with cuDNN's on the scratch operands (undefined when it agrees). */
function compareWithCudnn(
  p: IgemmConvProblem,
  cudnn: () => void,
  generated: () => void,
  ops: ScratchOperands,
  s: Stream,
): string | undefined {
  ops.y.fill(0x7f, { stream: s });
  // 85: a stale copy from an earlier candidate must not pass
  ops.q?.fill(0x55, { stream: s });
  cudnn();
  generated();
  s.synchronize();
  const n = ops.yBytes / ELEMENT[p.output];
  const y = outputMismatch(p.output, ops.y, ops.yCudnn, n);
  if (typeof y === "string") return y;
  // the copy (float outputs only): quantize(y) of the values just read back
  return y && ops.q ? copyMismatch(y, ops.q.download(new Int8Array(n)), CHECK_COPY_SCALE) : undefined;
}

/**
 * Why `got` (the generated kernel's n outputs) disagrees with `want` (cuDNN's), or, when it agrees, its values (fp16
 * and fp32 outputs; undefined for int8): fp16/fp32 within 1e-2 of max |want|, int8 within one step on at most 0.1%
 * of values (a value on a rounding boundary). The build's check and bench igemm-sweep share it.
 */
export function outputMismatch(
  output: IgemmOutput,
  got: DeviceBuffer,
  want: DeviceBuffer,
  n: number,
): string | Float64Array | undefined {
  if (output === "int8") {
    const [a, b] = [got.download(new Int8Array(n)), want.download(new Int8Array(n))];
    let off = 0;
    let worst = 0;
    for (let i = 0; i < n; i++) {
      const d = Math.abs(a[i] - b[i]);
      if (d > 0) off++;
      worst = Math.max(worst, d);
    }
    return worst > 1 || off > n * 1e-3 ? `${off} of ${n} int8 values differ, by up to ${worst}` : undefined;
  }
  const read = (buf: DeviceBuffer): Float64Array =>
    output === "float32"
      ? Float64Array.from(buf.download(new Float32Array(n)))
      : Float64Array.from(buf.download(new Uint16Array(n)), float16BitsToNumber);
  const [a, b] = [read(got), read(want)];
  let err = 0;
  let max = 0;
  for (let i = 0; i < n; i++) {
    if (!Number.isFinite(a[i]) || !Number.isFinite(b[i])) return `value ${i} is ${a[i]} (cuDNN ${b[i]})`;
    err = Math.max(err, Math.abs(a[i] - b[i]));
    max = Math.max(max, Math.abs(b[i]));
  }
  return err > 1e-2 * max ? `max |diff| ${err} against max |cuDNN| ${max}` : a;
}

/** Why the int8 copy is not the quantize of the stored output `y`, value for value (undefined when it is). */
export function copyMismatch(y: ArrayLike<number>, q: Int8Array, scale: number): string | undefined {
  const inv = Math.fround(1 / Math.fround(scale));
  let off = 0;
  for (let i = 0; i < y.length; i++) {
    const v = Math.fround(y[i] * inv);
    // as the element kernel: fmaxf(NaN, -128) is -128
    const r = Number.isNaN(v) ? -128 : Math.min(127, Math.max(-128, roundHalfEven(v)));
    if (q[i] !== r) off++;
  }
  return off > 0 ? `${off} of ${y.length} values of the int8 copy are not quantize(y)` : undefined;
}
