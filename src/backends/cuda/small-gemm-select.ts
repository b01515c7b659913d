/**
 * The build step that gives small-M matmuls (batch-1 transformers: 16…1024 rows) the generated tensor-core GEMM
 * (codegen/gemm-small.ts) where it beats cuBLASLt. After the schedule is made (every matmul has its cuBLASLt plan),
 * each eligible step's problem gets a shortlist of configurations (the cost model's best few tiles), compiled in
 * one NVRTC program through the kernel cache; each distinct problem is timed once, cuBLASLt against the
 * shortlist, on scratch buffers the way the engine runs them (calls captured in a CUDA graph and replayed,
 * graph-timing.ts, where the generated kernels chain by programmatic dependent launch as in the engine), and a
 * configuration replaces cuBLASLt only when it is at least 3% faster (the tournament of lt-timed-choice.ts).
 * The winner is then checked against cuBLASLt on pseudo-random operands (a wrong kernel is refused, and said).
 *
 * Opt-in until measured in whole models on a GPU: TORCHC_SMALL_GEMM=1 turns it on, "force" takes the cost model's
 * first choice without timing (still checked; for tests: a mismatch or a failure fails the build).
 */
import { float16BitsToNumber, numberToFloat16Bits } from "../../ir/half.js";
import { xorshiftHalves } from "../../util/random-input.js";
import {
  describeSmallGemmConfig,
  generateSmallGemmKernel,
  type SmallGemmConfig,
  type SmallGemmProblem,
  smallGemmShortlist,
  smallGemmSupports,
  smallGemmWorkspaceBytes,
} from "./codegen/gemm-small.js";
import { CudaContext } from "./device/context.js";
import { timePairOnStream } from "./device/graph-timing.js";
import { KernelCache } from "./device/kernel-cache.js";
import { KernelArgs, launch } from "./device/launch.js";
import type { DeviceBuffer } from "./device/memory.js";
import { buildKernels } from "./device/module.js";
import { TimingScratch } from "./device/timing-scratch.js";
import { geluFromErf, type MatmulStep } from "./fuse/steps.js";
import { assembleProgram } from "./kernels/generated.js";
import { LtMatmul, type MatmulGeometry, matmulGeometry } from "./kernels/matmul-cublaslt.js";
import { SharedSmallGemmModule, type SmallGemmKernel, SmallGemmMatmul } from "./kernels/matmul-small.js";
import { ltTimingBudget, tournament } from "./lt-timed-choice.js";
import type { TensorInfo } from "./plan/tensors.js";
import type { EnginePlan } from "./plan.js";
import type { EngineMatmul } from "./sparse-select.js";

export type SmallGemmSetting = "off" | "timed" | "force";

/** TORCHC_SMALL_GEMM: 1/timed, force, else off. */
export function smallGemmSetting(env: NodeJS.ProcessEnv = process.env): SmallGemmSetting {
  const v = env.TORCHC_SMALL_GEMM;
  if (v === "1" || v === "timed") return "timed";
  if (v === "force") return "force";
  return "off";
}

/** Rows (M) the generated kernel is offered for: below 16 its m16 tiles are mostly padding; above, cuBLASLt's. */
export const SMALL_GEMM_ROWS = { min: 16, max: 1024 } as const;

/** Configurations compiled and timed per problem. */
const SHORTLIST = 3;

/** The generated GEMM's problem for a matmul step, or why the step stays on cuBLASLt. */
export function smallGemmSite(
  step: MatmulStep,
  geometry: MatmulGeometry | string,
  info: (t: string) => TensorInfo,
): SmallGemmProblem | string {
  const g = geometry;
  if (typeof g === "string") return g;
  if (g.dtype !== "float16") return `${g.dtype} (the generated GEMM is fp16)`;
  if (g.batch !== 1) return `a batch of ${g.batch} matrices`;
  if (g.aT) return "A is stored transposed";
  if (!g.bT) return "B is stored [K, N] (the kernel reads a Linear weight, [N, K])";
  if (g.m < SMALL_GEMM_ROWS.min || g.m > SMALL_GEMM_ROWS.max)
    return `M = ${g.m} is outside ${SMALL_GEMM_ROWS.min}…${SMALL_GEMM_ROWS.max}`;
  if (step.activation === "relu") return "a ReLU epilogue";
  const operands = [
    step.a,
    step.b,
    step.output,
    ...(step.bias ? [step.bias] : []),
    ...(step.residual ? [step.residual] : []),
  ];
  const strided = operands.find((t) => info(t).strides !== undefined || (info(t).offset ?? 0) !== 0);
  if (strided) return `'${strided}' is a strided view`;
  const p: SmallGemmProblem = {
    M: g.m,
    N: g.n,
    K: g.k,
    bias: step.bias !== undefined,
    activation: step.activation === "gelu" ? (geluFromErf(step) ? "gelu_erf" : "gelu_tanh") : "none",
    residual: step.residual !== undefined,
  };
  return smallGemmSupports(p, "float16") ?? p;
}

