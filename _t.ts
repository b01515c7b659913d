import { planFallback } from "./src/backends/torch/plan-segment.js";
import { formatPlan } from "./src/backends/torch/encoded-arg.js";
import { caseGraph, REWRITE_CASES } from "./test/backends/torch/cases.js";
for (const k of REWRITE_CASES) {
  const { graph } = caseGraph(k);
  const p = planFallback(graph);
  if (!("steps" in p)) { console.log(k.label, "UNSUPPORTED", p.unsupported); continue; }
  console.log("##", k.label, Object.entries(p.constants).map(([n, t]) => `${n}:${t.dtype}${JSON.stringify(t.shape)}`).join(" "), "outs", p.outputs.map(o=>o.value).join(","));
  for (const s of p.steps) console.log("   ", formatPlan(s.call));
}
