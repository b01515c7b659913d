/**
 * One small network per layer family, with seeded random weights: the GPU tests check each against the
 * reference interpreter, and the CPU tests plan each and compile the generated CUDA.
 */
import { tensorFromNumbers } from "../../../ir/tensor.js";
import type { Network } from "../../../network/network.js";
import { NetMaker } from "./nets.js";

export interface FamilyCase {
  readonly name: string;
  readonly net: Network;
  readonly precisions: readonly ("fp32" | "fp16")[];
}

/** Adds one case; precisions default to fp32 only. */
type AddCase = (name: string, net: Network, precisions?: readonly ("fp32" | "fp16")[]) => void;

export function familyCases(): FamilyCase[] {
  const cases: FamilyCase[] = [];
  const add: AddCase = (name, net, precisions = ["fp32"]) => {
    cases.push({ name, net, precisions });
  };
  for (const group of [
    elementCases,
    convolutionAndMatmulCases,
    reduceAndPoolingCases,
    softmaxAndNormalizationCases,
    dataMovementCases,
    attentionAndQuantizeCases,
  ])
    group(add);
  return cases;
}

/** Pointwise chains and every activation kind. */
function elementCases(add: AddCase): void {
  {
    // pointwise chains with broadcasting, unary, cast, select, comparison
    const m = new NetMaker(1);
    const x = m.input("x", [2, 3, 4, 5]);
    const y = m.input("y", [3, 1, 5]);
    let z = m.add(x, y);
    z = m.mul(z, m.const([5], 1));
    z = m.act(z, { kind: "gelu_erf" });
    const e = m.b.add({ type: "unary", inputs: [z], op: "exp" });
    const l = m.b.add({
      type: "unary",
      inputs: [m.b.add({ type: "unary", inputs: [e], op: "abs" })],
      op: "log1p",
    });
    const c = m.b.add({ type: "elementwise", inputs: [x, z], op: "gt" });
    const s = m.b.add({ type: "select", inputs: [c, l, x] });
    const h = m.b.add({ type: "activation", inputs: [s], fn: { kind: "hardswish" } });
    const i = m.b.add({
      type: "cast",
      inputs: [m.mul(h, m.b.constant(tensorFromNumbers("float32", [], [4])))],
      to: "int32",
    });
    const d = m.b.add({ type: "elementwise", inputs: [x, y], op: "floor_div" });
    const mx = m.b.add({ type: "elementwise", inputs: [d, x], op: "max" });
    add("pointwise", m.build([h, i, c, mx]), ["fp32", "fp16"]);
  }
  {
    // scale, activations of every kind
    const m = new NetMaker(2);
    const x = m.input("x", [2, 6, 3, 3]);
    const kinds = [
      { kind: "relu" },
      { kind: "clip", min: -0.5, max: 0.7 },
      { kind: "leaky_relu", negativeSlope: 0.1 },
      { kind: "elu", alpha: 1.2, scale: 1, inputScale: 1 },
      { kind: "selu" },
      { kind: "celu", alpha: 0.8 },
      { kind: "silu" },
      { kind: "sigmoid" },
      { kind: "tanh" },
      { kind: "gelu_tanh" },
      { kind: "hardsigmoid" },
      { kind: "softplus", beta: 2, threshold: 10 },
      { kind: "mish" },
      { kind: "softsign" },
      { kind: "hardshrink", lambda: 0.3 },
    ] as const;
    const outs = kinds.map((fn) => m.act(m.bn(x), fn));
    add("activations", m.build(outs));
  }
}

