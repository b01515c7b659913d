// How much of the op catalogue the LibTorch fallback can plan (encode as an aoti_torch_call_dispatcher stack,
// after its rewrites), one representative call per overload (catalogue-cases.ts). The count is printed; the
// test pins the overloads that are refused and why, so a regression or a newly planned overload shows here.
import { describe, expect, it } from "vitest";
import { planFallback } from "../../../src/backends/torch/plan-segment.js";
import type { Tensor } from "../../../src/ir/tensor.js";
import { evaluateNode, OP_NAMES } from "../../../src/ops/index.js";
import { caseGraph } from "./cases.js";
import { catalogueCases, UNINITIALIZED } from "./catalogue-cases.js";
import { evaluatePlan, relMaxError } from "./helpers.js";

describe("LibTorch fallback coverage of the op catalogue", () => {
  it("plans every overload but the CPU-only flash attention", () => {
    const cases = catalogueCases();
    expect(cases.size).toBe(OP_NAMES.length);
    const refused: Record<string, string> = {};
    let planned = 0;
    for (const [op, c] of cases) {
      expect(c, `no representative call for ${op}`).toBeDefined();
      if (!c) continue;
      const plan = planFallback(caseGraph(c.case).graph);
      if ("steps" in plan) {
        planned++;
        // every step is a dispatcher call or the add shim, with one encoded value per schema argument
        for (const s of plan.steps) expect(s.call.args.length).toBe(s.call.names.length);
      } else refused[op] = plan.unsupported.map((u) => u.reason).join("; ");
    }
    console.log(`LibTorch fallback: ${planned} of ${cases.size} catalogue overloads plan`);
    // quantized_decomposed.* (a Python library, not in LibTorch's dispatcher) and torchc.quantized_* (torchc's
    // own ops) plan as the aten arithmetic they stand for (quantize-rewrites.ts): the fallback must run whatever
    // the CUDA engine cannot, and the GPU run of 18bf27e refused all eight
    expect(Object.keys(refused)).toEqual(["aten._scaled_dot_product_flash_attention_for_cpu.default"]);
    expect(planned).toBe(OP_NAMES.length - 1);
  });

  it("each plan, evaluated op by op on the aten reference, computes what the node computes (valid operands)", () => {
    const failures: string[] = [];
    let checked = 0;
    for (const [op, c] of catalogueCases()) {
      if (!c?.values || op === "aten._scaled_dot_product_flash_attention_for_cpu.default") continue;
      const { graph, node } = caseGraph(c.case);
      const plan = planFallback(graph);
      if (!("steps" in plan)) continue;
      const inputs = new Map<string, Tensor>(Object.entries(c.values));
      let want: Tensor[];
      try {
        want = evaluateNode(node, (n) => inputs.get(n) as Tensor);
      } catch {
        continue; // random ops (training dropout) have no reference
      }
      const got = evaluatePlan(plan, graph, inputs);
      checked++;
      graph.outputs.forEach((o, j) => {
        const g = got.get(o) as Tensor;
        if (g.dtype !== want[j].dtype || g.shape.join() !== want[j].shape.join()) {
          failures.push(`${op}: ${g.dtype}[${g.shape}] for ${want[j].dtype}[${want[j].shape}]`);
          return;
        }
        if (UNINITIALIZED.has(op)) return;
        const exact = !(g.dtype.startsWith("float") || g.dtype === "bfloat16");
        const err = relMaxError(g, want[j]);
        if (!(err <= (exact ? 0 : 1e-5))) failures.push(`${op}: output ${j} error ${err}`);
      });
    }
    console.log(`LibTorch fallback plans checked on the aten reference: ${checked} overloads`);
    expect(checked).toBeGreaterThan(330);
    expect(failures).toEqual([]);
  });
});
