import fc from "fast-check";
import type { Arg } from "../../../src/ir/graph.js";
import type { OpName } from "../../../src/ops/index.js";
import { D, F, I, opCase, shapeArb, T, tensor } from "../arbitraries.js";
import type { TensorSpec } from "../harness.js";
import { type CaseSpec, spec } from "./types.js";

// Scales are powers of two so x · (1/scale) is exact in every implementation: a draw that lands on a
// rounding tie then ties the same way everywhere (the op reference rounds in float32, the layer in float64).
const scaleArb = fc.constantFrom(1, 0.5, 0.25, 0.125, 1 / 64);
const storageArb = fc.constantFrom(
  { dtype: "int8" as const, qmin: -128, qmax: 127, zp: fc.integer({ min: -5, max: 5 }) },
  { dtype: "int8" as const, qmin: -127, qmax: 127, zp: fc.constant(0) },
  { dtype: "uint8" as const, qmin: 0, qmax: 255, zp: fc.integer({ min: 100, max: 140 }) },
);

const f32Weight = (data: number[]): TensorSpec => ({
  dtype: "float32",
  shape: [data.length],
  data,
  weight: true,
});
const i64Weight = (data: number[]): TensorSpec => ({
  dtype: "int64",
  shape: [data.length],
  data,
  weight: true,
});

function perTensor(op: OpName, dequant: boolean, tensorParams: boolean) {
  return fc.tuple(shapeArb(0, 4), scaleArb, storageArb).chain(([s, scale, st]) =>
    fc
      .tuple(
        dequant
          ? tensor(s, st.dtype, { min: st.qmin, max: st.qmax })
          : tensor(s, "float32", { min: -200 * scale, max: 200 * scale }),
        st.zp,
      )
      .map(([x, zp]) => {
        const args: Record<string, Arg> = {
          input: T("x"),
          scale: tensorParams ? T("s") : F(scale),
          zero_point: tensorParams ? T("z") : I(zp),
          quant_min: I(st.qmin),
          quant_max: I(st.qmax),
          dtype: D(st.dtype),
        };
        const tensors: Record<string, TensorSpec> = { x };
        if (tensorParams) {
          tensors.s = f32Weight([scale]);
          tensors.z = i64Weight([zp]);
        }
        return opCase(op, args, tensors);
      }),
  );
}

function perChannel(op: OpName, dequant: boolean) {
  return fc.tuple(shapeArb(1, 4), storageArb).chain(([s, st]) =>
    fc.integer({ min: 0, max: s.length - 1 }).chain((axis) =>
      fc
        .tuple(
          dequant
            ? tensor(s, st.dtype, { min: st.qmin, max: st.qmax })
            : tensor(s, "float32", { min: -3, max: 3 }),
          fc.array(scaleArb, { minLength: s[axis], maxLength: s[axis] }),
          fc.array(st.zp, { minLength: s[axis], maxLength: s[axis] }),
        )
        .map(([x, scales, zps]) =>
          opCase(
            op,
            {
              input: T("x"),
              scales: T("s"),
              zero_points: T("z"),
              axis: I(axis),
              quant_min: I(st.qmin),
              quant_max: I(st.qmax),
              dtype: D(st.dtype),
            },
            { x, s: f32Weight(scales), z: i64Weight(zps) },
          ),
        ),
    ),
  );
}

function fakePerTensor(op: OpName, tensorParams: boolean, mask: boolean, enabled = false) {
  return fc.tuple(shapeArb(0, 4), scaleArb, storageArb).chain(([s, scale, st]) =>
    fc
      .tuple(tensor(s, "float32", { min: -200 * scale, max: 200 * scale }), st.zp, fc.boolean())
      .map(([x, zp, on]) => {
        const args: Record<string, Arg> = {
          self: T("x"),
          scale: tensorParams ? T("s") : F(scale),
          zero_point: tensorParams ? T("z") : I(zp),
          quant_min: I(st.qmin),
          quant_max: I(st.qmax),
        };
        const tensors: Record<string, TensorSpec> = { x };
        if (tensorParams) {
          tensors.s = f32Weight([scale]);
          tensors.z = { dtype: "int32", shape: [1], data: [zp], weight: true };
        }
        if (enabled) {
          args.fake_quant_enabled = T("e");
          tensors.e = { dtype: "int64", shape: [1], data: [on ? 1 : 0], weight: true };
        }
        return opCase(op, args, tensors, mask ? [1] : undefined);
      }),
  );
}

function fakePerChannel(op: OpName, mask: boolean) {
  return fc.tuple(shapeArb(1, 4), storageArb).chain(([s, st]) =>
    fc.integer({ min: 0, max: s.length - 1 }).chain((axis) =>
      fc
        .tuple(
          tensor(s, "float32", { min: -3, max: 3 }),
          fc.array(scaleArb, { minLength: s[axis], maxLength: s[axis] }),
          fc.array(st.zp, { minLength: s[axis], maxLength: s[axis] }),
        )
        .map(([x, scales, zps]) =>
          opCase(
            op,
            {
              self: T("x"),
              scale: T("s"),
              zero_point: T("z"),
              axis: I(axis),
              quant_min: I(st.qmin),
              quant_max: I(st.qmax),
            },
            { x, s: f32Weight(scales), z: { dtype: "int32", shape: [zps.length], data: zps, weight: true } },
            mask ? [1] : undefined,
          ),
        ),
    ),
  );
}

