import { readdirSync } from "node:fs";
import { join } from "node:path";
import type { FallbackPlan } from "../../../src/backends/torch/plan-segment.js";
import type { Graph } from "../../../src/ir/graph.js";
import type { Tensor } from "../../../src/ir/tensor.js";
import { evaluateNode } from "../../../src/ops/index.js";
import { MODELS } from "../../helpers.js";

/** Every .pt2 fixture (both IR flavours), as [file name, path]. */
export function fixturePt2(): [string, string][] {
  return readdirSync(MODELS)
    .filter((f) => f.endsWith(".pt2"))
    .sort()
    .map((f) => [f, join(MODELS, f)]);
}

/**
 * Runs a plan's lowered nodes with the aten reference ops, the way the LibTorch runner runs them on the GPU
 * (weights and rewrite constants bound first, in-place rebinding through the plan's outputs).
 */
export function evaluatePlan(
  plan: FallbackPlan,
  graph: Graph,
  inputs: ReadonlyMap<string, Tensor>,
): Map<string, Tensor> {
  const values = new Map<string, Tensor>(inputs);
  for (const w of plan.weights) values.set(w, graph.weights[w].tensor);
  for (const [k, t] of Object.entries(plan.constants)) values.set(k, t);
  const valueAt = (n: string): Tensor => {
    const t = values.get(n);
    if (!t) throw new Error(`value '${n}' not computed`);
    return t;
  };
  for (const step of plan.steps) {
    const outs = evaluateNode(step.node, valueAt);
    step.node.outputs.forEach((o, i) => {
      if (o) values.set(o, outs[i]);
    });
  }
  return new Map(plan.outputs.map((o) => [o.name, valueAt(o.value)]));
}

export { relMaxError } from "./compare.js";
