/**
 * The scalar formula of every pointwise layer, as a C expression over already-computed operands, matching the
 * reference interpreter (src/network/reference) and so PyTorch.
 */
import type { DType } from "../../../ir/dtype.js";
import type { ActivationFn } from "../../../network/layers/activation.js";
import type { ElementwiseOp } from "../../../network/layers/elementwise.js";
import type { UnaryOp } from "../../../network/layers/unary.js";
import { computeCType, floatLiteral, isFloatDType } from "./ctypes.js";

const SELU_ALPHA = 1.6732632423543772;
const SELU_SCALE = 1.0507009873554805;

function f(v: number, ct: string): string {
  return floatLiteral(v, ct);
}

/** `x` has the compute type of `dtype` (a float type for every activation but relu and clip). */
export function activationExpr(fn: ActivationFn, x: string, dtype: DType): string {
  const ct = computeCType(dtype);
  const float = ct === "float" || ct === "double";
  const z = float ? f(0, ct) : "0";
  switch (fn.kind) {
    case "relu":
      return float ? `(${x} != ${x} ? ${x} : (${x} > ${z} ? ${x} : ${z}))` : `(${x} > 0 ? ${x} : 0)`;
    case "clip": {
      const lo = float ? f(fn.min, ct) : `${Math.ceil(fn.min)}`;
      const hi = float ? f(fn.max, ct) : `${Math.floor(fn.max)}`;
      return `(${x} != ${x} ? ${x} : (${x} < ${lo} ? ${lo} : (${x} > ${hi} ? ${hi} : ${x})))`;
    }
    case "leaky_relu":
      return `(${x} > ${z} ? ${x} : ${x} * ${f(fn.negativeSlope, ct)})`;
    case "elu":
      return `(${x} > ${z} ? ${f(fn.scale, ct)} * ${x} : ${f(fn.scale * fn.alpha, ct)} * expm1(${x} * ${f(fn.inputScale, ct)}))`;
    case "selu":
      return `(${x} > ${z} ? ${f(SELU_SCALE, ct)} * ${x} : ${f(SELU_SCALE * SELU_ALPHA, ct)} * expm1(${x}))`;
    case "celu":
      return `(fmax(${z}, ${x}) + fmin(${z}, ${f(fn.alpha, ct)} * expm1(${x} / ${f(fn.alpha, ct)})))`;
    case "silu":
      return `(${x} * tc_sigmoid(${x}))`;
    case "sigmoid":
      return `tc_sigmoid(${x})`;
    case "tanh":
      return `tanh(${x})`;
    case "gelu_erf":
      return ct === "double" ? `(0.5 * ${x} * (1.0 + erf(${x} * 0.70710678118654752)))` : `tc_gelu_erf(${x})`;
    case "gelu_tanh":
      return ct === "double"
        ? `(0.5 * ${x} * (1.0 + tanh(0.79788456080286536 * (${x} + 0.044715 * ${x} * ${x} * ${x}))))`
        : `tc_gelu_tanh(${x})`;
    case "hardswish":
      return `(${x} * fmin(fmax(${x} + ${f(3, ct)}, ${z}), ${f(6, ct)}) / ${f(6, ct)})`;
    case "hardsigmoid":
      return `(fmin(fmax(${x} + ${f(3, ct)}, ${z}), ${f(6, ct)}) / ${f(6, ct)})`;
    case "softplus":
      return `tc_softplus(${x}, ${f(fn.beta, "float")}, ${f(fn.threshold, "float")})`;
    case "mish":
      return `(${x} * tanh(tc_softplus(${x}, 1.0f, 20.0f)))`;
    case "softsign":
      return `(${x} / (${f(1, ct)} + fabs(${x})))`;
    case "hardshrink":
      return `((${x} > ${f(fn.lambda, ct)} || ${x} < ${f(-fn.lambda, ct)}) ? ${x} : ${z})`;
  }
}

