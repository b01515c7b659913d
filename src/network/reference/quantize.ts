import type { DequantizeLayer, QuantizeLayer, QuantParams } from "../layers/quantize.js";
import { axisSplit, read, roundHalfEven, write } from "./data.js";
import type { LayerRunner } from "./types.js";

function channelOf(p: QuantParams, shape: readonly number[]): (i: number) => number {
  if (p.axis === null) return () => 0;
  const { size, inner } = axisSplit(shape, p.axis);
  return (i) => Math.floor(i / inner) % size;
}

export const runQuantize: LayerRunner<QuantizeLayer> = (layer, [xt], out) => {
  const x = read(xt);
  const ch = channelOf(layer, xt.shape);
  for (let i = 0; i < x.length; i++) {
    const c = ch(i);
    const q = roundHalfEven(x[i] * (1 / layer.scale[c])) + layer.zeroPoint[c];
    x[i] = Math.min(Math.max(q, layer.qmin), layer.qmax);
  }
  return write(out, x);
};

export const runDequantize: LayerRunner<DequantizeLayer> = (layer, [qt], out) => {
  const q = read(qt);
  const ch = channelOf(layer, qt.shape);
  for (let i = 0; i < q.length; i++) {
    const c = ch(i);
    q[i] = (q[i] - layer.zeroPoint[c]) * layer.scale[c];
  }
  return write(out, q);
};
