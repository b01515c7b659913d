// A small CNN built directly as an aten graph (no PyTorch needed): conv 3×3 → relu → conv 3×3 stride 2 →
// relu → flatten → linear, with seeded random weights. CPU tests of calibration and quantization run on it.
import { GraphBuilder } from "../../src/ir/builder.js";
import type { Arg, Graph } from "../../src/ir/graph.js";
import { type Tensor, tensorFromNumbers } from "../../src/ir/tensor.js";
import { inferOutputTypes } from "../../src/passes/op-catalogue.js";

/** A deterministic generator of numbers in [-1, 1) (a 32-bit LCG), so fixtures never change. */
export function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 31 - 1;
  };
}

export function randomTensor(shape: number[], seed: number, scale = 1): Tensor {
  const r = seeded(seed);
  const n = shape.reduce((a, d) => a * d, 1);
  return tensorFromNumbers(
    "float32",
    shape,
    Array.from({ length: n }, () => r() * scale),
  );
}

const T = (name: string): Arg => ({ kind: "tensor", name });
const ints = (...value: number[]): Arg => ({ kind: "ints", value });

/** The arguments of a 2-d aten.convolution.default (not transposed, dilation 1); `bias` null for none. */
export function convArgs(
  x: string,
  weight: string,
  bias: string | null,
  o: { stride: number; padding: number; groups?: number },
): Record<string, Arg> {
  return {
    input: T(x),
    weight: T(weight),
    bias: bias === null ? { kind: "none" } : T(bias),
    stride: ints(o.stride, o.stride),
    padding: ints(o.padding, o.padding),
    dilation: ints(1, 1),
    transposed: { kind: "bool", value: false },
    output_padding: ints(0, 0),
    groups: { kind: "int", value: o.groups ?? 1 },
  };
}

/** Input [batch, 1, 8, 8] → logits [batch, 10]. `seed` picks the weights. */
export function tinyCnn(seed = 1, batch = 1): Graph {
  const b = new GraphBuilder();
  b.addInput("x", { dtype: "float32", shape: [batch, 1, 8, 8] });
  const w = (name: string, shape: number[], k: number, scale: number) =>
    b.addWeight(name, {
      kind: "parameter",
      target: name,
      tensor: randomTensor(shape, seed * 100 + k, scale),
    });
  w("conv1.weight", [4, 1, 3, 3], 1, 0.5);
  w("conv1.bias", [4], 2, 0.1);
  w("conv2.weight", [8, 4, 3, 3], 3, 0.3);
  w("conv2.bias", [8], 4, 0.1);
  w("fc.weight", [10, 128], 5, 0.15);
  w("fc.bias", [10], 6, 0.1);
  const node = (op: string, args: Record<string, Arg>, out: string) => {
    const [type] = inferOutputTypes(op, args, (v) => b.typeOf(v)) ?? [];
    b.addNode(op, args, [{ name: out, type }], {}, out);
    return out;
  };
  const conv = (x: string, wt: string, bias: string, stride: number, out: string) =>
    node("aten.convolution.default", convArgs(x, wt, bias, { stride, padding: 1 }), out);
  const c1 = node(
    "aten.relu.default",
    { self: T(conv("x", "conv1.weight", "conv1.bias", 1, "conv1")) },
    "relu1",
  );
  const c2 = node(
    "aten.relu.default",
    { self: T(conv(c1, "conv2.weight", "conv2.bias", 2, "conv2")) },
    "relu2",
  );
  const flat = node("aten.view.default", { self: T(c2), size: ints(batch, 128) }, "flat");
  node("aten.linear.default", { input: T(flat), weight: T("fc.weight"), bias: T("fc.bias") }, "logits");
  b.setOutputs(["logits"]);
  return b.build();
}

/** `count` inputs shaped like tinyCnn's, values in [0, 1) like normalised images. */
export function images(count: number, seed: number, batch = 1): Tensor[] {
  return Array.from({ length: count }, (_, i) => {
    const t = randomTensor([batch, 1, 8, 8], seed + i);
    return { ...t, data: (t.data as Float32Array).map((v) => (v + 1) / 2) };
  });
}