/** Convolution, deconvolution and matmul. */
function convolutionAndMatmulCases(add: AddCase): void {
  // convolution: dense, strided, grouped, depthwise, dilated, 1×1, with bias and activations
  for (const precision of ["fp32", "fp16"] as const) {
    const m = new NetMaker(3);
    const x = m.input("x", [2, 8, 13, 13]);
    const a = m.act(m.conv(x, 16, 3, { bias: true }), { kind: "relu" });
    const b = m.silu(m.bn(m.conv(a, 16, 3, { stride: 2 })));
    const c = m.conv(b, 16, 3, { groups: 4, bias: true });
    const d = m.silu(m.conv(c, 16, 5, { groups: 16, stride: 2 }));
    const e = m.conv(a, 8, 3, { dilation: 2, bias: true });
    const f = m.add(m.conv(e, 8, 1), e);
    add("convolution", m.build([d, f]), [precision]);
  }
  {
    // deconvolution
    const m = new NetMaker(4);
    const x = m.input("x", [1, 4, 5, 5]);
    const w = m.const([4, 3, 3, 3], 0.3);
    const y = m.b.add({
      type: "deconvolution",
      inputs: [x, w, m.const([3], 0.1)],
      stride: [2, 2],
      padding: [1, 1],
      dilation: [1, 1],
      outputPadding: [1, 1],
      groups: 1,
    });
    add("deconvolution", m.build([y]));
  }
  // matmul: 2-D, batched, transposed, broadcast batch, linear with bias and activations
  for (const precision of ["fp32", "fp16"] as const) {
    const m = new NetMaker(5);
    const a = m.input("a", [2, 3, 8, 16]);
    const b = m.input("b", [2, 3, 16, 12]);
    const ab = m.b.add({ type: "matmul", inputs: [a, b], transposeA: false, transposeB: false });
    const c = m.input("c", [2, 3, 16, 8]);
    const act = m.b.add({ type: "matmul", inputs: [c, a], transposeA: true, transposeB: true });
    const x = m.input("x", [4, 7, 32]);
    const lin = m.act(m.linear(x, 24), { kind: "gelu_tanh" });
    const lin2 = m.act(m.linear(lin, 16), { kind: "relu" });
    const w = m.const([16, 5]);
    const bc = m.b.add({ type: "matmul", inputs: [a, w], transposeA: false, transposeB: false });
    add("matmul", m.build([ab, act, lin2, bc]), [precision]);
  }
}

/** Reductions and pooling. */
function reduceAndPoolingCases(add: AddCase): void {
  {
    // reduce: sum, mean, max, min, prod, argmax, argmin over axes
    const m = new NetMaker(6);
    const x = m.input("x", [3, 4, 5, 6]);
    const r = (
      op: "sum" | "mean" | "max" | "min" | "prod" | "argmax" | "argmin",
      axes: number[],
      keepDims: boolean,
    ) => m.b.add({ type: "reduce", inputs: [x], op, axes, keepDims });
    add(
      "reduce",
      m.build([
        r("sum", [3], false),
        r("mean", [1, 2], true),
        r("max", [0, 3], false),
        r("min", [2], true),
        r("prod", [1], false),
        r("argmax", [3], false),
        r("argmin", [1], true),
      ]),
    );
  }
  // pooling: max, avg (padding, ceil mode), adaptive, global
  for (const precision of ["fp32", "fp16"] as const) {
    const m = new NetMaker(7);
    const x = m.input("x", [2, 5, 11, 11]);
    const c = m.conv(x, 8, 3);
    const p = (mode: "max" | "avg", k: number, s: number, pad: number, ceil: boolean, cip: boolean) =>
      m.b.add({
        type: "pooling",
        inputs: [c],
        mode,
        kernel: [k, k],
        stride: [s, s],
        padding: [pad, pad],
        dilation: [1, 1],
        ceilMode: ceil,
        countIncludePad: cip,
        divisorOverride: null,
      });
    const ad = m.b.add({ type: "adaptive_pooling", inputs: [c], mode: "avg", outputSize: [3, 4] });
    const am = m.b.add({ type: "adaptive_pooling", inputs: [c], mode: "max", outputSize: [1, 1] });
    add(
      "pooling",
      m.build([
        p("max", 3, 2, 1, false, true),
        p("avg", 3, 2, 1, true, true),
        p("avg", 2, 2, 1, false, false),
        ad,
        am,
        m.gap(c),
      ]),
      [precision],
    );
  }
}

/** Softmax and normalization. */
function softmaxAndNormalizationCases(add: AddCase): void {
  {
    // softmax and log-softmax along any axis
    const m = new NetMaker(8);
    const x = m.input("x", [3, 7, 50]);
    const s1 = m.b.add({ type: "softmax", inputs: [x], axis: 2, log: false });
    const s2 = m.b.add({ type: "softmax", inputs: [x], axis: 1, log: true });
    add("softmax", m.build([s1, s2]), ["fp32", "fp16"]);
  }
  {
    // layer and group normalization
    const m = new NetMaker(9);
    const x = m.input("x", [2, 10, 64]);
    const ln = m.b.add({
      type: "normalization",
      kind: "layer",
      beginAxis: 2,
      epsilon: 1e-5,
      inputs: [x, m.const([64], 0.5, 1), m.const([64], 0.1)],
    });
    const y = m.input("y", [2, 8, 5, 5]);
    const gn = m.b.add({
      type: "normalization",
      kind: "group",
      numGroups: 4,
      epsilon: 1e-5,
      inputs: [y, m.const([8], 0.5, 1), m.const([8], 0.1)],
    });
    add("normalization", m.build([ln, gn]), ["fp32", "fp16"]);
  }
  {
    // Many short rows (≥ 2048, as a transformer's norms at large batch): a warp per row, shuffle statistics
    const m = new NetMaker(19);
    const x = m.input("x", [2, 1024, 40]);
    const ln = m.b.add({
      type: "normalization",
      kind: "layer",
      beginAxis: 2,
      epsilon: 1e-5,
      inputs: [x, m.const([40], 0.5, 1), m.const([40], 0.1)],
    });
    const rms = m.b.add({
      type: "normalization",
      kind: "rms",
      beginAxis: 2,
      epsilon: 1e-6,
      inputs: [x, m.const([40], 0.5, 1), m.const([40], 0)],
    });
    const sm = m.b.add({ type: "softmax", inputs: [x], axis: 2, log: false });
    const mean = m.b.add({ type: "reduce", inputs: [x], op: "mean", axes: [2], keepDims: false });
    add("many-rows", m.build([ln, rms, sm, mean]), ["fp32", "fp16"]);
  }
}

