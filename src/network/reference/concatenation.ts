import { numel } from "../../ir/tensor.js";
import type { ConcatenationLayer } from "../layers/concatenation.js";
import { axisSplit, read, write } from "./data.js";
import type { LayerRunner } from "./types.js";

export const runConcatenation: LayerRunner<ConcatenationLayer> = (layer, inputs, out) => {
  const res = new Float64Array(numel(out.shape));
  const { outer, size: total, inner } = axisSplit(out.shape, layer.axis);
  let offset = 0;
  for (const t of inputs) {
    const x = read(t);
    const n = t.shape[layer.axis];
    for (let o = 0; o < outer; o++) {
      res.set(x.subarray(o * n * inner, (o + 1) * n * inner), (o * total + offset) * inner);
    }
    offset += n;
  }
  return write(out, res);
};
