// int8 only where it pays (issue 14). A quantized convolution that runs slower in int8 than in the float precision
// (cuDNN's int8 engines lose to fp16 on wide, shallow layers: 4× on a 56×56 64→64 3×3 at batch 128 on an H100) or
// that the engine cannot run in int8 at all (it then keeps a simulated float convolution behind quantize and
// dequantize kernels) makes an "int8" model slower than the float one. So before quantize/dequantize pairs are
// inserted, each int8-eligible convolution geometry (identical problems timed once) is timed by a probe the
// backend provides: its int8 convolution against its float one, on scratch buffers of the right sizes. Where int8
// does not win by INT8_SPEED_MARGIN, the convolution is left out of quantization altogether (insertQuantization's
// keep set, as for sensitivity): float weight, float input, no quantize/dequantize around it.
//
// The probe is injectable (CPU tests pass a fake timing); compile() asks the backend for one (backendInt8Probe):
// only the cuda backend with real int8 convolutions (TORCHC_QUANT_KERNELS=1) has one, so the reference backend and
// simulated int8 are unchanged. TORCHC_INT8_TIMED_CHOICE=0 turns the choice off, for A/B timing.
import { type Arg, formatLocation, type Graph, type Node } from "../ir/graph.js";
import { type Int8SpeedLayer, type Int8SpeedReport, int8TimingLost } from "../passes/int8-speed-report.js";
import { quantizationSites } from "../passes/quantize-insert.js";

/** One 2-d convolution as the probe times it: NHWC, [K, C/groups, R, S] weight, in the compile's float type. */
export interface Int8ConvProblem {
  readonly n: number;
  readonly c: number;
  readonly h: number;
  readonly w: number;
  /** Output channels. */
  readonly k: number;
  readonly r: number;
  readonly s: number;
  readonly stride: readonly [number, number];
  readonly padding: readonly [number, number];
  readonly dilation: readonly [number, number];
  readonly groups: number;
  readonly bias: boolean;
  /** A ReLU is the output's only reader: both candidates fuse it, as the engine does. */
  readonly relu: boolean;
}

/**
 * What the probe found for one problem: both times (ms per call, each library's best plan), or that the backend
 * has no int8 kernel for it (the layer stays float), or that it could not be timed (the layer stays int8, as
 * without the choice).
 */
export type Int8ConvTiming =
  | { readonly int8Ms: number; readonly floatMs: number; readonly detail?: string }
  | { readonly refused: string }
  | { readonly untimed: string };

export interface Int8SpeedProbe {
  /** The float precision the compile runs kept layers in ("fp16", "fp32"). */
  readonly floatName: string;
  /** What was timed where, for the report ("cuDNN on NVIDIA H200"). */
  readonly describe: string;
  /** One answer per problem, in order. */
  time(problems: readonly Int8ConvProblem[]): readonly Int8ConvTiming[] | Promise<readonly Int8ConvTiming[]>;
}

/** int8 is chosen only when it times at least this much faster than the float convolution. */
export const INT8_SPEED_MARGIN = 0.05;

/** Whether compile() times int8 against float (TORCHC_INT8_TIMED_CHOICE=0 turns it off). */
export function int8TimedChoiceEnabled(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.TORCHC_INT8_TIMED_CHOICE !== "0";
}

/** The backend's probe, or undefined: only the cuda backend has one, and only with real int8 convolutions. */
export async function backendInt8Probe(
  options: {
    readonly backend?: unknown;
    readonly enabledPrecisions?: readonly string[];
    readonly device?: number;
    readonly tune?: boolean;
  },
  env: NodeJS.ProcessEnv = process.env,
): Promise<Int8SpeedProbe | undefined> {
  if (!int8TimedChoiceEnabled(env) || options.backend !== "cuda") return undefined;
  const fp16 = (options.enabledPrecisions ?? []).some((p) => ["fp16", "half", "float16"].includes(p));
  const { cudaInt8SpeedProbe } = await import("../backends/cuda/int8-conv-timing.js");
  return cudaInt8SpeedProbe(
    { dtype: fp16 ? "float16" : "float32", device: options.device ?? 0, tune: options.tune === true },
    env,
  );
}

const pair = (a: Arg | undefined, dflt: number): [number, number] => {
  const v = a?.kind === "ints" ? a.value : a?.kind === "int" ? [a.value] : [];
  return [v[0] ?? dflt, v[1] ?? v[0] ?? dflt];
};