/** Data movement. */
function dataMovementCases(add: AddCase): void {
  {
    // data movement: shuffle, concat, slice, padding, gather, resize
    const m = new NetMaker(10);
    const x = m.input("x", [2, 3, 6, 8]);
    const sh = m.b.add({
      type: "shuffle",
      inputs: [x],
      firstTranspose: [0, 2, 3, 1],
      reshape: [2, 48, 3],
      secondTranspose: [0, 2, 1],
    });
    const sq = m.act(sh, { kind: "relu" });
    const cat = m.b.add({ type: "concatenation", inputs: [x, m.act(x, { kind: "tanh" }), x], axis: 1 });
    const sl = m.b.add({
      type: "slice",
      inputs: [cat],
      starts: [0, 1, 5, 0],
      ends: [2, 9, -1, 8],
      steps: [1, 3, -2, 2],
    });
    const pads = (["constant", "reflect", "replicate", "circular"] as const).map((mode) =>
      m.b.add({ type: "padding", inputs: [x], pre: [0, 0, 2, 1], post: [0, 0, 1, 3], mode, value: 0.25 }),
    );
    const data = m.input("d", [5, 7]);
    const ind = m.b.constant(tensorFromNumbers("int64", [2, 3], [0, 4, -1, 2, 2, 3]), "indices");
    const g = m.b.add({ type: "gather", inputs: [data, ind], axis: 0, mode: "default" });
    const ind2 = m.b.constant(
      tensorFromNumbers("int64", [5, 2], [0, 6, 1, 5, 2, 4, 3, 3, -1, 0]),
      "indices2",
    );
    const ge = m.b.add({ type: "gather", inputs: [data, ind2], axis: 1, mode: "elements" });
    const rn = m.b.add({
      type: "resize",
      inputs: [x],
      mode: "nearest",
      outputSize: [12, 5],
      scales: [null, null],
      alignCorners: false,
    });
    const rl = m.b.add({
      type: "resize",
      inputs: [x],
      mode: "linear",
      outputSize: [9, 16],
      scales: [null, null],
      alignCorners: false,
    });
    const ra = m.b.add({
      type: "resize",
      inputs: [x],
      mode: "linear",
      outputSize: [9, 16],
      scales: [null, null],
      alignCorners: true,
    });
    add("data movement", m.build([sq, sl, ...pads, g, ge, rn, rl, ra]));
  }
}

/** Attention, quantize and dequantize. */
function attentionAndQuantizeCases(add: AddCase): void {
  // attention: plain, masked, causal
  for (const precision of ["fp32", "fp16"] as const) {
    const m = new NetMaker(11);
    const q = m.input("q", [2, 3, 10, 16]);
    const k = m.input("k", [2, 3, 12, 16]);
    const v = m.input("v", [2, 3, 12, 8]);
    const mask = m.b.addInput("mask", { dtype: "bool", shape: [10, 12] });
    const a1 = m.b.add({ type: "attention", inputs: [q, k, v], scale: 0.25, causal: false });
    const a2 = m.b.add({ type: "attention", inputs: [q, k, v, mask], scale: 0.25, causal: false });
    const a3 = m.b.add({ type: "attention", inputs: [q, k, v], scale: 0.25, causal: true });
    add("attention", m.build([a1, a2, a3]), [precision]);
  }
  {
    // quantize and dequantize
    const m = new NetMaker(12);
    const x = m.input("x", [2, 3, 4]);
    const q = m.b.add({
      type: "quantize",
      inputs: [x],
      dtype: "int8",
      scale: [0.02, 0.05, 0.1],
      zeroPoint: [0, 3, -2],
      axis: 1,
      qmin: -128,
      qmax: 127,
    });
    const dq = m.b.add({
      type: "dequantize",
      inputs: [q],
      dtype: "float32",
      scale: [0.02, 0.05, 0.1],
      zeroPoint: [0, 3, -2],
      axis: 1,
      qmin: -128,
      qmax: 127,
    });
    add("quantize", m.build([q, dq]));
  }
}
