/**
 * A constant's stored elements moved into another axis order, bit for bit: the upload of a weight whose storage
 * dtype is its own needs no float conversion (channels-last conv weights of an fp16 engine: half the build's
 * host time went to converting every half to a double and back).
 */
import { DTYPE_BYTES } from "../../ir/dtype.js";
import { stridesOf, type Tensor, tensorBytes } from "../../ir/tensor.js";
import { stridedIndex } from "../../ops/view.js";

/** Whether axis order `perm` of `shape` lists the axes longer than 1 in increasing order. */
export function keepsElementOrder(shape: readonly number[], perm: readonly number[]): boolean {
  let last = -1;
  for (const a of perm) {
    if (shape[a] === 1) continue;
    if (a < last) return false;
    last = a;
  }
  return true;
}

/** The bytes of `t` with its axes in the order `perm` (output axis i is input axis perm[i]). */
export function permutedBytes(t: Tensor, perm: readonly number[]): Uint8Array {
  const src = tensorBytes(t);
  // Moving only axes of size 1 (1×1 conv weights stored channels-last) keeps every element where it is.
  if (keepsElementOrder(t.shape, perm)) return src.slice();
  const width = DTYPE_BYTES[t.dtype];
  // Elements move as 1, 2 or 4-byte words (an 8-byte element is two 4-byte words).
  const unit = Math.min(width, 4);
  const words = width / unit;
  const view = (b: Uint8Array) =>
    unit === 4
      ? new Uint32Array(b.buffer, b.byteOffset, b.byteLength / 4)
      : unit === 2
        ? new Uint16Array(b.buffer, b.byteOffset, b.byteLength / 2)
        : b;
  const out = new Uint8Array(src.byteLength);
  // tensorBytes may be an unaligned view: copy it to an aligned buffer first when it is.
  const aligned = src.byteOffset % unit === 0 ? src : src.slice();
  const [x, y] = [view(aligned), view(out)];
  // Where each output element sits in the input, in input elements (the same odometer as strided views).
  const inStrides = stridesOf(t.shape);
  const from = stridedIndex(
    perm.map((p) => t.shape[p]),
    perm.map((p) => inStrides[p]),
    0,
  );
  if (words === 1) for (let k = 0; k < from.length; k++) y[k] = x[from[k]];
  else
    for (let k = 0; k < from.length; k++)
      for (let w = 0; w < words; w++) y[k * words + w] = x[from[k] * words + w];
  return out;
}
