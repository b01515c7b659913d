// Two 3×3 convolutions wide enough for cuDNN (not the direct kernels of ≤ 4 input channels), as an aten graph:
// CPU tests of the int8 convolution path run on it.
import { GraphBuilder } from "../../src/ir/builder.js";
import type { Arg, Graph } from "../../src/ir/graph.js";
import { inferOutputTypes } from "../../src/passes/op-catalogue.js";
import { convArgs, randomTensor } from "./tiny-cnn.js";

const T = (name: string): Arg => ({ kind: "tensor", name });
const _ints = (...value: number[]): Arg => ({ kind: "ints", value });

/**
 * x [2, 16, 12, 12] → conv 3×3 16→32 → relu → conv 3×3 stride 2 32→24 → relu (too wide for the direct kernels).
 * `downsample`: like a ResNet block's shortcut, a 3×3 stride-2 conv 32→24 (c3) also reads the first relu, and the
 * output is relu(c2 + c3).
 */
export function twoConvs(downsample = false): Graph {
  const b = new GraphBuilder();
  b.addInput("x", { dtype: "float32", shape: [2, 16, 12, 12] });
  const shapes: Record<string, number[]> = {
    "c1.weight": [32, 16, 3, 3],
    "c1.bias": [32],
    "c2.weight": [24, 32, 3, 3],
    "c2.bias": [24],
    ...(downsample ? { "c3.weight": [24, 32, 3, 3], "c3.bias": [24] } : {}),
  };
  for (const [i, [name, shape]] of Object.entries(shapes).entries())
    b.addWeight(name, { kind: "parameter", target: name, tensor: randomTensor(shape, 40 + i, 0.2) });
  const node = (op: string, args: Record<string, Arg>, out: string) => {
    const [type] = inferOutputTypes(op, args, (v) => b.typeOf(v)) ?? [];
    b.addNode(op, args, [{ name: out, type }], {}, out);
    return out;
  };
  const conv = (x: string, c: string, stride: number) =>
    node("aten.convolution.default", convArgs(x, `${c}.weight`, `${c}.bias`, { stride, padding: 1 }), c);
  const r1 = node("aten.relu.default", { self: T(conv("x", "c1", 1)) }, "r1");
  if (downsample) {
    const sum = node("aten.add.Tensor", { self: T(conv(r1, "c2", 2)), other: T(conv(r1, "c3", 2)) }, "sum");
    node("aten.relu.default", { self: T(sum) }, "r2");
  } else node("aten.relu.default", { self: T(conv(r1, "c2", 2)) }, "r2");
  b.setOutputs(["r2"]);
  return b.build();
}
