/**
 * A constant's stored elements moved into another axis order, bit for bit: the upload of a weight whose storage
 * dtype is its own needs no float conversion (channels-last conv weights of an fp16 engine: half the build's
 * host time went to converting every half to a double and back).
 */
import { DTYPE_BYTES } from "../../ir/dtype.js";
import { stridesOf, type Tensor, tensorBytes } from "../../ir/tensor.js";

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
  const shape = t.shape;
  const rank = shape.length;
  const outShape = perm.map((p) => shape[p]);
  const inStrides = stridesOf(shape);
  const stride = perm.map((p) => inStrides[p] * words);
  const n = y.length / words;
  const idx = new Array<number>(rank).fill(0);
  let at = 0;
  for (let k = 0; k < n; k++) {
    if (words === 1) y[k] = x[at];
    else for (let w = 0; w < words; w++) y[k * words + w] = x[at + w];
    for (let a = rank - 1; a >= 0; a--) {
      idx[a]++;
      at += stride[a];
      if (idx[a] < outShape[a]) break;
      at -= stride[a] * idx[a];
      idx[a] = 0;
    }
  }
  return out;
}