export function unaryExpr(op: UnaryOp, x: string, dtype: DType): string {
  return unaryExprOf(op, x, dtype) ?? x;
}

function unaryExprOf(op: UnaryOp, x: string, dtype: DType): string | undefined {
  const ct = computeCType(dtype);
  const float = isFloatDType(dtype);
  switch (op) {
    case "abs":
      return float ? `fabs(${x})` : `(${x} < 0 ? -${x} : ${x})`;
    case "neg":
      return `(-${x})`;
    case "sign":
      return `tc_sign(${x})`;
    case "ceil":
      return float ? `ceil(${x})` : x;
    case "floor":
      return float ? `floor(${x})` : x;
    case "round":
      return float ? `rint(${x})` : x;
    case "trunc":
      return float ? `trunc(${x})` : x;
    case "exp":
      return `exp(${x})`;
    case "exp2":
      return `exp2(${x})`;
    case "expm1":
      return `expm1(${x})`;
    case "log":
      return `log(${x})`;
    case "log2":
      return `log2(${x})`;
    case "log10":
      return `log10(${x})`;
    case "log1p":
      return `log1p(${x})`;
    case "sqrt":
      return `sqrt(${x})`;
    case "rsqrt":
      return `(${f(1, ct)} / sqrt(${x}))`;
    case "reciprocal":
      return `(${f(1, ct)} / ${x})`;
    case "erf":
      return `erf(${x})`;
    case "sin":
      return `sin(${x})`;
    case "cos":
      return `cos(${x})`;
    case "tan":
      return `tan(${x})`;
    case "asin":
      return `asin(${x})`;
    case "acos":
      return `acos(${x})`;
    case "atan":
      return `atan(${x})`;
    case "sinh":
      return `sinh(${x})`;
    case "cosh":
      return `cosh(${x})`;
    case "asinh":
      return `asinh(${x})`;
    case "acosh":
      return `acosh(${x})`;
    case "atanh":
      return `atanh(${x})`;
    case "not":
      return `(!${x})`;
    case "isnan":
      return float ? `(${x} != ${x})` : "false";
    case "isinf":
      return float ? `isinf(${x})` : "false";
  }
}

/** `a`, `b` have the compute type of the operands' dtype `dtype`. */
export function binaryExpr(op: ElementwiseOp, a: string, b: string, dtype: DType): string {
  const float = isFloatDType(dtype);
  switch (op) {
    case "add":
      return `(${a} + ${b})`;
    case "sub":
      return `(${a} - ${b})`;
    case "mul":
      return `(${a} * ${b})`;
    case "div":
      return float ? `(${a} / ${b})` : `tc_idiv(${a}, ${b})`;
    case "floor_div":
      return float ? `tc_floordiv(${a}, ${b})` : `tc_ifloordiv(${a}, ${b})`;
    case "remainder":
      return float ? `tc_remainder(${a}, ${b})` : `tc_iremainder(${a}, ${b})`;
    case "fmod":
      // C's fmod and integer % both truncate toward zero, as torch.fmod does.
      return float ? `fmod(${a}, ${b})` : `(${a} % ${b})`;
    case "pow":
      return float ? `pow(${a}, ${b})` : `tc_ipow(${a}, ${b})`;
    case "min":
      return `tc_min(${a}, ${b})`;
    case "max":
      return `tc_max(${a}, ${b})`;
    case "eq":
      return `(${a} == ${b})`;
    case "ne":
      return `(${a} != ${b})`;
    case "lt":
      return `(${a} < ${b})`;
    case "le":
      return `(${a} <= ${b})`;
    case "gt":
      return `(${a} > ${b})`;
    case "ge":
      return `(${a} >= ${b})`;
    case "and":
      return `(${a} && ${b})`;
    case "or":
      return `(${a} || ${b})`;
    case "xor":
      return `(${a} != ${b})`;
    default:
      throw new Error(`unknown elementwise op ${op as string}`);
  }
}
