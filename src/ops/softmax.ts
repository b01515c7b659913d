import type { DType } from "../ir/dtype.js";
import type { Tensor } from "../ir/tensor.js";
import { fromF64, normDim, nums, splitAt, toFloating, tt } from "./data.js";
import { type ArgReader, defineOp, opTable } from "./schema.js";

/** Softmax (or log-softmax) along `dim`, max-shifted, in float64. */
export function softmax(t: Tensor, dim: number, log: boolean, dtype: DType): Tensor {
  const x = nums(t);
  const [outer, len, inner] = splitAt(t.shape, dim);
  const out = new Float64Array(x.length);
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const base = o * len * inner + i;
      let m = -Infinity;
      for (let k = 0; k < len; k++) m = Math.max(m, x[base + k * inner]);
      // A row of -inf has no finite max: shifting by 0 keeps it NaN, as PyTorch's result is.
      if (m === -Infinity) m = 0;
      let s = 0;
      for (let k = 0; k < len; k++) s += Math.exp(x[base + k * inner] - m);
      if (log) {
        const ls = Math.log(s) + m;
        for (let k = 0; k < len; k++) out[base + k * inner] = x[base + k * inner] - ls;
      } else {
        for (let k = 0; k < len; k++) out[base + k * inner] = Math.exp(x[base + k * inner] - m) / s;
      }
    }
  }
  return fromF64(dtype, t.shape, out);
}

export interface SoftmaxArgs {
  readonly self: string;
  readonly dim: number;
  /** The result dtype given by the caller (`dtype=`, or `half_to_float`), else the input's. */
  readonly dtype: DType | null;
  readonly halfToFloat: boolean;
}

function softmaxOp<const N extends string>(
  name: N,
  schema: string,
  log: boolean,
  read: (r: ArgReader) => SoftmaxArgs,
) {
  const outDtype = (a: SoftmaxArgs, d: DType): DType =>
    a.dtype ?? (a.halfToFloat && (d === "float16" || d === "bfloat16") ? "float32" : toFloating(d));
  return defineOp({
    name,
    schema,
    read,
    infer: (a, typeOf) => {
      const t = typeOf(a.self);
      normDim(name, a.dim, t.shape.length);
      return [tt(outDtype(a, t.dtype), t.shape)];
    },
    evaluate: (a, valueAt) => {
      const t = valueAt(a.self);
      return [
        softmax(
          t,
          t.shape.length === 0 ? 0 : normDim(name, a.dim, t.shape.length),
          log,
          outDtype(a, t.dtype),
        ),
      ];
    },
  });
}

const withDtype = (r: ArgReader): SoftmaxArgs => ({
  self: r.tensor("self"),
  dim: r.int("dim"),
  dtype: r.optDtype("dtype"),
  halfToFloat: false,
});
const halfToFloat = (r: ArgReader): SoftmaxArgs => ({
  self: r.tensor("self"),
  dim: r.int("dim"),
  dtype: null,
  halfToFloat: r.bool("half_to_float"),
});

export const SOFTMAX_OPS = opTable(
  softmaxOp("aten.softmax.int", "Tensor self, int dim, ScalarType? dtype=None", false, withDtype),
  softmaxOp("aten._softmax.default", "Tensor self, int dim, bool half_to_float", false, halfToFloat),
  softmaxOp("aten.log_softmax.int", "Tensor self, int dim, ScalarType? dtype=None", true, withDtype),
  softmaxOp("aten._log_softmax.default", "Tensor self, int dim, bool half_to_float", true, halfToFloat),
);
