/**
 * The cuda backend's int8 speed probe (runtime/calibration-speed.ts): for each convolution problem, the cuDNN
 * int8 plan the engine would build (int8 NHWC input and KRSC weight, per-channel scale, float bias and output,
 * ReLU fused when the layer has one; every candidate timed and the fastest kept, as the engine does at its first
 * launch) against the float plan of the same problem (fp16 or fp32 NHWC, the heuristic's first plan unless
 * `tune`, again as the engine builds it), both bound to scratch device buffers of the problem's sizes and timed
 * alternately as captured graph replays (device/graph-timing.ts, as sparse-select.ts times cuSPARSELt against
 * cuBLASLt). What the engine cannot run in int8 (int8ConvRefusal's rules, cuDNN's refusal, a 1×1 output map) is
 * answered `refused`; a problem whose float plan or timing fails is `untimed` (it keeps int8, as without the probe).
 * The probe runs before the engine is built: its buffers and plans are freed before it returns.
 */
import type { Int8ConvProblem, Int8ConvTiming, Int8SpeedProbe } from "../../runtime/calibration-speed.js";
import { reportProgress } from "../../util/progress.js";
import { devicePlanCache } from "./artifacts.js";
import type { PlanCache } from "./artifacts-cache.js";
import { CudaContext } from "./device/context.js";
import { Cudnn } from "./device/conv.js";
import { int8ConvRefusal } from "./device/conv-int8.js";
import { convGeometry, type Dims4 } from "./device/conv-shape.js";
import { type PairTimingOptions, timePairOnStream } from "./device/graph-timing.js";
import { TimingScratch } from "./device/timing-scratch.js";
import type { ConvEpilogueOp } from "./fuse/steps.js";
import { igemmConvSite, igemmSetting, timeIgemmAgainst } from "./igemm-conv-select.js";
import { buildCudnnConv, type CudnnConvPlan, type CudnnConvSpec } from "./kernels/conv-cudnn.js";
import { LT_TIMED_MARGIN } from "./lt-timed-choice.js";
import { quantKernelsEnabled } from "./quant-select.js";

/** Graphs of a few calls, replayed, alternating float and int8 (each call tens to hundreds of microseconds). */
export const INT8_CHOICE_TIMING: Required<PairTimingOptions> = { perGraph: 8, replays: 3, rounds: 5 };

export interface CudaInt8ProbeOptions {
  /** The float type the engine computes float convolutions in. */
  readonly dtype: "float16" | "float32";
  readonly device: number;
  /** The engine times float convolutions' candidates too (compile's `tune`). */
  readonly tune: boolean;
}

/** The probe, or undefined when the engine would not run int8 convolutions (TORCHC_QUANT_KERNELS unset). */
export function cudaInt8SpeedProbe(
  options: CudaInt8ProbeOptions,
  env: NodeJS.ProcessEnv = process.env,
): Int8SpeedProbe | undefined {
  if (!quantKernelsEnabled(env)) return undefined;
  const floatName = options.dtype === "float16" ? "fp16" : "fp32";
  const run: ProbeRun = { ...options, igemm: igemmSetting(env) !== "off" };
  // the device is opened when the probe first times (the backend's own checks of the ordinal come first)
  let gpu = `device ${options.device}`;
  return {
    floatName,
    get describe() {
      return `cuDNN int8 against ${floatName} convolutions on ${gpu}`;
    },
    time: (problems) => {
      gpu = CudaContext.get(options.device).info.name;
      // torchc's own refusals are answered here (they follow this version's rules); cuDNN's answers go through
      // the plan cache
      const own = problems.map((p) => int8ProblemRefusal(p, options.dtype));
      const asked = problems.filter((_, i) => own[i] === null);
      // int8 timings are keyed by GPU name too (the cache file is per architecture)
      const cache = devicePlanCache(options.device, env);
      // the generated int8 kernel (TORCHC_INT8_IGEMM) changes the int8 side's time: its answers are kept apart
      const at = `${gpu}|${floatName}|tune ${options.tune}${run.igemm ? "|igemm" : ""}`;
      let answers: Int8ConvTiming[];
      try {
        answers = cachedTimings(
          asked,
          (p) => `${at}|${JSON.stringify(p)}`,
          cache,
          (todo) => timeProblems(todo, run),
        );
      } finally {
        cache.flush();
      }
      let j = 0;
      return own.map((refused) => (refused !== null ? { refused } : answers[j++]));
    },
  };
}

/**
 * `time` for the problems `cache` has no answer for, the cache's answers for the rest, in order: a warm int8
 * compile (the same model again, or another with the same layers) times nothing. Kept: refusals, and timings with
 * two finite times and no caveat (an eager fallback or failed candidates are timed again next time); a cached
 * answer says so in its detail.
 */
