import fc from "fast-check";
import type { DType } from "../../../src/ir/dtype.js";
import type { Arg } from "../../../src/ir/graph.js";
import type { OpName } from "../../../src/ops/index.js";
import { broadcastableTo, dimArb, I, Is, numel, opCase, shapeArb, T, tensor } from "../arbitraries.js";
import type { OpCase, TensorSpec } from "../harness.js";
import { type CaseSpec, spec } from "./types.js";

const anyDtype = fc.constantFrom<DType>("float32", "int64", "bool");

function onTensor(
  minRank: number,
  maxRank: number,
  build: (x: TensorSpec) => fc.Arbitrary<OpCase>,
  maxDim = 4,
) {
  return fc.tuple(shapeArb(minRank, maxRank, maxDim), anyDtype).chain(([s, d]) => tensor(s, d).chain(build));
}

/** A new shape for the same number of elements, sometimes with one -1. */
function reshapeOf(shape: readonly number[]): fc.Arbitrary<number[]> {
  const n = numel(shape);
  const divisors = [...Array(n).keys()].map((i) => i + 1).filter((d) => n % d === 0);
  return fc.tuple(fc.constantFrom(...divisors), fc.boolean(), fc.boolean()).map(([a, three, infer]) => {
    const rest = n / a;
    const out = three && rest % 2 === 0 ? [a, 2, rest / 2] : [a, rest];
    if (infer) out[out.length - 1] = -1;
    return out;
  });
}

const self = (
  op: OpName,
  extra: (x: TensorSpec) => fc.Arbitrary<Record<string, Arg>>,
  minRank = 0,
  maxRank = 4,
) => onTensor(minRank, maxRank, (x) => extra(x).map((args) => opCase(op, { self: T("x"), ...args }, { x })));

const none = () => fc.constant({});

function likeCase(op: OpName) {
  return onTensor(1, 3, (x) =>
    reshapeOf(x.shape)
      .map((s) => s.map((d) => (d === -1 ? numel(x.shape) / numel(s.filter((e) => e !== -1)) : d)))
      .chain((s) => tensor(s).map((other) => opCase(op, { self: T("x"), other: T("o") }, { x, o: other }))),
  );
}

/** Dims to squeeze: unit dims mixed with others (squeezing a non-unit dim is a no-op in PyTorch). */
const withUnitDims = (minRank: number) =>
  shapeArb(minRank, 4).chain((s) =>
    fc
      .array(fc.boolean(), { minLength: s.length, maxLength: s.length })
      .map((ones) => s.map((d, i) => (ones[i] ? 1 : d))),
  );

function squeezeCase(op: OpName, args: (rank: number) => fc.Arbitrary<Record<string, Arg>>) {
  return withUnitDims(0).chain((s) =>
    fc.tuple(tensor(s), args(s.length)).map(([x, a]) => opCase(op, { self: T("x"), ...a }, { x })),
  );
}

function permutation(rank: number): fc.Arbitrary<number[]> {
  return fc
    .shuffledSubarray([...Array(rank).keys()], { minLength: rank, maxLength: rank })
    .chain((p) =>
      fc.tuple(...p.map((d) => fc.boolean().map((neg) => (neg ? d - rank : d)))).map((x) => x as number[]),
    );
}

function expandCase(op: OpName) {
  return shapeArb(0, 3).chain((big) =>
    fc
      .tuple(broadcastableTo(big), fc.array(fc.integer({ min: 1, max: 3 }), { maxLength: 1 }))
      .chain(([small, lead]) => {
        const target = [...lead, ...big];
        return tensor(small).map((x) => {
          if (op === "aten.expand_as.default")
            return opCase(
              op,
              { self: T("x"), other: T("o") },
              { x, o: { dtype: "float32", shape: target, data: new Array(numel(target)).fill(0) } },
            );
          // -1 keeps a dim, as PyTorch allows for existing dims.
          const size = target.map((d, i) =>
            i >= target.length - small.length && small[i - (target.length - small.length)] === d && d > 1
              ? -1
              : d,
          );
          return opCase(op, { self: T("x"), size: Is(...size) }, { x });
        });
      }),
  );
}

