import fc from "fast-check";
import type { DType } from "../../../src/ir/dtype.js";
import { dimArb, I, Is, NONE, opCase, shapeArb, T, tensor } from "../arbitraries.js";
import type { OpCase, TensorSpec } from "../harness.js";
import { type CaseSpec, spec } from "./types.js";

const dtypeArb = fc.constantFrom<DType>("float32", "int32", "bool");

function withTensor(
  minRank: number,
  build: (x: TensorSpec, axis: (d: number) => number) => fc.Arbitrary<OpCase>,
  maxRank = 4,
) {
  return fc
    .tuple(shapeArb(minRank, maxRank), dtypeArb)
    .chain(([s, d]) => tensor(s, d).chain((x) => build(x, (dim) => (dim < 0 ? dim + s.length : dim))));
}

const bound = (size: number) => fc.option(fc.integer({ min: -size - 2, max: size + 2 }), { nil: null });

function sizesSumming(n: number): fc.Arbitrary<number[]> {
  return fc.array(fc.integer({ min: 0, max: n }), { maxLength: 3 }).map((cuts) => {
    const points = [0, ...cuts.sort((a, b) => a - b), n];
    return points.slice(1).map((p, i) => p - points[i]);
  });
}

export const SLICING_CASES: CaseSpec[] = [
  spec(
    "aten.slice.Tensor",
    "slice",
    withTensor(1, (x, axis) =>
      dimArb(x.shape.length).chain((d) =>
        fc
          .tuple(bound(x.shape[axis(d)]), bound(x.shape[axis(d)]), fc.integer({ min: 1, max: 3 }))
          .map(([s, e, st]) =>
            opCase(
              "aten.slice.Tensor",
              {
                self: T("x"),
                dim: I(d),
                start: s === null ? NONE : I(s),
                end: e === null ? NONE : I(e),
                step: I(st),
              },
              { x },
            ),
          ),
      ),
    ),
  ),
  spec(
    "aten.narrow.default",
    "slice",
    withTensor(1, (x, axis) =>
      dimArb(x.shape.length).chain((d) => {
        const n = x.shape[axis(d)];
        return fc
          .integer({ min: 0, max: n })
          .chain((start) =>
            fc
              .tuple(fc.integer({ min: 0, max: n - start }), fc.boolean())
              .map(([len, neg]) =>
                opCase(
                  "aten.narrow.default",
                  { self: T("x"), dim: I(d), start: I(neg && start < n ? start - n : start), length: I(len) },
                  { x },
                ),
              ),
          );
      }),
    ),
  ),
  spec(
    "aten.select.int",
    "select",
    withTensor(1, (x, axis) =>
      dimArb(x.shape.length).chain((d) => {
        const n = x.shape[axis(d)];
        return fc
          .integer({ min: -n, max: n - 1 })
          .map((i) => opCase("aten.select.int", { self: T("x"), dim: I(d), index: I(i) }, { x }));
      }),
    ),
  ),
  spec(
    "aten.split.Tensor",
    "split",
    withTensor(1, (x, axis) =>
      dimArb(x.shape.length).chain((d) =>
        fc
          .integer({ min: 1, max: Math.max(1, x.shape[axis(d)]) })
          .map((k) => opCase("aten.split.Tensor", { self: T("x"), split_size: I(k), dim: I(d) }, { x })),
      ),
    ),
  ),
  ...(["aten.split.sizes", "aten.split_with_sizes.default"] as const).map((op) =>
    spec(
      op,
      "split",
      withTensor(1, (x, axis) =>
        dimArb(x.shape.length).chain((d) =>
          sizesSumming(x.shape[axis(d)]).map((sizes) =>
            opCase(
              op,
              {
                self: T("x"),
                [op === "aten.split.sizes" ? "split_size" : "split_sizes"]: Is(...sizes),
                dim: I(d),
              },
              { x },
            ),
          ),
        ),
      ),
    ),
  ),
  spec(
    "aten.chunk.default",
    "split",
    withTensor(1, (x) =>
      fc
        .tuple(fc.integer({ min: 1, max: 4 }), dimArb(x.shape.length))
        .map(([c, d]) => opCase("aten.chunk.default", { self: T("x"), chunks: I(c), dim: I(d) }, { x })),
    ),
  ),
  spec(
    "aten.unbind.int",
    "unbind",
    withTensor(1, (x) =>
      dimArb(x.shape.length).map((d) => opCase("aten.unbind.int", { self: T("x"), dim: I(d) }, { x })),
    ),
  ),
  spec(
    "aten.flip.default",
    "flip",
    withTensor(0, (x) =>
      fc
        .uniqueArray(fc.integer({ min: 0, max: Math.max(x.shape.length, 1) - 1 }), {
          maxLength: x.shape.length,
        })
        .map((dims) => opCase("aten.flip.default", { self: T("x"), dims: Is(...dims) }, { x })),
    ),
  ),
  spec(
    "aten.roll.default",
    "roll",
    withTensor(1, (x) =>
      fc.oneof(
        fc
          .integer({ min: -7, max: 7 })
          .map((k) => opCase("aten.roll.default", { self: T("x"), shifts: Is(k), dims: Is() }, { x })),
        fc
          .uniqueArray(fc.integer({ min: 0, max: x.shape.length - 1 }), {
            minLength: 1,
            maxLength: x.shape.length,
          })
          .chain((dims) =>
            fc
              .array(fc.integer({ min: -5, max: 5 }), { minLength: dims.length, maxLength: dims.length })
              .map((shifts) =>
                opCase(
                  "aten.roll.default",
                  { self: T("x"), shifts: Is(...shifts), dims: Is(...dims) },
                  { x },
                ),
              ),
          ),
      ),
    ),
  ),
  spec(
    "aten.repeat.default",
    "repeat",
    withTensor(
      0,
      (x) =>
        fc
          .array(fc.integer({ min: 1, max: 3 }), { minLength: x.shape.length, maxLength: x.shape.length + 1 })
          .map((r) => opCase("aten.repeat.default", { self: T("x"), repeats: Is(...r) }, { x })),
      3,
    ),
  ),
];
