// Every fixture model (both export IRs) plans for LibTorch without a refusal, and the lowered plan — rewrites
// included — computes what the original graph computes, on the aten reference ops.

import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { isUnsupported } from "../../../src/backends/torch/encoded-arg.js";
import { planFallback } from "../../../src/backends/torch/plan-segment.js";
import { loadPt2 } from "../../../src/frontends/pt2/load.js";
import { getOp, interpret } from "../../../src/ops/index.js";
import { readNpy } from "../../../src/util/npy.js";
import { MODELS, manifest } from "../../helpers.js";
import { evaluatePlan, fixturePt2, relMaxError } from "./helpers.js";

const inputOf = new Map<string, string>();
for (const m of manifest().models)
  for (const a of Object.values(m.archives)) if (m.input) inputOf.set(a, m.input);

describe("fixture models plan for the LibTorch fallback", () => {
  it.each(fixturePt2())("%s: every node plans, every call matches its schema", (_f, path) => {
    const g = loadPt2(path).graph;
    const plan = planFallback(g);
    if (!("steps" in plan))
      throw new Error(plan.unsupported.map((u) => `${u.node.op}: ${u.reason}`).join("\n"));
    expect(plan.steps.length).toBeGreaterThanOrEqual(g.nodes.length / 2);
    for (const s of plan.steps) {
      expect(isUnsupported(s.call)).toBe(false);
      const def = getOp(s.node.op);
      expect(def, s.node.op).toBeDefined();
      // One encoded value per schema argument, defaulted ones included.
      expect(s.call.args.length).toBe(def?.schema.length);
      if (s.call.via === "dispatcher") expect(s.call.args.some((a) => a.kind === "double")).toBe(false);
    }
  });

  it.each(fixturePt2())("%s: the lowered plan computes the graph's output (reference ops)", (f, path) => {
    const g = loadPt2(path).graph;
    const plan = planFallback(g);
    if (!("steps" in plan)) throw new Error("unsupported");
    const x = readNpy(join(MODELS, inputOf.get(f) as string));
    const [want] = interpret(g, [x]);
    const got = evaluatePlan(plan, g, new Map([[g.inputs[0], x]]));
    expect(relMaxError(got.get(g.outputs[0]) as never, want)).toBeLessThanOrEqual(1e-6);
  });
});
