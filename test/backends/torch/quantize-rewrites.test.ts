// The LibTorch fallback's quantization rewrites (src/backends/torch/quantize-rewrites.ts): quantized_decomposed.*
// and torchc.quantized_* are not in LibTorch's dispatcher (the GPU run of 18bf27e refused all eight), so the
// fallback writes them as aten ops. Their plans, evaluated op by op on the aten reference, must equal the
// op's reference bit for bit: on arbitrary (not power-of-two) scales, where rounding ties and the precision of
// each step show, on float16 inputs, float64 scales, out_dtype float16 and weight zero points.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { planFallback } from "../../../src/backends/torch/plan-segment.js";
import type { DType } from "../../../src/ir/dtype.js";
import type { Arg, TensorType } from "../../../src/ir/graph.js";
import { type Tensor, tensorFromNumbers } from "../../../src/ir/tensor.js";
import { evaluateNode } from "../../../src/ops/index.js";
import { ALL_CASES } from "../../converters/cases/index.js";
import { caseGraph, type RewriteCase } from "./cases.js";
import { evaluatePlan } from "./helpers.js";

const T = (name: string): Arg => ({ kind: "tensor", name });
const F = (value: number): Arg => ({ kind: "float", value });
const I = (value: number): Arg => ({ kind: "int", value });
const D = (value: DType): Arg => ({ kind: "dtype", value });
const NONE: Arg = { kind: "none" };

/** The plan's outputs and the reference's, as [dtype, shape, values] to compare exactly. */
function planAndReference(
  op: string,
  args: Record<string, Arg>,
  values: Record<string, Tensor>,
): { got: unknown[]; want: unknown[]; rules: string[] } {
  const inputs: Record<string, TensorType> = {};
  for (const [k, v] of Object.entries(values)) inputs[k] = { dtype: v.dtype, shape: v.shape };
  const k: RewriteCase = { label: op, op, inputs, args };
  const { graph, node } = caseGraph(k);
  const plan = planFallback(graph);
  if (!("steps" in plan)) throw new Error(plan.unsupported.map((u) => u.reason).join("; "));
  const m = new Map(Object.entries(values));
  const got = evaluatePlan(plan, graph, m);
  const want = evaluateNode(node, (n) => m.get(n) as Tensor);
  const flat = (t: Tensor) => [t.dtype, t.shape, Array.from(t.data as ArrayLike<number>)];
  return {
    got: graph.outputs.map((o) => flat(got.get(o) as Tensor)),
    want: want.map(flat),
    rules: [...new Set(plan.steps.flatMap((s) => s.rules))],
  };
}

/** Float32 values of `n` elements in ±range, with some exact multiples of `scale / 2` (rounding ties). */
const values = (n: number, range: number, scale: number) =>
  fc.array(
    fc.oneof(
      fc.float({ min: Math.fround(-range), max: Math.fround(range), noNaN: true }),
      fc.integer({ min: -300, max: 300 }).map((k) => Math.fround((k * scale) / 2)),
    ),
    { minLength: n, maxLength: n },
  );
const scaleArb = fc.double({ min: 1e-3, max: 2, noNaN: true }).map(Math.fround);

