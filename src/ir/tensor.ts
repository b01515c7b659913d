import { DTYPE_BYTES, type DType } from "./dtype.js";
import {
  bfloat16BitsToNumber,
  float16BitsToNumber,
  float32BitsToFloat16Bits,
  numberToBfloat16Bits,
  numberToFloat16Bits,
} from "./half.js";

/** The typed array that stores each dtype. float16/bfloat16 keep their raw bits. */
export type TensorData =
  | Float32Array
  | Float64Array
  | Uint16Array
  | BigInt64Array
  | Int32Array
  | Int16Array
  | Int8Array
  | Uint8Array;

export type Shape = readonly number[];

/** A dense, contiguous (row-major) tensor held in host memory. Never mutated once built. */
export interface Tensor {
  readonly dtype: DType;
  readonly shape: Shape;
  readonly data: TensorData;
}

export function numel(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function stridesOf(shape: Shape): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i];
  }
  return strides;
}

export function allocData(dtype: DType, n: number): TensorData {
  return typedDataView(dtype, new ArrayBuffer(n * DTYPE_BYTES[dtype]), 0, n);
}

/** `n` elements of `dtype` at `byteOffset` of `buffer` (aligned for the dtype), as the typed array that stores it. */
export function typedDataView(
  dtype: DType,
  buffer: ArrayBufferLike,
  byteOffset: number,
  n: number,
): TensorData {
  switch (dtype) {
    case "float32":
      return new Float32Array(buffer, byteOffset, n);
    case "float64":
      return new Float64Array(buffer, byteOffset, n);
    case "float16":
    case "bfloat16":
      return new Uint16Array(buffer, byteOffset, n);
    case "int64":
      return new BigInt64Array(buffer, byteOffset, n);
    case "int32":
      return new Int32Array(buffer, byteOffset, n);
    case "int16":
      return new Int16Array(buffer, byteOffset, n);
    case "int8":
      return new Int8Array(buffer, byteOffset, n);
    case "uint8":
    case "bool":
      return new Uint8Array(buffer, byteOffset, n);
  }
}

/** Views raw little-endian bytes as a tensor (copies, so the result is aligned and owned). */
export function tensorFromBytes(dtype: DType, shape: Shape, bytes: Uint8Array): Tensor {
  const n = numel(shape);
  const need = n * DTYPE_BYTES[dtype];
  if (bytes.byteLength < need) {
    throw new RangeError(
      `tensorFromBytes: ${bytes.byteLength} bytes for ${need} needed by ${dtype}[${shape.join(", ")}]`,
    );
  }
  const data = allocData(dtype, n);
  new Uint8Array(data.buffer, data.byteOffset, need).set(bytes.subarray(0, need));
  return { dtype, shape: [...shape], data };
}

export function tensorBytes(t: Tensor): Uint8Array {
  return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

/** Reads every element as a JS number (int64 through Number(), so exact below 2^53). */
export function toFloat64Array(t: Tensor): Float64Array {
  const n = t.data.length;
  const out = new Float64Array(n);
  const d = t.data;
  if (t.dtype === "float16") {
    for (let i = 0; i < n; i++) out[i] = float16BitsToNumber((d as Uint16Array)[i]);
  } else if (t.dtype === "bfloat16") {
    for (let i = 0; i < n; i++) out[i] = bfloat16BitsToNumber((d as Uint16Array)[i]);
  } else if (d instanceof BigInt64Array) {
    for (let i = 0; i < n; i++) out[i] = Number(d[i]);
  } else {
    for (let i = 0; i < n; i++) out[i] = (d as Float32Array)[i];
  }
  return out;
}

/** Builds a tensor of `dtype` from numbers, rounding as PyTorch's conversion does (truncation toward zero for ints). */
export function tensorFromNumbers(dtype: DType, shape: Shape, values: ArrayLike<number>): Tensor {
  const n = numel(shape);
  if (values.length !== n) {
    throw new RangeError(`tensorFromNumbers: ${values.length} values for shape [${shape.join(", ")}]`);
  }
  const data = allocData(dtype, n);
  if (dtype === "float16") {
    for (let i = 0; i < n; i++) (data as Uint16Array)[i] = numberToFloat16Bits(values[i]);
  } else if (dtype === "bfloat16") {
    for (let i = 0; i < n; i++) (data as Uint16Array)[i] = numberToBfloat16Bits(values[i]);
  } else if (dtype === "int64") {
    for (let i = 0; i < n; i++) (data as BigInt64Array)[i] = BigInt(Math.trunc(values[i]));
  } else if (dtype === "bool") {
    for (let i = 0; i < n; i++) (data as Uint8Array)[i] = values[i] !== 0 ? 1 : 0;
  } else if (dtype === "float32" || dtype === "float64") {
    (data as Float32Array).set(values as ArrayLike<number>);
  } else {
    for (let i = 0; i < n; i++) (data as Int32Array)[i] = Math.trunc(values[i]);
  }
  return { dtype, shape: [...shape], data };
}

export function scalarTensor(dtype: DType, value: number): Tensor {
  return tensorFromNumbers(dtype, [], [value]);
}

export function castTensor(t: Tensor, dtype: DType): Tensor {
  if (t.dtype === dtype) return t;
  // float32 → float16 (every weight of an fp16 compile) straight from the float's bits, no double in between.
  if (t.dtype === "float32" && dtype === "float16") {
    const d = t.data as Float32Array;
    const bits = new Uint32Array(d.buffer, d.byteOffset, d.length);
    const out = allocData("float16", d.length) as Uint16Array;
    for (let i = 0; i < bits.length; i++) {
      const x = bits[i];
      const a = x & 0x7fffffff;
      // Normal halves (2^-14 ≤ |x| < 65536) inline: rebias the exponent and round to nearest even in one add
      // (a carry out of the mantissa bumps the exponent, up to infinity). The rest, rare in weights, through
      // float32BitsToFloat16Bits. Equal to it on all 2^32 inputs (checked exhaustively when written); 3x faster.
      out[i] =
        a >= 0x38800000 && a < 0x47800000
          ? ((x >>> 16) & 0x8000) | ((a - 0x38000000 + 0xfff + ((a >>> 13) & 1)) >>> 13)
          : float32BitsToFloat16Bits(x);
    }
    return { dtype, shape: [...t.shape], data: out };
  }
  return tensorFromNumbers(dtype, t.shape, toFloat64Array(t));
}

export function formatShape(shape: Shape): string {
  return `[${shape.join(", ")}]`;
}
