// Reduced precision as a pass over the IR: each node gets a compute dtype, value types follow by shape/dtype
// inference, and explicit aten._to_copy casts appear wherever a value crosses between precisions. Ops
// whose accuracy depends on wide accumulation (normalization statistics, softmax, big reductions) stay
// in float32 with casts around them. Weights are converted once, at compile time.
import type { DType } from "../ir/dtype.js";
import { isFloating } from "../ir/dtype.js";
import { freezeGraph } from "../ir/frozen.js";
import { type Arg, type Graph, type Node, nodeInputs, type TensorType, type Weight } from "../ir/graph.js";
import { castTensor, numel } from "../ir/tensor.js";
import { inferOutputTypes } from "./op-catalogue.js";
import type { Pass, PassContext } from "./pass.js";

export type Precision = "float32" | "float16" | "bfloat16";

/** Ops whose statistics or exponentials need float32 (inputs are cast up, results cast back down). */
export const FP32_OPS: readonly string[] = [
  "aten._softmax.default",
  "aten._log_softmax.default",
  "aten.softmax.int",
  "aten.log_softmax.int",
  "aten.native_layer_norm.default",
  "aten.layer_norm.default",
  "aten.native_group_norm.default",
  "aten.group_norm.default",
  "aten._native_batch_norm_legit_no_training.default",
  "aten.batch_norm.default",
  "aten.var.correction",
  "aten.var_mean.correction",
  "aten.std.correction",
];

/** Reductions kept in float32 when each result sums many elements. */
export const REDUCTION_OPS: readonly string[] = [
  "aten.mean.dim",
  "aten.mean.default",
  "aten.sum.dim_IntList",
  "aten.sum.default",
  "aten.linalg_vector_norm.default",
];

export interface PrecisionOptions {
  /** As in Torch-TensorRT: the float types kernels may use. float16 wins over bfloat16; float32 alone = no change. */
  readonly enabledPrecisions: readonly Precision[];
  /** Ops computed in float32 regardless. Default FP32_OPS. */
  readonly fp32Ops?: readonly string[];
  /** A reduction whose results each combine more elements than this runs in float32. Default 65 536. */
  readonly maxReducedPrecisionReduction?: number;
  /** Keep float32 graph inputs and outputs, casting at the edges (default true). */
  readonly keepIOTypes?: boolean;
  /** Nodes (by name) computed in float32 regardless, e.g. where fp16 overflows (passes/fp16-overflow.ts). */
  readonly fp32Nodes?: readonly string[];
}

const SHORT: Readonly<Record<Precision, string>> = { float32: "f32", float16: "f16", bfloat16: "bf16" };
const RULES = {
  cast: { name: "insert-cast" },
  weight: { name: "convert-weight" },
  fp32: { name: "keep-float32" },
  io: { name: "cast-graph-io" },
} as const;

/** The reduced type of a run, or undefined when only float32 is enabled. */
export function reducedPrecisionOf(enabled: readonly Precision[]): Precision | undefined {
  return enabled.includes("float16") ? "float16" : enabled.includes("bfloat16") ? "bfloat16" : undefined;
}

const isPrecision = (d: DType): d is Precision => d === "float32" || d === "float16" || d === "bfloat16";

/** Rebuilds a graph with value dtypes set per node and casts inserted. */
class PrecisionAssigner {
  private readonly nodes: Node[] = [];
  private readonly values: Record<string, TensorType> = {};
  private readonly weights: Record<string, Weight> = {};
  /** The value that now carries an original value, and casts already made (`name:dtype` → name). */
  private readonly current = new Map<string, string>();
  private readonly casts = new Map<string, string>();
  private readonly taken: Set<string>;
  private readonly fp32Ops: ReadonlySet<string>;
  private readonly fp32Nodes: ReadonlySet<string>;
  private readonly maxReduction: number;

  constructor(
    private readonly graph: Graph,
    private readonly low: Precision,
    private readonly options: PrecisionOptions,
    private readonly ctx: PassContext | undefined,
    private readonly pass: string,
  ) {
    this.taken = new Set([...Object.keys(graph.values), ...graph.nodes.map((n) => n.name)]);
    this.fp32Ops = new Set(options.fp32Ops ?? FP32_OPS);
    this.fp32Nodes = new Set(options.fp32Nodes ?? []);
    this.maxReduction = options.maxReducedPrecisionReduction ?? 65_536;
  }