/** What the step ran as, for the compile report. */
export interface SmallGemmLayerReport {
  readonly layer: string;
  readonly shape: string;
  readonly ran: "generated" | "cuBLASLt";
  /** The generated kernel's configuration (when it ran). */
  readonly config?: string;
  /** GPU µs per call, timed on the build's scratch buffers. */
  readonly cublasUs?: number;
  readonly generatedUs?: number;
  readonly reason?: string;
}

export interface SmallGemmSummary {
  readonly layers: readonly SmallGemmLayerReport[];
  /** NVRTC (or kernel-cache) and timing time, ms. */
  readonly ms: number;
}

interface Choice {
  readonly kernel?: SmallGemmKernel;
  readonly cublasUs?: number;
  readonly generatedUs?: number;
  readonly reason?: string;
}

/**
 * Replaces, in `matmuls`, the cuBLASLt plan of each eligible step whose generated GEMM is faster (the plan is kept
 * inside, for misaligned operands); undefined when nothing was eligible or the setting is off.
 */
export function chooseSmallGemms(
  plan: EnginePlan,
  matmuls: Map<MatmulStep, EngineMatmul>,
  opts: { readonly setting: SmallGemmSetting; readonly kernelCache?: boolean | string },
  log: (message: string) => void,
): SmallGemmSummary | undefined {
  if (opts.setting === "off") return undefined;
  const t0 = performance.now();
  const info = (t: string) => plan.infos.get(t)!;
  const sites = new Map<MatmulStep, SmallGemmProblem>();
  for (const step of plan.steps) {
    if (step.kind !== "matmul" || !(matmuls.get(step) instanceof LtMatmul)) continue;
    const site = smallGemmSite(step, matmulGeometry(step, info), info);
    if (typeof site !== "string") sites.set(step, site);
  }
  if (sites.size === 0) return undefined;
  const problems = new Map<string, SmallGemmProblem>();
  for (const p of sites.values()) problems.set(smallGemmProblemKey(p), p);
  let compiled: ReturnType<typeof compileShortlists>;
  try {
    compiled = compileShortlists([...problems.values()], opts);
  } catch (e) {
    if (opts.setting === "force") throw e;
    log(`small GEMM: compiling the generated kernels failed, cuBLASLt kept: ${firstLine(e)}`);
    return undefined;
  }
  const choices = new Map<string, Choice>();
  const layers: SmallGemmLayerReport[] = [];
  try {
    for (const [step, p] of sites) {
      const key = smallGemmProblemKey(p);
      const dense = matmuls.get(step) as LtMatmul;
      if (!choices.has(key))
        choices.set(key, chooseSafely(p, compiled.byProblem.get(key) ?? [], dense, opts.setting));
      const c = choices.get(key)!;
      const shape = `M=${p.M} N=${p.N} K=${p.K}`;
      const times = { cublasUs: c.cublasUs, generatedUs: c.generatedUs };
      if (!c.kernel) {
        layers.push({ layer: step.layer.name, shape, ran: "cuBLASLt", ...times, reason: c.reason });
        continue;
      }
      matmuls.set(step, new SmallGemmMatmul(c.kernel, compiled.shared, dense));
      const config = describeSmallGemmConfig(c.kernel.config);
      layers.push({ layer: step.layer.name, shape, ran: "generated", config, ...times });
    }
  } finally {
    // each chosen step holds the module; with none chosen this unloads it
    compiled.shared.acquire().release();
  }
  const ms = Math.round(performance.now() - t0);
  const ran = layers.filter((l) => l.ran === "generated").length;
  log(`small GEMM: ${ran}/${layers.length} matmuls on the generated kernel (${ms} ms)`);
  return { layers, ms };
}

