// permutedBytes (every build and refit) returns a constant's own bytes, unpermuted, when its layout only moves
// axes of size 1 (1×1 conv weights stored channels-last): that must be exactly what moving the elements one by
// one gives (the float round trip through the reference transpose), for every axis order.
import { describe, expect, it } from "vitest";
import { keepsElementOrder, permutedBytes } from "../../../src/backends/cuda/permute-bytes.js";
import type { DType } from "../../../src/ir/dtype.js";
import { tensorBytes, tensorFromNumbers, toFloat64Array } from "../../../src/ir/tensor.js";
import { transpose } from "../../../src/network/reference/data.js";

/** The elements of `values` (shape `shape`) in axis order `perm`, moved one by one, as `dtype` bytes. */
function movedOneByOne(dtype: DType, shape: number[], values: number[], perm: number[]): Uint8Array {
  const t = tensorFromNumbers(dtype, shape, values);
  const out = transpose(toFloat64Array(t), shape, perm);
  return tensorBytes(
    tensorFromNumbers(
      dtype,
      perm.map((p) => shape[p]),
      Array.from(out),
    ),
  );
}

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

describe("refit's unpermuted constant bytes", () => {
  it("are the permuted bytes whenever the axis order keeps the element order", () => {
    let kept = 0;
    let moved = 0;
    for (const shape of SHAPES) {
      const n = shape.reduce((a, b) => a * b, 1);
      const values = Array.from({ length: n }, (_, i) => i - n / 2);
      const t = tensorFromNumbers("float16", shape, values);
      for (const perm of permutations(shape.length)) {
        const got = Buffer.from(permutedBytes(t, perm));
        expect(
          got.equals(Buffer.from(movedOneByOne("float16", shape, values, perm))),
          `${shape} by ${perm}`,
        ).toBe(true);
        const same = got.equals(Buffer.from(tensorBytes(t)));
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
