// A reshape of permuted memory as a view (plan/tensors.ts reshapeViewLayout): whenever it gives a layout, every
// element of the reshaped tensor must sit at the byte offset it had before; and it must find the views that
// exist, such as a channels-last conv output's flatten(2) (ViT's patch embedding).
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { channelsLast, identityLayout, layoutStrides } from "../../../src/backends/cuda/plan/layout.js";
import { reshapeViewLayout } from "../../../src/backends/cuda/plan/tensors.js";

const numel = (s: readonly number[]) => s.reduce((p, d) => p * d, 1);

/** Offset of each element, in the row-major order of the logical tensor. */
function offsets(shape: readonly number[], layout: readonly number[]): number[] {
  const st = layoutStrides(shape, layout);
  const out: number[] = [];
  for (let k = 0; k < numel(shape); k++) {
    let rest = k;
    let off = 0;
    for (let a = shape.length - 1; a >= 0; a--) {
      off += (rest % shape[a]) * st[a];
      rest = Math.floor(rest / shape[a]);
    }
    out.push(off);
  }
  return out;
}

/** A random reshape target of `shape`: its dims merged at random, some split again, size-1 axes sprinkled. */
const reshapeOf = (shape: number[]) =>
  fc.array(fc.boolean(), { minLength: shape.length, maxLength: shape.length }).chain((cuts) => {
    const merged: number[] = [];
    shape.forEach((d, i) => {
      if (i > 0 && cuts[i]) merged[merged.length - 1] *= d;
      else merged.push(d);
    });
    return fc
      .array(fc.boolean(), { minLength: merged.length, maxLength: merged.length })
      .map((ones) => merged.flatMap((d, i) => (ones[i] ? [d, 1] : [d])));
  });

const shapeAndLayout = fc
  .array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 5 })
  .chain((shape) =>
    fc.tuple(
      fc.constant(shape),
      fc.shuffledSubarray(identityLayout(shape.length), { minLength: shape.length }),
    ),
  );

describe("reshape of permuted memory as a view", () => {
  it("keeps every element at its offset whenever it gives a layout (property)", () => {
    let found = 0;
    fc.assert(
      fc.property(
        shapeAndLayout.chain(([s, l]) => fc.tuple(fc.constant(s), fc.constant(l), reshapeOf(s))),
        ([shape, layout, to]) => {
          const got = reshapeViewLayout(shape, layout, to);
          if (!got) return;
          found++;
          expect([...got].sort((a, b) => a - b)).toEqual(identityLayout(to.length));
          expect(offsets(to, got)).toEqual(offsets(shape, layout));
        },
      ),
      { numRuns: 400 },
    );
    expect(found).toBeGreaterThan(100);
  });

  it("makes ViT's patch-embedding flatten of a channels-last conv output a view, and refuses a real relayout", () => {
    // [B, C, H, W] channels-last → flatten(2) → [B, C, H·W], stored as [B, H·W, C]
    expect(reshapeViewLayout([2, 192, 14, 14], channelsLast(4), [2, 192, 196])).toEqual([0, 2, 1]);
    // merging C with H is not contiguous in channels-last memory
    expect(reshapeViewLayout([2, 192, 14, 14], channelsLast(4), [2, 192 * 14, 14])).toBeUndefined();
    // row-major memory: any reshape
    expect(reshapeViewLayout([2, 3, 4], [0, 1, 2], [6, 4])).toEqual([0, 1]);
    expect(reshapeViewLayout([2, 3, 4], [0, 1, 2], [5, 5])).toBeUndefined();
  });
});
