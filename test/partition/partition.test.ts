import { describe, expect, it } from "vitest";
import { TorchcError } from "../../src/errors.js";
import { toFloat64Array } from "../../src/ir/tensor.js";
import { interpret } from "../../src/ops/index.js";
import { formatPartitionReport, partitionGraph } from "../../src/partition/index.js";
import { chain, f32, randomTensor, runPartition, T } from "./helpers.js";

const x = { x: f32([2, 3]) };
const unary = (
  name: string,
  op: string,
  input: string,
): [string, string, Record<string, ReturnType<typeof T>>] => [name, op, { self: T(input) }];
const add = (name: string, a: string, b: string): [string, string, Record<string, ReturnType<typeof T>>] => [
  name,
  "aten.add.Tensor",
  { self: T(a), other: T(b) },
];

describe("partitionGraph", () => {
  it("keeps one engine segment for a fully supported graph", () => {
    const g = chain(
      x,
      [
        unary("a", "aten.relu.default", "x"),
        unary("b", "aten.sigmoid.default", "a"),
        add("c", "a", "b"),
        unary("d", "aten.neg.default", "c"),
        unary("e", "aten.tanh.default", "d"),
      ],
      ["e"],
    );
    const p = partitionGraph(g);
    expect(p.segments.map((s) => s.kind)).toEqual(["engine"]);
    expect(p.segments[0].inputs).toEqual(["x"]);
    expect(p.segments[0].outputs).toEqual(["e"]);
    expect(p.report.fallbackNodes).toEqual([]);
  });

  it("splits around a node in torchExecutedOps and names the reason", () => {
    const steps = [
      unary("a", "aten.relu.default", "x"),
      unary("b", "aten.neg.default", "a"),
      unary("c", "aten.tanh.default", "b"),
      unary("s", "aten.silu.default", "c"),
      unary("d", "aten.relu.default", "s"),
      add("e", "d", "c"),
      unary("f", "aten.neg.default", "e"),
    ];
    const g = chain(x, steps, ["f"]);
    const p = partitionGraph(g, { torchExecutedOps: ["aten.silu.default"], minBlockSize: 3 });
    expect(p.segments.map((s) => [s.kind, s.nodes.map((n) => n.name)])).toEqual([
      ["engine", ["n_a", "n_b", "n_c"]],
      ["fallback", ["n_s"]],
      ["engine", ["n_d", "n_e", "n_f"]],
    ]);
    expect(p.segments[0].outputs).toEqual(["c"]);
    expect(p.segments[2].inputs).toEqual(["s", "c"]);
    expect(p.report.fallbackNodes).toEqual([
      { node: "n_s", op: "aten.silu.default", segment: 1, reason: "in torchExecutedOps" },
    ]);
    const input = randomTensor(f32([2, 3]), 1);
    expect(runPartition(p, [input])[0].data).toEqual(interpret(g, [input])[0].data);
  });

  it("hands engine blocks below minBlockSize (default 5) to the fallback", () => {
    const g = chain(
      x,
      [
        unary("a", "aten.relu.default", "x"),
        unary("s", "aten.silu.default", "a"),
        unary("b", "aten.neg.default", "s"),
      ],
      ["b"],
    );
    const p = partitionGraph(g, { torchExecutedOps: ["aten.silu.default"] });
    expect(p.segments.map((s) => s.kind)).toEqual(["fallback"]);
    const reasons = Object.fromEntries(p.report.fallbackNodes.map((f) => [f.node, f.reason]));
    expect(reasons.n_a).toBe("in an engine block of 1 node, fewer than minBlockSize (5)");
    expect(reasons.n_s).toBe("in torchExecutedOps");
    expect(formatPartitionReport(p.report)).toContain(
      "n_a  aten.relu.default  in an engine block of 1 node, fewer than minBlockSize (5)",
    );
  });

  it("groups independent branches so an unsupported node does not split the engine", () => {
    // s (fallback) depends only on x, so every supported node can run in one engine after it.
    const steps = [
      unary("a", "aten.relu.default", "x"),
      unary("s", "aten.silu.default", "x"),
      unary("b", "aten.neg.default", "a"),
      add("c", "b", "s"),
      unary("d", "aten.tanh.default", "c"),
      unary("e", "aten.relu.default", "d"),
    ];
    const p = partitionGraph(chain(x, steps, ["e"]), { torchExecutedOps: ["aten.silu.default"] });
    expect(p.segments.map((s) => [s.kind, s.nodes.length])).toEqual([
      ["fallback", 1],
      ["engine", 5],
    ]);
  });

  it("with requireFullCompilation, throws listing every node that would fall back", () => {
    const g = chain(x, [unary("a", "aten.relu.default", "x"), unary("s", "aten.silu.default", "a")], ["s"]);
    expect(() =>
      partitionGraph(g, { torchExecutedOps: ["aten.silu.default"], requireFullCompilation: true }),
    ).toThrowError(TorchcError);
    try {
      partitionGraph(g, { torchExecutedOps: ["aten.silu.default"], requireFullCompilation: true });
    } catch (e) {
      expect((e as TorchcError).code).toBe("partition.incomplete");
      expect((e as Error).message).toContain("node 'n_s' (aten.silu.default): in torchExecutedOps");
    }
    // Small blocks are fine when everything converts.
    expect(partitionGraph(g, { requireFullCompilation: true }).segments.map((s) => s.kind)).toEqual([
      "engine",
    ]);
  });

  it("exports values a later segment or the graph reads, and only those", () => {
    const steps = [
      unary("a", "aten.relu.default", "x"),
      unary("b", "aten.neg.default", "a"),
      unary("s", "aten.silu.default", "b"),
      add("c", "s", "a"),
    ];
    const p = partitionGraph(chain(x, steps, ["c", "b"]), {
      torchExecutedOps: ["aten.silu.default"],
      minBlockSize: 1,
    });
    expect(p.segments[0].outputs).toEqual(["a", "b"]);
    expect(p.segments[1].inputs).toEqual(["b"]);
  });

  it("rewrites in-place ops to dataflow, so reordering cannot read a stale value", () => {
    const steps: Parameters<typeof chain>[1] = [
      unary("a", "aten.neg.default", "x"),
      ["r", "aten.relu_.default", { self: T("a") }],
      add("c", "a", "x"),
      unary("d", "aten.tanh.default", "c"),
    ];
    const g = chain(x, steps, ["d", "a"]);
    const p = partitionGraph(g, { minBlockSize: 1 });
    expect(p.graph.outputs).toEqual(["d", "r"]);
    expect(p.graph.nodes[2].args.self).toEqual(T("r"));
    const input = randomTensor(f32([2, 3]), 2);
    const want = interpret(g, [input]);
    const got = runPartition(p, [input]);
    expect(got.map((t) => Array.from(toFloat64Array(t)))).toEqual(
      want.map((t) => Array.from(toFloat64Array(t))),
    );
  });
});
