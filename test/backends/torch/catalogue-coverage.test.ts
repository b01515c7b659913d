// How much of the op catalogue the LibTorch fallback can plan (encode as an aoti_torch_call_dispatcher stack,
// after its rewrites), one representative call per overload (catalogue-cases.ts). The count is printed; the
// test pins the overloads that are refused and why, so a regression or a newly planned overload shows here.
import { describe, expect, it } from "vitest";
import { planFallback } from "../../../src/backends/torch/plan-segment.js";
import { OP_NAMES } from "../../../src/ops/index.js";
import { caseGraph } from "./cases.js";
import { catalogueCases } from "./catalogue-cases.js";

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
    expect(Object.keys(refused)).toEqual(["aten._scaled_dot_product_flash_attention_for_cpu.default"]);
    expect(planned).toBe(OP_NAMES.length - 1);
  });
});
