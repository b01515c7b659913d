import fc from "fast-check";
import type { DType } from "../../../src/ir/dtype.js";
import type { Arg } from "../../../src/ir/graph.js";
import type { OpName } from "../../../src/ops/index.js";
import { D, NONE, opCase, shapeArb, T, tensor } from "../arbitraries.js";
import { type CaseSpec, spec } from "./types.js";

const anyDtype = fc.constantFrom<DType>("float32", "int64", "int32", "bool", "uint8", "float16");

function castCase(op: OpName, args: (to: DType) => Record<string, Arg>, other = false) {
  return fc
    .tuple(
      shapeArb(0, 3),
      anyDtype,
      fc.constantFrom<DType>("float32", "int64", "int32", "bool", "float16", "uint8"),
    )
    .chain(([s, from, to]) =>
      fc
        .tuple(tensor(s, from), tensor([1], to))
        .map(([x, o]) =>
          opCase(
            op,
            { self: T("x"), ...args(to), ...(other ? { other: T("o") } : {}) },
            other ? { x, o } : { x },
          ),
        ),
    );
}

export const CAST_CASES: CaseSpec[] = [
  spec(
    "aten._to_copy.default",
    "cast",
    castCase("aten._to_copy.default", (to) => ({ dtype: D(to) })),
  ),
  spec(
    "aten.to.dtype",
    "cast",
    castCase("aten.to.dtype", (to) => ({ dtype: D(to) })),
  ),
  spec(
    "aten.to.device",
    "cast",
    castCase("aten.to.device", (to) => ({ device: { kind: "device", value: "cpu" }, dtype: D(to) })),
  ),
  spec(
    "aten.to.other",
    "cast",
    castCase("aten.to.other", () => ({}), true),
  ),
  spec(
    "aten.to.dtype_layout",
    "cast",
    castCase("aten.to.dtype_layout", (to) => ({ dtype: D(to) })),
  ),
  spec(
    "aten.to.prim_dtype",
    "cast",
    castCase("aten.to.prim_dtype", (to) => ({ dtype: D(to) })),
  ),
  spec(
    "aten.to.prim_Device",
    "cast",
    castCase("aten.to.prim_Device", (to) => ({ device: NONE, dtype: D(to) })),
  ),
  spec(
    "aten.type_as.default",
    "cast",
    castCase("aten.type_as.default", () => ({}), true),
  ),
];
