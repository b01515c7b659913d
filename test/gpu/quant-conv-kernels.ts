/**
 * The "convs" part of quant.gpu.test.ts (TORCHC_QUANT_PART=convs): real int8 convolutions through cuDNN's graph
 * API (device/conv-int8.ts, kernels/quantized-conv.ts).
 * (a) small shapes, fp32 and fp16 in and out: QuantizedConv against torchc.quantized_convolution's reference on
 *     the same (device-rounded) input, cuDNN's engine index reported; an int8-output layer (requantize scale)
 *     within one output step of the reference, with how cuDNN rounded float → int8 measured and reported;
 * (b) ResNet-50 batch-128 layer shapes timed (events around repeated calls on one stream): the fp16 cuDNN conv
 *     (buildConvPlan NHWC, bias + relu), the int8 conv on an already-int8 input (runInt8, fp16 out), the whole
 *     layer with its quantize pass, and int8 → int8; a markdown table, JSON in $OUT/quant-conv-kernels.json;
 * (c) a cuDNN refusal is printed with cuDNN's status and message and fails that case only (each shape is its
 *     own test, each timed shape its own try/catch).
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { buildConvPlan, Cudnn } from "../../src/backends/cuda/device/conv.js";
import { timeOnStream } from "../../src/backends/cuda/device/event.js";
import { DeviceBuffer } from "../../src/backends/cuda/device/memory.js";
import { Stream } from "../../src/backends/cuda/device/stream.js";
import type { QuantIoDType } from "../../src/backends/cuda/kernels/matmul-int8.js";
import { QuantizedConv, type QuantizedConvSpec } from "../../src/backends/cuda/kernels/quantized-conv.js";
import { numberToFloat16Bits } from "../../src/ir/half.js";
import { convReferenceNhwc, emulateQuantizedConv, outSize } from "../quant/conv-reference.js";
import { amax, downloadAs, int8Weights, normals, uploadAs } from "./quant-kernels.js";

type Report = (name: string, values: Record<string, unknown>) => void;

/** A convolution's geometry (NHWC, one group, symmetric padding). */
export interface ConvShape {
  readonly n: number;
  readonly c: number;
  readonly h: number;
  readonly w: number;
  readonly k: number;
  readonly r: number;
  readonly s: number;
  readonly stride: number;
  readonly padding: number;
}

const label = (g: ConvShape) =>
  `n${g.n} ${g.h}×${g.w} ${g.c}→${g.k} ${g.r}×${g.s}${g.stride > 1 ? ` stride ${g.stride}` : ""}${g.padding ? ` pad ${g.padding}` : ""}`;

/**
 * A layer of `g` from float weights quantized as PTQ does (symmetric per channel, amax / 127: KCRS rows are
 * a linear layer's [K, C·R·S]), the input's scale amax(x) / 127.
 */
export function convLayer(
  g: ConvShape,
  dtype: QuantIoDType,
  x: ArrayLike<number>,
  seed: number,
  extra: Partial<QuantizedConvSpec> = {},
): QuantizedConvSpec {
  const per = g.c * g.r * g.s;
  const q = int8Weights({ k: per, n: g.k, w: normals(g.k * per, seed, 0.05), b: new Float32Array(g.k) });
  return {
    ...g,
    dtype,
    inputScale: amax(x) / 127,
    weight: q.q,
    weightScales: q.scales,
    bias: normals(g.k, seed + 1, 0.1),
    activation: "relu",
    ...extra,
  };
}

function build(cudnn: Cudnn, spec: QuantizedConvSpec, what: string, report: Report): QuantizedConv {
  const built = QuantizedConv.create(cudnn, spec);
  if (!built.ok) {
    // (c): cuDNN's (or the checks') reason, printed where it is seen first, then the case fails
    console.log(`int8 conv ${what} REFUSED: ${built.reason}`);
    report(`${what} refused`, { reason: built.reason });
    assert.fail(`int8 conv ${what}: ${built.reason}`);
  }
  return built.layer;
}

/** max |a − b| / max |b|. */
function relativeErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  for (let i = 0; i < b.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d / (amax(b) || 1);
}

