// A residual block as an aten graph for the int8 convolution paths: conv c1 → ReLU r1, which conv c2 reads through a
// quantize and a shortcut add reads in float; then a 1×1 conv c3 on relu(c2 + r1). The quantize of r1 is therefore
// a kernel of its own after c1 (the case the generated int8 kernel's int8 copy takes over).
import { GraphBuilder } from "../../src/ir/builder.js";
import type { Arg, Graph } from "../../src/ir/graph.js";
import { inferOutputTypes } from "../../src/passes/op-catalogue.js";
import { convArgs, randomTensor } from "./tiny-cnn.js";

const T = (name: string): Arg => ({ kind: "tensor", name });

/** x → c1 → r1; r2 = relu(c2(r1) + r1); r3 = c3(r2) (1×1): r1 and r2 each feed a conv and a float reader. */
export function residualBlock(): Graph {
  const b = new GraphBuilder();
  b.addInput("x", { dtype: "float32", shape: [2, 16, 12, 12] });
  const shapes: Record<string, number[]> = {
    "c1.weight": [32, 16, 3, 3],
    "c1.bias": [32],
    "c2.weight": [32, 32, 3, 3],
    "c2.bias": [32],
    "c3.weight": [32, 32, 1, 1],
    "c3.bias": [32],
  };
  for (const [i, [name, shape]] of Object.entries(shapes).entries())
    b.addWeight(name, { kind: "parameter", target: name, tensor: randomTensor(shape, 60 + i, 0.2) });
  const node = (op: string, args: Record<string, Arg>, out: string) => {
    const [type] = inferOutputTypes(op, args, (v) => b.typeOf(v)) ?? [];
    b.addNode(op, args, [{ name: out, type }], {}, out);
    return out;
  };
  const conv = (x: string, c: string, padding: number) =>
    node("aten.convolution.default", convArgs(x, `${c}.weight`, `${c}.bias`, { stride: 1, padding }), c);
  const r1 = node("aten.relu.default", { self: T(conv("x", "c1", 1)) }, "r1");
  const sum = node("aten.add.Tensor", { self: T(conv(r1, "c2", 1)), other: T(r1) }, "sum");
  const r2 = node("aten.relu.default", { self: T(sum) }, "r2");
  const r3 = node("aten.relu.default", { self: T(conv(r2, "c3", 0)) }, "r3");
  b.setOutputs([r3, r2]);
  return b.build();
}
