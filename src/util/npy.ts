import { writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { InputError } from "../errors.js";
import { limits } from "../frontends/limits.js";
import { isReadFailure, readFileBounded } from "../frontends/read-file.js";
import type { DType } from "../ir/dtype.js";
import { DTYPE_BYTES } from "../ir/dtype.js";
import { numel, type Tensor, tensorBytes, tensorFromBytes } from "../ir/tensor.js";

// NumPy's .npy format, versions 1–3: magic, header length, a Python-literal dict, then raw C-order data.
const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];

const DESCR_TO_DTYPE: ReadonlyMap<string, DType> = new Map([
  ["<f4", "float32"],
  ["<f2", "float16"],
  ["<f8", "float64"],
  ["<i8", "int64"],
  ["<i4", "int32"],
  ["<i2", "int16"],
  ["|i1", "int8"],
  ["|u1", "uint8"],
  ["|b1", "bool"],
  ["<b1", "bool"],
]);
const DTYPE_TO_DESCR: ReadonlyMap<DType, string> = new Map(
  [...DESCR_TO_DTYPE].filter(([d]) => d !== "<b1").map(([d, t]) => [t, d]),
);

/** NumPy refuses headers longer than this (`np.load`'s `max_header_size`). */
const MAX_HEADER = 10000;

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
  if (headerLen > MAX_HEADER)
    fail(`its header is ${headerLen} bytes, more than NumPy's limit of ${MAX_HEADER}`);
  if (offset + headerLen > bytes.length) fail("truncated header");
  const text = new TextDecoder(major === 3 ? "utf-8" : "latin1").decode(
    bytes.subarray(offset, offset + headerLen),
  );
  const header = parseHeader(text, fail);
  const dtype = DESCR_TO_DTYPE.get(header.descr);
  if (!dtype)
    return fail(
      `dtype ${JSON.stringify(header.descr)} is not supported (float32, float16, float64, int64, int32, int16, int8, uint8, bool are)`,
    );
  if (header.fortranOrder) fail("Fortran-ordered arrays are not supported; save with np.ascontiguousarray");
  const shape = header.shape;
  const start = offset + headerLen;
  const need = numel(shape) * DTYPE_BYTES[dtype];
  if (!Number.isSafeInteger(need) || bytes.length - start < need)
    fail(`data is truncated: ${bytes.length - start} bytes for ${need} expected`);
  return tensorFromBytes(dtype, shape, bytes.subarray(start, start + need));
}

interface NpyHeader {
  readonly descr: string;
  readonly fortranOrder: boolean;
  readonly shape: number[];
}

/**
 * The header is a Python dict literal with exactly the keys `descr` (a string), `fortran_order` (True/False) and
 * `shape` (a tuple of non-negative ints), as NumPy requires; it is read by a small tokenizer, not patterns, so
 * a key hidden inside a string or a float in the shape is refused as NumPy refuses it.
 */
function parseHeader(text: string, fail: (why: string) => never): NpyHeader {
  let i = 0;
  const ws = () => {
    while (i < text.length && " \t\n\r".includes(text[i])) i++;
  };
  const bad = (what: string): never => fail(`malformed header (${what} at offset ${i})`);
  const expect = (c: string) => {
    ws();
    if (text[i] !== c) bad(`expected '${c}'`);
    i++;
  };
  const string = (): string => {
    ws();
    const q = text[i];
    if (q !== "'" && q !== '"') return bad("expected a string");
    const end = text.indexOf(q, i + 1);
    if (end < 0 || text.slice(i + 1, end).includes("\\")) return bad("unterminated or escaped string");
    const s = text.slice(i + 1, end);
    i = end + 1;
    return s;
  };
  const value = (key: string): string | boolean | number[] => {
    ws();
    if (key === "descr") return string();
    if (key === "fortran_order") {
      for (const [word, v] of [
        ["True", true],
        ["False", false],
      ] as const)
        if (text.startsWith(word, i)) {
          i += word.length;
          return v;
        }
      return bad("expected True or False");
    }
    expect("(");
    const dims: number[] = [];
    for (;;) {
      ws();
      if (text[i] === ")") break;
      const m = /^\d{1,16}(?![\w.])/.exec(text.slice(i, i + 24));
      if (!m) return bad("expected a non-negative integer in the shape");
      dims.push(Number(m[0]));
      i += m[0].length;
      ws();
      if (text[i] === ",") i++;
      else if (text[i] !== ")") return bad("expected ',' or ')' in the shape");
    }
    i++;
    if (dims.length > 64) return bad("more than 64 dimensions");
    return dims;
  };
  expect("{");
  const seen = new Map<string, string | boolean | number[]>();
  for (;;) {
    ws();
    if (text[i] === "}") break;
    const key = string();
    if (key !== "descr" && key !== "fortran_order" && key !== "shape")
      return fail(`unexpected key ${JSON.stringify(key)} in the header`);
    if (seen.has(key)) return fail(`the key '${key}' appears twice in the header`);
    expect(":");
    seen.set(key, value(key));
    ws();
    if (text[i] === ",") i++;
    else if (text[i] !== "}") bad("expected ',' or '}'");
  }
  i++;
  ws();
  if (i !== text.length) bad("unexpected text after the dict");
  for (const key of ["descr", "fortran_order", "shape"])
    if (!seen.has(key)) fail(`the header has no '${key}'`);
  return {
    descr: seen.get("descr") as string,
    fortranOrder: seen.get("fortran_order") as boolean,
    shape: seen.get("shape") as number[],
  };
}

export function readNpy(path: string): Tensor {
  const bytes = readFileBounded(path, limits().maxMemory);
  if (isReadFailure(bytes))
    throw new InputError(
      `${path}: ${bytes.kind === "missing" ? `cannot read input file (${bytes.detail})` : bytes.detail}`,
      bytes.kind === "missing" ? "npy.missing" : "npy.too-large",
    );
  return parseNpy(bytes, path);
}

export function encodeNpy(t: Tensor): Uint8Array {
  const descr = DTYPE_TO_DESCR.get(t.dtype);
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
  const bytes = encodeNpy(t);
  try {
    writeFileSync(path, bytes);
  } catch (e) {
    throw new InputError(`${path}: cannot write the output (${writeFailure(e, path)})`, "npy.write");
  }
}

/** Why a file could not be written, in words: a missing folder, no permission, a folder in the way. */
export function writeFailure(e: unknown, path: string): string {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === "ENOENT") return `the folder ${dirname(path)} does not exist`;
  if (code === "EACCES" || code === "EPERM") return "permission denied";
  if (code === "EISDIR") return "it is a folder";
  if (code === "ENOTDIR") return "a parent of it is not a folder";
  if (code === "ENOSPC") return "no space left on the device";
  return code ?? String((e as Error).message ?? e);
}
