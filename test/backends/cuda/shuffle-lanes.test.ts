// Shuffles in vector mode (codegen/element.ts shuffleLaneAxis / shuffleValue): which shuffles keep a thread's V lanes
// consecutive in their input, so the input is read with one wide load (the patch copy of a ViT stem: 8 fp32 pixels
// per 32-byte load), and which fall back to one load per lane. The numbers of such kernels are checked on the
// emulated engine by patchify.test.ts and swin-ops.test.ts.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { shuffleLaneAxis } from "../../../src/backends/cuda/codegen/element.js";
import { planCudaEngine } from "../../../src/backends/cuda/plan.js";
import { NetMaker, randomTensor, rng } from "../../../src/backends/cuda/testing/nets.js";
import { convertGraph } from "../../../src/converters/index.js";
import { toFloat64Array } from "../../../src/ir/tensor.js";
import type { LayerOf } from "../../../src/network/layers/index.js";
import { runNetworkReference } from "../../../src/network/reference/index.js";
import { defaultPipeline, runPipeline } from "../../../src/passes/pipeline.js";
import { AtenGraph, Is } from "./aten-graph.js";
import { emulateEngine, hasGxx } from "./emulate.js";

const shuffle = (s: Partial<LayerOf<"shuffle">>): LayerOf<"shuffle"> =>
  ({
    type: "shuffle",
    name: "s",
    output: "s",
    inputs: ["x"],
    firstTranspose: null,
    reshape: null,
    secondTranspose: null,
    ...s,
  }) as LayerOf<"shuffle">;

/** A ViT patch copy: x [n, c, H, W] → [n, H/p, W/q, c, p, q]. */
const patches = (n: number, c: number, hw: number, p: number) =>
  shuffle({ reshape: [n, c, hw / p, p, hw / p, p], secondTranspose: [0, 2, 4, 1, 3, 5] });

describe("shuffles whose lanes stay consecutive in the input", () => {
  it("maps a patch copy's last axis onto the image's rows when the patch width is a multiple of V", () => {
    expect(shuffleLaneAxis(patches(2, 3, 224, 16), [2, 3, 224, 224], 5, 8)).toBe(3);
    expect(shuffleLaneAxis(patches(2, 3, 32, 8), [2, 3, 32, 32], 5, 8)).toBe(3);
    // 4-pixel patches (Swin): a chunk of 8 lanes would span two patches
    expect(shuffleLaneAxis(patches(2, 3, 32, 4), [2, 3, 32, 32], 5, 8)).toBeUndefined();
    // any axis but the last goes through the reshape with a stride
    expect(shuffleLaneAxis(patches(2, 3, 224, 16), [2, 3, 224, 224], 4, 8)).toBeUndefined();
  });

  it("follows transposes without a reshape, and refuses a reshape whose rows are not multiples of V", () => {
    expect(shuffleLaneAxis(shuffle({ firstTranspose: [0, 2, 3, 1] }), [2, 16, 5, 5], 3, 8)).toBe(1);
    expect(shuffleLaneAxis(shuffle({ secondTranspose: [0, 2, 1] }), [4, 8, 16], 1, 8)).toBe(2);
    expect(shuffleLaneAxis(shuffle({ reshape: [2, 12, 10] }), [2, 10, 12], 2, 8)).toBeUndefined();
    expect(shuffleLaneAxis(shuffle({ reshape: [2, 15, 8] }), [2, 10, 12], 2, 8)).toBeUndefined();
    expect(shuffleLaneAxis(shuffle({ reshape: [2, 5, 16] }), [2, 10, 8], 2, 8)).toBe(2);
  });

  it("reads a ViT stem's image 8 pixels per load and writes 8 halves per store", () => {
    const g = new AtenGraph();
    const x = g.input("x", [2, 3, 32, 32]);
    const conv = g.node("aten.convolution.default", {
      input: x,
      weight: g.weight("w", [16, 3, 8, 8], { lo: -0.1, hi: 0.1 }),
      bias: { kind: "none" },
      stride: Is([8, 8]),
      padding: Is([0, 0]),
      dilation: Is([1, 1]),
      transposed: { kind: "bool", value: false },
      output_padding: Is([0, 0]),
      groups: { kind: "int", value: 1 },
    });
    const lowered = runPipeline(g.build(conv), defaultPipeline({ enabledPrecisions: ["float16"] })).graph;
    const plan = planCudaEngine(convertGraph(lowered), { precision: "fp16" });
    const copy = plan.kernels[0]?.source ?? "";
    expect(copy).toMatch(/float vl\d+\[8\]/);
    expect(copy).toContain("for (int q = 0; q < 2; ++q) dst[q] = src[q]");
    expect(plan.kernels[0]?.grid[0]).toBe(Math.ceil((2 * 3 * 32 * 32) / 8 / 256));
  });
});

/** Splits and merges of adjacent axes: a reshape a model could ask for (the product is kept). */
function reshapeOf(shape: readonly number[], ops: readonly number[]): number[] {
  let s = [...shape];
  for (const op of ops) {
    const at = op % Math.max(1, s.length - 1);
    if (op % 3 === 0 && s.length > 1) s = [...s.slice(0, at), s[at] * s[at + 1], ...s.slice(at + 2)];
    else {
      const d = s[at];
      const f = [8, 4, 2, 3].find((k) => d % k === 0 && d > k);
      if (f !== undefined && s.length < 6) s = [...s.slice(0, at), d / f, f, ...s.slice(at + 1)];
    }
  }
  return s;
}

