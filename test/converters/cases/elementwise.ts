import fc from "fast-check";
import type { DType } from "../../../src/ir/dtype.js";
import type { Arg } from "../../../src/ir/graph.js";
import type { OpName } from "../../../src/ops/index.js";
import {
  broadcastPair,
  F,
  I,
  NONE,
  opCase,
  S,
  shapeArb,
  T,
  tensor,
  type ValueRange,
} from "../arbitraries.js";
import type { TensorSpec } from "../harness.js";
import { type CaseSpec, spec } from "./types.js";

const numberArg = (dtype: DType, range: ValueRange = {}): fc.Arbitrary<Arg> => {
  const lo = range.min ?? -3;
  const hi = range.max ?? 3;
  const away = range.awayFromZero ?? 0;
  // fp32-representable, no denormals. PyTorch casts a Python float to the tensor's dtype before the op
  // (checked with torch 2.11, CPU and CUDA: float32 [-3.] floor-divided by 2.9999998807907104 gives -1), as
  // the converters do; the aten reference keeps it in double precision. Draws stay where both agree.
  const push = (x: number) =>
    Math.fround(Math.abs(x) < away ? (x < 0 ? -away : away) : Math.abs(x) < 1e-3 ? 0 : x);
  return dtype === "float32"
    ? fc.double({ min: lo, max: hi, noNaN: true }).map((v) => F(push(v)))
    : fc.integer({ min: Math.ceil(lo), max: Math.floor(hi) }).map((v) => I(push(v)));
};

/** self and other as broadcasting tensors of one dtype, or other as a Python number (FX passes those too). */
function binaryTensorCase(
  op: OpName,
  dtypes: DType[],
  other: ValueRange = {},
  self: ValueRange = {},
  extra: Record<string, Arg> = {},
) {
  return fc
    .tuple(broadcastPair(), fc.constantFrom(...dtypes), fc.boolean())
    .chain(([[sa, sb], dtype, numberOther]) =>
      fc
        .tuple(tensor(sa, dtype, self), numberOther ? numberArg(dtype, other) : tensor(sb, dtype, other))
        .map(([x, y]) => {
          const tensors: Record<string, TensorSpec> = { x };
          let otherArg: Arg;
          if ("kind" in y) otherArg = y;
          else {
            tensors.y = y as TensorSpec;
            otherArg = T("y");
          }
          return opCase(op, { self: T("x"), other: otherArg, ...extra }, tensors);
        }),
    );
}

function scalarOtherCase(
  op: OpName,
  dtypes: DType[],
  other: ValueRange = {},
  self: ValueRange = {},
  extra: Record<string, Arg> = {},
) {
  return fc
    .tuple(shapeArb(0, 4), fc.constantFrom(...dtypes))
    .chain(([s, dtype]) =>
      fc
        .tuple(tensor(s, dtype, self), numberArg(dtype, other))
        .map(([x, y]) => opCase(op, { self: T("x"), other: y, ...extra }, { x })),
    );
}

const ARITH: DType[] = ["float32", "int32", "int64"];
const alpha = fc.constantFrom(1, 2, -1).map((v) => ({ alpha: I(v) }));
const intNonZero = { awayFromZero: 1 };

