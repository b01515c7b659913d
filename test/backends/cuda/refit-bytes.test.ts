// refit uploads a constant's own bytes, unpermuted, when its layout only moves axes of size 1 (1×1 conv weights
// stored channels-last): that must be exactly what permuting them element by element gives, for every axis order.
import { describe, expect, it } from "vitest";
import { keepsElementOrder, permutedBytes } from "../../../src/backends/cuda/permute-bytes.js";
import { tensorBytes, tensorFromNumbers } from "../../../src/ir/tensor.js";

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
      const t = tensorFromNumbers(
        "float16",
        shape,
        Array.from({ length: n }, (_, i) => i - n / 2),
      );
      for (const perm of permutations(shape.length)) {
        const same = Buffer.from(permutedBytes(t, perm)).equals(Buffer.from(tensorBytes(t)));
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
