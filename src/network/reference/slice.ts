import { numel, stridesOf } from "../../ir/tensor.js";
import type { SliceLayer } from "../layers/slice.js";
import { read, write } from "./data.js";
import type { LayerRunner } from "./types.js";

export const runSlice: LayerRunner<SliceLayer> = (layer, [xt], out) => {
  const x = read(xt);
  const strides = stridesOf(xt.shape);
  const n = numel(out.shape);
  const res = new Float64Array(n);
  const rank = out.shape.length;
  for (let k = 0; k < n; k++) {
    let rem = k;
    let src = 0;
    for (let a = rank - 1; a >= 0; a--) {
      const i = rem % out.shape[a];
      rem = Math.floor(rem / out.shape[a]);
      src += (layer.starts[a] + i * layer.steps[a]) * strides[a];
    }
    res[k] = x[src];
  }
  return write(out, res);
};
