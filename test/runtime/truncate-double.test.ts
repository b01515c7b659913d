// truncateDouble (issue 12; Torch-TensorRT's truncate_double): a float64 model computes in float32 inside, and its
// inputs and outputs keep their float64 type (cast on entry and exit). The golden numbers are computed here in
// float64 (JavaScript numbers), not by the code under test.
import { describe, expect, it } from "vitest";
import type { Graph } from "../../src/ir/graph.js";
import { type Tensor, tensorFromNumbers, toFloat64Array } from "../../src/ir/tensor.js";
import { compile } from "../../src/runtime/compile.js";
import { hasDouble, truncateDouble } from "../../src/runtime/truncate-double.js";

const X = [0.1, 1 / 3, Math.E, -Math.SQRT2, 1e-3, 7 / 9];
const W = Array.from({ length: 12 }, (_, i) => Math.sin(i + 1) / 3);

/** y = x·w + 0.1 in float64: x [2, 3] input, w [3, 4] weight. */
function doubleModel(): Graph {
  return {
    inputs: ["x"],
    outputs: ["y"],
    nodes: [
      {
        name: "xw",
        op: "aten.mm.default",
        args: { self: { kind: "tensor", name: "x" }, mat2: { kind: "tensor", name: "w" } },
        outputs: ["xw"],
        meta: {},
      },
      {
        name: "y",
        op: "aten.add.Scalar",
        args: {
          self: { kind: "tensor", name: "xw" },
          other: { kind: "float", value: 0.1 },
          alpha: { kind: "int", value: 1 },
        },
        outputs: ["y"],
        meta: {},
      },
    ],
    values: {
      x: { dtype: "float64", shape: [2, 3] },
      w: { dtype: "float64", shape: [3, 4] },
      xw: { dtype: "float64", shape: [2, 4] },
      y: { dtype: "float64", shape: [2, 4] },
    },
    weights: { w: { kind: "parameter", target: "w", tensor: tensorFromNumbers("float64", [3, 4], W) } },
  };
}

function exact(): number[] {
  const out: number[] = [];
  for (let i = 0; i < 2; i++)
    for (let j = 0; j < 4; j++) {
      let s = 0;
      for (let k = 0; k < 3; k++) s += X[i * 3 + k] * W[k * 4 + j];
      out.push(s + 0.1);
    }
  return out;
}

const values = (t: Tensor) => Array.from(toFloat64Array(t));

describe("truncateDouble", () => {
  it("computes in float32 and keeps the float64 interface", async () => {
    const x = tensorFromNumbers("float64", [2, 3], X);
    const compiled = await compile(doubleModel(), { backend: "reference", truncateDouble: true });
    const [y] = await compiled.run([x]);
    expect(y.dtype).toBe("float64");
    const want = exact();
    for (const [i, v] of values(y).entries()) {
      expect(Math.fround(v)).toBe(v); // a float32 result, widened
      expect(Math.abs(v - want[i])).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(want[i])));
    }
    expect(
      values(y).some((v, i) => v !== want[i]),
      "float32 rounding shows",
    ).toBe(true);
    const inside = compiled.graph.nodes.flatMap((n) => n.outputs).filter((o) => o !== "y");
    expect(inside.every((o) => compiled.graph.values[o].dtype !== "float64")).toBe(true);
  });

  it("without it, the model computes in float64", async () => {
    const x = tensorFromNumbers("float64", [2, 3], X);
    const [y] = await (await compile(doubleModel(), { backend: "reference" })).run([x]);
    const want = exact();
    for (const [i, v] of values(y).entries()) expect(Math.abs(v - want[i])).toBeLessThanOrEqual(1e-12);
  });

  it("casts float64 inputs on entry and outputs on exit, and leaves float32 graphs alone", () => {
    const g = truncateDouble(doubleModel());
    expect(g.inputs).toEqual(["x"]);
    expect(g.outputs).toEqual(["y"]);
    expect(g.values.x.dtype).toBe("float64");
    expect(g.values.y.dtype).toBe("float64");
    expect(g.weights.w.tensor.dtype).toBe("float32");
    expect(g.nodes[0]).toMatchObject({
      op: "aten._to_copy.default",
      args: { self: { name: "x" }, dtype: { value: "float32" } },
    });
    expect(g.nodes.at(-1)).toMatchObject({
      op: "aten._to_copy.default",
      outputs: ["y"],
      args: { dtype: { value: "float64" } },
    });
    expect(
      hasDouble({
        ...g,
        values: {
          ...g.values,
          x: { dtype: "float32", shape: [2, 3] },
          y: { dtype: "float32", shape: [2, 4] },
        },
      }),
    ).toBe(false);
    const f32 = { ...doubleModel(), values: {}, weights: {} };
    expect(truncateDouble(f32)).toBe(f32);
  });
});
