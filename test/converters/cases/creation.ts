import fc from "fast-check";
import type { DType } from "../../../src/ir/dtype.js";
import type { Arg } from "../../../src/ir/graph.js";
import type { OpName } from "../../../src/ops/index.js";
import { D, F, I, Is, NONE, opCase, shapeArb, T, tensor } from "../arbitraries.js";
import { type CaseSpec, spec } from "./types.js";

const dtypeArg = fc.constantFrom<Arg>(NONE, D("float32"), D("int64"), D("int32"));
const fillValue = fc.constantFrom<Arg>(I(3), F(-1.5), I(0));

function factory(
  op: OpName,
  build: (size: number[], dtype: Arg, value: Arg) => Record<string, Arg>,
  like: boolean,
) {
  return fc
    .tuple(shapeArb(0, 3), dtypeArg, fillValue, fc.constantFrom<DType>("float32", "int64"))
    .chain(([s, dt, v, likeDtype]) =>
      (like ? tensor(s, likeDtype).map((x) => ({ x })) : fc.constant({})).map((tensors) =>
        opCase(op, { ...build(s, dt, v), ...(like ? { self: T("x") } : {}) }, tensors),
      ),
    );
}

const arangeCase = fc
  .tuple(
    fc.integer({ min: -4, max: 4 }),
    fc.integer({ min: 0, max: 8 }),
    fc.constantFrom(1, 2, 3, 0.5, -1, -0.5),
    fc.boolean(),
    dtypeArg,
  )
  .map(([start, n, step, floats, dtype]) => {
    const s = floats ? start + 0.25 : start;
    return { start: s, end: s + n * step, step, dtype };
  })
  .filter(
    (a) =>
      a.dtype.kind !== "dtype" ||
      a.dtype.value === "float32" ||
      (Number.isInteger(a.start) && Number.isInteger(a.step)),
  );

const num = (v: number): Arg => (Number.isInteger(v) ? I(v) : F(v));

export const CREATION_CASES: CaseSpec[] = [
  spec(
    "aten.arange.default",
    "constant",
    arangeCase
      .filter((a) => a.start === 0 && a.step === 1)
      .map((a) => opCase("aten.arange.default", { end: num(a.end), dtype: a.dtype }, {})),
  ),
  spec(
    "aten.arange.start",
    "constant",
    arangeCase
      .filter((a) => a.step === 1)
      .map((a) => opCase("aten.arange.start", { start: num(a.start), end: num(a.end), dtype: a.dtype }, {})),
  ),
  spec(
    "aten.arange.start_step",
    "constant",
    arangeCase.map((a) =>
      opCase(
        "aten.arange.start_step",
        { start: num(a.start), end: num(a.end), step: num(a.step), dtype: a.dtype },
        {},
      ),
    ),
  ),
  spec(
    "aten.full.default",
    "constant",
    factory("aten.full.default", (s, dt, v) => ({ size: Is(...s), fill_value: v, dtype: dt }), false),
  ),
  spec(
    "aten.zeros.default",
    "constant",
    factory("aten.zeros.default", (s, dt) => ({ size: Is(...s), dtype: dt }), false),
  ),
  spec(
    "aten.ones.default",
    "constant",
    factory("aten.ones.default", (s, dt) => ({ size: Is(...s), dtype: dt }), false),
  ),
  spec(
    "aten.empty.memory_format",
    "constant",
    factory("aten.empty.memory_format", (s, dt) => ({ size: Is(...s), dtype: dt }), false),
  ),
  spec(
    "aten.scalar_tensor.default",
    "constant",
    factory("aten.scalar_tensor.default", (_s, dt, v) => ({ s: v, dtype: dt }), false),
  ),
  spec(
    "aten.full_like.default",
    "constant",
    factory("aten.full_like.default", (_s, dt, v) => ({ fill_value: v, dtype: dt }), true),
  ),
  spec(
    "aten.zeros_like.default",
    "constant",
    factory("aten.zeros_like.default", (_s, dt) => ({ dtype: dt }), true),
  ),
  spec(
    "aten.ones_like.default",
    "constant",
    factory("aten.ones_like.default", (_s, dt) => ({ dtype: dt }), true),
  ),
  spec(
    "aten.empty_like.default",
    "constant",
    factory("aten.empty_like.default", (_s, dt) => ({ dtype: dt }), true),
  ),
  spec(
    "aten.new_zeros.default",
    "constant",
    factory("aten.new_zeros.default", (s, dt) => ({ size: Is(...s.reverse()), dtype: dt }), true),
  ),
  spec(
    "aten.new_ones.default",
    "constant",
    factory("aten.new_ones.default", (s, dt) => ({ size: Is(...s), dtype: dt }), true),
  ),
  spec(
    "aten.new_empty.default",
    "constant",
    factory("aten.new_empty.default", (s, dt) => ({ size: Is(...s), dtype: dt }), true),
  ),
  spec(
    "aten.new_full.default",
    "constant",
    factory("aten.new_full.default", (s, dt, v) => ({ size: Is(...s), fill_value: v, dtype: dt }), true),
  ),
];