const perm = (n: number) => fc.shuffledSubarray([...Array(n).keys()], { minLength: n, maxLength: n });

const shuffleCase = fc
  .record({
    shape: fc.array(fc.constantFrom<number>(1, 2, 3, 4, 8, 16), { minLength: 3, maxLength: 4 }),
    dtype: fc.constantFrom("float16" as const, "float32" as const),
    ops: fc.array(fc.nat(11), { maxLength: 3 }),
    first: fc.boolean(),
    second: fc.boolean(),
    seed: fc.nat(1000),
  })
  .filter((c) => c.shape.reduce((a, b) => a * b, 1) <= 4096)
  .chain((c) => {
    const rank = c.shape.length;
    return fc.record({
      c: fc.constant(c),
      firstTranspose: c.first ? perm(rank) : fc.constant(null),
      // the second transpose's rank is the reshape's, known once the first is drawn: drawn as a key, applied below
      secondKey: fc.nat(1000),
    });
  });

/** A patch copy with random sizes: x [n, c, hp·p, wq·q] → [n, c, hp, p, wq, q] → a permutation of those axes. */
const patchCase = fc.record({
  n: fc.constantFrom(1, 2),
  c: fc.constantFrom(1, 3, 4),
  hp: fc.constantFrom(1, 2, 3),
  p: fc.constantFrom(2, 4),
  wq: fc.constantFrom(1, 2, 3),
  q: fc.constantFrom(4, 8, 16, 24),
  order: fc.constantFrom([0, 2, 4, 1, 3, 5], [0, 2, 4, 3, 1, 5], [0, 4, 2, 1, 3, 5], [0, 2, 1, 4, 5, 3]),
  dtype: fc.constantFrom("float16" as const, "float32" as const),
  seed: fc.nat(1000),
});

/** The emulated engine's output for relu(shuffle(x)) against the reference's (exact: no arithmetic rounds). */
function checkShuffle(
  dtype: "float16" | "float32",
  seed: number,
  shape: readonly number[],
  spec: Pick<LayerOf<"shuffle">, "firstTranspose" | "reshape" | "secondTranspose">,
  /** A second shuffle after the first (a reshape that merges what the first made, as a patch copy's rows do). */
  then?: Pick<LayerOf<"shuffle">, "firstTranspose" | "reshape" | "secondTranspose">,
): boolean {
  const m = new NetMaker(seed, dtype);
  const x = m.input("x", [...shape]);
  let s = m.b.add({ type: "shuffle", inputs: [x], ...spec });
  if (then) s = m.b.add({ type: "shuffle", inputs: [s], ...then });
  const net = m.build([m.act(s, { kind: "relu" } as never)]);
  const input = randomTensor(rng(seed), dtype, [...shape], 2);
  const want = runNetworkReference(net, { x: input })[0];
  const run = emulateEngine(net, { x: input }, { precision: dtype === "float16" ? "fp16" : "fp32" });
  expect(Array.from(toFloat64Array(run.outputs[0]))).toEqual(Array.from(toFloat64Array(want)));
  // whether some element kernel read through a shuffle with wide loads
  return run.plan.steps.some(
    (st, i) =>
      st.kind === "element" &&
      st.group.layers.some((l) => l.type === "shuffle") &&
      /(float|__half) vl\d+\[/.test(run.plan.kernels[i]?.source ?? ""),
  );
}

describe.skipIf(!hasGxx())("shuffles on the emulated engine, lanes or not", () => {
  it("random transposes and reshapes compute exactly what the reference computes (fp16 and fp32)", () => {
    fc.assert(
      fc.property(shuffleCase, ({ c, firstTranspose, secondKey }) => {
        const y1 = firstTranspose ? firstTranspose.map((p) => c.shape[p]) : c.shape;
        const reshape = c.ops.length ? reshapeOf(y1, c.ops) : null;
        const r = (reshape ?? y1).length;
        let secondTranspose: number[] | null = null;
        if (c.second) {
          // a deterministic permutation of r axes from the drawn key (rotate, then swap a pair)
          secondTranspose = [...Array(r).keys()].map((i) => (i + secondKey) % r);
          const [a, b] = [secondKey % r, (secondKey >> 3) % r];
          [secondTranspose[a], secondTranspose[b]] = [secondTranspose[b], secondTranspose[a]];
        }
        checkShuffle(c.dtype, c.seed, c.shape, { firstTranspose, reshape, secondTranspose });
      }),
      { numRuns: 40, seed: 18 },
    );
  }, 300_000);

  it("patch copies of random sizes compute exactly what the reference computes, most through wide loads", () => {
    let wide = 0;
    fc.assert(
      fc.property(patchCase, (k) => {
        const shape = [k.n, k.c, k.hp * k.p, k.wq * k.q];
        const dims = [k.n, k.c, k.hp, k.p, k.wq, k.q];
        const permuted = k.order.map((a) => dims[a]);
        // the permuted patches as rows: [n, a·b, c·d·e] over the permuted axes (a copy, not a view)
        const rows = [permuted[0], permuted[1] * permuted[2], permuted[3] * permuted[4] * permuted[5]];
        const first = { firstTranspose: null, reshape: dims, secondTranspose: k.order };
        if (
          checkShuffle(k.dtype, k.seed, shape, first, {
            firstTranspose: null,
            reshape: rows,
            secondTranspose: null,
          })
        )
          wide++;
      }),
      { numRuns: 40, seed: 18 },
    );
    // the property reaches wide loads through a shuffle, not only the lane-by-lane fallback
    expect(wide).toBeGreaterThan(5);
  }, 300_000);
});