/** The problem of a convolution node of the lowered graph, or why it has none (not a 2-d convolution). */
export function int8ConvProblem(graph: Graph, node: Node): Int8ConvProblem | string {
  const x = node.args.input;
  const wt = node.args.weight;
  if (x?.kind !== "tensor" || wt?.kind !== "tensor") return "the input or weight is not a tensor";
  const xs = graph.values[x.name]?.shape;
  const ws = graph.values[wt.name]?.shape ?? graph.weights[wt.name]?.tensor.shape;
  if (!xs || !ws) return "no static shapes";
  if (xs.length !== 4 || ws.length !== 4)
    return `a ${xs.length - 2}-d convolution (int8 convolutions are 2-d)`;
  const g = node.args.groups;
  const groups = g?.kind === "int" ? Number(g.value) : 1;
  const out = node.outputs[0];
  const readers = graph.nodes.filter((n) =>
    Object.values(n.args).some((a) => a.kind === "tensor" && a.name === out),
  );
  const relu = readers.length === 1 && ["aten.relu.default", "aten.relu_.default"].includes(readers[0].op);
  const [n, c, h, w] = xs.map(Number);
  const [k, , r, s] = ws.map(Number);
  return {
    n,
    c,
    h,
    w,
    k,
    r,
    s,
    stride: pair(node.args.stride, 1),
    padding: pair(node.args.padding, 0),
    dilation: pair(node.args.dilation, 1),
    groups,
    bias: node.args.bias?.kind === "tensor",
    relu,
  };
}

/** "128×64×56×56 → 64, 3×3 stride 2" */
export function problemText(p: Int8ConvProblem): string {
  const stride = p.stride[0] === p.stride[1] ? `${p.stride[0]}` : p.stride.join("×");
  return `${p.n}×${p.c}×${p.h}×${p.w} → ${p.k}, ${p.r}×${p.s} stride ${stride}${p.groups > 1 ? `, ${p.groups} groups` : ""}`;
}

/**
 * Times every quantizable convolution of `graph` (a lowered float32 graph) not in `skip` with `probe`, one call
 * per distinct problem, and decides which stay float: those the backend has no int8 kernel for, and those whose
 * int8 time is not below (1 − margin) × their float time.
 */
export async function decideBySpeed(
  graph: Graph,
  probe: Int8SpeedProbe,
  skip: ReadonlySet<string> = new Set(),
  margin = INT8_SPEED_MARGIN,
): Promise<Int8SpeedReport> {
  const byName = new Map(graph.nodes.map((n) => [n.name, n]));
  const convs = quantizationSites(graph).filter(
    (s) => s.op === "aten.convolution.default" && !skip.has(s.node),
  );
  const problems: Int8ConvProblem[] = [];
  const index = new Map<string, number>();
  const looked = convs.map((site) => {
    const node = byName.get(site.node)!;
    const p = int8ConvProblem(graph, node);
    if (typeof p === "string") return { node, p };
    const key = JSON.stringify(p);
    if (!index.has(key)) {
      index.set(key, problems.length);
      problems.push(p);
    }
    return { node, p, at: index.get(key)! };
  });
  // a probe that fails as a whole (no device memory, a library error) leaves every layer as it was: int8
  let timings: readonly Int8ConvTiming[];
  try {
    timings = problems.length > 0 ? await probe.time(problems) : [];
    if (timings.length !== problems.length)
      throw new Error(`the probe answered ${timings.length} of ${problems.length} problems`);
  } catch (e) {
    const why = (e instanceof Error ? e.message : String(e)).split("\n")[0];
    timings = problems.map(() => ({ untimed: why }));
  }
  const f = probe.floatName;
  const layers = looked.map(({ node, p, at }): Int8SpeedLayer => {
    const base = { node: node.name, where: formatLocation(node) };
    if (typeof p === "string") return { ...base, shape: "", ran: "float", reason: `no int8 kernel: ${p}` };
    const shape = problemText(p);
    const t = timings[at as number];
    if ("refused" in t) return { ...base, shape, ran: "float", reason: `no int8 kernel: ${t.refused}` };
    if ("untimed" in t) return { ...base, shape, ran: "int8", reason: `not timed: ${t.untimed}` };
    const times = { int8Ms: t.int8Ms, floatMs: t.floatMs };
    if (!(Number.isFinite(t.int8Ms) && Number.isFinite(t.floatMs)))
      return { ...base, shape, ran: "int8", ...times, reason: "not timed: a time is not finite" };
    if (!(t.int8Ms < t.floatMs * (1 - margin)))
      return { ...base, shape, ran: "float", ...times, reason: int8TimingLost(t.int8Ms, t.floatMs, f) };
    return { ...base, shape, ran: "int8", ...times, ...(t.detail ? { reason: t.detail } : {}) };
  });
  return {
    floatName: f,
    describe: probe.describe,
    margin,
    problems: problems.length,
    layers,
    kept: layers.filter((l) => l.ran === "float").map((l) => l.node),
  };
}
