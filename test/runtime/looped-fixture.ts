/**
 * A hand-built graph of fixtures/export_control.py's `Looped` (a `for` over a tensor-valued count, then a
 * `while`), as TorchScript builds it, with the argument and type shorthands it is written with. Shared by the
 * control-flow tests (control-flow.test.ts) and the package tests (package-control.test.ts).
 */
import { GraphBuilder } from "../../src/ir/builder.js";
import type { Arg, Graph, TensorType } from "../../src/ir/graph.js";
import { tensorFromNumbers } from "../../src/ir/tensor.js";

export const T = (name: string): Arg => ({ kind: "tensor", name });
export const F = (value: number): Arg => ({ kind: "float", value });
export const I = (value: number): Arg => ({ kind: "int", value });
export const B = (value: boolean): Arg => ({ kind: "bool", value });
export const f38: TensorType = { dtype: "float32", shape: [3, 8] };
export const i64: TensorType = { dtype: "int64", shape: [] };
export const bool0: TensorType = { dtype: "bool", shape: [] };

export const W = Array.from({ length: 64 }, (_, i) => Math.sin(i * 0.7) * 0.4);
export const BIAS = Array.from({ length: 8 }, (_, i) => Math.cos(i) * 0.1);

/** A loop body: (iteration, y, …) → (condition, y'). */
export function body(build: (b: GraphBuilder) => { cond: string; y: string }): Graph {
  const b = new GraphBuilder();
  b.addInput("i", i64);
  b.addInput("y0", f38);
  const out = build(b);
  b.setOutputs([out.cond, out.y]);
  return b.build();
}

/** y > 2 anywhere: the while loop's condition, on `y`. */
export function overTwo(b: GraphBuilder, y: string, tag: string): string {
  b.addNode("aten.abs.default", { self: T(y) }, [{ name: `abs_${tag}`, type: f38 }]);
  b.addNode("aten.max.default", { self: T(`abs_${tag}`) }, [
    { name: `max_${tag}`, type: { ...f38, shape: [] } },
  ]);
  b.addNode("aten.gt.Scalar", { self: T(`max_${tag}`), other: F(2) }, [{ name: `gt_${tag}`, type: bool0 }]);
  return `gt_${tag}`;
}

/**
 * fixtures/export_control.py's Looped as TorchScript builds it: `for _ in range(int(n)): y = y + 0.5 *
 * tanh(fc(y))`, then `while bool(y.abs().max() > 2.0): y = y * 0.5`.
 */
export function looped(weight: readonly number[] = W): Graph {
  const g = new GraphBuilder();
  g.addInput("x", f38);
  g.addInput("n", i64);
  g.addWeight("fc.weight", {
    kind: "parameter",
    target: "fc.weight",
    tensor: tensorFromNumbers("float32", [8, 8], weight),
  });
  g.addWeight("fc.bias", {
    kind: "parameter",
    target: "fc.bias",
    tensor: tensorFromNumbers("float32", [8], BIAS),
  });
  const forBody = body((b) => {
    b.addNode("aten.linear.default", { input: T("y0"), weight: T("fc.weight"), bias: T("fc.bias") }, [
      { name: "l", type: f38 },
    ]);
    b.addNode("aten.tanh.default", { self: T("l") }, [{ name: "th", type: f38 }]);
    b.addNode("aten.mul.Tensor", { self: T("th"), other: F(0.5) }, [{ name: "half", type: f38 }]);
    b.addNode("aten.add.Tensor", { self: T("y0"), other: T("half"), alpha: I(1) }, [
      { name: "y1", type: f38 },
    ]);
    return { cond: b.addConstant("go", tensorFromNumbers("bool", [], [1])), y: "y1" };
  });
  g.addNode(
    "prim.Loop",
    { max_trip_count: T("n"), cond: B(true), init: { kind: "tensors", names: ["x"] } },
    [{ name: "y_for", type: f38 }],
    { sourceLocation: "fixtures/export_control.py:20: for _ in range(int(n)):" },
    "for_loop",
    [forBody],
  );
  const c0 = overTwo(g, "y_for", "pre");
  const whileBody = body((b) => {
    b.addNode("aten.mul.Tensor", { self: T("y0"), other: F(0.5) }, [{ name: "h", type: f38 }]);
    return { cond: overTwo(b, "h", "in"), y: "h" };
  });
  g.addNode(
    "prim.Loop",
    { max_trip_count: I(2 ** 53 - 1), cond: T(c0), init: { kind: "tensors", names: ["y_for"] } },
    [{ name: "y", type: f38 }],
    { sourceLocation: "fixtures/export_control.py:22: while bool(y.abs().max() > 2.0):" },
    "while_loop",
    [whileBody],
  );
  g.setOutputs(["y"]);
  return g.build();
}