/**
 * Steps with equal keys share one timed choice and kernel: every field the kernel is generated from is in it (a
 * kernel made for a residual, bound to a step without one, is refused at bind).
 */
export function smallGemmProblemKey(p: SmallGemmProblem): string {
  return `${p.M}x${p.N}x${p.K}${p.xRowStride === undefined ? "" : ` x-stride ${p.xRowStride}`}${p.bias ? " bias" : ""} ${p.activation}${p.residual ? " residual" : ""}`;
}

/** Every shortlisted configuration of every problem, in one NVRTC program (the kernel cache's). */
function compileShortlists(
  problems: readonly SmallGemmProblem[],
  opts: { readonly kernelCache?: boolean | string },
): { shared: SharedSmallGemmModule; byProblem: Map<string, SmallGemmKernel[]> } {
  const pending: { key: string; problem: SmallGemmProblem; config: SmallGemmConfig; name: string }[] = [];
  for (const problem of problems)
    for (const config of smallGemmShortlist(problem, "float16", SHORTLIST))
      pending.push({
        key: smallGemmProblemKey(problem),
        problem,
        config,
        name: `small_gemm_${pending.length}`,
      });
  const generated = pending.map((k) => generateSmallGemmKernel(k.name, k.problem, k.config));
  const program = assembleProgram(generated, new Set(["float16"]));
  const built = buildKernels(program.source, program.symbols, {
    cache: new KernelCache({ disk: opts.kernelCache ?? true }),
    name: "torchc_small_gemm.cu",
  });
  const shared = new SharedSmallGemmModule(built.module);
  const byProblem = new Map<string, SmallGemmKernel[]>();
  pending.forEach((k, i) => {
    const list = byProblem.get(k.key) ?? [];
    list.push({
      generated: generated[i],
      kernel: built.kernels[program.symbols[i]],
      problem: k.problem,
      config: k.config,
    });
    byProblem.set(k.key, list);
  });
  return { shared, byProblem };
}

const firstLine = (e: unknown) => (e instanceof Error ? e.message : String(e)).split("\n")[0];

/** choose(), a failure (not forced) kept as cuBLASLt with the reason. */
function chooseSafely(
  p: SmallGemmProblem,
  shortlist: readonly SmallGemmKernel[],
  dense: LtMatmul,
  setting: SmallGemmSetting,
): Choice {
  if (shortlist.length === 0) return { reason: "no configuration of the generated kernel fits" };
  try {
    return choose(p, shortlist, dense, setting);
  } catch (e) {
    if (setting === "force") throw e;
    return { reason: `timing or checking the generated kernel failed: ${firstLine(e)}` };
  }
}

/** Times cuBLASLt against the shortlist (or, forced, takes the model's first), then checks the winner. */
function choose(
  p: SmallGemmProblem,
  shortlist: readonly SmallGemmKernel[],
  dense: LtMatmul,
  setting: SmallGemmSetting,
): Choice {
  const bench = new TimingScratch();
  const args: KernelArgs[] = [];
  try {
    const ops = scratchOperands(p, shortlist, dense, bench);
    CudaContext.current().synchronize();
    const s = bench.stream;
    dense.bind(ops.x.ptr, ops.w.ptr, ops.yDense.ptr, ops.bias?.ptr, ops.ltWorkspace.ptr, ops.residual?.ptr);
    const runs: (() => void)[] = [() => dense.execute(s)];
    for (const [i, k] of shortlist.entries()) {
      const a = kernelArgs(k, ops, i);
      args.push(a);
      runs.push(() => launch(k.kernel, { grid: k.generated.grid, block: k.generated.block, stream: s }, a));
    }
    let index = 1;
    let cublasUs: number | undefined;
    let generatedUs: number | undefined;
    if (setting === "timed") {
      const budget = ltTimingBudget({ m: p.M, n: p.N, k: p.K, batch: 1 });
      const t = tournament(runs.length, (best, i) => timePairOnStream(s, [runs[best], runs[i]], budget).ms);
      index = t.index;
      cublasUs = round(t.firstMs * 1000);
      generatedUs = index > 0 ? round(t.chosenMs * 1000) : undefined;
      if (index === 0) return { cublasUs, reason: "cuBLASLt was as fast or faster" };
    }
    const kernel = shortlist[index - 1];
    const err = compareWithCublas(p, runs[0], runs[index], ops, s);
    if (!(err <= 1e-2)) {
      const reason = `the generated kernel (${describeSmallGemmConfig(kernel.config)}) differs from cuBLASLt by ${err.toExponential(2)} of max |y|`;
      if (setting === "force") throw new Error(`small GEMM ${p.M}x${p.N}x${p.K}: ${reason}`);
      return { cublasUs, generatedUs, reason };
    }
    return { kernel, cublasUs, generatedUs };
  } finally {
    for (const a of args) a.free();
    bench.release();
  }
}

