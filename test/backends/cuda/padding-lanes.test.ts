// Padding in element kernels' vector mode (codegen/element.ts: each lane clamps and tests its own coords; a lane
// axis without padding keeps its lanes for one wide load): random paddings of every mode, on any axis, fp16 and fp32,
// on the emulated engine against the reference (exact: no arithmetic rounds), most of them vectorized.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { NetMaker, randomTensor, rng } from "../../../src/backends/cuda/testing/nets.js";
import { toFloat64Array } from "../../../src/ir/tensor.js";
import { runNetworkReference } from "../../../src/network/reference/index.js";
import { emulateEngine, hasGxx } from "./emulate.js";

const padCase = fc.record({
  shape: fc.tuple(
    fc.constantFrom(1, 2),
    fc.constantFrom(3, 8, 16),
    fc.constantFrom(4, 5, 8),
    fc.constantFrom(4, 8, 12),
  ),
  pre: fc.tuple(fc.constant(0), fc.nat(3), fc.nat(3), fc.nat(3)),
  post: fc.tuple(fc.constant(0), fc.nat(5), fc.nat(3), fc.nat(4)),
  mode: fc.constantFrom("constant" as const, "reflect" as const, "replicate" as const, "circular" as const),
  dtype: fc.constantFrom("float16" as const, "float32" as const),
  channelsLast: fc.boolean(),
  seed: fc.nat(1000),
});

describe.skipIf(!hasGxx())("padding on the emulated engine, lanes or not", () => {
  it("computes exactly what the reference computes for random paddings of every mode", () => {
    let wide = 0;
    fc.assert(
      fc.property(padCase, (k) => {
        // reflect and circular pads must stay within the axis (the layer's shape rule)
        const fits = (d: number, a: number, b: number) =>
          k.mode === "reflect" ? a < d && b < d : k.mode === "circular" ? a <= d && b <= d : true;
        fc.pre(k.shape.every((d, i) => fits(d, k.pre[i], k.post[i])));
        const m = new NetMaker(k.seed, k.dtype);
        const x = m.input("x", [...k.shape]);
        const p = m.b.add({
          type: "padding",
          inputs: [x],
          pre: k.pre,
          post: k.post,
          mode: k.mode,
          value: 0.75,
        });
        const net = m.build([m.act(p, { kind: "relu" } as never)]);
        const input = randomTensor(rng(k.seed), k.dtype, [...k.shape], 2);
        const want = runNetworkReference(net, { x: input })[0];
        const precision = k.dtype === "float16" ? "fp16" : "fp32";
        const run = emulateEngine(net, { x: input }, { precision, channelsLast: k.channelsLast });
        expect(Array.from(toFloat64Array(run.outputs[0]))).toEqual(Array.from(toFloat64Array(want)));
        if (run.plan.kernels.some((kk) => /(float|__half) vs\d+\[/.test(kk?.source ?? ""))) wide++;
      }),
      { numRuns: 40, seed: 18 },
    );
    expect(wide).toBeGreaterThan(5);
  }, 300_000);
});
