// Shared by the CPU quantization tests (test/quant) and the GPU one (test/gpu/quant.gpu.test.ts): no vitest here.
import { type Tensor, toFloat64Array } from "../../src/ir/tensor.js";

/** Cosine similarity of two outputs (1 = same direction). */
export function cosine(a: Tensor, b: Tensor): number {
  const x = toFloat64Array(a);
  const y = toFloat64Array(b);
  let xy = 0;
  let xx = 0;
  let yy = 0;
  for (let i = 0; i < x.length; i++) {
    xy += x[i] * y[i];
    xx += x[i] * x[i];
    yy += y[i] * y[i];
  }
  return xy / Math.sqrt(xx * yy);
}
