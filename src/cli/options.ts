import { InputError } from "../errors.js";
import type { DType } from "../ir/dtype.js";
import { DTYPES } from "../ir/dtype.js";
import { type InputSpec, parseInputShape } from "../runtime/shape-range.js";

/**
 * `--input-shape 1x3x224x224`, `--input-shape int64:2x12`, or a batch range min:opt:max
 * (`1x3x224x224:8x3x224x224:64x3x224x224`, runtime/shape-range.ts), once per input.
 */
export function parseInputShapes(specs: readonly string[] | undefined): InputSpec[] | undefined {
  if (!specs || specs.length === 0) return undefined;
  return specs.map((spec): InputSpec => {
    const typed = DTYPES.includes(spec.split(":")[0] as DType);
    if (spec.split(":").length - (typed ? 1 : 0) === 3) {
      const range = parseInputShape(typed ? spec.slice(spec.indexOf(":") + 1) : spec);
      return typed ? { ...range, dtype: spec.split(":")[0] as DType } : range;
    }
    const [maybeType, maybeShape] = spec.includes(":") ? spec.split(":", 2) : ["float32", spec];
    if (!DTYPES.includes(maybeType as DType))
      throw new InputError(`--input-shape ${spec}: unknown dtype '${maybeType}'`);
    const shape = maybeShape === "" ? [] : maybeShape.split(/[x,]/).map(Number);
    if (shape.some((d) => !Number.isInteger(d) || d < 0))
      throw new InputError(`--input-shape ${spec}: expected sizes like 1x3x224x224`);
    return { dtype: maybeType as DType, shape };
  });
}

/** `--tolerance X`: the largest max|err|/max|ref| accepted, a non-negative number; 1e-2 with fp16/bf16, else 1e-4. */
export function parseTolerance(value: string | undefined, reducedPrecision: boolean): number {
  if (value === undefined) return reducedPrecision ? 1e-2 : 1e-4;
  const tol = value.trim() === "" ? Number.NaN : Number(value);
  if (!Number.isFinite(tol) || tol < 0)
    throw new InputError(`--tolerance ${value}: expected a non-negative number, e.g. 1e-4`);
  return tol;
}
