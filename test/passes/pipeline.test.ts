import { describe, expect, it } from "vitest";
import type { Graph } from "../../src/ir/graph.js";
import type { Pass } from "../../src/passes/pass.js";
import {
  defaultPipeline,
  insertPass,
  PassVerificationError,
  removePass,
  runPipeline,
} from "../../src/passes/pipeline.js";
import { formatTrace } from "../../src/passes/rewrite/trace.js";
import { bool, expectSameResults, float, int, ints, TestGraph } from "./graphs.js";

function smallNet(): Graph {
  const g = new TestGraph();
  const x = g.input("x", [1, 2, 4, 4]);
  const c = g.node("aten.conv2d.default", {
    input: x,
    weight: g.weight("w", [3, 2, 3, 3]),
    padding: ints([1, 1]),
  });
  const bn = g.node("aten.batch_norm.default", {
    input: c,
    weight: g.weight("g", [3]),
    bias: g.weight("b", [3]),
    running_mean: g.weight("m", [3]),
    running_var: g.weight("v", [3], { lo: 0.5, hi: 2 }),
    training: bool(false),
    momentum: float(0.1),
    eps: float(1e-5),
    cudnn_enabled: bool(false),
  });
  const r = g.node("aten.relu6.default", {
    self: g.node("aten.dropout.default", { input: bn, p: float(0.1), train: bool(false) }),
  });
  const f = g.node("aten.flatten.using_ints", {
    self: g.node("aten.adaptive_avg_pool2d.default", { self: r, output_size: ints([1, 1]) }),
    start_dim: int(1),
  });
  return g.build(
    g.node("aten.linear.default", { input: f, weight: g.weight("fc", [5, 3]), bias: g.weight("fcb", [5]) }),
  );
}

describe("pipeline", () => {
  it("lowers a small net to folded core ops and reports every pass", () => {
    const graph = smallNet();
    const { graph: out, trace } = runPipeline(graph, defaultPipeline());
    expect(out.nodes.map((n) => n.op)).toEqual([
      "aten.convolution.default",
      "aten.hardtanh.default",
      "aten.mean.dim",
      "aten.view.default",
      "aten.linear.default",
    ]);
    expectSameResults(graph, out);
    expect(trace.passes.map((p) => p.pass)).toEqual(defaultPipeline().map((p) => p.name));
    const text = formatTrace(trace);
    expect(text).toMatch(/^pass remove-eval-no-ops: 1 changes, 7 → 6 nodes/m);
    expect(text).toMatch(
      /fold-batch-norm-into-conv\s+\S+ \(aten\._native_batch_norm_legit_no_training\.default\)/,
    );
    expect(text).toContain("[src/passes/fold-batch-norm.ts:");
  });

  it("lets users insert and remove passes by name", () => {
    const seen: string[] = [];
    const spy: Pass = {
      name: "spy",
      doc: "records the ops it sees",
      run: (g) => {
        seen.push(...g.nodes.map((n) => n.op));
        return g;
      },
    };
    const passes = removePass(
      insertPass(defaultPipeline(), spy, { after: "decompose-to-core" }),
      "fold-batch-norm",
    );
    expect(passes.map((p) => p.name)).toContain("spy");
    const { graph } = runPipeline(smallNet(), passes);
    expect(seen).toContain("aten._native_batch_norm_legit_no_training.default");
    expect(graph.nodes.map((n) => n.op)).toContain("aten._native_batch_norm_legit_no_training.default");
    expect(() => insertPass(passes, spy, { before: "no-such-pass" })).toThrow(/no pass named 'no-such-pass'/);
  });

  it("names the pass that breaks the graph", () => {
    const breaker: Pass = {
      name: "breaker",
      doc: "drops the first node",
      run: (g) => ({ ...g, nodes: g.nodes.slice(1) }),
    };
    expect(() => runPipeline(smallNet(), [breaker])).toThrow(PassVerificationError);
    expect(() => runPipeline(smallNet(), [breaker])).toThrow(/pass 'breaker'/);
  });

  it("adds precision assignment only when a reduced type is enabled", () => {
    expect(defaultPipeline().map((p) => p.name)).not.toContain("assign-precision");
    expect(defaultPipeline({ enabledPrecisions: ["float32", "float16"] }).map((p) => p.name)).toContain(
      "assign-precision",
    );
  });
});
