import type { UnaryLayer, UnaryOp } from "../layers/unary.js";
import { read, roundHalfEven, write } from "./data.js";
import { erf } from "./math.js";
import type { LayerRunner } from "./types.js";

const UNARY: Record<UnaryOp, (x: number) => number> = {
  abs: Math.abs,
  neg: (x) => -x,
  sign: (x) => (Number.isNaN(x) ? x : Math.sign(x)),
  ceil: Math.ceil,
  floor: Math.floor,
  round: roundHalfEven,
  trunc: Math.trunc,
  exp: Math.exp,
  exp2: (x) => 2 ** x,
  expm1: Math.expm1,
  log: Math.log,
  log2: Math.log2,
  log10: Math.log10,
  log1p: Math.log1p,
  sqrt: Math.sqrt,
  rsqrt: (x) => 1 / Math.sqrt(x),
  reciprocal: (x) => 1 / x,
  erf,
  sin: Math.sin,
  cos: Math.cos,
  tan: Math.tan,
  asin: Math.asin,
  acos: Math.acos,
  atan: Math.atan,
  sinh: Math.sinh,
  cosh: Math.cosh,
  asinh: Math.asinh,
  acosh: Math.acosh,
  atanh: Math.atanh,
  not: (x) => Number(x === 0),
  isnan: (x) => Number(Number.isNaN(x)),
  isinf: (x) => Number(x === Number.POSITIVE_INFINITY || x === Number.NEGATIVE_INFINITY),
};

export const runUnary: LayerRunner<UnaryLayer> = (layer, [xt], out) => {
  const x = read(xt);
  const f = UNARY[layer.op];
  const res = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) res[i] = f(x[i]);
  return write(out, res);
};
