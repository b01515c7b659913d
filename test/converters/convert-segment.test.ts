import { describe, expect, it } from "vitest";
import { ConverterError, convertSegment } from "../../src/converters/index.js";
import { GraphBuilder } from "../../src/ir/builder.js";
import type { Arg } from "../../src/ir/graph.js";
import { tensorFromNumbers } from "../../src/ir/tensor.js";
import { formatNetwork } from "../../src/network/printer.js";
import { runNetworkReference } from "../../src/network/reference/index.js";
import { checkNetwork } from "../../src/network/verify.js";
import { interpret } from "../../src/ops/index.js";
import { partitionGraph } from "../../src/partition/index.js";
import { assertClose } from "./harness.js";

const T = (name: string): Arg => ({ kind: "tensor", name });
const ints = (...value: number[]): Arg => ({ kind: "ints", value });
const wave = (n: number, k: number) => Array.from({ length: n }, (_, i) => Math.sin(i * 0.7 + k) * 0.5);

/** conv → batch norm → relu → residual add → global mean → linear: a tiny CNN with shared and folded weights. */
function tinyCnn() {
  const b = new GraphBuilder();
  b.addInput("x", { dtype: "float32", shape: [1, 2, 4, 4] });
  const w = (name: string, shape: number[], k: number, positive = false) =>
    b.addWeight(name, {
      kind: "parameter",
      target: name,
      tensor: tensorFromNumbers(
        "float32",
        shape,
        wave(
          shape.reduce((a, d) => a * d, 1),
          k,
        ).map((v) => (positive ? Math.abs(v) + 0.5 : v)),
      ),
    });
  w("conv.weight", [2, 2, 3, 3], 1);
  w("bn.weight", [2], 2);
  w("bn.bias", [2], 3);
  w("bn.mean", [2], 4);
  w("bn.var", [2], 5, true);
  w("fc.weight", [3, 2], 6);
  const t = (shape: number[]) => ({ dtype: "float32" as const, shape });
  b.addNode(
    "aten.convolution.default",
    {
      input: T("x"),
      weight: T("conv.weight"),
      bias: { kind: "none" },
      stride: ints(1, 1),
      padding: ints(1, 1),
      dilation: ints(1, 1),
      transposed: { kind: "bool", value: false },
      output_padding: ints(0, 0),
      groups: { kind: "int", value: 1 },
    },
    [{ name: "c", type: t([1, 2, 4, 4]) }],
  );
  b.addNode(
    "aten._native_batch_norm_legit_no_training.default",
    {
      input: T("c"),
      weight: T("bn.weight"),
      bias: T("bn.bias"),
      running_mean: T("bn.mean"),
      running_var: T("bn.var"),
      momentum: { kind: "float", value: 0.1 },
      eps: { kind: "float", value: 1e-5 },
    },
    [
      { name: "n", type: t([1, 2, 4, 4]) },
      { name: "n_mean", type: t([0]) },
      { name: "n_rstd", type: t([0]) },
    ],
  );
  b.addNode("aten.relu.default", { self: T("n") }, [{ name: "r", type: t([1, 2, 4, 4]) }]);
  b.addNode("aten.add.Tensor", { self: T("r"), other: T("x") }, [{ name: "s", type: t([1, 2, 4, 4]) }]);
  b.addNode("aten.mean.dim", { self: T("s"), dim: ints(-1, -2) }, [{ name: "m", type: t([1, 2]) }]);
  b.addNode("aten.linear.default", { input: T("m"), weight: T("fc.weight") }, [
    { name: "y", type: t([1, 3]) },
  ]);
  b.setOutputs(["y"]);
  return b.build();
}

describe("convertSegment", () => {
  it("turns an engine segment into a network named like the graph values, matching the aten reference", () => {
    const g = tinyCnn();
    const p = partitionGraph(g);
    expect(p.segments.map((s) => s.kind)).toEqual(["engine"]);
    const net = convertSegment(p.graph, p.segments[0]);
    expect(checkNetwork(net)).toEqual([]);
    expect(net.inputs).toEqual(["x"]);
    expect(net.outputs).toEqual(["y"]);
    // Batch norm statistics are folded away: the network holds the conv and fc weights (keyed by their graph
    // names, so a refit can find them) plus one scale and one shift vector.
    expect(net.layers.filter((l) => l.type === "scale")).toHaveLength(1);
    const keys = Object.keys(net.constants);
    expect(keys).toHaveLength(4);
    expect(keys).toEqual(expect.arrayContaining(["conv.weight", "fc.weight"]));
    expect(formatNetwork(net)).toContain("= convolution(%x, %weights/conv.weight)");
    const x = tensorFromNumbers("float32", [1, 2, 4, 4], wave(32, 9));
    assertClose(runNetworkReference(net, [x])[0], interpret(g, [x])[0], "y", 1);
  });

  it("reports a converter that builds an ill-typed network as a bug at its node", () => {
    const g = tinyCnn();
    const p = partitionGraph(g);
    const broken = { ...p.segments[0], nodes: p.segments[0].nodes.slice(1) };
    expect(() => convertSegment(p.graph, broken)).toThrowError(
      /neither an input of the segment nor produced inside it/,
    );
    expect(ConverterError.name).toBe("ConverterError");
  });
});
