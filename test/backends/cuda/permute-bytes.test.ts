// Weight bytes for the engine: the same-dtype relayout (permutedBytes, bit for bit) against the float round trip it
// replaces (toFloat64Array → transpose → tensorFromNumbers), for every element width; and the half conversions
// it sits next to (the table lookup and the float32-bits cast) against the formulas they replace. A layout that only
// moves axes of size 1 (1×1 conv weights channels-last) takes a shortcut (the tensor's own bytes): checked for
// every axis order of shapes with unit axes.
import { describe, expect, it } from "vitest";
import { constantBytes } from "../../../src/backends/cuda/builder.js";
import { keepsElementOrder, permutedBytes } from "../../../src/backends/cuda/permute-bytes.js";
import type { TensorInfo } from "../../../src/backends/cuda/plan/tensors.js";
import type { DType } from "../../../src/ir/dtype.js";
import { float16BitsToNumber, numberToFloat16Bits } from "../../../src/ir/half.js";
import { castTensor, numel, tensorBytes, tensorFromNumbers, toFloat64Array } from "../../../src/ir/tensor.js";
import { transpose } from "../../../src/network/reference/data.js";

function reference(dtype: DType, shape: number[], values: number[], perm: number[]): Uint8Array {
  const t = tensorFromNumbers(dtype, shape, values);
  const out = transpose(toFloat64Array(t), shape, perm);
  return tensorBytes(
    tensorFromNumbers(
      dtype,
      perm.map((p) => shape[p]),
      out,
    ),
  );
}

describe("permutedBytes", () => {
  const shape = [4, 3, 2, 5];
  const values = Array.from({ length: numel(shape) }, (_, i) => ((i * 37) % 101) - 50);
  for (const dtype of [
    "float16",
    "bfloat16",
    "float32",
    "float64",
    "int32",
    "int64",
    "int8",
    "bool",
  ] as DType[])
    for (const perm of [
      [0, 2, 3, 1],
      [3, 2, 1, 0],
      [0, 1, 2, 3],
    ])
      it(`${dtype} ${perm.join("")} matches the float round trip`, () => {
        const t = tensorFromNumbers(dtype, shape, values);
        expect(permutedBytes(t, perm)).toEqual(reference(dtype, shape, values, perm));
      });

  it("keeps a NaN's payload (the round trip would make it canonical)", () => {
    const t = { dtype: "float16" as const, shape: [2, 1], data: new Uint16Array([0x7c01, 0xfe00]) };
    expect([...new Uint16Array(permutedBytes(t, [1, 0]).buffer)]).toEqual([0x7c01, 0xfe00]);
  });
});

describe("half conversions", () => {
  it("the table decodes every half: fixed points of IEEE binary16, and every finite half encodes back to itself", () => {
    // Known values (IEEE 754 binary16), not the table's own formula.
    for (const [h, v] of [
      [0x0000, 0],
      [0x8000, -0],
      [0x0001, 2 ** -24],
      [0x03ff, 1023 * 2 ** -24],
      [0x0400, 2 ** -14],
      [0x3c00, 1],
      [0x3c01, 1 + 2 ** -10],
      [0xc000, -2],
      [0x3555, 0.333251953125],
      [0x7bff, 65504],
      [0x7c00, Number.POSITIVE_INFINITY],
      [0xfc00, Number.NEGATIVE_INFINITY],
    ] as const)
      expect(Object.is(float16BitsToNumber(h), v), `0x${h.toString(16)}`).toBe(true);
    // The encoder is separate code: decode then encode must give the same bits back, NaNs decode to NaN.
    for (let h = 0; h < 0x10000; h++) {
      const v = float16BitsToNumber(h);
      const nan = (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
      if (nan) expect(Number.isNaN(v) || h).toBe(true);
      else expect(numberToFloat16Bits(v) === h || h).toBe(true);
    }
  });

  it("float32 → float16 from the float's bits rounds as numberToFloat16Bits does", () => {
    const bits = new Uint32Array(1 << 16);
    let s = 12345;
    for (let i = 0; i < bits.length; i++) {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      bits[i] = s;
    }
    // rounding ties, subnormals, overflow, infinities, NaN and signed zero
    bits.set([
      0x33000000, 0x33000001, 0x387fe000, 0x477fefff, 0x477ff000, 0x7f800000, 0x7fc00001, 0x80000000,
    ]);
    const f = new Float32Array(bits.buffer);
    const t = { dtype: "float32" as const, shape: [f.length], data: f };
    const got = castTensor(t, "float16").data as Uint16Array;
    for (let i = 0; i < f.length; i++)
      if (got[i] !== numberToFloat16Bits(f[i])) expect([i, got[i]]).toBe(null);
  });
});

function permutations(n: number): number[][] {
  if (n === 0) return [[]];
  return permutations(n - 1).flatMap((p) =>
    Array.from({ length: n }, (_, i) => [...p.slice(0, i), n - 1, ...p.slice(i)]),
  );
}

const SHAPES = [
  [8, 4, 1, 1],
  [8, 1, 3, 3],
  [1, 5, 1, 2],
  [6, 1, 1, 1],
  [3, 2, 4, 5],
  [1, 1, 1, 1],
  [7, 3],
];

describe("the unit-axis shortcut", () => {
  it("moves every element where the reference does, and keeps the bytes where the order is kept", () => {
    let kept = 0;
    let moved = 0;
    for (const shape of SHAPES) {
      const n = shape.reduce((a, b) => a * b, 1);
      const values = Array.from({ length: n }, (_, i) => i - n / 2);
      const t = tensorFromNumbers("float16", shape, values);
      for (const perm of permutations(shape.length)) {
        const got = Buffer.from(permutedBytes(t, perm));
        expect(
          got.equals(Buffer.from(reference("float16", shape, values, perm))),
          `${shape} by ${perm}`,
        ).toBe(true);
        const same = got.equals(Buffer.from(tensorBytes(t)));
        // the engine's weight bytes (builds and refits) are the same relayout, whichever path they take
        const info = { shape, layout: perm, storage: "float16" } as unknown as TensorInfo;
        expect(Buffer.from(constantBytes(t, info)).equals(got), `constantBytes ${shape} by ${perm}`).toBe(
          true,
        );
        if (keepsElementOrder(shape, perm)) {
          expect(same, `${shape} by ${perm}`).toBe(true);
          kept++;
        } else if (!same) moved++;
      }
    }
    // both cases occur: 1×1 weights channels-last keep their order, a moved 3×3 kernel axis does not
    expect(keepsElementOrder([8, 4, 1, 1], [0, 2, 3, 1])).toBe(true);
    expect(keepsElementOrder([8, 1, 3, 3], [0, 2, 3, 1])).toBe(true);
    expect(keepsElementOrder([8, 4, 3, 3], [0, 2, 3, 1])).toBe(false);
    expect(kept).toBeGreaterThan(20);
    expect(moved).toBeGreaterThan(20);
  });
});