export function cachedTimings(
  problems: readonly Int8ConvProblem[],
  keyOf: (p: Int8ConvProblem) => string,
  cache: Pick<PlanCache, "int8Timing" | "putInt8Timing">,
  time: (problems: readonly Int8ConvProblem[]) => readonly Int8ConvTiming[],
): Int8ConvTiming[] {
  const keys = problems.map(keyOf);
  const out: (Int8ConvTiming | undefined)[] = keys.map((k) => {
    const c = cache.int8Timing(k);
    if (!c) return undefined;
    return "refused" in c
      ? { refused: c.refused }
      : { int8Ms: c.int8Ms, floatMs: c.floatMs, detail: "timed by an earlier compile (plan cache)" };
  });
  const todo = problems.filter((_, i) => out[i] === undefined);
  if (todo.length === 0) return out as Int8ConvTiming[];
  const fresh = time(todo);
  if (fresh.length !== todo.length) throw new Error(`timed ${fresh.length} of ${todo.length} problems`);
  let j = 0;
  return out.map((t, i) => {
    if (t) return t;
    const f = fresh[j++];
    const clean = "int8Ms" in f && Number.isFinite(f.int8Ms) && Number.isFinite(f.floatMs) && !f.detail;
    if ("refused" in f || clean)
      cache.putInt8Timing(keys[i], f as Exclude<Int8ConvTiming, { untimed: string }>);
    return f;
  });
}

/** The probe's options and whether the generated int8 kernel competes (TORCHC_INT8_IGEMM in the probe's env). */
interface ProbeRun extends CudaInt8ProbeOptions {
  readonly igemm: boolean;
}

function timeProblems(problems: readonly Int8ConvProblem[], options: ProbeRun): Int8ConvTiming[] {
  const cudnn = Cudnn.create();
  try {
    return problems.map((p, i) => {
      reportProgress({ phase: "int8 against float", sub: true, done: i + 1, total: problems.length });
      return timeProblem(cudnn, p, options);
    });
  } finally {
    cudnn.destroy();
  }
}

/** Output height and width, as the device layer computes them. */
function outSize(p: Int8ConvProblem): [number, number] {
  const g = convGeometry({ ...p, layout: "NHWC", dtype: "float32" });
  return [g.outH, g.outW];
}

/** The engine's cuDNN spec of the problem, int8 or float. */
export function problemSpec(p: Int8ConvProblem, dtype: "float16" | "float32", int8: boolean): CudnnConvSpec {
  const [oh, ow] = outSize(p);
  const epilogue: ConvEpilogueOp[] = p.relu ? [{ kind: "act", fn: "relu" }] : [];
  return {
    layout: "NHWC",
    dtype,
    ...(int8 ? { int8: true as const } : {}),
    x: [p.n, p.c, p.h, p.w] as Dims4,
    w: [p.k, p.c / p.groups, p.r, p.s] as Dims4,
    y: [p.n, p.k, oh, ow] as Dims4,
    stride: p.stride,
    padding: p.padding,
    dilation: p.dilation,
    bias: p.bias,
    epilogue,
    allowTf32: false,
  };
}

/** Why the engine would not run the problem as an int8 convolution, before cuDNN is asked, or null. Pure. */
export function int8ProblemRefusal(p: Int8ConvProblem, dtype: "float16" | "float32"): string | null {
  const [oh, ow] = outSize(p);
  if (oh * ow <= 1) return "a 1×1 output map (the engine runs those as generated gemv kernels)";
  return int8ConvRefusal({ ...p, output: dtype });
}

const firstLine = (e: unknown) => (e instanceof Error ? e.message : String(e)).split("\n")[0];

function timeProblem(cudnn: Cudnn, p: Int8ConvProblem, o: ProbeRun): Int8ConvTiming {
  const refused = int8ProblemRefusal(p, o.dtype);
  if (refused) return { refused };
  const int8 = buildCudnnConv(cudnn, problemSpec(p, o.dtype, true), { tune: true });
  if (!int8.ok) return { refused: int8.reason };
  const float = buildCudnnConv(cudnn, problemSpec(p, o.dtype, false), { tune: o.tune });
  if (!float.ok) {
    int8.plan.destroy();
    return { untimed: `no ${o.dtype} plan to compare with: ${float.reason}` };
  }
  try {
    return timePlans(p, o, int8.plan, float.plan);
  } catch (e) {
    return { untimed: firstLine(e) };
  } finally {
    int8.plan.destroy();
    float.plan.destroy();
  }
}

