import { erf, roundHalfEven } from "./math.js";
import { binaryOp, evalPointwise, inferPointwise, unaryOp } from "./pointwise.js";
import { defineOp, type Operand, opTable, type ScalarValue } from "./schema.js";

export interface AlphaArgs {
  readonly self: Operand;
  readonly other: Operand;
  readonly alpha: ScalarValue;
}

/** add/sub/rsub: `self ± alpha·other`, Tensor and Scalar overloads. */
function alphaOp<const N extends string>(
  name: N,
  schema: string,
  f: (x: number, y: number, alpha: number) => number,
) {
  return defineOp({
    name,
    schema,
    read: (r): AlphaArgs => ({
      self: r.operand("self"),
      other: r.operand("other"),
      alpha: r.scalar("alpha"),
    }),
    infer: (a, typeOf) => inferPointwise(name, [a.self, a.other], "same", typeOf),
    evaluate: (a, valueAt) => {
      const al = a.alpha.value;
      return evalPointwise(name, [a.self, a.other], "same", valueAt, (x, y) => f(x, y, al));
    },
  });
}

const ALPHA_T = "Tensor self, Tensor other, *, Scalar alpha=1";
const ALPHA_S = "Tensor self, Scalar other, Scalar alpha=1";
const add = (x: number, y: number, a: number) => x + a * y;
const sub = (x: number, y: number, a: number) => x - a * y;
const rsub = (x: number, y: number, a: number) => y - a * x;

const mul = (x: number, y: number) => x * y;
const div = (x: number, y: number) => x / y;

export interface DivModeArgs {
  readonly self: Operand;
  readonly other: Operand;
  readonly roundingMode: "trunc" | "floor" | null;
}

function divMode<const N extends string>(name: N, schema: string) {
  return defineOp({
    name,
    schema,
    read: (r): DivModeArgs => {
      const m = r.optStr("rounding_mode");
      if (m !== null && m !== "trunc" && m !== "floor")
        r.fail("rounding_mode", `'${m}' is not 'trunc', 'floor' or None`);
      return {
        self: r.operand("self"),
        other: r.operand("other"),
        roundingMode: m as DivModeArgs["roundingMode"],
      };
    },
    // Without a rounding mode this is true division (ints become float); with one, the promoted dtype stays.
    infer: (a, typeOf) => inferPointwise(name, [a.self, a.other], a.roundingMode ? "same" : "float", typeOf),
    evaluate: (a, valueAt) => {
      const round = a.roundingMode === "trunc" ? Math.trunc : a.roundingMode === "floor" ? Math.floor : null;
      if (!round) return evalPointwise(name, [a.self, a.other], "float", valueAt, div);
      return evalPointwise(name, [a.self, a.other], "same", valueAt, (x, y) => round(x / y));
    },
  });
}

/** Integer powers stay integer (exact), any float operand makes the result float. */
const pow = (x: number, y: number) => x ** y;

export interface PowScalarArgs {
  readonly self: ScalarValue;
  readonly exponent: Operand;
}

const powScalar = defineOp({
  name: "aten.pow.Scalar",
  schema: "Scalar self, Tensor exponent",
  read: (r): PowScalarArgs => ({ self: r.scalar("self"), exponent: r.operand("exponent") }),
  infer: (a, typeOf) => inferPointwise("aten.pow.Scalar", [a.self, a.exponent], "same", typeOf),
  evaluate: (a, valueAt) => evalPointwise("aten.pow.Scalar", [a.self, a.exponent], "same", valueAt, pow),
});

export interface ClampArgs {
  readonly self: Operand;
  readonly min: Operand | null;
  readonly max: Operand | null;
}

/** clamp and its one-sided forms; a NaN input stays NaN, min > max gives max (as PyTorch documents). */
function clampOp<const N extends string>(name: N, schema: string, sides: "both" | "min" | "max") {
  const ops = (a: ClampArgs) => [
    a.self,
    ...(a.min !== null ? [a.min] : []),
    ...(a.max !== null ? [a.max] : []),
  ];
  return defineOp({
    name,
    schema,
    read: (r): ClampArgs => {
      const a = {
        self: r.operand("self"),
        min: sides !== "max" ? r.optOperand("min") : null,
        max: sides !== "min" ? r.optOperand("max") : null,
      };
      if (sides === "both" && a.min === null && a.max === null) r.fail("min", "clamp needs min or max");
      return a;
    },
    infer: (a, typeOf) => inferPointwise(name, ops(a), "same", typeOf),
    evaluate: (a, valueAt) => {
      const lo = a.min !== null;
      const hi = a.max !== null;
      const f =
        lo && hi
          ? (x: number, l: number, h: number) => Math.min(Math.max(x, l), h)
          : lo
            ? (x: number, l: number) => Math.max(x, l)
            : (x: number, h: number) => Math.min(x, h);
      return evalPointwise(name, ops(a), "same", valueAt, f);
    },
  });
}

const sign = (x: number) => (x > 0 ? 1 : x < 0 ? -1 : x);