export const ELEMENTWISE_CASES: CaseSpec[] = [
  ...(["add", "sub"] as const).flatMap((op) => [
    spec(
      `aten.${op}.Tensor`,
      op,
      alpha.chain((a) => binaryTensorCase(`aten.${op}.Tensor`, ARITH, {}, {}, a)),
    ),
    spec(
      `aten.${op}.Scalar`,
      op,
      alpha.chain((a) => scalarOtherCase(`aten.${op}.Scalar`, ARITH, {}, {}, a)),
    ),
  ]),
  spec(
    "aten.rsub.Tensor",
    "rsub",
    alpha.chain((a) => binaryTensorCase("aten.rsub.Tensor", ARITH, {}, {}, a)),
  ),
  spec(
    "aten.rsub.Scalar",
    "rsub",
    alpha.chain((a) => scalarOtherCase("aten.rsub.Scalar", ARITH, {}, {}, a)),
  ),
  spec("aten.mul.Tensor", "mul", binaryTensorCase("aten.mul.Tensor", [...ARITH, "bool"])),
  spec("aten.mul.Scalar", "mul", scalarOtherCase("aten.mul.Scalar", ARITH)),
  spec("aten.div.Tensor", "div", binaryTensorCase("aten.div.Tensor", ["float32", "int64"], intNonZero)),
  spec("aten.div.Scalar", "div", scalarOtherCase("aten.div.Scalar", ["float32", "int32"], intNonZero)),
  ...(["aten.div.Tensor_mode", "aten.div.Scalar_mode"] as const).map((op) =>
    spec(
      op,
      "div-rounding",
      fc
        .constantFrom("trunc", "floor", null)
        .chain((m) =>
          (op === "aten.div.Tensor_mode" ? binaryTensorCase : scalarOtherCase)(
            op,
            ["float32", "int64"],
            intNonZero,
            {},
            { rounding_mode: m === null ? NONE : S(m) },
          ),
        ),
    ),
  ),
  spec(
    "aten.floor_divide.default",
    "floor_div",
    binaryTensorCase("aten.floor_divide.default", ["float32", "int64"], intNonZero),
  ),
  spec(
    "aten.remainder.Tensor",
    "remainder",
    binaryTensorCase("aten.remainder.Tensor", ["float32", "int32"], intNonZero),
  ),
  spec(
    "aten.remainder.Scalar",
    "remainder",
    scalarOtherCase("aten.remainder.Scalar", ["float32", "int64"], intNonZero),
  ),
  spec("aten.fmod.Tensor", "fmod", binaryTensorCase("aten.fmod.Tensor", ["float32", "int32"], intNonZero)),
  spec("aten.fmod.Scalar", "fmod", scalarOtherCase("aten.fmod.Scalar", ["float32", "int64"], intNonZero)),
  spec(
    "aten.pow.Tensor_Tensor",
    "pow",
    fc
      .tuple(broadcastPair())
      .chain(([[sa, sb]]) =>
        fc
          .tuple(tensor(sa, "float32", { min: 0.1, max: 3 }), tensor(sb, "float32", { min: -2, max: 2 }))
          .map(([x, y]) => opCase("aten.pow.Tensor_Tensor", { self: T("x"), exponent: T("y") }, { x, y })),
      ),
  ),
  spec(
    "aten.pow.Tensor_Scalar",
    "pow",
    fc
      .tuple(shapeArb(0, 4), fc.constantFrom(2, 3, 0.5, -1, -0.5))
      .chain(([s, e]) =>
        tensor(s, "float32", { min: 0.1, max: 3 }).map((x) =>
          opCase(
            "aten.pow.Tensor_Scalar",
            { self: T("x"), exponent: Number.isInteger(e) ? I(e) : F(e) },
            { x },
          ),
        ),
      ),
  ),
  spec(
    "aten.pow.Scalar",
    "pow",
    fc
      .tuple(shapeArb(0, 4), fc.constantFrom(2, 0.5, 3.5))
      .chain(([s, b]) =>
        tensor(s, "float32", { min: -2, max: 2 }).map((x) =>
          opCase("aten.pow.Scalar", { self: F(b), exponent: T("x") }, { x }),
        ),
      ),
  ),
  spec("aten.maximum.default", "maximum", binaryTensorCase("aten.maximum.default", ARITH)),
  spec("aten.minimum.default", "minimum", binaryTensorCase("aten.minimum.default", ARITH)),
  spec("aten.max.other", "maximum", binaryTensorCase("aten.max.other", ARITH)),
  spec("aten.min.other", "minimum", binaryTensorCase("aten.min.other", ARITH)),
  ...clampCases(),
];

function clampCases(): CaseSpec[] {
  const bound = fc.option(fc.double({ min: -2, max: 2, noNaN: true }), { nil: undefined });
  const scalarCase = (op: OpName, which: "both" | "min" | "max") =>
    fc.tuple(shapeArb(0, 4), bound, bound).chain(([s, lo, hi]) =>
      tensor(s).map((x) => {
        const args: Record<string, Arg> = { self: T("x") };
        if (which !== "max") args.min = which === "min" || lo !== undefined ? F(lo ?? -1) : NONE;
        if (which !== "min")
          args.max = which === "max" || hi !== undefined || lo === undefined ? F(hi ?? 1) : NONE;
        return opCase(op, args, { x });
      }),
    );
  const tensorCase = (op: OpName, which: "both" | "min" | "max") =>
    broadcastPair(1).chain(([s, b]) =>
      fc
        .tuple(tensor(s), tensor(b, "float32", { min: -2, max: 0 }), tensor(b, "float32", { min: 0, max: 2 }))
        .map(([x, lo, hi]) => {
          const args: Record<string, Arg> = { self: T("x") };
          const tensors: Record<string, TensorSpec> = { x };
          if (which !== "max") {
            args.min = T("lo");
            tensors.lo = lo;
          }
          if (which !== "min") {
            args.max = T("hi");
            tensors.hi = hi;
          }
          return opCase(op, args, tensors);
        }),
    );
  return [
    spec("aten.clamp.default", "clamp", scalarCase("aten.clamp.default", "both")),
    spec("aten.clamp.Tensor", "clamp", tensorCase("aten.clamp.Tensor", "both")),
    spec("aten.clamp_min.default", "clamp", scalarCase("aten.clamp_min.default", "min")),
    spec("aten.clamp_min.Tensor", "clamp", tensorCase("aten.clamp_min.Tensor", "min")),
    spec("aten.clamp_max.default", "clamp", scalarCase("aten.clamp_max.default", "max")),
    spec("aten.clamp_max.Tensor", "clamp", tensorCase("aten.clamp_max.Tensor", "max")),
  ];
}
