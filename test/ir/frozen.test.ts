// Graphs from the IR's editing API are immutable at run time: writes throw, and edits share what they keep.
import { describe, expect, it } from "vitest";
import { GraphBuilder } from "../../src/ir/builder.js";
import { editGraph } from "../../src/ir/frozen.js";
import type { Graph, Node } from "../../src/ir/graph.js";
import { tensorFromNumbers } from "../../src/ir/tensor.js";
import { defaultPipeline, runPipeline } from "../../src/passes/pipeline.js";

const f32 = (...shape: number[]) => ({ dtype: "float32" as const, shape });
const t = (name: string) => ({ kind: "tensor" as const, name });

/** y = relu(x · w), plus a clone nothing reads, so the pipeline has something to drop. */
function graph(): Graph {
  const b = new GraphBuilder();
  b.addInput("x", f32(2, 3));
  b.addConstant("w", tensorFromNumbers("float32", [3], [1, 2, 3]));
  b.addNode("aten.mul.Tensor", { self: t("x"), other: t("w") }, [{ name: "m", type: f32(2, 3) }]);
  b.addNode("aten.relu.default", { self: t("m") }, [{ name: "y", type: f32(2, 3) }]);
  b.addNode("aten.clone.default", { self: t("m") }, [{ name: "unused", type: f32(2, 3) }]);
  b.setOutputs(["y"]);
  return b.build();
}

/** Every way of writing into a graph that `readonly` forbids only at compile time. */
function writes(g: Graph): [string, () => void][] {
  const node = g.nodes[0];
  const weight = Object.values(g.weights)[0];
  return [
    ["replace the node list", () => Object.assign(g, { nodes: [] })],
    ["push a node", () => (g.nodes as Node[]).push(node)],
    ["rename a node", () => Object.assign(node, { name: "other" })],
    ["change an argument", () => Object.assign(node.args, { self: t("y") })],
    ["change a tensor argument", () => Object.assign(node.args.self, { name: "y" })],
    ["retype a value", () => Object.assign(g.values, { y: f32(1) })],
    ["add a weight", () => Object.assign(g.weights, { extra: weight })],
    ["reshape a weight's tensor", () => Object.assign(weight.tensor, { shape: [1, 3] })],
    ["add an output", () => (g.outputs as string[]).push("m")],
  ];
}

describe("frozen graphs", () => {
  it("GraphBuilder.build() returns a graph whose every part throws on a write", () => {
    for (const [what, write] of writes(graph())) expect(write, what).toThrow(TypeError);
  });

  it("so does every graph the default pipeline returns (rewrite engine, CSE, DCE)", () => {
    const { graph: lowered, trace } = runPipeline(graph(), defaultPipeline());
    expect(trace.entries.length).toBeGreaterThan(0);
    expect(lowered.nodes.map((n) => n.op)).not.toContain("aten.clone.default");
    for (const [what, write] of writes(lowered)) expect(write, what).toThrow(TypeError);
  });

  it("editGraph shares untouched nodes and records with its input and freezes what it made", () => {
    const g = graph();
    const edited = editGraph(g, (d) => {
      d.nodes.pop();
      delete d.values.unused;
    });
    expect(edited).not.toBe(g);
    expect(edited.nodes).toHaveLength(2);
    expect(edited.nodes[0]).toBe(g.nodes[0]);
    expect(edited.weights).toBe(g.weights);
    expect(g.nodes).toHaveLength(3);
    expect("unused" in g.values).toBe(true);
    expect(() => (edited.nodes as Node[]).push(g.nodes[2])).toThrow(TypeError);
  });

  it("leaves tensor data writable: typed arrays cannot be frozen", () => {
    const data = Object.values(graph().weights)[0].tensor.data as Float32Array;
    data[0] = 5;
    expect(data[0]).toBe(5);
  });
});