/**
 * (a) one shape and dtype against the reference. Bars: the int32 sums are exact, so the fp32 output differs
 * from the reference only in the epilogue's float32 roundings (cuDNN may fuse the scale and bias into one FMA,
 * or order them otherwise: about 1e-7 of max |y|): 1e-4 still catches any wrong scale, bias, channel or layout
 * (errors of order 1). fp16 adds one output rounding (2^-11 ≈ 4.9e-4 of a value): bar 2e-3, 4× that.
 */
export function checkConvShape(cudnn: Cudnn, g: ConvShape, dtype: QuantIoDType, report: Report): void {
  const stream = Stream.create();
  const xs = normals(g.n * g.h * g.w * g.c, 101, 1);
  const x = uploadAs(xs, dtype);
  const xValues = downloadAs(x, xs.length, dtype);
  const spec = convLayer(g, dtype, xValues, 103);
  const { oh, ow } = outSize(spec);
  const outs = g.n * oh * ow * g.k;
  const y = DeviceBuffer.alloc(outs * (dtype === "float16" ? 2 : 4));
  try {
    const layer = build(cudnn, spec, `${label(g)} ${dtype}`, report);
    try {
      layer.run(x, y, stream);
      stream.synchronize();
      const got = downloadAs(y, outs, dtype);
      const want = convReferenceNhwc(spec, xValues);
      const err = relativeErr(got, want);
      const bound = dtype === "float32" ? 1e-4 : 2e-3;
      report(`${label(g)} ${dtype} vs reference`, {
        engine: layer.engineIndex,
        workspaceBytes: layer.plan.workspaceBytes,
        relative: err,
        bound,
        maxRef: amax(want),
      });
      assert.ok(amax(want) > 0, "the reference is all zeros: the check would be vacuous");
      assert.ok(err <= bound, `${label(g)} ${dtype}: ${err} > ${bound} (engine ${layer.engineIndex})`);
      layer.run(x, y, stream);
      stream.synchronize();
      assert.deepEqual(Array.from(downloadAs(y, outs, dtype)), Array.from(got), "run twice: the same bits");
    } finally {
      layer.destroy();
    }
  } finally {
    for (const b of [x, y]) b.free();
    stream.destroy();
  }
}

/**
 * An int8-output layer (outputScale sY): every output within one step of the reference (whatever cuDNN's
 * float → int8 rounding), and how it rounded measured against the host's pre-conversion values: the share of
 * outputs equal to round-half-even, to round-half-away, and to truncation (they differ only at ties and for
 * non-integers respectively).
 */
export function checkInt8Output(cudnn: Cudnn, g: ConvShape, report: Report): void {
  const stream = Stream.create();
  const xs = normals(g.n * g.h * g.w * g.c, 201, 1);
  const x = uploadAs(xs, "float32");
  const xValues = downloadAs(x, xs.length, "float32");
  const probe = convLayer(g, "float32", xValues, 203);
  const ref = convReferenceNhwc(probe, xValues);
  const sY = amax(ref) / 127;
  const spec = { ...probe, outputScale: sY };
  const outs = ref.length;
  const y = DeviceBuffer.alloc(outs);
  try {
    const layer = build(cudnn, spec, `${label(g)} int8 out`, report);
    try {
      layer.run(x, y, stream);
      stream.synchronize();
      const q = y.download(new Int8Array(outs));
      const pre = emulateQuantizedConv(spec, xValues);
      let even = 0;
      let away = 0;
      let trunc = 0;
      let worst = 0;
      for (let i = 0; i < outs; i++) {
        const v = pre[i];
        const clamp = (t: number) => Math.min(Math.max(t, -128), 127);
        const r = Math.round(v);
        const halfEven = Math.abs(v - Math.trunc(v)) === 0.5 ? 2 * Math.round(v / 2) : r;
        if (q[i] === clamp(halfEven)) even++;
        if (q[i] === clamp(Math.sign(v) * Math.round(Math.abs(v)))) away++;
        if (q[i] === clamp(Math.trunc(v))) trunc++;
        worst = Math.max(worst, Math.abs(q[i] * sY - ref[i]));
      }
      report(`${label(g)} int8 out rounding`, {
        engine: layer.engineIndex,
        outputs: outs,
        halfEven: even / outs,
        halfAway: away / outs,
        truncate: trunc / outs,
        worstSteps: worst / sY,
      });
      assert.ok(worst <= sY * 1.001, `int8 output: ${worst / sY} steps from the reference`);
    } finally {
      layer.destroy();
    }
  } finally {
    for (const b of [x, y]) b.free();
    stream.destroy();
  }
}

