import fc from "fast-check";
import type { DType } from "../../../src/ir/dtype.js";
import type { Arg } from "../../../src/ir/graph.js";
import type { OpName } from "../../../src/ops/index.js";
import { broadcastPair, F, I, opCase, shapeArb, T, tensor } from "../arbitraries.js";
import type { TensorSpec } from "../harness.js";
import { type CaseSpec, spec } from "./types.js";

// Small integer-valued floats make ties (==, <=) common, which is where comparisons go wrong.
const tieRange = { min: -2, max: 2 };
const tieFloats = (shape: number[], d: DType) =>
  tensor(shape, d, tieRange).map((t) =>
    d === "float32" ? { ...t, data: t.data.map((v) => Math.round(v * 2) / 2) } : t,
  );

function cmpTensor(op: OpName, dtypes: DType[][]) {
  return fc
    .tuple(broadcastPair(), fc.constantFrom(...dtypes))
    .chain(([[sa, sb], [da, db]]) =>
      fc
        .tuple(tieFloats(sa, da), tieFloats(sb, db))
        .map(([x, y]) => opCase(op, { self: T("x"), other: T("y") }, { x, y })),
    );
}

function cmpScalar(op: OpName) {
  return fc
    .tuple(shapeArb(0, 4), fc.constantFrom<DType>("float32", "int64"), fc.constantFrom(-1, 0, 0.5, 1, 2))
    .chain(([s, d, v]) =>
      tieFloats(s, d).map((x) =>
        opCase(op, { self: T("x"), other: Number.isInteger(v) ? I(v) : F(v) }, { x }),
      ),
    );
}

const PAIRS: DType[][] = [
  ["float32", "float32"],
  ["int64", "int64"],
  ["int32", "float32"],
  ["bool", "int64"],
];

function whereCase(op: OpName, selfScalar: boolean, otherScalar: boolean) {
  return shapeArb(0, 3).chain((s) =>
    fc
      .tuple(tensor(s, "bool"), tensor(s, "float32"), tensor(s, "float32"), fc.constantFrom(-1, 2.5))
      .map(([c, x, y, v]) => {
        const tensors: Record<string, TensorSpec> = { c };
        const arg = (name: string, t: TensorSpec, scalar: boolean): Arg => {
          if (scalar) return Number.isInteger(v) ? I(v) : F(v);
          tensors[name] = t;
          return T(name);
        };
        return opCase(
          op,
          { condition: T("c"), self: arg("x", x, selfScalar), other: arg("y", y, otherScalar) },
          tensors,
        );
      }),
  );
}

function maskedFill(op: OpName, tensorValue: boolean) {
  return broadcastPair(1)
    .chain(([s, m]) =>
      fc
        .tuple(tensor(s), tensor(m, "bool"), fc.double({ min: -3, max: 3, noNaN: true }).map(Math.fround))
        .map(([x, mask, v]) => {
          const tensors: Record<string, TensorSpec> = { x, m: mask };
          if (tensorValue) tensors.v = { dtype: "float32", shape: [], data: [v] };
          return opCase(op, { self: T("x"), mask: T("m"), value: tensorValue ? T("v") : F(v) }, tensors);
        }),
    )
    .filter((c) => broadcastsInto(c.tensors.m.shape, c.tensors.x.shape));
}

function broadcastsInto(small: readonly number[], big: readonly number[]): boolean {
  if (small.length > big.length) return false;
  return small.every((d, i) => d === 1 || d === big[big.length - small.length + i]);
}

export const COMPARE_CASES: CaseSpec[] = [
  ...(["eq", "ne", "lt", "le", "gt", "ge"] as const).flatMap((op) => [
    spec(`aten.${op}.Tensor`, op, cmpTensor(`aten.${op}.Tensor`, PAIRS)),
    spec(`aten.${op}.Scalar`, op, cmpScalar(`aten.${op}.Scalar`)),
  ]),
  ...(["and", "or", "xor"] as const).map((op) =>
    spec(
      `aten.logical_${op}.default`,
      `logical_${op}`,
      cmpTensor(`aten.logical_${op}.default`, [
        ["bool", "bool"],
        ["float32", "int64"],
      ]),
    ),
  ),
  spec("aten.where.self", "where", whereCase("aten.where.self", false, false)),
  spec("aten.where.ScalarOther", "where", whereCase("aten.where.ScalarOther", false, true)),
  spec("aten.where.ScalarSelf", "where", whereCase("aten.where.ScalarSelf", true, false)),
  spec("aten.where.Scalar", "where", whereCase("aten.where.Scalar", true, true)),
  spec("aten.masked_fill.Scalar", "masked_fill", maskedFill("aten.masked_fill.Scalar", false)),
  spec("aten.masked_fill.Tensor", "masked_fill", maskedFill("aten.masked_fill.Tensor", true)),
];
