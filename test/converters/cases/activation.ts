import fc from "fast-check";
import type { DType } from "../../../src/ir/dtype.js";
import type { Arg } from "../../../src/ir/graph.js";
import type { OpName } from "../../../src/ops/index.js";
import { F, I, opCase, S, shapeArb, T, tensor } from "../arbitraries.js";
import { type CaseSpec, spec } from "./types.js";

function act(
  op: OpName,
  converter: string,
  params: fc.Arbitrary<Record<string, Arg>> = fc.constant({}),
  dtypes: DType[] = ["float32"],
) {
  return spec(
    op,
    converter,
    fc
      .tuple(shapeArb(0, 4), fc.constantFrom(...dtypes), params)
      .chain(([s, d, p]) =>
        tensor(s, d, { min: -5, max: 5 }).map((x) => opCase(op, { self: T("x"), ...p }, { x })),
      ),
  );
}

const num = (min: number, max: number) => fc.double({ min, max, noNaN: true }).map((v) => Math.fround(v));

export const ACTIVATION_CASES: CaseSpec[] = [
  act("aten.relu.default", "relu", undefined, ["float32", "int32"]),
  act("aten.relu6.default", "relu6", undefined, ["float32", "int64"]),
  act("aten.sigmoid.default", "sigmoid", undefined, ["float32", "int32"]),
  act("aten.tanh.default", "tanh"),
  act("aten.silu.default", "silu"),
  act("aten.hardswish.default", "hardswish"),
  act("aten.hardsigmoid.default", "hardsigmoid"),
  act("aten.mish.default", "mish"),
  act(
    "aten.hardtanh.default",
    "hardtanh",
    fc.tuple(num(-3, 0), num(0, 3)).map(([lo, hi]) => ({ min_val: F(lo), max_val: F(hi) })),
  ),
  act(
    "aten.leaky_relu.default",
    "leaky_relu",
    num(0, 0.5).map((s) => ({ negative_slope: F(s) })),
  ),
  act(
    "aten.elu.default",
    "elu",
    fc
      .tuple(num(0.1, 2), num(0.5, 2), fc.constantFrom(1, 0.5))
      .map(([a, s, i]) => ({ alpha: F(a), scale: F(s), input_scale: F(i) })),
  ),
  act(
    "aten.gelu.default",
    "gelu",
    fc.constantFrom("none", "tanh").map((m) => ({ approximate: S(m) })),
  ),
  act(
    "aten.softplus.default",
    "softplus",
    fc
      .tuple(fc.constantFrom(1, 2, 0.5), fc.constantFrom(20, 2, 1))
      .map(([b, t]) => ({ beta: I(b), threshold: I(t) })),
  ),
];
