// The int8 implicit-GEMM convolution's test cases and their reference (src/backends/cuda/codegen/conv-int8-igemm.ts):
// pseudo-random int8 activations and weights, per-channel scales that make int8 outputs both round and saturate,
// and a direct convolution in exact integers followed by the fp32 epilogue step by step (each op rounded to
// float32, as the kernel computes it). Shared by the CPU-emulated test and the GPU test.
import {
  type IgemmConvConfig,
  type IgemmConvProblem,
  igemmGeometry,
} from "../../../src/backends/cuda/codegen/conv-int8-igemm.js";
import { float16BitsToNumber, numberToFloat16Bits } from "../../../src/ir/half.js";
import { erf, roundHalfEven } from "../../../src/ops/math.js";
import { xorshift32 } from "../../../src/util/random-input.js";

export const BASE: Omit<IgemmConvProblem, "output" | "epilogue"> = {
  n: 2,
  h: 5,
  w: 5,
  c: 32,
  k: 48,
  r: 3,
  s: 3,
  stride: [1, 1],
  padding: [1, 1],
  dilation: [1, 1],
  bias: true,
};

export const SMALL: IgemmConvConfig = { bm: 64, bn: 64, bk: 64, warpsM: 2, warpsN: 2, stages: 3 };

function rng(seed: number): () => number {
  const next = xorshift32(seed);
  return () => next() / 2 ** 32;
}

const f = Math.fround;

/** Round half to even, then saturate to int8 (cvt.rni.sat.s8.f32). */
function toInt8(v: number): number {
  return Math.min(127, Math.max(-128, roundHalfEven(v)));
}

const ACT = {
  relu: (v: number) => Math.max(v, 0),
  silu: (v: number) => v / (1 + Math.exp(-v)),
  sigmoid: (v: number) => 1 / (1 + Math.exp(-v)),
  tanh: Math.tanh,
  gelu_erf: (v: number) => 0.5 * v * (1 + erf(v / Math.SQRT2)),
  gelu_tanh: (v: number) => 0.5 * v * (1 + Math.tanh(0.7978845608028654 * (v + 0.044715 * v ** 3))),
};

export interface IgemmCase {
  readonly name: string;
  readonly p: IgemmConvProblem;
  readonly c: IgemmConvConfig;
  /** With p.quantizedCopy: the quantize's scale (the kernel takes qinv = quantizeInverse(scale)). */
  readonly copyScale?: number;
}

/** A case's operands (host arrays, by kernel parameter name), an output array filled with a sentinel, the reference. */
export interface IgemmCaseData {
  readonly operands: Record<string, Int8Array | Uint16Array | Float32Array>;
  /** The kernel's output: int8 filled with 85, fp16 with NaN, fp32 with NaN (an unwritten value shows). */
  readonly y: Int8Array | Uint16Array | Float32Array;
  readonly want: Float64Array;
  /** With a quantized copy: the kernel's q (filled with 85), its reference, and the qinv argument. */
  readonly q?: Int8Array;
  readonly qWant?: Float64Array;
  readonly qinv?: number;
}

/** y's values as numbers (fp16 decoded). */
export function outputValues(y: IgemmCaseData["y"]): number[] {
  return Array.from(y as ArrayLike<number>, (v) => (y instanceof Uint16Array ? float16BitsToNumber(v) : v));
}

