import { InputError, TorchcError } from "../errors.js";
import type { Arg, Graph, Node } from "../ir/graph.js";
import { formatLocation, nodeInputs } from "../ir/graph.js";
import { formatShape, type Tensor } from "../ir/tensor.js";
import { nums, sameShape } from "./data.js";
import { evaluateNode, mutatedValue } from "./index.js";

export interface InterpretOptions {
  /** Called after every node (control-flow nodes included, and nodes inside their blocks) with its results. */
  readonly onNode?: (node: Node, outputs: readonly Tensor[]) => void;
  /** Called when an intermediate value is dropped after its last use (for tests and memory reports). */
  readonly onRelease?: (valueName: string) => void;
}

/** Names a graph reads that it does not define itself: what a nested block takes from the enclosing graph. */
function freeNames(graph: Graph): Set<string> {
  const defined = new Set<string>([...graph.inputs, ...Object.keys(graph.weights)]);
  const free = new Set<string>();
  const use = (n: string) => {
    if (!defined.has(n)) free.add(n);
  };
  for (const node of graph.nodes) {
    for (const n of nodeReads(node)) use(n);
    for (const o of node.outputs) defined.add(o);
  }
  for (const o of graph.outputs) use(o);
  return free;
}

const readsCache = new WeakMap<Node, string[]>();

/** Everything a node reads, including what its blocks read from outside themselves (duplicates kept). */
function nodeReads(node: Node): string[] {
  let r = readsCache.get(node);
  if (!r) {
    r = nodeInputs(node);
    for (const sub of node.subgraphs ?? []) r.push(...freeNames(sub));
    readsCache.set(node, r);
  }
  return r;
}

/** One activation of a graph: its live values, with use counts so intermediates are dropped after their last use. */
class Frame {
  private readonly values = new Map<string, Tensor>();
  private readonly remaining = new Map<string, number>();

  constructor(
    readonly graph: Graph,
    private readonly parent: Frame | null,
    private readonly onRelease?: (valueName: string) => void,
  ) {
    for (const node of graph.nodes)
      for (const n of nodeReads(node)) this.remaining.set(n, (this.remaining.get(n) ?? 0) + 1);
    // Graph outputs are never dropped.
    for (const o of graph.outputs) this.remaining.set(o, Number.POSITIVE_INFINITY);
  }

  get(name: string): Tensor {
    const v = this.values.get(name) ?? this.graph.weights[name]?.tensor ?? this.parent?.lookup(name);
    if (!v) throw new TorchcError(`interpreter: value '${name}' is not defined`, "graph.undefined-value");
    return v;
  }

  private lookup(name: string): Tensor | undefined {
    return this.values.get(name) ?? this.graph.weights[name]?.tensor ?? this.parent?.lookup(name);
  }

  define(name: string, t: Tensor): void {
    if (name === "") return;
    if ((this.remaining.get(name) ?? 0) > 0) this.values.set(name, t);
    else this.onRelease?.(name);
  }

  /** An in-place op wrote `name`: later readers in this graph (and its blocks) see the new tensor. */
  overwrite(name: string, t: Tensor): void {
    this.values.set(name, t);
  }

  /** After a node ran: one use fewer of each value it read; values of this frame with none left are dropped. */
  release(node: Node): void {
    for (const n of nodeReads(node)) {
      const left = (this.remaining.get(n) ?? 0) - 1;
      this.remaining.set(n, left);
      if (left <= 0 && this.values.delete(n)) this.onRelease?.(n);
    }
  }
}

function truthy(t: Tensor): boolean {
  const v = nums(t);
  if (v.length !== 1)
    throw new TorchcError(
      `a condition must have one element, got ${formatShape(t.shape)}`,
      "graph.condition",
    );
  return v[0] !== 0;
}

function argValue(frame: Frame, node: Node, key: string): Tensor | number | boolean {
  const a: Arg | undefined = node.args[key];
  if (!a) throw new TorchcError(`${node.op} needs argument '${key}': ${formatLocation(node)}`, "op.args");
  if (a.kind === "tensor") return frame.get(a.name);
  if (a.kind === "int" || a.kind === "float") return a.value;
  if (a.kind === "bool") return a.value;
  throw new TorchcError(`${node.op}: argument '${key}' is ${a.kind}: ${formatLocation(node)}`, "op.args");
}

