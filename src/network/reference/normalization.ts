import { numel } from "../../ir/tensor.js";
import type { NormalizationLayer } from "../layers/normalization.js";
import { read, write } from "./data.js";
import type { LayerRunner } from "./types.js";

/**
 * Normalizes contiguous groups of `size` elements: two-pass mean and biased variance in float64 (RMSNorm: the
 * mean is taken as 0).
 */
function normalizeGroups(x: Float64Array, size: number, eps: number, rms = false): void {
  for (let g = 0; g < x.length / size; g++) {
    const base = g * size;
    let s = 0;
    for (let i = 0; i < size && !rms; i++) s += x[base + i];
    const mean = s / size;
    let v = 0;
    for (let i = 0; i < size; i++) v += (x[base + i] - mean) ** 2;
    const rstd = 1 / Math.sqrt(v / size + eps);
    for (let i = 0; i < size; i++) x[base + i] = (x[base + i] - mean) * rstd;
  }
}

export const runNormalization: LayerRunner<NormalizationLayer> = (layer, [xt, st, bt], out) => {
  const x = read(xt);
  const scale = read(st);
  const bias = read(bt);
  if (layer.kind !== "group") {
    const size = numel(xt.shape.slice(layer.beginAxis));
    normalizeGroups(x, size, layer.epsilon, layer.kind === "rms");
    for (let i = 0; i < x.length; i++) x[i] = x[i] * scale[i % size] + bias[i % size];
  } else {
    const c = xt.shape[1];
    const spatial = numel(xt.shape.slice(2));
    normalizeGroups(x, (c / layer.numGroups) * spatial, layer.epsilon);
    for (let i = 0; i < x.length; i++) {
      const ch = Math.floor(i / spatial) % c;
      x[i] = x[i] * scale[ch] + bias[ch];
    }
  }
  return write(out, x);
};
