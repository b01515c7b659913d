import fc from "fast-check";
import type { DType } from "../../../src/ir/dtype.js";
import type { Arg } from "../../../src/ir/graph.js";
import type { OpName } from "../../../src/ops/index.js";
import { B, D, F, I, Is, NONE, opCase, S, shapeArb, T, tensor } from "../arbitraries.js";
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

function dropoutCase(op: OpName, native: boolean) {
  return fc
    .tuple(shapeArb(0, 3), fc.constantFrom(0, 0.1, 0.5), fc.boolean())
    .chain(([s, p, train]) =>
      tensor(s).map((x) =>
        opCase(op, { input: T("x"), p: F(p), train: native && train && p === 0 ? B(true) : B(false) }, { x }),
      ),
    );
}

function padCase(
  op: OpName,
  mode: "constant" | "reflect" | "replicate" | "circular",
  dims: number | null,
  extra: (v: number) => Record<string, Arg>,
) {
  return fc
    .tuple(
      shapeArb(dims === null ? 1 : dims + 1, dims === null ? 4 : dims + 2, 4, 2),
      fc.double({ min: -2, max: 2, noNaN: true }).map(Math.fround),
    )
    .chain(([s, value]) => {
      const n = dims ?? Math.min(s.length, 3);
      const padded = s.slice(s.length - n).reverse();
      const amounts = padded.flatMap((size) => {
        const lo = mode === "constant" ? -Math.min(1, size - 1) : 0;
        const hi = mode === "reflect" ? size - 1 : mode === "circular" ? size : 3;
        const a = fc.integer({ min: lo, max: Math.min(hi, 3) });
        return [a, a];
      });
      return fc.tuple(tensor(s), ...amounts).map(([x, ...pad]) =>
        opCase(
          op,
          {
            self: T("x"),
            [op.includes("_pad") && !op.includes("constant") ? "padding" : "pad"]: Is(...(pad as number[])),
            ...extra(value),
          },
          { x },
        ),
      );
    });
}

function resizeCase(op: OpName, linear: boolean, vec: boolean) {
  return (
    fc
      .tuple(
        fc.constantFrom([1, 2], [2], [1, 1]),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 4 }),
        fc.constantFrom(0.5, 1, 1.5, 2, 3),
        fc.constantFrom(0.5, 1, 2, 2.5),
        fc.boolean(),
        fc.boolean(),
      )
      // PyTorch rejects empty outputs, so scales never shrink a dim to 0.
      .filter(([, h, w, sh, sw]) => Math.floor(h * sh) >= 1 && Math.floor(w * sw) >= 1)
      .chain(([lead, h, w, sh, sw, useScales, align]) => {
        const out = [Math.floor(h * sh), Math.floor(w * sw)];
        return tensor([...lead, h, w]).map((x) => {
          const alignArg: Record<string, Arg> = linear ? { align_corners: B(align) } : {};
          const args: Record<string, Arg> = vec
            ? {
                input: T("x"),
                output_size: useScales ? NONE : Is(...out),
                ...alignArg,
                scale_factors: useScales ? { kind: "floats", value: [sh, sw] } : NONE,
              }
            : {
                self: T("x"),
                output_size: Is(...out),
                ...alignArg,
                ...(useScales ? { scales_h: F(sh), scales_w: F(sw) } : {}),
              };
          return opCase(op, args, { x });
        });
      })
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

export const PADDING_CASES: CaseSpec[] = [
  spec(
    "aten.constant_pad_nd.default",
    "padding",
    padCase("aten.constant_pad_nd.default", "constant", null, (v) => ({ value: F(v) })),
  ),
  ...(["constant", "reflect", "replicate", "circular"] as const).map((mode) =>
    spec(
      "aten.pad.default",
      "padding",
      padCase("aten.pad.default", mode, null, (v) => ({
        mode: S(mode),
        value: mode === "constant" ? F(v) : NONE,
      })),
    ),
  ),
  ...([1, 2, 3] as const).flatMap((n) => [
    spec(
      `aten.reflection_pad${n}d.default`,
      "padding",
      padCase(`aten.reflection_pad${n}d.default`, "reflect", n, () => ({})),
    ),
    spec(
      `aten.replication_pad${n}d.default`,
      "padding",
      padCase(`aten.replication_pad${n}d.default`, "replicate", n, () => ({})),
    ),
  ]),
];

export const RESIZE_CASES: CaseSpec[] = [
  spec(
    "aten.upsample_nearest2d.default",
    "resize-nearest",
    resizeCase("aten.upsample_nearest2d.default", false, false),
  ),
  spec(
    "aten.upsample_nearest2d.vec",
    "resize-nearest",
    resizeCase("aten.upsample_nearest2d.vec", false, true),
  ),
  spec(
    "aten.upsample_bilinear2d.default",
    "resize-linear",
    resizeCase("aten.upsample_bilinear2d.default", true, false),
  ),
  spec(
    "aten.upsample_bilinear2d.vec",
    "resize-linear",
    resizeCase("aten.upsample_bilinear2d.vec", true, true),
  ),
];

export const MISC_CASES: CaseSpec[] = [
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