function asBool(v: Tensor | number | boolean): boolean {
  return typeof v === "boolean" ? v : typeof v === "number" ? v !== 0 : truthy(v);
}

function block(node: Node, i: number): Graph {
  const g = node.subgraphs?.[i];
  if (!g)
    throw new TorchcError(`${node.op} has no block ${i}: ${formatLocation(node)}`, "graph.control-flow");
  return g;
}

function runIf(frame: Frame, node: Node, opts: InterpretOptions): Tensor[] {
  const sub = block(node, asBool(argValue(frame, node, "cond")) ? 0 : 1);
  return runGraph(sub, new Frame(sub, frame, opts.onRelease), opts);
}

function runLoop(frame: Frame, node: Node, opts: InterpretOptions): Tensor[] {
  const body = block(node, 0);
  const max = argValue(frame, node, "max_trip_count");
  const trips = typeof max === "boolean" ? Number(max) : typeof max === "number" ? max : nums(max)[0];
  let cond = asBool(argValue(frame, node, "cond"));
  const init = node.args.init;
  let carried: Tensor[] =
    init?.kind === "tensors"
      ? init.names.map((n) => frame.get(n ?? ""))
      : init?.kind === "tensor"
        ? [frame.get(init.name)]
        : [];
  if (body.inputs.length !== carried.length + 1 || body.outputs.length !== carried.length + 1) {
    throw new TorchcError(
      `prim.Loop body takes ${body.inputs.length} and gives ${body.outputs.length} values for ${carried.length} carried: ${formatLocation(node)}`,
      "graph.control-flow",
    );
  }
  for (let i = 0; i < trips && cond; i++) {
    const f = new Frame(body, frame, opts.onRelease);
    const iter: Tensor = { dtype: "int64", shape: [], data: BigInt64Array.of(BigInt(i)) };
    [iter, ...carried].forEach((t, k) => {
      f.define(body.inputs[k], t);
    });
    const [c, ...next] = runGraph(body, f, opts);
    cond = truthy(c);
    carried = next;
  }
  return carried;
}

function runGraph(graph: Graph, frame: Frame, opts: InterpretOptions): Tensor[] {
  for (const node of graph.nodes) {
    let outs: Tensor[];
    if (node.op === "prim.If") outs = runIf(frame, node, opts);
    else if (node.op === "prim.Loop") outs = runLoop(frame, node, opts);
    else outs = evaluateNode(node, (n) => frame.get(n));
    if (outs.length < node.outputs.length) {
      throw new TorchcError(
        `${node.op} gave ${outs.length} results for ${node.outputs.length} outputs: ${formatLocation(node)}`,
        "graph.arity",
      );
    }
    opts.onNode?.(node, outs);
    node.outputs.forEach((o, i) => {
      frame.define(o, outs[i]);
    });
    const mutated = mutatedValue(node);
    if (mutated !== undefined) frame.overwrite(mutated, outs[0]);
    frame.release(node);
  }
  return graph.outputs.map((o) => frame.get(o));
}

/**
 * Runs a graph on the CPU with the reference op implementations (weights from `graph.weights`), including
 * TorchScript's `prim.If` and `prim.Loop` blocks. Each intermediate is dropped after its last use.
 */
export function interpret(graph: Graph, inputs: readonly Tensor[], opts: InterpretOptions = {}): Tensor[] {
  if (inputs.length !== graph.inputs.length) {
    throw new InputError(
      `the model takes ${graph.inputs.length} inputs, got ${inputs.length}`,
      "input.count",
    );
  }
  const frame = new Frame(graph, null, opts.onRelease);
  graph.inputs.forEach((name, i) => {
    const want = graph.values[name];
    const got = inputs[i];
    if (want && (want.dtype !== got.dtype || !sameShape(want.shape, got.shape))) {
      throw new InputError(
        `input '${name}' must be ${want.dtype}${formatShape(want.shape)}, got ${got.dtype}${formatShape(got.shape)}`,
        "input.shape",
      );
    }
    frame.define(name, got);
  });
  return runGraph(graph, frame, opts);
}
