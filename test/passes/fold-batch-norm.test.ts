import { describe, expect, it } from "vitest";
import type { Arg } from "../../src/ir/graph.js";
import { eliminateDeadCodePass } from "../../src/passes/eliminate-dead-code.js";
import { BATCH_NORM, foldBatchNorm } from "../../src/passes/fold-batch-norm.js";
import { bool, expectSameResults, float, int, ints, lower, none, opsOf, TestGraph } from "./graphs.js";

function batchNorm(g: TestGraph, x: string, c: number, affine = true): string {
  const stats = {
    running_mean: g.weight(`mean${x}`, [c], { kind: "buffer" }),
    running_var: g.weight(`var${x}`, [c], { lo: 0.5, hi: 2, kind: "buffer" }),
  };
  const params: Record<string, Arg | string> = affine
    ? { weight: g.weight(`gamma${x}`, [c]), bias: g.weight(`beta${x}`, [c]) }
    : { weight: none, bias: none };
  return g.nodeOutputs(BATCH_NORM, {
    input: x,
    ...params,
    ...stats,
    momentum: float(0.1),
    eps: float(1e-5),
  })[0];
}

function conv(
  g: TestGraph,
  x: string,
  w: string,
  opts: { bias?: string; groups?: number; transposed?: boolean; stride?: number },
) {
  return g.node("aten.convolution.default", {
    input: x,
    weight: w,
    bias: opts.bias ?? none,
    stride: ints([opts.stride ?? 1, opts.stride ?? 1]),
    padding: ints([1, 1]),
    dilation: ints([1, 1]),
    transposed: bool(opts.transposed ?? false),
    output_padding: ints([0, 0]),
    groups: int(opts.groups ?? 1),
  });
}

describe("fold-batch-norm", () => {
  it.each([
    { name: "plain", groups: 1, bias: false, transposed: false, affine: true },
    { name: "grouped with bias", groups: 2, bias: true, transposed: false, affine: true },
    { name: "depthwise without affine", groups: 4, bias: false, transposed: false, affine: false },
    { name: "transposed grouped", groups: 2, bias: true, transposed: true, affine: true },
  ])("folds into a $name convolution", ({ groups, bias, transposed, affine }) => {
    const g = new TestGraph();
    const x = g.input("x", [2, 4, 5, 5]);
    const w = transposed
      ? g.weight("w", [4, 6 / groups, 3, 3])
      : g.weight("w", [6 - (groups === 4 ? 2 : 0), 4 / groups, 3, 3]);
    const cout = transposed ? 6 : 6 - (groups === 4 ? 2 : 0);
    const y = conv(g, x, w, { groups, transposed, ...(bias ? { bias: g.weight("b", [cout]) } : {}) });
    const graph = g.build(g.node("aten.relu.default", { self: batchNorm(g, y, cout, affine) }));
    const { graph: out, trace } = lower(graph, foldBatchNorm, eliminateDeadCodePass);
    expect(opsOf(out)).toEqual(["aten.convolution.default", "aten.relu.default"]);
    expect(trace.entries[0].rule).toBe("fold-batch-norm-into-conv");
    expect(Object.values(out.weights).every((w) => w.kind === "constant")).toBe(true);
    expectSameResults(graph, out);
  });

  it("folds into a linear layer on [N, C]", () => {
    const g = new TestGraph();
    const x = g.input("x", [3, 5]);
    const y = g.node("aten.linear.default", {
      input: x,
      weight: g.weight("w", [4, 5]),
      bias: g.weight("b", [4]),
    });
    const graph = g.build(batchNorm(g, y, 4));
    const { graph: out } = lower(graph, foldBatchNorm, eliminateDeadCodePass);
    expect(opsOf(out)).toEqual(["aten.linear.default"]);
    expectSameResults(graph, out);
  });

  // The folded weight is each float32 element times its channel's scale in double, rounded once to float32 (what
  // compile and refit upload): checked bit for bit, for a conv and a linear layer.
  it.each([
    { name: "convolution", rule: "conv" },
    { name: "linear", rule: "linear" },
  ])("scales every $name weight element by its channel's scale, rounded once", ({ rule }) => {
    const g = new TestGraph();
    const c = 6;
    const x = rule === "conv" ? g.input("x", [1, 4, 5, 5]) : g.input("x", [3, 4]);
    const w = g.weight("w", rule === "conv" ? [c, 4, 3, 3] : [c, 4]);
    const y =
      rule === "conv"
        ? conv(g, x, w, {})
        : g.node("aten.linear.default", { input: x, weight: w, bias: none });
    const graph = g.build(batchNorm(g, y, c));
    const { graph: out } = lower(graph, foldBatchNorm, eliminateDeadCodePass);
    const read = (gr: typeof graph, name: string) => gr.weights[name].tensor.data as Float32Array;
    const folded = out.nodes[0].args.weight;
    expect(folded.kind).toBe("tensor");
    const got = read(out, (folded as { name: string }).name);
    const [wv, gamma, variance] = [read(graph, w), read(graph, `gamma${y}`), read(graph, `var${y}`)];
    const per = wv.length / c;
    const want = Float32Array.from(wv, (v, i) => {
      const ch = Math.floor(i / per);
      return v * (gamma[ch] / Math.sqrt(variance[ch] + 1e-5));
    });
    expect(Buffer.from(got.buffer, got.byteOffset, got.byteLength)).toEqual(Buffer.from(want.buffer));
  });

  it("leaves the batch norm when the conv output has another user", () => {
    const g = new TestGraph();
    const x = g.input("x", [1, 2, 4, 4]);
    const y = conv(g, x, g.weight("w", [2, 2, 3, 3]), {});
    const graph = g.build(batchNorm(g, y, 2), y);
    expect(lower(graph, foldBatchNorm).graph).toBe(graph);
  });

  it("leaves the batch norm when the conv weight is computed", () => {
    const g = new TestGraph();
    const x = g.input("x", [1, 2, 4, 4]);
    const w = g.input("w", [2, 2, 3, 3]);
    const graph = g.build(batchNorm(g, conv(g, x, w, {}), 2));
    expect(lower(graph, foldBatchNorm).graph).toBe(graph);
  });
});
