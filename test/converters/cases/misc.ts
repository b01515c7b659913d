import fc from "fast-check";
import type { OpName } from "../../../src/ops/index.js";
import { B, D, F, I, Is, NONE, opCase, shapeArb, T, tensor } from "../arbitraries.js";
import { type CaseSpec, spec } from "./types.js";

function dropoutCase(op: OpName, native: boolean) {
  return fc
    .tuple(shapeArb(0, 3), fc.constantFrom(0, 0.1, 0.5), fc.boolean())
    .chain(([s, p, train]) =>
      tensor(s).map((x) =>
        opCase(op, { input: T("x"), p: F(p), train: native && train && p === 0 ? B(true) : B(false) }, { x }),
      ),
    );
}

const fillDtype = fc.constantFrom<"float32" | "int32" | "int64" | "bool">(
  "float32",
  "int32",
  "int64",
  "bool",
);

const fillCase = (op: "aten.fill.Scalar" | "aten.fill.Tensor" | "aten.zero.default") =>
  fc
    .tuple(shapeArb(0, 3), fillDtype, fc.constantFrom(0, 1, -2.5, 3))
    .chain(([s, d, v]) =>
      fc
        .tuple(tensor(s, d), tensor([], "float32", { min: -3, max: 3 }))
        .map(([x, val]) =>
          op === "aten.zero.default"
            ? opCase(op, { self: T("x") }, { x })
            : op === "aten.fill.Scalar"
              ? opCase(op, { self: T("x"), value: F(v) }, { x })
              : opCase(op, { self: T("x"), value: T("v") }, { x, v: val }),
        ),
    );

export const MISC_CASES: CaseSpec[] = [
  spec("aten.fill.Scalar", "fill", fillCase("aten.fill.Scalar")),
  spec("aten.fill.Tensor", "fill", fillCase("aten.fill.Tensor")),
  spec("aten.zero.default", "fill", fillCase("aten.zero.default")),
  ...(["dropout", "feature_dropout", "alpha_dropout", "feature_alpha_dropout"] as const).map((op) =>
    spec(`aten.${op}.default`, "identity", dropoutCase(`aten.${op}.default`, false)),
  ),
  spec("aten.native_dropout.default", "identity", dropoutCase("aten.native_dropout.default", true)),
  spec(
    "aten._assert_tensor_metadata.default",
    "static-check",
    fc
      .tuple(shapeArb(0, 3), fc.boolean(), fc.boolean())
      .chain(([s, size, dtype]) =>
        tensor(s).map((x) =>
          opCase(
            "aten._assert_tensor_metadata.default",
            { a: T("x"), size: size ? Is(...s) : NONE, dtype: dtype ? D("float32") : NONE },
            { x },
          ),
        ),
      ),
  ),
  ...(["tril", "triu"] as const).map((op) =>
    spec(
      `aten.${op}.default`,
      op,
      fc.tuple(shapeArb(2, 4), fc.integer({ min: -3, max: 3 }), fc.boolean()).chain(([s, diag, inf]) =>
        tensor(s).map((x) =>
          opCase(
            `aten.${op}.default`,
            { self: T("x"), diagonal: I(diag) },
            {
              x: inf ? { ...x, data: x.data.map((v, i) => (i % 3 === 0 ? Number.NEGATIVE_INFINITY : v)) } : x,
            },
          ),
        ),
      ),
    ),
  ),
];