/** ResNet-50's conv shapes at batch 128 (the timed ones). */
export const RESNET50_SHAPES: readonly ConvShape[] = [
  { n: 128, h: 56, w: 56, c: 64, k: 64, r: 3, s: 3, stride: 1, padding: 1 },
  { n: 128, h: 28, w: 28, c: 128, k: 128, r: 3, s: 3, stride: 1, padding: 1 },
  { n: 128, h: 14, w: 14, c: 256, k: 256, r: 3, s: 3, stride: 1, padding: 1 },
  { n: 128, h: 7, w: 7, c: 512, k: 512, r: 3, s: 3, stride: 1, padding: 1 },
  { n: 128, h: 56, w: 56, c: 256, k: 64, r: 1, s: 1, stride: 1, padding: 0 },
  { n: 128, h: 14, w: 14, c: 1024, k: 256, r: 1, s: 1, stride: 1, padding: 0 },
];

export interface ConvTimingRow {
  shape: string;
  fp16Ms?: number;
  fp16Engine?: number;
  /** runInt8: int8 input already there, fp16 out. */
  int8Ms?: number;
  /** run: fp16 in, the quantize pass, then the int8 conv. */
  int8QuantizeMs?: number;
  /** runInt8 with an int8 output (requantize scale). */
  int8OutMs?: number;
  int8Engine?: number;
  refused?: string;
}

const reasonOf = (e: unknown) => (e instanceof Error ? e.message : String(e));

/** (b) one shape: each measurement in its own try, so a refusal leaves the others' numbers in the row. */
export function timeConvShape(cudnn: Cudnn, g: ConvShape, stream: Stream): ConvTimingRow {
  const row: ConvTimingRow = { shape: label(g) };
  const refusals: string[] = [];
  const { oh, ow } = outSize(g);
  const inCount = g.n * g.h * g.w * g.c;
  const outCount = g.n * oh * ow * g.k;
  const owned: DeviceBuffer[] = [];
  const buf = (bytes: number) => {
    const b = DeviceBuffer.alloc(bytes);
    owned.push(b);
    return b;
  };
  const opts = { warmup: 5, reps: 20 };
  try {
    const xs = normals(inCount, 301, 1);
    const x = buf(inCount * 2).upload(Uint16Array.from(xs, numberToFloat16Bits));
    const y = buf(outCount * 2);
    const spec = convLayer(g, "float16", xs, 303);
    try {
      const w = buf(g.k * g.r * g.s * g.c * 2).upload(
        Uint16Array.from(normals(g.k * g.r * g.s * g.c, 305, 0.05), numberToFloat16Bits),
      );
      const bias = buf(g.k * 2).upload(Uint16Array.from(spec.bias ?? [], numberToFloat16Bits));
      const plan = buildConvPlan(cudnn, {
        layout: "NHWC",
        dtype: "float16",
        ...g,
        bias: true,
        activation: "relu",
      });
      try {
        row.fp16Engine = plan.engineIndex;
        row.fp16Ms = timeOnStream(stream, () => plan.execute({ x, w, bias, y }, stream), opts);
      } finally {
        stream.synchronize();
        plan.destroy();
      }
    } catch (e) {
      refusals.push(`fp16: ${reasonOf(e)}`);
    }
    const xq = buf(inCount).upload(
      Int8Array.from(xs, (v) => Math.max(-127, Math.min(127, Math.round(v * 30)))),
    );
    for (const mode of ["float16", "int8"] as const) {
      const built = QuantizedConv.create(cudnn, mode === "int8" ? { ...spec, outputScale: 0.05 } : spec);
      if (!built.ok) {
        refusals.push(`int8 → ${mode}: ${built.reason}`);
        continue;
      }
      const layer = built.layer;
      try {
        const out = mode === "int8" ? buf(outCount) : y;
        if (mode === "int8") row.int8OutMs = timeOnStream(stream, () => layer.runInt8(xq, out, stream), opts);
        else {
          row.int8Engine = layer.engineIndex;
          row.int8Ms = timeOnStream(stream, () => layer.runInt8(xq, out, stream), opts);
          row.int8QuantizeMs = timeOnStream(stream, () => layer.run(x, out, stream), opts);
        }
      } catch (e) {
        refusals.push(`int8 → ${mode}: ${reasonOf(e)}`);
      } finally {
        stream.synchronize();
        layer.destroy();
      }
    }
  } catch (e) {
    refusals.push(reasonOf(e));
  } finally {
    stream.synchronize();
    for (const b of owned) b.free();
  }
  if (refusals.length > 0) row.refused = refusals.join("; ");
  return row;
}

