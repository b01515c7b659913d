import { describe, expect, it } from "vitest";
import { UnsupportedOpError } from "../../src/errors.js";
import { GraphBuilder } from "../../src/ir/builder.js";
import type { Graph, TensorType } from "../../src/ir/graph.js";
import { evaluateNode, functionalVariant, inferNode, interpret, mutatedValue } from "../../src/ops/index.js";
import { B, F, I, T, t, values } from "./helpers.js";

const f22: TensorType = { dtype: "float32", shape: [2, 2] };
const boolScalar: TensorType = { dtype: "bool", shape: [] };

/** out = relu(x @ w) + x @ w */
function mlp(): Graph {
  const g = new GraphBuilder();
  g.addInput("x", f22);
  g.addWeight("w", { kind: "parameter", target: "w", tensor: t([2, 2], [1, -1, 2, 0]) });
  g.addNode("aten.mm.default", { self: T("x"), mat2: T("w") }, [{ name: "y", type: f22 }], {}, "mm");
  g.addNode("aten.relu.default", { self: T("y") }, [{ name: "z", type: f22 }], {}, "relu");
  g.addNode("aten.add.Tensor", { self: T("z"), other: T("y") }, [{ name: "out", type: f22 }], {}, "add");
  g.setOutputs(["out"]);
  return g.build();
}

describe("interpret", () => {
  it("runs a graph with weights, reporting each node and dropping intermediates after their last use", () => {
    const seen: string[] = [];
    const released: string[] = [];
    const [out] = interpret(mlp(), [t([2, 2], [1, 0, 0, 1])], {
      onNode: (n) => seen.push(n.name),
      onRelease: (v) => released.push(v),
    });
    // x @ w = w = [[1,-1],[2,0]]; relu + itself = [[2,-1],[4,0]]
    expect(values(out)).toEqual([2, -1, 4, 0]);
    expect(seen).toEqual(["mm", "relu", "add"]);
    expect(released.sort()).toEqual(["x", "y", "z"]);
  });

  it("checks the inputs it is given", () => {
    expect(() => interpret(mlp(), [])).toThrow(/takes 1 inputs, got 0/);
    expect(() => interpret(mlp(), [t([3], [1, 2, 3])])).toThrow(/must be float32\[2, 2\]/);
  });

  it("names the op and node of an op it cannot run", () => {
    const g = new GraphBuilder();
    g.addInput("x", f22);
    g.addNode(
      "aten.frobnicate.default",
      { self: T("x") },
      [{ name: "y", type: f22 }],
      { modulePath: "blocks.0" },
      "frob",
    );
    g.setOutputs(["y"]);
    expect(() => interpret(g.build(), [t([2, 2], [1, 2, 3, 4])])).toThrow(UnsupportedOpError);
    expect(() => interpret(g.build(), [t([2, 2], [1, 2, 3, 4])])).toThrow(
      /aten\.frobnicate\.default: node 'frob' \(aten\.frobnicate\.default\) in module 'blocks\.0'/,
    );
  });

  it("takes the branch of a prim.If that its condition picks", () => {
    const then = new GraphBuilder();
    then.addNode("aten.neg.default", { self: T("x") }, [{ name: "a", type: f22 }]);
    then.setOutputs(["a"]);
    const els = new GraphBuilder();
    els.addNode("aten.mul.Scalar", { self: T("x"), other: I(2) }, [{ name: "b", type: f22 }]);
    els.setOutputs(["b"]);
    const g = new GraphBuilder();
    g.addInput("x", f22);
    g.addInput("c", boolScalar);
    g.addNode("prim.If", { cond: T("c") }, [{ name: "r", type: f22 }], {}, "if", [then.build(), els.build()]);
    g.setOutputs(["r"]);
    const graph = g.build();
    expect(inferNode(graph.nodes[0], (n) => graph.values[n])).toEqual([f22]);
    const x = t([2, 2], [1, 2, 3, 4]);
    expect(values(interpret(graph, [x, t([], [1], "bool")])[0])).toEqual([-1, -2, -3, -4]);
    expect(values(interpret(graph, [x, t([], [0], "bool")])[0])).toEqual([2, 4, 6, 8]);
  });

  it("iterates a prim.Loop until the trip count or its condition stops it", () => {
    const loop = (trips: number, stopAfter: number) => {
      const body = new GraphBuilder();
      body.addInput("i", { dtype: "int64", shape: [] });
      body.addInput("acc", f22);
      body.addNode("aten.mul.Scalar", { self: T("acc"), other: F(2) }, [{ name: "next", type: f22 }]);
      body.addNode("aten.lt.Scalar", { self: T("i"), other: I(stopAfter - 1) }, [
        { name: "go", type: boolScalar },
      ]);
      body.setOutputs(["go", "next"]);
      const g = new GraphBuilder();
      g.addInput("x", f22);
      g.addNode(
        "prim.Loop",
        { max_trip_count: I(trips), cond: B(true), init: { kind: "tensors", names: ["x"] } },
        [{ name: "y", type: f22 }],
        {},
        "loop",
        [body.build()],
      );
      g.setOutputs(["y"]);
      return interpret(g.build(), [t([2, 2], [1, 2, 3, 4])])[0];
    };
    expect(values(loop(3, 100))).toEqual([8, 16, 24, 32]);
    expect(values(loop(10, 2))).toEqual([4, 8, 12, 16]);
    expect(values(loop(0, 100))).toEqual([1, 2, 3, 4]);
  });

  it("lets later readers see what an in-place op wrote", () => {
    const g = new GraphBuilder();
    g.addInput("x", f22);
    g.addNode("aten.relu_.default", { self: T("x") }, [{ name: "r", type: f22 }]);
    g.addNode("aten.add.Tensor", { self: T("x"), other: T("r") }, [{ name: "out", type: f22 }]);
    g.setOutputs(["out"]);
    const graph = g.build();
    expect(mutatedValue(graph.nodes[0])).toBe("x");
    expect(mutatedValue(graph.nodes[1])).toBeUndefined();
    expect(functionalVariant("aten.relu_.default")).toBe("aten.relu.default");
    expect(functionalVariant("aten.pow_.Scalar")).toBe("aten.pow.Tensor_Scalar");
    expect(values(interpret(graph, [t([2, 2], [-1, 2, -3, 4])])[0])).toEqual([0, 4, 0, 8]);
  });

  it("infers and evaluates single nodes", () => {
    const node = mlp().nodes[0];
    const x = t([2, 2], [1, 0, 0, 1]);
    const w = t([2, 2], [1, -1, 2, 0]);
    expect(inferNode(node, (n) => (n === "x" ? x : w))).toEqual([f22]);
    expect(values(evaluateNode(node, (n) => (n === "x" ? x : w))[0])).toEqual([1, -1, 2, 0]);
  });
});
