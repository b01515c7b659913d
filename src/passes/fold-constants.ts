// Evaluates, at compile time, nodes whose inputs are all weights (parameters are constants once a model is
// compiled for inference), with the same reference implementations the interpreter uses.
import { TorchcError } from "../errors.js";
import type { Node } from "../ir/graph.js";
import { castTensor, numel, type Tensor } from "../ir/tensor.js";
import { readsOf } from "./graph-reads.js";
import { evaluateOutputs } from "./op-catalogue.js";
import { isDeterministic } from "./op-effects.js";
import { type Pass, rulePass } from "./pass.js";
import type { GraphView } from "./rewrite/graph-view.js";
import { anyOp } from "./rewrite/pattern.js";
import { type RuleSet, rule } from "./rewrite/rule.js";

export interface FoldConstantsOptions {
  /** Largest result (elements) a fold may create. Default 2^22 (16 MiB of float32). */
  readonly maxElements?: number;
  /**
   * Largest result of a node without tensor inputs (full, arange, zeros). Nodes with inputs never fold
   * into something larger than their inputs, so an expand of a weight stays a cheap view. Default 4096.
   */
  readonly maxCreated?: number;
}

function foldable(node: Node, graph: GraphView, options: Required<FoldConstantsOptions>): boolean {
  if (node.outputs.length === 0 || node.subgraphs || !isDeterministic(node.op, node.args)) return false;
  const reads = readsOf(node);
  if (!reads.every((v) => graph.weightOf(v) !== undefined)) return false;
  const inputElements = reads.reduce((n, v) => n + numel(graph.typeOf(v).shape), 0);
  return node.outputs.every((o) => {
    const n = numel(graph.typeOf(o).shape);
    return n <= options.maxElements && (reads.length === 0 ? n <= options.maxCreated : n <= inputElements);
  });
}

export function foldConstantsRules(options: FoldConstantsOptions = {}): RuleSet {
  const limits: Required<FoldConstantsOptions> = { maxElements: 1 << 22, maxCreated: 4096, ...options };
  return [
    rule({
      name: "fold-constant",
      doc: "op(constants…) ⇒ its value, computed by the reference implementation",
      pattern: anyOp({ where: (n, graph) => foldable(n.node, graph, limits) }),
      rewrite: ({ root }, ctx) => {
        let results: Tensor[] | undefined;
        try {
          results = evaluateOutputs(root.node, (v) => ctx.graph.weightOf(v)!.tensor);
        } catch (e) {
          if (e instanceof TorchcError) return undefined; // an op without a reference stays in the graph
          throw e;
        }
        if (!results || results.length !== root.outputs.length) return undefined;
        const b = ctx.build();
        const mapping: Record<string, string> = {};
        root.outputs.forEach((o, i) => {
          const t = castTensor(results[i], o.type.dtype);
          if (t.shape.join() !== o.type.shape.join())
            throw new Error(`fold-constant: ${root.op} gave shape [${t.shape}] for ${o.name}`);
          mapping[o.name] = b.weight(o.name, t, `folded:${root.name}`);
        });
        return b.replace(mapping);
      },
    }),
  ];
}

export function foldConstantsPass(options: FoldConstantsOptions = {}): Pass {
  return rulePass(
    "fold-constants",
    "evaluate nodes whose inputs are all weights (size-bounded)",
    foldConstantsRules(options),
  );
}