/** Both plans timed on fresh scratch buffers; the scratch is released whatever happens. */
function timePlans(
  p: Int8ConvProblem,
  o: ProbeRun,
  int8: CudnnConvPlan,
  float: CudnnConvPlan,
): Int8ConvTiming {
  const bench = new TimingScratch();
  try {
    bindScratch(bench, float, int8, p, o.dtype);
    // the engine times int8 candidates at its first launch (and float ones with `tune`): the same choice here
    const dropped: string[] = [];
    for (const plan of [int8, float]) dropped.push(...plan.tune(bench.stream).failures);
    const timing = timePairOnStream(
      bench.stream,
      [() => float.execute(bench.stream), () => int8.execute(bench.stream)],
      INT8_CHOICE_TIMING,
    );
    const [floatMs, cudnnInt8Ms] = timing.ms;
    // with TORCHC_INT8_IGEMM on, the engine may run the generated int8 kernel instead: int8 is the faster of both
    const generated = o.igemm ? timeGenerated(p, o, float, floatMs) : undefined;
    // the build keeps the generated kernel only when it beats cuDNN by the tournament's margin: the same here
    const won = typeof generated === "number" && generated < cudnnInt8Ms * LT_TIMED_MARGIN;
    const int8Ms = won ? generated : cudnnInt8Ms;
    const notes = [
      ...(typeof generated === "string" ? [generated] : []),
      ...(timing.graph ? [] : [`eager timing: ${timing.why}`]),
      ...(dropped.length ? [`${dropped.length} candidate(s) failed while timed`] : []),
    ];
    return { int8Ms, floatMs, ...(notes.length ? { detail: notes.join("; ") } : {}) };
  } finally {
    try {
      bench.release();
    } catch {
      // a faulted stream: the caller reports this problem untimed and still destroys the plans
    }
  }
}

/**
 * The generated int8 kernel's best time for the problem (fp16/fp32 out, bias, ReLU as the probe's cuDNN graphs),
 * scaled onto the cuDNN pair's clock by the float plan timed beside it; undefined when it does not run the
 * problem; why, when compiling or timing it failed (cuDNN's int8 time then stands).
 */
function timeGenerated(
  p: Int8ConvProblem,
  o: CudaInt8ProbeOptions,
  float: CudnnConvPlan,
  floatMs: number,
): number | string | undefined {
  const site = igemmConvSite(problemSpec(p, o.dtype, true));
  if (typeof site === "string") return undefined;
  try {
    const t = timeIgemmAgainst(site, (s) => float.execute(s));
    return t === undefined ? undefined : t.ms * (floatMs / t.otherMs);
  } catch (e) {
    return `generated int8 kernel not timed: ${firstLine(e)}`;
  }
}

/** Binds both plans to scratch buffers of the problem's sizes (one output and one workspace shared). */
function bindScratch(
  bench: TimingScratch,
  float: CudnnConvPlan,
  int8: CudnnConvPlan,
  p: Int8ConvProblem,
  dtype: "float16" | "float32",
): void {
  const y = bench.buffer(outputElements(p) * (dtype === "float16" ? 2 : 4), 0).ptr;
  const workspace = bench.buffer(Math.max(float.workspaceBytes, int8.workspaceBytes), 0).ptr;
  bindProblemScratch(bench, float, p, dtype, y, workspace);
  bindProblemScratch(bench, int8, p, "int8", y, workspace);
  // the fills and the upload are on other streams or synchronous: settle them before timing starts
  CudaContext.current().synchronize();
}

/** Elements of the problem's output. */
export function outputElements(p: Int8ConvProblem): number {
  const [oh, ow] = outSize(p);
  return p.n * p.k * oh * ow;
}

/**
 * Binds `plan` (the problem planned in `operands`: a float type, or int8 / FP8 E4M3 quantized graphs) to scratch
 * inputs of the problem's sizes, writing `y` with `workspace`. Non-zero data, so no library times zeros: fp16
 * 1.06 (0x3c3c) or float32 0.0115 (0x3c3c3c3c) inputs, fp16 0.0039 (0x1c1c) weights, int8 60 and 1, FP8 1.0
 * (0x38) and 0.125 (0x20), scales 1e-3. The caller settles the fills (they are queued on the scratch's stream).
 */
export function bindProblemScratch(
  bench: TimingScratch,
  plan: CudnnConvPlan,
  p: Int8ConvProblem,
  operands: "float16" | "float32" | "int8" | "fp8",
  y: bigint,
  workspace: bigint,
): void {
  const xs = p.n * p.c * p.h * p.w;
  const ws = p.k * (p.c / p.groups) * p.r * p.s;
  if (operands === "float16" || operands === "float32") {
    const es = operands === "float16" ? 2 : 4;
    const bias = p.bias ? bench.buffer(p.k * es, 0).ptr : undefined;
    const x = bench.buffer(xs * es, 0x3c).ptr;
    plan.bind({ x, w: bench.buffer(ws * es, 0x1c).ptr, bias, y, extra: [] }, workspace);
    return;
  }
  const [xb, wb] = operands === "int8" ? [60, 1] : [0x38, 0x20];
  plan.bind(
    {
      x: bench.buffer(xs, xb).ptr,
      w: bench.buffer(ws, wb).ptr,
      scale: bench.upload(new Float32Array(p.k).fill(1e-3)).ptr,
      bias: p.bias ? bench.buffer(p.k * 4, 0).ptr : undefined,
      y,
      extra: [],
    },
    workspace,
  );
}