export function convTimingTable(rows: readonly ConvTimingRow[]): string {
  const ms = (v: number | undefined) => (v === undefined ? "—" : `${v.toFixed(3)} ms`);
  const ratio = (a: number | undefined, b: number | undefined) =>
    a === undefined || b === undefined ? "—" : (a / b).toFixed(2);
  return [
    "",
    "| shape (NHWC, batch 128) | fp16 cuDNN (+bias, relu) | int8 (int8 in, fp16 out) | int8 with quantize | int8 → int8 | int8 / fp16 | with quantize / fp16 | engines fp16 / int8 | refused |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ...rows.map(
      (r) =>
        `| ${r.shape} | ${ms(r.fp16Ms)} | ${ms(r.int8Ms)} | ${ms(r.int8QuantizeMs)} | ${ms(r.int8OutMs)} | ` +
        `${ratio(r.int8Ms, r.fp16Ms)} | ${ratio(r.int8QuantizeMs, r.fp16Ms)} | ${r.fp16Engine ?? "—"} / ${r.int8Engine ?? "—"} | ` +
        `${(r.refused ?? "").replaceAll("|", "/")} |`,
    ),
  ].join("\n");
}

/** The small shapes of (a). */
export const CHECK_SHAPES: readonly ConvShape[] = [
  { n: 2, h: 9, w: 9, c: 16, k: 32, r: 3, s: 3, stride: 1, padding: 1 },
  { n: 2, h: 8, w: 8, c: 64, k: 64, r: 1, s: 1, stride: 1, padding: 0 },
  { n: 2, h: 10, w: 10, c: 32, k: 64, r: 3, s: 3, stride: 2, padding: 1 },
];

/** The part's tests (called by quant.gpu.test.ts, which decides whether it runs). */
export function quantConvTests(skip: string | false, report: Report): void {
  describe("real int8 convolutions (cuDNN graph API) against the reference, and fp16 speed", { skip }, () => {
    const withCudnn = (body: (cudnn: Cudnn) => void) => () => {
      const cudnn = Cudnn.create();
      try {
        report("cudnn", { version: Cudnn.version() });
        body(cudnn);
      } finally {
        cudnn.destroy();
      }
    };
    for (const g of CHECK_SHAPES)
      for (const dtype of ["float32", "float16"] as const)
        it(
          `${label(g)}, ${dtype} in and out, matches torchc.quantized_convolution`,
          withCudnn((cudnn) => checkConvShape(cudnn, g, dtype, report)),
        );

    it(
      `${label(CHECK_SHAPES[0])}, int8 out: within one step of the reference; cuDNN's rounding measured`,
      withCudnn((cudnn) => checkInt8Output(cudnn, CHECK_SHAPES[0], report)),
    );

    it(
      "times int8 vs fp16 cuDNN convolutions on ResNet-50 batch-128 shapes",
      withCudnn((cudnn) => {
        const stream = Stream.create();
        const rows: ConvTimingRow[] = [];
        try {
          for (const g of RESNET50_SHAPES) {
            const row = timeConvShape(cudnn, g, stream);
            rows.push(row);
            report("conv timing", { ...row });
          }
        } finally {
          stream.destroy();
        }
        console.log(convTimingTable(rows));
        if (process.env.OUT)
          writeFileSync(join(process.env.OUT, "quant-conv-kernels.json"), JSON.stringify(rows, null, 2));
        const refused = rows.filter((r) => r.refused);
        assert.equal(refused.length, 0, refused.map((r) => `${r.shape}: ${r.refused}`).join("\n"));
      }),
    );
  });
}
