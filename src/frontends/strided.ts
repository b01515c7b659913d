import type { DType } from "../ir/dtype.js";
import { DTYPE_BYTES } from "../ir/dtype.js";
import { allocData, type Tensor, tensorFromBytes, typedDataView } from "../ir/tensor.js";
import { formatBytes, type MemoryBudget } from "./limits.js";

/** A tensor stored as a view into a storage: sizes, strides and offset in elements, as PyTorch records them. */
export interface StridedView {
  /** The storage's record in the archive, for messages. */
  readonly file: string;
  /** The tensor, for messages (`'fc.weight'`). */
  readonly what: string;
  readonly dtype: DType;
  readonly sizes: readonly number[];
  readonly strides: readonly number[];
  readonly offset: number;
  /** Bytes in the storage. */
  readonly storageBytes: number;
  /** The first `prefix` bytes of the storage (all of it without a prefix). */
  readonly read: (prefix?: number) => Uint8Array;
  readonly budget: MemoryBudget;
}

type Fail = (detail: string, code?: string) => never;

/**
 * Materialises a view as a dense tensor, after checking it against its storage and the memory budget: the
 * view must lie inside the storage, and the dense copy (which for stride-0 or overlapping views can be far
 * larger than the storage) is charged to the budget before it is allocated.
 */
export function viewTensor(v: StridedView, fail: Fail): Tensor {
  const { sizes, strides, offset, dtype } = v;
  const item = DTYPE_BYTES[dtype];
  if (strides.length !== sizes.length)
    fail(`${v.what} has ${sizes.length} sizes but ${strides.length} strides`);
  let n = 1;
  for (const d of sizes) n *= d;
  let extent = n === 0 ? 0 : offset + 1;
  if (n > 0) for (let i = 0; i < sizes.length; i++) extent += (sizes[i] - 1) * strides[i];
  if (!Number.isSafeInteger(n * item) || !Number.isSafeInteger(extent * item))
    fail(`${v.what} has an impossible size (${dtype}[${sizes.join(", ")}])`, "archive.too-large");
  const need = extent * item;
  if (v.storageBytes < need || v.storageBytes % item !== 0)
    fail(
      `weight file ${v.file} for ${v.what} has ${v.storageBytes} bytes but its metadata (${dtype}[${sizes.join(", ")}]) needs ${need}`,
      "archive.weight-size",
    );
  // contiguous: each stride is the product of the sizes after it (any stride will do along a size of 1)
  let contiguous = offset === 0;
  for (let i = sizes.length - 1, dense = 1; contiguous && i >= 0; i--) {
    if (sizes[i] !== 1 && strides[i] !== dense) contiguous = false;
    dense *= sizes[i];
  }
  if (contiguous) {
    // the storage's bytes are ours (read from the file or inflated): an aligned one is used in place
    const bytes = v.read(n * item);
    if (bytes.byteOffset % item === 0)
      return { dtype, shape: [...sizes], data: typedDataView(dtype, bytes.buffer, bytes.byteOffset, n) };
    chargeDense(v, n * item);
    return tensorFromBytes(dtype, sizes, bytes);
  }
  chargeDense(v, n * item);
  const bytes = v.read(need);
  const out = allocData(dtype, n);
  const dst = new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  const rank = sizes.length;
  // Rows along the last dimension are copied whole when they are contiguous in the storage.
  const rowLen = rank > 0 && strides[rank - 1] === 1 ? sizes[rank - 1] : 1;
  const outer = rank > 0 && rowLen > 1 ? rank - 1 : rank;
  const rows = rowLen > 0 ? n / rowLen : 0;
  const idx = new Array<number>(outer).fill(0);
  const rowBytes = rowLen * item;
  for (let r = 0; r < rows; r++) {
    let src = offset;
    for (let d = 0; d < outer; d++) src += idx[d] * strides[d];
    const at = src * item;
    if (rowBytes === item) for (let k = 0; k < item; k++) dst[r * item + k] = bytes[at + k];
    else dst.set(bytes.subarray(at, at + rowBytes), r * rowBytes);
    for (let d = outer - 1; d >= 0; d--) {
      if (++idx[d] < sizes[d]) break;
      idx[d] = 0;
    }
  }
  return { dtype, shape: [...sizes], data: out };
}

/** Charges the dense copy of a view to the budget, before it is allocated. */
function chargeDense(v: StridedView, bytes: number): void {
  v.budget.charge(bytes, `${v.what} (${v.dtype}[${v.sizes.join(", ")}], ${formatBytes(bytes)})`);
}
