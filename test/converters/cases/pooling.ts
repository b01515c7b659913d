import fc from "fast-check";
import type { Arg } from "../../../src/ir/graph.js";
import type { OpName } from "../../../src/ops/index.js";
import { B, I, Is, NONE, opCase, T, tensor } from "../arbitraries.js";
import { type CaseSpec, spec } from "./types.js";

const two = (lo: number, hi: number) =>
  fc.tuple(fc.integer({ min: lo, max: hi }), fc.integer({ min: lo, max: hi }));

function poolCase(op: OpName, avg: boolean, unusedIndices = false) {
  return fc
    .record({
      lead: fc.constantFrom([1, 2], [2], [1, 1]),
      k: two(1, 3),
      s: fc.option(two(1, 3), { nil: null }),
      p: two(0, 1),
      d: avg ? fc.constant<[number, number]>([1, 1]) : two(1, 2),
      extra: two(0, 3),
      ceil: fc.boolean(),
      countIncludePad: fc.boolean(),
      divisor: fc.option(fc.integer({ min: 1, max: 5 }), { nil: null }),
    })
    .map((g) => ({ ...g, p: g.p.map((p, i) => Math.min(p, Math.floor(g.k[i] / 2))) as [number, number] }))
    .chain((g) => {
      const size = g.k.map((k, i) => Math.max(1, g.d[i] * (k - 1) + 1 - 2 * g.p[i]) + g.extra[i]);
      return tensor([...g.lead, ...size], "float32", { min: -4, max: 4 }).map((x) => {
        const args: Record<string, Arg> = {
          self: T("x"),
          kernel_size: Is(...g.k),
          stride: g.s ? Is(...g.s) : Is(),
          padding: Is(...g.p),
        };
        if (!avg) args.dilation = Is(...g.d);
        args.ceil_mode = B(g.ceil);
        if (avg) {
          args.count_include_pad = B(g.countIncludePad);
          args.divisor_override = g.divisor === null ? NONE : I(g.divisor);
        }
        return opCase(op, args, { x }, unusedIndices ? [1] : undefined);
      });
    });
}

function adaptiveCase(op: OpName) {
  return fc
    .tuple(fc.constantFrom([1, 2], [2], [1, 1]), two(1, 6), two(1, 4))
    .chain(([lead, size, out]) =>
      tensor([...lead, ...size]).map((x) => opCase(op, { self: T("x"), output_size: Is(...out) }, { x })),
    );
}

export const POOLING_CASES: CaseSpec[] = [
  spec("aten.max_pool2d.default", "max-pool", poolCase("aten.max_pool2d.default", false)),
  spec(
    "aten.max_pool2d_with_indices.default",
    "max-pool",
    poolCase("aten.max_pool2d_with_indices.default", false, true),
  ),
  spec("aten.avg_pool2d.default", "avg-pool", poolCase("aten.avg_pool2d.default", true)),
  spec(
    "aten.adaptive_avg_pool2d.default",
    "adaptive-avg-pool",
    adaptiveCase("aten.adaptive_avg_pool2d.default"),
  ),
  spec(
    "aten._adaptive_avg_pool2d.default",
    "adaptive-avg-pool",
    adaptiveCase("aten._adaptive_avg_pool2d.default"),
  ),
];