  run(): Graph {
    const keepIO = this.options.keepIOTypes ?? true;
    for (const input of this.graph.inputs) {
      const t = this.graph.values[input];
      this.values[input] = !keepIO && t.dtype === "float32" ? { ...t, dtype: this.low } : t;
      this.current.set(input, input);
    }
    for (const [name, w] of Object.entries(this.graph.weights)) {
      this.weights[name] = w;
      this.values[name] = this.graph.values[name];
      this.current.set(name, name);
    }
    const outputs = new Set(this.graph.outputs);
    for (const node of this.graph.nodes) this.lower(node, keepIO ? outputs : new Set());
    const graphOutputs = this.graph.outputs.map((o) => this.finishOutput(o, keepIO));
    return freezeGraph({
      inputs: this.graph.inputs,
      outputs: graphOutputs,
      nodes: this.nodes,
      values: this.values,
      weights: this.weights,
    });
  }

  private fresh(base: string): string {
    let name = base;
    for (let i = 1; this.taken.has(name); i++) name = `${base}_${i}`;
    this.taken.add(name);
    return name;
  }

  private computeDtype(node: Node): { dtype: Precision; reason?: string } {
    if (this.fp32Ops.has(node.op)) return { dtype: "float32", reason: "op needs float32 statistics" };
    if (this.fp32Nodes.has(node.name))
      return { dtype: "float32", reason: "node kept in float32 (fp32Nodes)" };
    if (REDUCTION_OPS.includes(node.op)) {
      const input = node.args.self ?? node.args.input;
      if (input?.kind === "tensor") {
        const per =
          numel(this.graph.values[input.name].shape) /
          Math.max(1, numel(this.graph.values[node.outputs[0]].shape));
        if (per > this.maxReduction)
          return { dtype: "float32", reason: `reduces ${per} elements per result` };
      }
    }
    return { dtype: this.low };
  }

  /** The current value for `original`, converted to `dtype` (a cast node, or a converted weight). */
  private as(original: string, dtype: DType, consumer: Node): string {
    const name = this.current.get(original) ?? original;
    const t = this.values[name];
    if (t.dtype === dtype) return name;
    const key = `${name}:${dtype}`;
    const cached = this.casts.get(key);
    if (cached) return cached;
    const converted = this.fresh(`${original}_${SHORT[dtype as Precision] ?? dtype}`);
    const w = this.weights[name];
    if (w) {
      this.weights[converted] = { ...w, tensor: castTensor(w.tensor, dtype) };
      this.ctx?.trace.record({
        pass: this.pass,
        rule: RULES.weight.name,
        node: converted,
        op: `weight:${w.kind}`,
        detail: `${name} → ${dtype}`,
      });
    } else {
      const cast: Node = {
        name: converted,
        op: "aten._to_copy.default",
        args: { self: { kind: "tensor", name }, dtype: { kind: "dtype", value: dtype } },
        outputs: [converted],
        meta: consumer.meta,
      };
      this.nodes.push(cast);
      this.ctx?.trace.fired(this.pass, RULES.cast, cast, `${name} → ${dtype} for ${consumer.name}`);
    }
    this.values[converted] = { dtype, shape: t.shape };
    this.casts.set(key, converted);
    return converted;
  }

  /** Rewrites a node's float tensor reads to `dtype` (float32 ↔ reduced only; other dtypes pass through). */
  private argsAt(node: Node, dtype: Precision | "original"): Record<string, Arg> {
    const read = (v: string) => {
      const original = this.graph.values[v].dtype;
      const target = dtype === "original" ? original : dtype;
      return isPrecision(original) && isPrecision(target)
        ? this.as(v, target, node)
        : (this.current.get(v) ?? v);
    };
    const args: Record<string, Arg> = {};
    for (const [k, a] of Object.entries(node.args)) {
      if (a.kind === "tensor") args[k] = { kind: "tensor", name: read(a.name) };
      else if (a.kind === "tensors")
        args[k] = { kind: "tensors", names: a.names.map((n) => (n === null ? null : read(n))) };
      else args[k] = a;
    }
    return args;
  }