export const SHAPE_CASES: CaseSpec[] = [
  spec(
    "aten.view.default",
    "reshape",
    self("aten.view.default", (x) => reshapeOf(x.shape).map((s) => ({ size: Is(...s) })), 1),
  ),
  spec(
    "aten._unsafe_view.default",
    "reshape",
    self("aten._unsafe_view.default", (x) => reshapeOf(x.shape).map((s) => ({ size: Is(...s) })), 1),
  ),
  spec(
    "aten.reshape.default",
    "reshape",
    self("aten.reshape.default", (x) => reshapeOf(x.shape).map((s) => ({ shape: Is(...s) })), 1),
  ),
  spec("aten.view_as.default", "reshape", likeCase("aten.view_as.default")),
  spec("aten.reshape_as.default", "reshape", likeCase("aten.reshape_as.default")),
  spec(
    "aten.flatten.using_ints",
    "reshape",
    self("aten.flatten.using_ints", (x) =>
      fc.tuple(dimArb(x.shape.length), dimArb(x.shape.length)).map(([a, b]) => {
        const r = Math.max(x.shape.length, 1);
        const [s, e] = [a < 0 ? a + r : a, b < 0 ? b + r : b];
        return s <= e ? { start_dim: I(a), end_dim: I(b) } : { start_dim: I(b), end_dim: I(a) };
      }),
    ),
  ),
  spec(
    "aten.unflatten.int",
    "reshape",
    self(
      "aten.unflatten.int",
      (x) =>
        dimArb(x.shape.length).chain((d) =>
          reshapeOf([x.shape[d < 0 ? d + x.shape.length : d]]).map((sizes) => ({
            dim: I(d),
            sizes: Is(...sizes),
          })),
        ),
      1,
    ),
  ),
  spec(
    "aten.unsqueeze.default",
    "reshape",
    self("aten.unsqueeze.default", (x) => dimArb(x.shape.length + 1).map((d) => ({ dim: I(d) }))),
  ),
  spec(
    "aten.squeeze.default",
    "reshape",
    squeezeCase("aten.squeeze.default", () => none()),
  ),
  spec(
    "aten.squeeze.dim",
    "reshape",
    squeezeCase("aten.squeeze.dim", (r) => dimArb(r).map((d) => ({ dim: I(d) }))),
  ),
  spec(
    "aten.squeeze.dims",
    "reshape",
    squeezeCase("aten.squeeze.dims", (r) =>
      fc
        .uniqueArray(fc.integer({ min: 0, max: Math.max(r, 1) - 1 }), { maxLength: r })
        .map((d) => ({ dim: Is(...d) })),
    ),
  ),
  ...(["alias", "detach", "lift_fresh_copy", "clone", "contiguous"] as const).map((op) =>
    spec(`aten.${op}.default`, "reshape", self(`aten.${op}.default`, none)),
  ),
  spec(
    "aten.permute.default",
    "permute",
    self("aten.permute.default", (x) => permutation(x.shape.length).map((p) => ({ dims: Is(...p) }))),
  ),
  spec(
    "aten.transpose.int",
    "transpose",
    self("aten.transpose.int", (x) =>
      fc.tuple(dimArb(x.shape.length), dimArb(x.shape.length)).map(([a, b]) => ({ dim0: I(a), dim1: I(b) })),
    ),
  ),
  spec(
    "aten.swapaxes.default",
    "transpose",
    self("aten.swapaxes.default", (x) =>
      fc
        .tuple(dimArb(x.shape.length), dimArb(x.shape.length))
        .map(([a, b]) => ({ axis0: I(a), axis1: I(b) })),
    ),
  ),
  spec(
    "aten.swapdims.default",
    "transpose",
    self("aten.swapdims.default", (x) =>
      fc.tuple(dimArb(x.shape.length), dimArb(x.shape.length)).map(([a, b]) => ({ dim0: I(a), dim1: I(b) })),
    ),
  ),
  spec("aten.t.default", "transpose", self("aten.t.default", none, 0, 2)),
  spec("aten.expand.default", "broadcast", expandCase("aten.expand.default")),
  spec("aten.expand_as.default", "broadcast", expandCase("aten.expand_as.default")),
  spec(
    "aten.copy.default",
    "copy",
    shapeArb(0, 3).chain((s) =>
      fc
        .tuple(broadcastableTo(s), anyDtype, anyDtype)
        .chain(([b, d1, d2]) =>
          fc
            .tuple(tensor(s, d1), tensor(b, d2))
            .map(([x, src]) => opCase("aten.copy.default", { self: T("x"), src: T("s") }, { x, s: src })),
        ),
    ),
  ),
];
