import { readFileSync, writeFileSync } from "node:fs";
import { InputError } from "../errors.js";
import type { DType } from "../ir/dtype.js";
import { DTYPE_BYTES } from "../ir/dtype.js";
import { numel, type Tensor, tensorBytes, tensorFromBytes } from "../ir/tensor.js";

// NumPy's .npy format, versions 1–3: magic, header length, a Python-literal dict, then raw C-order data.
const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];

const DESCR_TO_DTYPE: Record<string, DType> = {
  "<f4": "float32",
  "<f2": "float16",
  "<f8": "float64",
  "<i8": "int64",
  "<i4": "int32",
  "<i2": "int16",
  "|i1": "int8",
  "|u1": "uint8",
  "|b1": "bool",
};
const DTYPE_TO_DESCR: Partial<Record<DType, string>> = Object.fromEntries(
  Object.entries(DESCR_TO_DTYPE).map(([d, t]) => [t, d]),
);

export function parseNpy(bytes: Uint8Array, file = "<buffer>"): Tensor {
  const fail = (why: string): never => {
    throw new InputError(`${file}: not a readable .npy file: ${why}`, "npy.invalid");
  };
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) fail("missing the \\x93NUMPY magic");
  const major = bytes[6];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let headerLen: number;
  let offset: number;
  if (major === 1) {
    headerLen = view.getUint16(8, true);
    offset = 10;
  } else if (major === 2 || major === 3) {
    if (bytes.length < 12) fail("truncated header");
    headerLen = view.getUint32(8, true);
    offset = 12;
  } else {
    return fail(`unsupported format version ${major}`);
  }
  if (offset + headerLen > bytes.length) fail("truncated header");
  const header = new TextDecoder().decode(bytes.subarray(offset, offset + headerLen));
  const descr = /'descr'\s*:\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined)
    return fail(`malformed header ${header.trim()}`);
  const dtype = DESCR_TO_DTYPE[descr === "<b1" ? "|b1" : descr];
  if (!dtype)
    return fail(
      `dtype '${descr}' is not supported (float32, float16, float64, int64, int32, int16, int8, uint8, bool are)`,
    );
  if (fortran === "True") fail("Fortran-ordered arrays are not supported; save with np.ascontiguousarray");
  const shape = shapeText
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map(Number);
  if (shape.some((d) => !Number.isInteger(d) || d < 0)) fail(`bad shape (${shapeText})`);
  const start = offset + headerLen;
  const need = numel(shape) * DTYPE_BYTES[dtype];
  if (bytes.length - start < need)
    fail(`data is truncated: ${bytes.length - start} bytes for ${need} expected`);
  return tensorFromBytes(dtype, shape, bytes.subarray(start, start + need));
}

export function readNpy(path: string): Tensor {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new InputError(
      `${path}: cannot read input file (${(e as NodeJS.ErrnoException).code ?? String(e)})`,
      "npy.missing",
    );
  }
  return parseNpy(bytes, path);
}

export function encodeNpy(t: Tensor): Uint8Array {
  const descr = DTYPE_TO_DESCR[t.dtype];
  if (!descr) throw new InputError(`cannot write ${t.dtype} tensors as .npy`, "npy.dtype");
  const shape = t.shape.length === 1 ? `(${t.shape[0]},)` : `(${t.shape.join(", ")})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`;
  const total = 10 + header.length + 1;
  header += " ".repeat((64 - (total % 64)) % 64) + "\n";
  const head = new TextEncoder().encode(header);
  const out = new Uint8Array(10 + head.length + t.data.byteLength);
  out.set(MAGIC, 0);
  out[6] = 1;
  out[7] = 0;
  new DataView(out.buffer).setUint16(8, head.length, true);
  out.set(head, 10);
  out.set(tensorBytes(t), 10 + head.length);
  return out;
}

export function writeNpy(path: string, t: Tensor): void {
  writeFileSync(path, encodeNpy(t));
}
