// Shared by the CPU quantization tests (test/quant) and the GPU one (test/gpu/quant.gpu.test.ts): no vitest here.
import { type Tensor, toFloat64Array } from "../../src/ir/tensor.js";

/** Cosine similarity of two outputs (1 = same direction). */
export function cosine(a: Tensor, b: Tensor): number {
  return cosineOf(toFloat64Array(a), toFloat64Array(b));
}

/** Cosine similarity of two equally long value arrays. */
export function cosineOf(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < b.length; i++) {
    ab += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  return ab / Math.sqrt(aa * bb);
}