export const ELEMENTWISE_OPS = opTable(
  alphaOp("aten.add.Tensor", ALPHA_T, add),
  alphaOp("aten.add.Scalar", ALPHA_S, add),
  alphaOp("aten.sub.Tensor", ALPHA_T, sub),
  alphaOp("aten.sub.Scalar", ALPHA_S, sub),
  alphaOp("aten.rsub.Tensor", ALPHA_T, rsub),
  alphaOp("aten.rsub.Scalar", ALPHA_S, rsub),
  binaryOp("aten.mul.Tensor", "Tensor self, Tensor other", "same", mul),
  binaryOp("aten.mul.Scalar", "Tensor self, Scalar other", "same", mul),
  binaryOp("aten.div.Tensor", "Tensor self, Tensor other", "float", div),
  binaryOp("aten.div.Scalar", "Tensor self, Scalar other", "float", div),
  divMode("aten.div.Tensor_mode", "Tensor self, Tensor other, *, str? rounding_mode"),
  divMode("aten.div.Scalar_mode", "Tensor self, Scalar other, *, str? rounding_mode"),
  binaryOp("aten.floor_divide.default", "Tensor self, Tensor other", "same", (x, y) => Math.floor(x / y)),
  binaryOp("aten.remainder.Tensor", "Tensor self, Tensor other", "same", (x, y) => x - Math.floor(x / y) * y),
  binaryOp("aten.remainder.Scalar", "Tensor self, Scalar other", "same", (x, y) => x - Math.floor(x / y) * y),
  binaryOp("aten.fmod.Tensor", "Tensor self, Tensor other", "same", (x, y) => x % y),
  binaryOp("aten.fmod.Scalar", "Tensor self, Scalar other", "same", (x, y) => x % y),
  defineOp({
    name: "aten.pow.Tensor_Scalar",
    schema: "Tensor self, Scalar exponent",
    read: (r) => ({ self: r.operand("self"), exponent: r.operand("exponent") }),
    infer: (a, typeOf) => inferPointwise("aten.pow.Tensor_Scalar", [a.self, a.exponent], "same", typeOf),
    evaluate: (a, valueAt) =>
      evalPointwise("aten.pow.Tensor_Scalar", [a.self, a.exponent], "same", valueAt, pow),
  }),
  defineOp({
    name: "aten.pow.Tensor_Tensor",
    schema: "Tensor self, Tensor exponent",
    read: (r) => ({ self: r.operand("self"), exponent: r.operand("exponent") }),
    infer: (a, typeOf) => inferPointwise("aten.pow.Tensor_Tensor", [a.self, a.exponent], "same", typeOf),
    evaluate: (a, valueAt) =>
      evalPointwise("aten.pow.Tensor_Tensor", [a.self, a.exponent], "same", valueAt, pow),
  }),
  powScalar,
  binaryOp("aten.minimum.default", "Tensor self, Tensor other", "same", Math.min),
  binaryOp("aten.maximum.default", "Tensor self, Tensor other", "same", Math.max),
  binaryOp("aten.max.other", "Tensor self, Tensor other", "same", Math.max),
  binaryOp("aten.min.other", "Tensor self, Tensor other", "same", Math.min),
  clampOp("aten.clamp.default", "Tensor self, Scalar? min=None, Scalar? max=None", "both"),
  clampOp("aten.clamp.Tensor", "Tensor self, Tensor? min=None, Tensor? max=None", "both"),
  clampOp("aten.clamp_min.default", "Tensor self, Scalar min", "min"),
  clampOp("aten.clamp_min.Tensor", "Tensor self, Tensor min", "min"),
  clampOp("aten.clamp_max.default", "Tensor self, Scalar max", "max"),
  clampOp("aten.clamp_max.Tensor", "Tensor self, Tensor max", "max"),
  unaryOp("aten.neg.default", "same", (x) => -x),
  unaryOp("aten.abs.default", "same", Math.abs),
  unaryOp("aten.sign.default", "same", sign),
  unaryOp("aten.sqrt.default", "float", Math.sqrt),
  unaryOp("aten.rsqrt.default", "float", (x) => 1 / Math.sqrt(x)),
  unaryOp("aten.reciprocal.default", "float", (x) => 1 / x),
  unaryOp("aten.exp.default", "float", Math.exp),
  unaryOp("aten.exp2.default", "float", (x) => 2 ** x),
  unaryOp("aten.expm1.default", "float", Math.expm1),
  unaryOp("aten.log.default", "float", Math.log),
  unaryOp("aten.log2.default", "float", Math.log2),
  unaryOp("aten.log10.default", "float", Math.log10),
  unaryOp("aten.log1p.default", "float", Math.log1p),
  unaryOp("aten.erf.default", "float", erf),
  unaryOp("aten.sin.default", "float", Math.sin),
  unaryOp("aten.cos.default", "float", Math.cos),
  unaryOp("aten.tan.default", "float", Math.tan),
  unaryOp("aten.atan.default", "float", Math.atan),
  unaryOp("aten.floor.default", "same", Math.floor),
  unaryOp("aten.ceil.default", "same", Math.ceil),
  unaryOp("aten.round.default", "same", roundHalfEven),
  unaryOp("aten.trunc.default", "same", Math.trunc),
);
