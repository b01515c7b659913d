import fc from "fast-check";
import type { DType } from "../../../src/ir/dtype.js";
import type { Arg } from "../../../src/ir/graph.js";
import type { OpName } from "../../../src/ops/index.js";
import { B, D, dimArb, I, Is, NONE, opCase, shapeArb, T, tensor } from "../arbitraries.js";
import { type CaseSpec, spec } from "./types.js";

/** Distinct dims of a rank (mixing negative spellings), possibly empty. */
function dimsArb(rank: number, minLength = 0): fc.Arbitrary<number[]> {
  if (rank === 0) return fc.constantFrom<number[]>([], [0], [-1]).filter((d) => d.length >= minLength);
  return fc
    .subarray([...Array(rank).keys()], { minLength: Math.min(minLength, rank) })
    .chain((ds) => fc.tuple(...ds.map((d) => fc.boolean().map((neg) => (neg ? d - rank : d)))))
    .map((ds) => ds as number[]);
}

function reduceCase(
  op: OpName,
  kind: "all" | "list" | "one",
  dtypes: DType[],
  withDtype = false,
  range = {},
) {
  return fc
    .tuple(shapeArb(kind === "one" ? 1 : 0, 4), fc.constantFrom(...dtypes), fc.boolean())
    .chain(([s, d, keep]) =>
      fc.tuple(tensor(s, d, range), dimsArb(s.length), dimArb(s.length)).map(([x, dims, one]) => {
        const args: Record<string, Arg> = { self: T("x") };
        if (kind === "list") Object.assign(args, { dim: Is(...dims), keepdim: B(keep) });
        if (kind === "one") Object.assign(args, { dim: I(one), keepdim: B(keep) });
        if (withDtype && d === "float32") args.dtype = D("float32");
        return opCase(op, args, { x });
      }),
    );
}

const NUM: DType[] = ["float32", "int32", "int64"];
const r = (
  op: string,
  converter: string,
  kind: "all" | "list" | "one",
  dtypes: DType[],
  withDtype = false,
  range = {},
) => spec(op as OpName, converter, reduceCase(op as OpName, kind, dtypes, withDtype, range));

function argCase(op: OpName) {
  return fc.tuple(shapeArb(0, 4), fc.boolean(), fc.boolean()).chain(([s, keep, all]) =>
    fc
      .tuple(
        tensor(s, "float32", { min: -2, max: 2 }).map((t) => ({
          ...t,
          data: t.data.map((v) => Math.round(v)),
        })),
        dimArb(s.length),
      )
      .map(([x, d]) => opCase(op, { self: T("x"), dim: all ? NONE : I(d), keepdim: B(keep) }, { x })),
  );
}

function maxDimCase(op: OpName) {
  return fc.tuple(shapeArb(0, 4), fc.boolean()).chain(([s, keep]) =>
    fc
      .tuple(
        tensor(s, "float32", { min: -2, max: 2 }).map((t) => ({
          ...t,
          data: t.data.map((v) => Math.round(v)),
        })),
        dimArb(s.length),
      )
      .map(([x, d]) => opCase(op, { self: T("x"), dim: I(d), keepdim: B(keep) }, { x })),
  );
}

function varCase(op: OpName, flavour: "correction" | "dim" | "all") {
  return fc
    .tuple(shapeArb(1, 4), fc.boolean(), fc.constantFrom(0, 1, 2), fc.boolean())
    .chain(([s, keep, corr, unbiased]) =>
      fc.tuple(tensor(s), dimsArb(s.length, 1)).map(([x, dims]) => {
        const args: Record<string, Arg> = { self: T("x") };
        if (flavour === "correction")
          Object.assign(args, { dim: Is(...dims), correction: I(corr), keepdim: B(keep) });
        if (flavour === "dim")
          Object.assign(args, { dim: Is(...dims), unbiased: B(unbiased), keepdim: B(keep) });
        if (flavour === "all") args.unbiased = B(unbiased);
        return opCase(op, args, { x });
      }),
    )
    .filter((c) => {
      // Keep N − correction > 0, where PyTorch's result is finite.
      const shape = c.tensors.x.shape;
      const dimArg = c.args.dim;
      const dims = dimArg?.kind === "ints" && dimArg.value.length > 0 ? dimArg.value : shape.map((_, i) => i);
      const n = dims.reduce((p, d) => p * shape[d < 0 ? d + shape.length : d], 1);
      const corrArg = c.args.correction ?? c.args.unbiased;
      const corr =
        corrArg?.kind === "int" ? corrArg.value : corrArg?.kind === "bool" ? Number(corrArg.value) : 1;
      return n - corr > 0;
    });
}

export const REDUCE_CASES: CaseSpec[] = [
  r("aten.sum.default", "sum", "all", [...NUM, "bool"], true),
  r("aten.sum.dim_IntList", "sum", "list", NUM, true),
  r("aten.mean.default", "mean", "all", ["float32"], true),
  r("aten.mean.dim", "mean", "list", ["float32"], true),
  r("aten.prod.default", "prod", "all", NUM, false, { min: -2, max: 2 }),
  r("aten.prod.dim_int", "prod", "one", NUM, true, { min: -2, max: 2 }),
  r("aten.amax.default", "max", "list", NUM),
  r("aten.amin.default", "min", "list", NUM),
  r("aten.max.default", "max", "all", NUM),
  r("aten.min.default", "min", "all", NUM),
  r("aten.any.default", "any", "all", ["bool", "float32", "int64"], false, { min: -1, max: 1 }),
  r("aten.any.dim", "any", "one", ["bool", "int32"], false, { min: -1, max: 1 }),
  r("aten.any.dims", "any", "list", ["bool", "float32"], false, { min: -1, max: 1 }),
  r("aten.all.default", "all", "all", ["bool", "int64"], false, { min: -1, max: 1 }),
  r("aten.all.dim", "all", "one", ["bool", "float32"], false, { min: -1, max: 1 }),
  r("aten.all.dims", "all", "list", ["bool"], false),
  spec("aten.max.dim", "max-with-index", maxDimCase("aten.max.dim")),
  spec("aten.min.dim", "min-with-index", maxDimCase("aten.min.dim")),
  spec("aten.argmax.default", "argmax", argCase("aten.argmax.default")),
  spec("aten.argmin.default", "argmin", argCase("aten.argmin.default")),
  spec("aten.var.correction", "var", varCase("aten.var.correction", "correction"), true),
  spec("aten.var.dim", "var", varCase("aten.var.dim", "dim"), true),
  spec("aten.var.default", "var", varCase("aten.var.default", "all"), true),
  spec("aten.std.correction", "std", varCase("aten.std.correction", "correction"), true),
  spec("aten.std.dim", "std", varCase("aten.std.dim", "dim"), true),
  spec("aten.std.default", "std", varCase("aten.std.default", "all"), true),
  spec("aten.var_mean.correction", "var_mean", varCase("aten.var_mean.correction", "correction"), true),
  spec("aten.var_mean.dim", "var_mean", varCase("aten.var_mean.dim", "dim"), true),
  spec(
    "aten.cumsum.default",
    "cumsum-matmul",
    fc
      .tuple(shapeArb(0, 4), fc.constantFrom<DType>("float32", "int32", "int64", "bool"))
      .chain(([s, d]) =>
        fc
          .tuple(tensor(s, d), dimArb(s.length), fc.boolean())
          .map(([x, dim, cast]) =>
            opCase(
              "aten.cumsum.default",
              { self: T("x"), dim: I(dim), ...(cast && d !== "bool" ? { dtype: D("float32") } : {}) },
              { x },
            ),
          ),
      ),
  ),
];
