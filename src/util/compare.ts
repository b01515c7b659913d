import type { Tensor } from "../ir/tensor.js";
import { toFloat64Array } from "../ir/tensor.js";

export interface Agreement {
  readonly maxAbsError: number;
  readonly maxAbsReference: number;
  /** max |out − ref| / max |ref|: the measure the test suite and `torchc run --expect` use. */
  readonly relative: number;
  readonly shapeMatches: boolean;
}

export function compareTensors(out: Tensor, ref: Tensor): Agreement {
  const shapeMatches = out.shape.length === ref.shape.length && out.shape.every((d, i) => d === ref.shape[i]);
  if (!shapeMatches)
    return {
      maxAbsError: Number.POSITIVE_INFINITY,
      maxAbsReference: 0,
      relative: Number.POSITIVE_INFINITY,
      shapeMatches,
    };
  const a = toFloat64Array(out);
  const b = toFloat64Array(ref);
  let err = 0;
  let mag = 0;
  for (let i = 0; i < a.length; i++) {
    const e = Math.abs(a[i] - b[i]);
    if (!(e <= err)) err = Number.isNaN(e) ? Number.POSITIVE_INFINITY : e;
    mag = Math.max(mag, Math.abs(b[i]));
  }
  return { maxAbsError: err, maxAbsReference: mag, relative: mag > 0 ? err / mag : err, shapeMatches };
}