export const QUANTIZE_CASES: CaseSpec[] = [
  spec(
    "quantized_decomposed.quantize_per_tensor.default",
    "quantize",
    perTensor("quantized_decomposed.quantize_per_tensor.default", false, false),
  ),
  spec(
    "quantized_decomposed.quantize_per_tensor.tensor",
    "quantize",
    perTensor("quantized_decomposed.quantize_per_tensor.tensor", false, true),
  ),
  spec(
    "quantized_decomposed.dequantize_per_tensor.default",
    "dequantize",
    perTensor("quantized_decomposed.dequantize_per_tensor.default", true, false),
  ),
  spec(
    "quantized_decomposed.dequantize_per_tensor.tensor",
    "dequantize",
    perTensor("quantized_decomposed.dequantize_per_tensor.tensor", true, true),
  ),
  spec(
    "quantized_decomposed.quantize_per_channel.default",
    "quantize-per-channel",
    perChannel("quantized_decomposed.quantize_per_channel.default", false),
  ),
  spec(
    "quantized_decomposed.dequantize_per_channel.default",
    "dequantize-per-channel",
    perChannel("quantized_decomposed.dequantize_per_channel.default", true),
  ),
  spec(
    "aten.fake_quantize_per_tensor_affine.default",
    "fake-quantize",
    fakePerTensor("aten.fake_quantize_per_tensor_affine.default", false, false),
  ),
  spec(
    "aten.fake_quantize_per_tensor_affine.tensor_qparams",
    "fake-quantize",
    fakePerTensor("aten.fake_quantize_per_tensor_affine.tensor_qparams", true, false),
  ),
  spec(
    "aten.fake_quantize_per_tensor_affine_cachemask.default",
    "fake-quantize",
    fakePerTensor("aten.fake_quantize_per_tensor_affine_cachemask.default", false, true),
  ),
  spec(
    "aten._fake_quantize_per_tensor_affine_cachemask_tensor_qparams.default",
    "fake-quantize",
    fakePerTensor("aten._fake_quantize_per_tensor_affine_cachemask_tensor_qparams.default", true, true, true),
  ),
  spec(
    "aten.fake_quantize_per_channel_affine.default",
    "fake-quantize-per-channel",
    fakePerChannel("aten.fake_quantize_per_channel_affine.default", false),
  ),
  spec(
    "aten.fake_quantize_per_channel_affine_cachemask.default",
    "fake-quantize-per-channel",
    fakePerChannel("aten.fake_quantize_per_channel_affine_cachemask.default", true),
  ),
];

/** torchc's quantized layers: float input quantized per tensor, int8 weight per channel (or per tensor). */
function quantizedLayer(conv: boolean) {
  const op: OpName = conv ? "torchc.quantized_convolution.default" : "torchc.quantized_linear.default";
  const geometry = conv
    ? fc.record({
        n: fc.integer({ min: 1, max: 2 }),
        c: fc.integer({ min: 1, max: 3 }),
        oc: fc.integer({ min: 1, max: 3 }),
        hw: fc.integer({ min: 3, max: 5 }),
        k: fc.constantFrom(1, 3),
        stride: fc.constantFrom(1, 2),
        pad: fc.constantFrom(0, 1),
      })
    : fc.record({
        n: fc.integer({ min: 1, max: 3 }),
        c: fc.integer({ min: 1, max: 6 }),
        oc: fc.integer({ min: 1, max: 4 }),
        hw: fc.constant(0),
        k: fc.constant(0),
        stride: fc.constant(1),
        pad: fc.constant(0),
      });
  return fc
    .tuple(geometry, scaleArb, storageArb, fc.boolean(), fc.boolean())
    .chain(([g, sx, st, perTensorW, bias]) => {
      const xShape = conv ? [g.n, g.c, g.hw, g.hw] : [g.n, g.c];
      const wShape = conv ? [g.oc, g.c, g.k, g.k] : [g.oc, g.c];
      const nScales = perTensorW ? 1 : g.oc;
      return fc
        .tuple(
          tensor(xShape, "float32", { min: -100 * sx, max: 100 * sx }),
          tensor(wShape, "int8", { min: -127, max: 127 }, true),
          fc.array(scaleArb, { minLength: nScales, maxLength: nScales }),
          st.zp,
          tensor([g.oc], "float32", {}, true),
        )
        .map(([x, w, ws, zp, b]) => {
          const args: Record<string, Arg> = {
            input: T("x"),
            input_scale: F(sx),
            input_zero_point: I(zp),
            input_quant_min: I(st.qmin),
            input_quant_max: I(st.qmax),
            weight: T("w"),
            weight_scales: T("ws"),
            weight_zero_points: { kind: "none" },
            bias: bias ? T("b") : { kind: "none" },
          };
          if (conv) {
            args.stride = { kind: "ints", value: [g.stride, g.stride] };
            args.padding = { kind: "ints", value: [g.pad, g.pad] };
            args.dilation = { kind: "ints", value: [1, 1] };
            args.groups = I(1);
          }
          const tensors: Record<string, TensorSpec> = { x, w, ws: f32Weight(ws) };
          if (bias) tensors.b = b;
          return opCase(op, args, tensors);
        });
    });
}

QUANTIZE_CASES.push(
  spec("torchc.quantized_convolution.default", "quantized-convolution-simulated", quantizedLayer(true)),
  spec("torchc.quantized_linear.default", "quantized-linear-simulated", quantizedLayer(false)),
);
