import type { ReduceLayer, ReduceOp } from "../layers/reduce.js";
import { read, transpose, write } from "./data.js";
import type { LayerRunner } from "./types.js";

function reduceRow(op: ReduceOp, x: Float64Array, start: number, n: number): number {
  switch (op) {
    case "sum":
    case "mean": {
      let s = 0;
      for (let i = 0; i < n; i++) s += x[start + i];
      return op === "mean" ? s / n : s;
    }
    case "prod": {
      let p = 1;
      for (let i = 0; i < n; i++) p *= x[start + i];
      return p;
    }
    case "max":
    case "min": {
      let best = op === "max" ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY;
      for (let i = 0; i < n; i++) {
        const v = x[start + i];
        if (Number.isNaN(v)) return v;
        best = op === "max" ? Math.max(best, v) : Math.min(best, v);
      }
      return best;
    }
    case "argmax":
    case "argmin": {
      let bi = 0;
      for (let i = 1; i < n; i++) {
        const v = x[start + i];
        const b = x[start + bi];
        if (Number.isNaN(b)) break;
        if (Number.isNaN(v) || (op === "argmax" ? v > b : v < b)) bi = i;
      }
      return bi;
    }
    case "any": {
      for (let i = 0; i < n; i++) if (x[start + i] !== 0) return 1;
      return 0;
    }
    case "all": {
      for (let i = 0; i < n; i++) if (x[start + i] === 0) return 0;
      return 1;
    }
  }
}

/** Moves the reduced axes last, then reduces contiguous rows. */
export const runReduce: LayerRunner<ReduceLayer> = (layer, [xt], out) => {
  const rank = xt.shape.length;
  const kept = [...Array(rank).keys()].filter((a) => !layer.axes.includes(a));
  const x = transpose(read(xt), xt.shape, [...kept, ...layer.axes]);
  const rowLen = layer.axes.reduce((p, a) => p * xt.shape[a], 1);
  const rows = kept.reduce((p, a) => p * xt.shape[a], 1);
  const res = new Float64Array(rows);
  for (let r = 0; r < rows; r++) res[r] = reduceRow(layer.op, x, r * rowLen, rowLen);
  return write(out, res);
};