describe("quantization ops through the LibTorch fallback's aten rewrites", () => {
  it("every quantized_decomposed / torchc.quantized_* converter draw plans and matches its reference exactly", () => {
    const ops = ALL_CASES.filter(
      (c) => c.op.startsWith("quantized_decomposed.") || c.op.startsWith("torchc.quantized_"),
    );
    expect(ops.length).toBe(8);
    for (const spec of ops) {
      for (const draw of fc.sample(spec.arb, { seed: 14, numRuns: 40 })) {
        const vals = Object.fromEntries(
          Object.entries(draw.tensors).map(([n, t]) => [n, tensorFromNumbers(t.dtype, t.shape, t.data)]),
        );
        const r = planAndReference(spec.op, draw.args, vals);
        expect(r.got, spec.op).toEqual(r.want);
      }
    }
  });

  it("quantize/dequantize per tensor, arbitrary scales, float16 input, tensor parameters, out_dtype float16", () => {
    fc.assert(
      fc.property(
        scaleArb,
        fc.integer({ min: -20, max: 20 }),
        fc.boolean(),
        fc.boolean(),
        fc.integer({ min: 0, max: 100 }),
        (scale, zp, half, tensorParams, seed) => {
          const xs = fc.sample(values(12, 150 * scale, scale), { seed, numRuns: 1 })[0];
          const x = tensorFromNumbers(half ? "float16" : "float32", [3, 4], xs);
          const params: Record<string, Tensor> = tensorParams
            ? {
                s: tensorFromNumbers(half ? "float64" : "float32", [1], [scale]),
                z: tensorFromNumbers("int64", [1], [zp]),
              }
            : {};
          const p = tensorParams
            ? { scale: T("s"), zero_point: T("z") }
            : { scale: F(scale), zero_point: I(zp) };
          const suffix = tensorParams ? "tensor" : "default";
          const range = { quant_min: I(-128), quant_max: I(127), dtype: D("int8") };
          const q = planAndReference(
            `quantized_decomposed.quantize_per_tensor.${suffix}`,
            { input: T("x"), ...p, ...range },
            { x, ...params },
          );
          expect(q.got).toEqual(q.want);
          const qv = tensorFromNumbers("int8", [3, 4], (q.want[0] as [string, number[], number[]])[2]);
          const d = planAndReference(
            `quantized_decomposed.dequantize_per_tensor.${suffix}`,
            { input: T("q"), ...p, ...range, out_dtype: half ? D("float16") : NONE },
            { q: qv, ...params },
          );
          expect(d.got).toEqual(d.want);
        },
      ),
      { seed: 7, numRuns: 60 },
    );
  });

  it("quantize/dequantize per channel, float32 and float64 scales (PyTorch's promotion), any axis", () => {
    fc.assert(
      fc.property(
        fc.array(scaleArb, { minLength: 3, maxLength: 3 }),
        fc.constantFrom<DType>("float32", "float64"),
        fc.constantFrom(0, 1, -1),
        fc.integer({ min: 0, max: 100 }),
        (scales, sdtype, axis, seed) => {
          const shape = axis === 0 ? [3, 2, 2] : axis === 1 ? [2, 3, 2] : [2, 2, 3];
          const x = tensorFromNumbers(
            "float32",
            shape,
            fc.sample(values(12, 100, scales[0]), { seed, numRuns: 1 })[0],
          );
          const s = tensorFromNumbers(sdtype, [3], scales);
          const z = tensorFromNumbers("int64", [3], [0, 3, -2]);
          const common = { axis: I(axis), quant_min: I(-127), quant_max: I(127), dtype: D("int8") };
          const q = planAndReference(
            "quantized_decomposed.quantize_per_channel.default",
            { input: T("x"), scales: T("s"), zero_points: T("z"), ...common },
            { x, s, z },
          );
          expect(q.got).toEqual(q.want);
          const qv = tensorFromNumbers("int8", shape, (q.want[0] as [string, number[], number[]])[2]);
          for (const zero of [T("z"), NONE]) {
            const d = planAndReference(
              "quantized_decomposed.dequantize_per_channel.default",
              { input: T("q"), scales: T("s"), zero_points: zero, ...common },
              zero.kind === "none" ? { q: qv, s } : { q: qv, s, z },
            );
            expect(d.got).toEqual(d.want);
          }
        },
      ),
      { seed: 8, numRuns: 40 },
    );
  });

  it("quantized linear (3-d input, float16, weight zero points) and unbatched / batched convolution", () => {
    fc.assert(
      fc.property(
        scaleArb,
        fc.array(scaleArb, { minLength: 3, maxLength: 3 }),
        fc.boolean(),
        fc.integer({ min: 0, max: 100 }),
        (sx, ws, half, seed) => {
          const xs = fc.sample(values(2 * 2 * 5, 120 * sx, sx), { seed, numRuns: 1 })[0];
          const w = tensorFromNumbers(
            "int8",
            [3, 5],
            Array.from({ length: 15 }, (_, i) => ((i * 37) % 255) - 127),
          );
          const q = {
            input_scale: F(sx),
            input_zero_point: I(3),
            input_quant_min: I(-128),
            input_quant_max: I(127),
            weight: T("w"),
            weight_scales: T("ws"),
          };
          const lin = planAndReference(
            "torchc.quantized_linear.default",
            { input: T("x"), ...q, weight_zero_points: T("wz"), bias: T("b") },
            {
              x: tensorFromNumbers(half ? "float16" : "float32", [2, 2, 5], xs),
              w,
              ws: tensorFromNumbers("float32", [3], ws),
              wz: tensorFromNumbers("int32", [3], [1, 0, -2]),
              b: tensorFromNumbers("float32", [3], [0.5, -1.25, 3]),
            },
          );
          expect(lin.got).toEqual(lin.want);
          const wc = tensorFromNumbers(
            "int8",
            [3, 2, 1, 2],
            Array.from({ length: 12 }, (_, i) => i * 9 - 50),
          );
          const geometry = {
            stride: { kind: "ints", value: [1, 1] },
            padding: { kind: "ints", value: [0, 1] },
          } as const;
          // batched [N, C, H, W] and unbatched [C, H, W]: the channels of the result are axis 1, then axis 0
          for (const xShape of [
            [1, 2, 2, 5],
            [2, 2, 5],
          ]) {
            const conv = planAndReference(
              "torchc.quantized_convolution.default",
              {
                input: T("x"),
                ...q,
                weight_zero_points: NONE,
                bias: T("b"),
                ...geometry,
                dilation: { kind: "ints", value: [1, 1] },
                groups: I(1),
              },
              {
                x: tensorFromNumbers("float32", xShape, xs),
                w: wc,
                ws: tensorFromNumbers("float32", [1], [ws[0]]),
                b: tensorFromNumbers("float32", [3], [0.5, -1.25, 3]),
              },
            );
            expect(conv.got).toEqual(conv.want);
          }
        },
      ),
      { seed: 9, numRuns: 30 },
    );
  });
});
