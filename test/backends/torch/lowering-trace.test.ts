// The LibTorch fallback lowers through the rewrite engine of src/passes: its rules are engine rules, and every
// firing is in the plan's trace and, through the runner, in compile()'s report (what --trace-passes prints).
import { describe, expect, it } from "vitest";
import { referenceBackend } from "../../../src/backends/reference/index.js";
import { libtorchLowering } from "../../../src/backends/torch/lowering-rules.js";
import { planFallbackOrThrow } from "../../../src/backends/torch/plan-segment.js";
import { LIBTORCH_LOWERING } from "../../../src/backends/torch/rewrite-context.js";
import { GraphBuilder } from "../../../src/ir/builder.js";
import type { Graph } from "../../../src/ir/graph.js";
import { tensorFromNumbers } from "../../../src/ir/tensor.js";
import { formatTrace } from "../../../src/passes/rewrite/trace.js";
import { compile } from "../../../src/runtime/compile.js";
import type { Backend } from "../../../src/runtime/segment-runner.js";

const f32 = (...shape: number[]) => ({ dtype: "float32" as const, shape });
const x = { kind: "tensor" as const, name: "x" };

/** y = leaky_relu(x, 0.1) + 2 (a Python number in add's Tensor slot), z = int add with alpha 3. */
function scalarGraph(): Graph {
  const b = new GraphBuilder();
  b.addInput("x", f32(4));
  b.addInput("i", { dtype: "int32", shape: [4] });
  b.addNode(
    "aten.leaky_relu.default",
    { self: x, negative_slope: { kind: "float", value: 0.1 } },
    [{ name: "a", type: f32(4) }],
    { modulePath: "block.act" },
    "leaky",
  );
  b.addNode(
    "aten.add.Tensor",
    { self: { kind: "tensor", name: "a" }, other: { kind: "float", value: 2 } },
    [{ name: "y", type: f32(4) }],
    {},
    "add",
  );
  b.addNode(
    "aten.add.Tensor",
    {
      self: { kind: "tensor", name: "i" },
      other: { kind: "tensor", name: "i" },
      alpha: { kind: "int", value: 3 },
    },
    [{ name: "z", type: { dtype: "int32", shape: [4] } }],
    {},
    "iadd",
  );
  b.setOutputs(["y", "z"]);
  return b.build();
}

describe("the LibTorch lowering is a rule set of the rewrite engine", () => {
  it("has one engine rule per name, each with a doc, and root ops for all but the generic stages", () => {
    const rules = libtorchLowering(false);
    expect(new Set(rules.map((r) => r.name)).size).toBe(rules.length);
    const generic = rules.filter((r) => r.pattern.ops === undefined).map((r) => r.name);
    expect(generic).toEqual([
      "functionalize",
      "numbers in Tensor slots → 0-d constants",
      "convolution → _convolution(allow_tf32=False)",
    ]);
    for (const r of rules) expect(r.location).toMatch(/src\/backends\/torch\/[a-z-]+\.ts:\d+$/);
  });

  it("records every firing in the plan's trace, with the node, its op and where the rule is written", () => {
    const plan = planFallbackOrThrow(scalarGraph());
    expect(plan.trace.passes).toHaveLength(1);
    const [run] = plan.trace.passes;
    expect(run).toMatchObject({ pass: LIBTORCH_LOWERING, firstEntry: 0, nodesBefore: 3 });
    expect(run.nodesAfter).toBe(plan.steps.length);
    expect(run.changes).toBe(plan.trace.entries.length);
    const fired = plan.trace.entries.map((e) => [e.rule, e.node, e.op]);
    expect(fired).toContainEqual(["leaky_relu", "leaky", "aten.leaky_relu.default"]);
    expect(fired).toContainEqual(["numbers in Tensor slots → 0-d constants", "add", "aten.add.Tensor"]);
    expect(fired).toContainEqual(["add.Tensor (integral)", "iadd", "aten.add.Tensor"]);
    // the float add the number rule made is what the shim takes: nothing fires on it again
    expect(fired.filter(([, node]) => node === "add")).toHaveLength(1);
    const leaky = plan.trace.entries.find((e) => e.rule === "leaky_relu");
    expect(leaky?.ruleLocation).toMatch(/^src\/backends\/torch\/scalar-rewrites\.ts:\d+$/);
    expect(leaky?.source).toBe("in block.act");
    // a step's rules are those that fired on its source node
    const addStep = plan.steps.find((s) => s.source.name === "add");
    expect(addStep?.rules).toEqual(["numbers in Tensor slots → 0-d constants"]);
    const text = formatTrace(plan.trace);
    expect(text).toMatch(/^pass libtorch-lowering: \d+ changes, 3 → \d+ nodes/);
    expect(text).toContain("leaky_relu");
  });

  it("a runner's trace is appended to compile()'s, after the pipeline's passes", async () => {
    const backend: Backend = {
      ...referenceBackend,
      name: "reference with the LibTorch plan's trace",
      async fallback(segment) {
        const runner = await referenceBackend.fallback(segment);
        return { ...runner, run: runner.run, trace: planFallbackOrThrow(segment.graph).trace };
      },
    };
    const graph = scalarGraph();
    const compiled = await compile(graph, {
      backend,
      torchExecutedOps: ["aten.leaky_relu.default", "aten.add.Tensor"],
    });
    const { trace } = compiled.report;
    const names = trace.passes.map((p) => p.pass);
    expect(names.at(-1)).toBe(LIBTORCH_LOWERING);
    expect(names.indexOf(LIBTORCH_LOWERING)).toBeGreaterThan(names.indexOf("eliminate-dead-code"));
    const run = trace.passes.at(-1)!;
    const own = trace.entries.slice(run.firstEntry, run.firstEntry + run.changes);
    expect(own.length).toBeGreaterThan(0);
    expect(own.every((e) => e.pass === LIBTORCH_LOWERING)).toBe(true);
    expect(formatTrace(trace)).toContain("pass libtorch-lowering:");
    const out = await compiled.run([
      tensorFromNumbers("float32", [4], [-1, 0, 1, 2]),
      tensorFromNumbers("int32", [4], [1, 2, 3, 4]),
    ]);
    expect([...out[1].data]).toEqual([4, 8, 12, 16]);
    await compiled.dispose();
  });
});
