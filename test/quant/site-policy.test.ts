// Which layers post-training quantization makes int8 (src/passes/quantize-insert.ts quantizationSites): every
// convolution and linear layer, except squeeze-excite's convolutions on 1×1 maps and grouped (depthwise) ones,
// which stay in float because int8 would only add kernels there.
import { describe, expect, it } from "vitest";
import { GraphBuilder } from "../../src/ir/builder.js";
import type { Arg, Graph } from "../../src/ir/graph.js";
import { inferOutputTypes } from "../../src/passes/op-catalogue.js";
import { quantizationSites } from "../../src/passes/quantize-insert.js";
import { convArgs, randomTensor } from "./tiny-cnn.js";

const T = (name: string): Arg => ({ kind: "tensor", name });
const ints = (...value: number[]): Arg => ({ kind: "ints", value });

/** x [1, 16, 8, 8] → 1×1 conv → depthwise 3×3 → mean → SE reduce 1×1 (on 1×1 maps) → 1×1 conv on the map. */
function mobileBlock(): Graph {
  const b = new GraphBuilder();
  b.addInput("x", { dtype: "float32", shape: [1, 16, 8, 8] });
  const node = (op: string, args: Record<string, Arg>, out: string) => {
    const [type] = inferOutputTypes(op, args, (v) => b.typeOf(v)) ?? [];
    b.addNode(op, args, [{ name: out, type }], {}, out);
    return out;
  };
  const conv = (x: string, name: string, shape: number[], groups: number, pad: number) => {
    b.addWeight(`${name}.w`, { kind: "parameter", target: name, tensor: randomTensor(shape, shape[0], 0.3) });
    return node(
      "aten.convolution.default",
      convArgs(x, `${name}.w`, null, { stride: 1, padding: pad, groups }),
      name,
    );
  };
  const expand = conv("x", "expand", [32, 16, 1, 1], 1, 0);
  const dw = conv(expand, "depthwise", [32, 1, 3, 3], 32, 1);
  const pooled = node(
    "aten.mean.dim",
    { self: T(dw), dim: ints(2, 3), keepdim: { kind: "bool", value: true } },
    "pooled",
  );
  const se = conv(pooled, "se_reduce", [8, 32, 1, 1], 1, 0);
  const gate = node("aten.sigmoid.default", { self: T(conv(se, "se_expand", [32, 8, 1, 1], 1, 0)) }, "gate");
  const scaled = node("aten.mul.Tensor", { self: T(dw), other: T(gate) }, "scaled");
  conv(scaled, "project", [16, 32, 1, 1], 1, 0);
  b.setOutputs(["project"]);
  return b.build();
}

describe("post-training quantization sites", () => {
  it("quantizes the 1×1 convolutions on maps, not the depthwise or squeeze-excite ones", () => {
    expect(quantizationSites(mobileBlock()).map((s) => s.node)).toEqual(["expand", "project"]);
  });
});