export function igemmCaseData({ p, c, copyScale }: IgemmCase, seed: number): IgemmCaseData {
  const r = rng(seed);
  const g = igemmGeometry(p, c);
  const x = Int8Array.from({ length: p.n * p.h * p.w * p.c }, () => Math.floor(r() * 256) - 128);
  const w = Int8Array.from({ length: p.k * p.r * p.s * p.c }, () => Math.floor(r() * 256) - 128);
  // scales that put |acc · scale| around 100: the int8 outputs both round and saturate
  const typical = 64 * 64 * Math.sqrt(g.Kg) * 0.6;
  const scale = Float32Array.from({ length: p.k }, () => (0.5 + r()) * (100 / typical));
  const bias = Float32Array.from({ length: p.k }, () => (r() - 0.5) * 20);
  const fp16 = (n: number, amp: number) =>
    Uint16Array.from({ length: n }, () => numberToFloat16Bits((r() - 0.5) * amp));
  const operands: IgemmCaseData["operands"] = { x, w, scale, bias };
  p.epilogue.forEach((o, i) => {
    if (o.kind === "act") return;
    const n = o.kind === "tensor" ? g.M * p.k : p.k;
    const t = o.kind === "tensor" ? p.tensorType! : p.channelType!;
    operands[`e${i}`] =
      t === "float16" ? fp16(n, 8) : Float32Array.from({ length: n }, () => (r() - 0.5) * 8);
  });
  const read = (a: Int8Array | Uint16Array | Float32Array, i: number) =>
    a instanceof Uint16Array ? float16BitsToNumber(a[i]) : a[i];
  const y =
    p.output === "int8"
      ? new Int8Array(g.M * p.k).fill(85)
      : p.output === "float16"
        ? new Uint16Array(g.M * p.k).fill(0x7fff)
        : new Float32Array(g.M * p.k).fill(Number.NaN);
  const want = new Float64Array(g.M * p.k);
  for (let m = 0; m < g.M; m++) {
    const n = Math.floor(m / (g.P * g.Q));
    const op = Math.floor((m % (g.P * g.Q)) / g.Q);
    const oq = m % g.Q;
    for (let o = 0; o < p.k; o++) {
      let acc = 0;
      for (let i = 0; i < p.r; i++)
        for (let j = 0; j < p.s; j++) {
          const hh = op * p.stride[0] - p.padding[0] + i * p.dilation[0];
          const ww = oq * p.stride[1] - p.padding[1] + j * p.dilation[1];
          if (hh < 0 || hh >= p.h || ww < 0 || ww >= p.w) continue;
          for (let ch = 0; ch < p.c; ch++)
            acc += x[((n * p.h + hh) * p.w + ww) * p.c + ch] * w[((o * p.r + i) * p.s + j) * p.c + ch];
        }
      let v = f(f(acc) * scale[o]);
      if (p.bias) v = f(v + bias[o]);
      p.epilogue.forEach((e, ei) => {
        if (e.kind === "act") v = f(ACT[e.fn](v));
        else {
          const t = read(operands[`e${ei}`], e.kind === "tensor" ? m * p.k + o : o);
          v = f(e.op === "add" ? v + t : v * t);
        }
      });
      want[m * p.k + o] =
        p.output === "int8"
          ? toInt8(v)
          : p.output === "float16"
            ? float16BitsToNumber(numberToFloat16Bits(v))
            : v;
    }
  }
  if (!p.quantizedCopy) return { operands, y, want };
  // element.ts's quantize of the stored value: rintf(y · (1.0f / scale)), clamped (zero point 0)
  const inv = f(1 / f(copyScale ?? 1));
  const qWant = Float64Array.from(want, (v) => toInt8(f(v * inv)));
  return { operands, y, want, q: new Int8Array(want.length).fill(85), qWant, qinv: inv };
}

/** How a case's output compares: exact for int8 and fp16 (every step is rounded alike), 1e-6 relative for fp32. */
export function igemmMismatch(
  p: IgemmConvProblem,
  got: readonly number[],
  want: Float64Array,
): string | undefined {
  let worst = 0;
  let mismatches = 0;
  for (let j = 0; j < want.length; j++) {
    if (p.output === "float32")
      worst = Math.max(worst, Math.abs(got[j] - want[j]) / Math.max(1, Math.abs(want[j])));
    else if (got[j] !== want[j]) mismatches++;
  }
  if (mismatches > 0) return `${mismatches} of ${want.length} values differ from the reference`;
  if (!(worst < 1e-6)) return `fp32 values differ from the reference by ${worst} (relative)`;
  return undefined;
}