const round = (us: number) => Math.round(us * 100) / 100;

interface ScratchOperands {
  readonly x: DeviceBuffer;
  readonly w: DeviceBuffer;
  readonly bias?: DeviceBuffer;
  readonly residual?: DeviceBuffer;
  readonly y: DeviceBuffer;
  readonly yDense: DeviceBuffer;
  readonly ltWorkspace: DeviceBuffer;
  /** One per shortlisted configuration: a configuration's counters sit after its own partials, so sharing one
   * buffer lets a larger configuration's partials overwrite a smaller one's counters (which then never reset). */
  readonly splitWorkspaces: readonly DeviceBuffer[];
}

/** Pseudo-random fp16 values in [-scale, scale): timing on constants would flatter nothing, checking would miss. */
function halves(n: number, seed: number, scale: number): Uint16Array {
  return xorshiftHalves(n, seed, (x) => numberToFloat16Bits((x / 2 ** 31 - 1) * scale));
}

function scratchOperands(
  p: SmallGemmProblem,
  shortlist: readonly SmallGemmKernel[],
  dense: LtMatmul,
  bench: TimingScratch,
): ScratchOperands {
  return {
    x: bench.upload(halves(p.M * p.K, 7 + p.N, 1)),
    w: bench.upload(halves(p.N * p.K, 11 + p.K, 1 / Math.sqrt(p.K))),
    bias: p.bias ? bench.upload(halves(p.N, 13, 0.5)) : undefined,
    residual: p.residual ? bench.upload(halves(p.M * p.N, 17, 1)) : undefined,
    y: bench.buffer(p.M * p.N * 2, 0),
    yDense: bench.buffer(p.M * p.N * 2, 0),
    ltWorkspace: bench.buffer(dense.workspaceBytes, 0),
    // zeroed; each configuration's counters reset themselves after every call
    splitWorkspaces: shortlist.map((k) => bench.buffer(smallGemmWorkspaceBytes(p, k.config), 0)),
  };
}

function kernelArgs(k: SmallGemmKernel, ops: ScratchOperands, index: number): KernelArgs {
  const a = new KernelArgs(k.generated.params.map(() => "ptr" as const));
  const by: Record<string, DeviceBuffer | undefined> = {
    x: ops.x,
    w: ops.w,
    bias: ops.bias,
    residual: ops.residual,
    y: ops.y,
    workspace: ops.splitWorkspaces[index],
  };
  k.generated.params.forEach((param, j) => {
    const b = by[param.tensor];
    if (!b) throw new Error(`small GEMM parameter '${param.tensor}' has no scratch operand`);
    a.set(j, b.ptr);
  });
  return a;
}

/** max |generated − cuBLASLt| / max |cuBLASLt| on the scratch operands (Infinity where either is not finite). */
function compareWithCublas(
  p: SmallGemmProblem,
  cublas: () => void,
  generated: () => void,
  ops: ScratchOperands,
  s: TimingScratch["stream"],
): number {
  ops.y.fill(0xff, { stream: s });
  cublas();
  generated();
  s.synchronize();
  const n = p.M * p.N;
  const ref = ops.yDense.download(new Uint16Array(n));
  const got = ops.y.download(new Uint16Array(n));
  return relativeHalfError(ref, got);
}

/** max |a − b| / max |a| over fp16 bit patterns (Infinity where a value is not finite). */
export function relativeHalfError(ref: Uint16Array, got: Uint16Array): number {
  let err = 0;
  let max = 0;
  for (let i = 0; i < ref.length; i++) {
    const r = float16BitsToNumber(ref[i]);
    const g = float16BitsToNumber(got[i]);
    if (!Number.isFinite(r) || !Number.isFinite(g)) return Number.POSITIVE_INFINITY;
    err = Math.max(err, Math.abs(r - g));
    max = Math.max(max, Math.abs(r));
  }
  return max === 0 ? (err === 0 ? 0 : Number.POSITIVE_INFINITY) : err / max;
}
