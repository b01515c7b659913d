import { numel } from "../../ir/tensor.js";
import type { ElementwiseLayer, ElementwiseOp } from "../layers/elementwise.js";
import { isFloatType } from "../shape.js";
import { broadcastIndex, read, write } from "./data.js";
import type { LayerRunner } from "./types.js";

/** PyTorch's floor division of floats (`div_floor_floating`), which differs from floor(a / b) near integers. */
export function floorDivFloat(a: number, b: number): number {
  if (b === 0) return a / b;
  const mod = a % b;
  let div = (a - mod) / b;
  if (mod !== 0 && b < 0 !== mod < 0) div -= 1;
  if (div === 0) return Math.sign(a / b) < 0 || Object.is(a / b, -0) ? -0 : 0;
  let fl = Math.floor(div);
  if (div - fl > 0.5) fl += 1;
  return fl;
}

/** Python-style remainder: the result takes the divisor's sign. */
export function remainder(a: number, b: number): number {
  let mod = a % b;
  if (mod !== 0 && b < 0 !== mod < 0) mod += b;
  return mod;
}

type Binary = (a: number, b: number) => number;

function opFor(op: ElementwiseOp, float: boolean): Binary {
  switch (op) {
    case "add":
      return (a, b) => a + b;
    case "sub":
      return (a, b) => a - b;
    case "mul":
      return (a, b) => a * b;
    case "div":
      return float ? (a, b) => a / b : (a, b) => (b === 0 ? 0 : Math.trunc(a / b));
    case "floor_div":
      return float ? floorDivFloat : (a, b) => (b === 0 ? 0 : Math.floor(a / b));
    case "remainder":
      return float ? remainder : (a, b) => (b === 0 ? 0 : remainder(a, b));
    case "fmod":
      return float ? (a, b) => a % b : (a, b) => (b === 0 ? 0 : a % b);
    case "pow":
      return float ? Math.pow : (a, b) => Math.trunc(a ** b);
    case "min":
      return (a, b) => (Number.isNaN(a) || Number.isNaN(b) ? Number.NaN : Math.min(a, b));
    case "max":
      return (a, b) => (Number.isNaN(a) || Number.isNaN(b) ? Number.NaN : Math.max(a, b));
    case "eq":
      return (a, b) => Number(a === b);
    case "ne":
      return (a, b) => Number(a !== b);
    case "lt":
      return (a, b) => Number(a < b);
    case "le":
      return (a, b) => Number(a <= b);
    case "gt":
      return (a, b) => Number(a > b);
    case "ge":
      return (a, b) => Number(a >= b);
    case "and":
      return (a, b) => Number(a !== 0 && b !== 0);
    case "or":
      return (a, b) => Number(a !== 0 || b !== 0);
    case "xor":
      return (a, b) => Number((a !== 0) !== (b !== 0));
  }
}

export const runElementwise: LayerRunner<ElementwiseLayer> = (layer, [at, bt], out) => {
  const a = read(at);
  const b = read(bt);
  const ai = broadcastIndex(at.shape, out.shape);
  const bi = broadcastIndex(bt.shape, out.shape);
  const f = opFor(layer.op, isFloatType(at.dtype));
  const res = new Float64Array(numel(out.shape));
  for (let i = 0; i < res.length; i++) res[i] = f(a[ai[i]], b[bi[i]]);
  return write(out, res);
};