export const IGEMM_CASES: readonly IgemmCase[] = [
  {
    name: "3×3 pad 1, int8 out + ReLU; ragged pixel, channel and window tiles",
    p: { ...BASE, output: "int8", epilogue: [{ kind: "act", fn: "relu" }] },
    c: SMALL,
  },
  {
    name: "1×1 stride 2 (a downsample), fp16 out, residual add then ReLU",
    p: {
      ...BASE,
      h: 7,
      w: 6,
      c: 64,
      k: 64,
      r: 1,
      s: 1,
      stride: [2, 2],
      padding: [0, 0],
      output: "float16",
      tensorType: "float16",
      epilogue: [
        { kind: "tensor", op: "add" },
        { kind: "act", fn: "relu" },
      ],
    },
    c: { bm: 128, bn: 64, bk: 64, warpsM: 4, warpsN: 2, stages: 2 },
  },
  {
    name: "3×3 dilation 2×1 stride 2×1, no bias, fp32 out, channel mul + add (fp32) then SiLU",
    p: {
      ...BASE,
      h: 9,
      w: 8,
      c: 16,
      k: 32,
      stride: [2, 1],
      padding: [2, 1],
      dilation: [2, 1],
      bias: false,
      output: "float32",
      channelType: "float32",
      epilogue: [
        { kind: "channel", op: "mul" },
        { kind: "channel", op: "add" },
        { kind: "act", fn: "silu" },
      ],
    },
    c: { bm: 64, bn: 32, bk: 128, warpsM: 2, warpsN: 2, stages: 4 },
  },
  {
    name: "1×3 window, asymmetric padding pair, int8 out without epilogue, 8 warps",
    p: { ...BASE, h: 4, w: 9, c: 48, k: 40, r: 1, s: 3, padding: [0, 1], output: "int8", epilogue: [] },
    c: { bm: 128, bn: 64, bk: 64, warpsM: 2, warpsN: 4, stages: 3 },
  },
  {
    name: "fp16 channel operands (an fp16 step's folded scale), fp16 out",
    p: {
      ...BASE,
      c: 32,
      k: 32,
      output: "float16",
      channelType: "float16",
      epilogue: [
        { kind: "channel", op: "mul" },
        { kind: "act", fn: "relu" },
      ],
    },
    c: { bm: 64, bn: 32, bk: 32, warpsM: 2, warpsN: 1, stages: 2 },
  },
  {
    name: "the 128×128 production tile (8 warps of 64×32) with its 4-deep ring wrapping (9 chunks), int8 out + ReLU",
    p: {
      ...BASE,
      n: 1,
      h: 12,
      w: 12,
      c: 64,
      k: 136,
      output: "int8",
      epilogue: [{ kind: "act", fn: "relu" }],
    },
    c: { bm: 128, bn: 128, bk: 64, warpsM: 2, warpsN: 4, stages: 4 },
  },
  {
    name: "the 256×128 production tile (16 warps), fp16 out, residual add then ReLU, a ragged window tail",
    p: {
      ...BASE,
      h: 12,
      w: 12,
      c: 32,
      k: 128,
      output: "float16",
      tensorType: "float16",
      epilogue: [
        { kind: "tensor", op: "add" },
        { kind: "act", fn: "relu" },
      ],
    },
    c: { bm: 256, bn: 128, bk: 64, warpsM: 4, warpsN: 4, stages: 3 },
  },
  {
    name: "128-byte chunks in a 3-deep ring that wraps, fp32 out through GELU (erf), tanh and sigmoid",
    p: {
      ...BASE,
      h: 6,
      w: 7,
      c: 64,
      k: 64,
      output: "float32",
      channelType: "float32",
      epilogue: [
        { kind: "channel", op: "mul" },
        { kind: "act", fn: "gelu_erf" },
        { kind: "act", fn: "tanh" },
        { kind: "act", fn: "sigmoid" },
      ],
    },
    c: { bm: 64, bn: 64, bk: 128, warpsM: 2, warpsN: 2, stages: 3 },
  },
  {
    name: "GELU (tanh form), fp32 out, 1×1 stride 1",
    p: {
      ...BASE,
      c: 48,
      k: 64,
      r: 1,
      s: 1,
      padding: [0, 0],
      output: "float32",
      epilogue: [{ kind: "act", fn: "gelu_tanh" }],
    },
    c: { bm: 128, bn: 64, bk: 64, warpsM: 4, warpsN: 2, stages: 2 },
  },
  {
    name: "a ResNet block's end: fp16 out, residual add, ReLU, and its int8 copy for the next block",
    p: {
      ...BASE,
      h: 6,
      w: 6,
      c: 64,
      k: 64,
      r: 1,
      s: 1,
      padding: [0, 0],
      output: "float16",
      tensorType: "float16",
      epilogue: [
        { kind: "tensor", op: "add" },
        { kind: "act", fn: "relu" },
      ],
      quantizedCopy: true,
    },
    copyScale: 0.37,
    c: { bm: 64, bn: 64, bk: 64, warpsM: 2, warpsN: 2, stages: 2 },
  },
  {
    name: "fp32 out with its int8 copy (values past the int8 range saturate)",
    p: { ...BASE, output: "float32", epilogue: [], quantizedCopy: true },
    c: SMALL,
    copyScale: 0.11,
  },
];
