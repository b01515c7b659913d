import fc from "fast-check";
import type { DType } from "../../src/ir/dtype.js";
import type { Arg } from "../../src/ir/graph.js";
import type { OpName } from "../../src/ops/index.js";
import type { OpCase, TensorSpec } from "./harness.js";

// Small building blocks for case generators: shapes stay tiny (≤ 4 per dim, ≤ 4 dims) so 100 runs of every
// converter finish in seconds.

export const T = (name: string): Arg => ({ kind: "tensor", name });
export const Ts = (...names: string[]): Arg => ({ kind: "tensors", names });
export const I = (value: number): Arg => ({ kind: "int", value });
export const F = (value: number): Arg => ({ kind: "float", value });
export const B = (value: boolean): Arg => ({ kind: "bool", value });
export const Is = (...value: number[]): Arg => ({ kind: "ints", value });
export const S = (value: string): Arg => ({ kind: "string", value });
export const D = (value: DType): Arg => ({ kind: "dtype", value });
export const NONE: Arg = { kind: "none" };

export const numel = (shape: readonly number[]) => shape.reduce((a, d) => a * d, 1);

export function shapeArb(minRank: number, maxRank: number, maxDim = 4, minDim = 1): fc.Arbitrary<number[]> {
  return fc.array(fc.integer({ min: minDim, max: maxDim }), { minLength: minRank, maxLength: maxRank });
}

export interface ValueRange {
  readonly min?: number;
  readonly max?: number;
  /** Values closer to 0 than this are pushed away from it (divisors, log of |x|). */
  readonly awayFromZero?: number;
}

/** Values of a dtype: fp32-representable floats, or small integers, or bools. */
export function values(dtype: DType, n: number, range: ValueRange = {}): fc.Arbitrary<number[]> {
  const float = dtype === "float32" || dtype === "float16" || dtype === "bfloat16" || dtype === "float64";
  const min = range.min ?? (float ? -3 : dtype === "uint8" ? 0 : -9);
  const max = range.max ?? (float ? 3 : 9);
  let v: fc.Arbitrary<number>;
  if (dtype === "bool") v = fc.integer({ min: 0, max: 1 });
  // Magnitudes below 1e-6 become 0: denormals and near-underflow values only measure where intermediate
  // fp32 roundings flush to zero (as GPUs do), not whether a converter is right.
  else if (float)
    v = fc
      .float({ min: Math.fround(min), max: Math.fround(max), noNaN: true, noDefaultInfinity: true })
      .map((x) => (Math.abs(x) < 1e-6 ? 0 : x));
  else v = fc.integer({ min: Math.ceil(min), max: Math.floor(max) });
  const away = range.awayFromZero;
  if (away !== undefined) v = v.map((x) => (Math.abs(x) < away ? (x < 0 ? -away : away) : x));
  return fc.array(v, { minLength: n, maxLength: n });
}

export function tensor(
  shape: readonly number[],
  dtype: DType = "float32",
  range: ValueRange = {},
  weight = false,
): fc.Arbitrary<TensorSpec> {
  return values(dtype, numel(shape), range).map((data) => ({
    dtype,
    shape: [...shape],
    data,
    ...(weight ? { weight } : {}),
  }));
}

/** A shape that broadcasts against `shape`: a suffix of it with some dims set to 1. */
export function broadcastableTo(shape: readonly number[]): fc.Arbitrary<number[]> {
  return fc
    .tuple(
      fc.integer({ min: 0, max: shape.length }),
      fc.array(fc.boolean(), { minLength: shape.length, maxLength: shape.length }),
    )
    .map(([drop, ones]) => shape.slice(drop).map((d, i) => (ones[i + drop] ? 1 : d)));
}

/** Either order of a shape and a shape broadcastable to it, so both operands get to broadcast. */
export function broadcastPair(minRank = 0, maxRank = 4): fc.Arbitrary<[number[], number[]]> {
  return shapeArb(minRank, maxRank).chain((s) =>
    fc
      .tuple(broadcastableTo(s), fc.boolean())
      .map(([b, swap]) => (swap ? [b, s] : [s, b]) as [number[], number[]]),
  );
}

export function opCase(
  op: OpName,
  args: Record<string, Arg>,
  tensors: Record<string, TensorSpec>,
  unusedOutputs?: number[],
): OpCase {
  return { op, args, tensors, ...(unusedOutputs ? { unusedOutputs } : {}) };
}

/** A dim index for `rank`, negative half the time (rank 0 allows -1 and 0, as PyTorch does). */
export function dimArb(rank: number): fc.Arbitrary<number> {
  const r = Math.max(rank, 1);
  return fc.integer({ min: -r, max: r - 1 });
}

export const floatDtype = fc.constantFrom<DType>("float32");
