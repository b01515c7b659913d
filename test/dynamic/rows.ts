/** Batches made of a fixture input's rows, and PyTorch's golden outputs for them (row i of a batch = its row). */
import { join } from "node:path";
import { numel, type Tensor } from "../../src/ir/tensor.js";
import { readNpy } from "../../src/util/npy.js";
import { MODELS } from "../helpers.js";

export interface Golden {
  readonly input: Tensor;
  readonly output: Tensor;
}

export function golden(name: string): Golden {
  return {
    input: readNpy(join(MODELS, `${name}.input.npy`)),
    output: readNpy(join(MODELS, `${name}.output.npy`)),
  };
}

/** A tensor whose row i is row `rows[i]` of `t` (along axis 0). */
export function pickRows(t: Tensor, rows: readonly number[]): Tensor {
  const inner = numel(t.shape.slice(1));
  const data = new (t.data.constructor as Float32ArrayConstructor)(rows.length * inner);
  const src = t.data as Float32Array;
  rows.forEach((r, i) => {
    data.set(src.subarray(r * inner, (r + 1) * inner), i * inner);
  });
  return { dtype: t.dtype, shape: [rows.length, ...t.shape.slice(1)], data };
}

/** `n` rows cycling through the fixture's rows in an order that differs from 0, 1, 2, … */
export function rowPattern(n: number, available: number): number[] {
  return Array.from(
    { length: n },
    (_, i) => (available - 1 - (i % available) + Math.floor(i / available)) % available,
  );
}