  private lower(node: Node, graphOutputs: ReadonlySet<string>): void {
    // Only nodes with float results change precision: a float→int conversion must see the exact input.
    const touchesFloat32 = [...node.outputs, ...nodeInputs(node)].some(
      (v) => this.graph.values[v]?.dtype === "float32",
    );
    const floatResults =
      node.outputs.length > 0 && node.outputs.every((o) => isFloating(this.graph.values[o].dtype));
    const eligible = touchesFloat32 && floatResults && !node.subgraphs;
    const { dtype, reason } = eligible ? this.computeDtype(node) : { dtype: undefined, reason: undefined };
    let args: Record<string, Arg>;
    let types: TensorType[] | undefined;
    if (dtype === undefined) {
      args = this.argsAt(node, "original");
      types = node.outputs.map((o) => this.graph.values[o]);
    } else {
      const castTarget = castRetarget(node, dtype, this.graph);
      args = this.argsAt(node, dtype);
      if (castTarget) args = { ...args, dtype: { kind: "dtype", value: castTarget } };
      types = safeInfer(node.op, args, (v) => this.values[v]);
      const fitsOriginal =
        types?.length === node.outputs.length &&
        types.every((t, i) => sameShape(t, this.graph.values[node.outputs[i]]));
      if (!fitsOriginal) {
        // The catalogue cannot type this op at another precision: run it as the model had it.
        args = this.argsAt(node, "original");
        types = node.outputs.map((o) => this.graph.values[o]);
      } else if (reason) {
        this.ctx?.trace.fired(this.pass, RULES.fp32, node, reason);
      }
    }
    const outputs = node.outputs.map((o, i) => {
      const t = types![i];
      const renamed =
        graphOutputs.has(o) && t.dtype !== this.graph.values[o].dtype
          ? this.fresh(`${o}_${SHORT[t.dtype as Precision] ?? t.dtype}`)
          : o;
      this.values[renamed] = t;
      this.current.set(o, renamed);
      return renamed;
    });
    this.nodes.push({ ...node, args, outputs });
  }

  /** A graph output keeps its name and original dtype (when keepIO) through a final cast. */
  private finishOutput(o: string, keepIO: boolean): string {
    const now = this.current.get(o) ?? o;
    const original = this.graph.values[o];
    if (!keepIO || this.values[now].dtype === original.dtype || now === o) return now;
    this.current.set(o, o); // a value listed twice among the outputs gets one cast
    const cast: Node = {
      name: this.fresh(`${o}_cast`),
      op: "aten._to_copy.default",
      args: { self: { kind: "tensor", name: now }, dtype: { kind: "dtype", value: original.dtype } },
      outputs: [o],
      meta: {},
    };
    this.nodes.push(cast);
    this.values[o] = original;
    this.ctx?.trace.fired(this.pass, RULES.io, cast, `${now} → ${original.dtype}`);
    return o;
  }
}

const sameShape = (a: TensorType, b: TensorType) => a.shape.join() === b.shape.join();

/** A float→float32 cast the user wrote would undo the reduction: it is retargeted to the compute dtype. */
function castRetarget(node: Node, dtype: Precision, graph: Graph): Precision | undefined {
  if (node.op !== "aten._to_copy.default" || node.args.dtype?.kind !== "dtype") return undefined;
  const self = node.args.self;
  const from = self?.kind === "tensor" ? graph.values[self.name].dtype : undefined;
  return node.args.dtype.value === "float32" && from !== undefined && isPrecision(from) ? dtype : undefined;
}

function safeInfer(
  op: string,
  args: Record<string, Arg>,
  typeOf: (v: string) => TensorType,
): TensorType[] | undefined {
  try {
    return inferOutputTypes(op, args, typeOf);
  } catch {
    return undefined;
  }
}

export function assignPrecision(
  graph: Graph,
  options: PrecisionOptions,
  ctx?: PassContext,
  pass = "assign-precision",
): Graph {
  const low = reducedPrecisionOf(options.enabledPrecisions);
  return low ? new PrecisionAssigner(graph, low, options, ctx, pass).run() : graph;
}

export function assignPrecisionPass(options: PrecisionOptions): Pass {
  return Object.freeze({
    name: "assign-precision",
    doc: "compute in float16/bfloat16 where enabled; normalization, softmax and big reductions stay float32",
    run: (graph: Graph, ctx: PassContext) => assignPrecision(graph, options, ctx),
  });
}
