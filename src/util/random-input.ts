import type { TensorType } from "../ir/graph.js";
import { numel, type Tensor, tensorFromNumbers } from "../ir/tensor.js";

/** Seeded normal samples (Box–Muller over a xorshift generator), so runs are repeatable. */
export function randomInput(type: TensorType, seed: number): Tensor {
  let s = seed >>> 0 || 1;
  const next = () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return ((s >>> 0) + 0.5) / 4294967296;
  };
  const n = numel(type.shape);
  const v = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    v[i] =
      type.dtype === "int64" || type.dtype === "int32"
        ? Math.floor(next() * 10)
        : Math.sqrt(-2 * Math.log(next())) * Math.cos(2 * Math.PI * next());
  }
  return tensorFromNumbers(type.dtype, type.shape, v);
}

/** The states of a xorshift32 sequence from `seed` (a seed of 0 starts from 1), as unsigned 32-bit numbers. */
export function xorshift32(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
}

/** n fp16 bit patterns, `half` of each state of a xorshift32 sequence from `seed` (timing and checking operands). */
export function xorshiftHalves(n: number, seed: number, half: (x: number) => number): Uint16Array {
  const next = xorshift32(seed);
  return Uint16Array.from({ length: n }, () => half(next()));
}
