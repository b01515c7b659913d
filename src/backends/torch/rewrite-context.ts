/**
 * How the LibTorch fallback lowers a segment: each node is rewritten to a fixed point by the rule set
 * `libtorch-lowering` (lowering-rules.ts) in the rewrite engine of src/passes, on a graph of that node alone
 * (in-place rebinding between nodes is planFallback's). The rules' firings go to a trace like the pipeline's.
 * Also the number helpers the rules share: a Python number's kind and the dtype PyTorch computes it in.
 */
import { TorchcError } from "../../errors.js";
import type { DType } from "../../ir/dtype.js";
import { isFloating } from "../../ir/dtype.js";
import type { Arg, Graph, Node, TensorType } from "../../ir/graph.js";
import type { Tensor } from "../../ir/tensor.js";
import { readsOf } from "../../passes/graph-reads.js";
import { rewriteToFixedPoint } from "../../passes/rewrite/driver.js";
import type { RuleSet } from "../../passes/rewrite/rule.js";
import { type Trace, TraceRecorder } from "../../passes/rewrite/trace.js";

export { tensorArg } from "../../ir/graph.js";

/** A rule cannot lower this node; the reason reaches the user with the node's location. */
export class RewriteRefused extends Error {}

export function refuse(reason: string): never {
  throw new RewriteRefused(reason);
}

export type ScalarKind = "int" | "float" | "bool";

export interface ScalarLiteral {
  readonly value: number;
  readonly kind: ScalarKind;
}

/** A Python number held by an argument (Scalar or a number in a Tensor slot), or undefined. */
export function scalarOf(a: Arg | undefined): ScalarLiteral | undefined {
  if (!a) return undefined;
  if (a.kind === "int") return { value: a.value, kind: "int" };
  if (a.kind === "float") return { value: Number(a.value), kind: "float" };
  if (a.kind === "bool") return { value: a.value ? 1 : 0, kind: "bool" };
  return undefined;
}

/**
 * The dtype PyTorch computes in when a Python number meets a tensor of dtype `ref` (a "wrapped number": it
 * never raises the tensor's dtype within its category). A 0-d tensor of this dtype gives the same result type
 * and the same values, since TensorIterator casts the wrapped number to the common dtype anyway.
 */
export function wrappedDtype(kind: ScalarKind, ref: DType): DType {
  if (kind === "float") return isFloating(ref) ? ref : "float32";
  if (kind === "int") return ref === "bool" ? "int64" : ref;
  return ref;
}

export interface LoweredNode {
  /** The node as it will be dispatched. */
  readonly node: Node;
  /** The graph node it came from. */
  readonly source: Node;
  /** The rules that fired while its source node was lowered, in order. */
  readonly rules: readonly string[];
}

/** The name of the fallback's rule set in traces (`torchc compile --trace-passes`). */
export const LIBTORCH_LOWERING = "libtorch-lowering";

/** Rewrites of one node that keep firing are a bug in the rule set; a node never needs this many. */
const MAX_REWRITES_PER_NODE = 1000;

/** A graph of `node` alone: what it reads are inputs, its outputs are outputs. */
function nodeGraph(node: Node, typeOf: (name: string) => TensorType): Graph {
  const inputs = [...new Set(readsOf(node))];
  const values: Record<string, TensorType> = {};
  for (const v of [...inputs, ...node.outputs]) values[v] = typeOf(v);
  return { inputs, outputs: [...node.outputs], nodes: [node], values, weights: {} };
}

/** Lowers the nodes of one segment with a rule set; collects the lowered nodes, constants and the trace. */
export class SegmentRewriter {
  readonly nodes: LoweredNode[] = [];
  readonly constants: Record<string, Tensor> = {};
  private readonly used: Set<string>;
  private readonly recorder = new TraceRecorder();
  private lowered = 0;
  private ms = 0;

  constructor(
    private readonly graphType: (name: string) => TensorType | undefined,
    usedNames: Iterable<string>,
    private readonly rules: RuleSet,
  ) {
    this.used = new Set(usedNames);
  }

  typeOf(name: string): TensorType {
    const t = this.graphType(name);
    if (!t) throw new TorchcError(`LibTorch fallback: value '${name}' has no type`, "graph.undefined-value");
    return t;
  }

  /** Lowers one graph node; throws RewriteRefused (or a TorchcError) when it cannot be made dispatchable. */
  lower(node: Node): void {
    const start = performance.now();
    const first = this.recorder.size;
    this.lowered++;
    try {
      const g = rewriteToFixedPoint(
        nodeGraph(node, (n) => this.typeOf(n)),
        this.rules,
        {
          pass: LIBTORCH_LOWERING,
          trace: this.recorder,
          maxSteps: MAX_REWRITES_PER_NODE,
          reservedNames: (n) => this.used.has(n),
        },
      );
      const rules = this.recorder.since(first).map((e) => e.rule);
      for (const n of g.nodes) {
        this.nodes.push({ node: n, source: node, rules });
        this.used.add(n.name);
        for (const o of n.outputs) this.used.add(o);
      }
      for (const [name, w] of Object.entries(g.weights)) {
        this.constants[name] = w.tensor;
        this.used.add(name);
      }
    } finally {
      this.ms += performance.now() - start;
    }
  }

  /** Every rule that fired, as one run of the `libtorch-lowering` pass. */
  trace(): Trace {
    const recorded = this.recorder.snapshot();
    return Object.freeze({
      entries: recorded.entries,
      passes: Object.freeze([
        Object.freeze({
          pass: LIBTORCH_LOWERING,
          firstEntry: 0,
          nodesBefore: this.lowered,
          nodesAfter: this.nodes.length,
          changes: recorded.entries.length,
          ms: this.ms,
        }),
      ]),
    });
  }
}
