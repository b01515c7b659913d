import { type Tensor, toFloat64Array } from "../../../src/ir/tensor.js";

/** max |a − b| / max |b| (0 when both are all zero); NaN positions must agree. */
export function relMaxError(a: Tensor, b: Tensor): number {
  const x = toFloat64Array(a);
  const y = toFloat64Array(b);
  if (x.length !== y.length) return Number.POSITIVE_INFINITY;
  let err = 0;
  let ref = 0;
  for (let i = 0; i < x.length; i++) {
    if (Number.isNaN(x[i]) || Number.isNaN(y[i])) {
      if (Number.isNaN(x[i]) !== Number.isNaN(y[i])) return Number.POSITIVE_INFINITY;
      continue;
    }
    if (!Number.isFinite(y[i]) || !Number.isFinite(x[i])) {
      if (x[i] !== y[i]) return Number.POSITIVE_INFINITY;
      continue;
    }
    err = Math.max(err, Math.abs(x[i] - y[i]));
    ref = Math.max(ref, Math.abs(y[i]));
  }
  return ref === 0 ? err : err / ref;
}
