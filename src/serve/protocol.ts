/**
 * The Open Inference Protocol (KServe "v2", as Triton and KServe speak it): the JSON tensor form of inference
 * requests and responses, checked against the model before anything runs. A request that does not fit the
 * model is a ProtocolError (HTTP 400) with one line naming the input and what was expected.
 * https://kserve.github.io/website/latest/modelserving/data_plane/v2_protocol/
 */
import { DTYPE_BYTES, type DType } from "../ir/dtype.js";
import { float16BitsToNumber, numberToFloat16Bits } from "../ir/half.js";
import { allocData, numel, type Tensor, toFloat64Array, typedDataView } from "../ir/tensor.js";

export class ProtocolError extends Error {
  constructor(
    message: string,
    readonly status = 400,
  ) {
    super(message);
    this.name = "ProtocolError";
  }
}

/** The protocol's datatype names for the dtypes torchc serves. */
export const DATATYPE: Readonly<Partial<Record<DType, string>>> = {
  float32: "FP32",
  float64: "FP64",
  float16: "FP16",
  int64: "INT64",
  int32: "INT32",
  int16: "INT16",
  int8: "INT8",
  uint8: "UINT8",
  bool: "BOOL",
};

export interface TensorSpec {
  readonly name: string;
  readonly dtype: DType;
  /** The model's shape; dim 0 is the batch dimension when the server batches. */
  readonly shape: readonly number[];
}

export interface RequestInput {
  readonly name: string;
  readonly shape: readonly number[];
  readonly datatype: string;
  readonly data?: unknown;
  /** Binary tensor data extension: `binary_data_size` bytes of this input follow the JSON header. */
  readonly parameters?: Readonly<Record<string, unknown>>;
}

export interface InferRequest {
  readonly id?: string;
  readonly inputs: readonly RequestInput[];
  readonly outputs?: readonly { readonly name: string }[];
  readonly parameters?: Readonly<Record<string, unknown>>;
}

export interface ResponseTensor {
  readonly name: string;
  readonly shape: readonly number[];
  readonly datatype: string;
  readonly data?: readonly (number | boolean)[];
  readonly parameters?: { readonly binary_data_size: number };
}

/**
 * Splits a binary-extension body: the first `headerLength` bytes are the JSON request, the rest the tensors'
 * bytes in input order (https://github.com/kserve/open-inference-protocol, binary tensor data extension).
 */
export function splitBinaryBody(
  body: Uint8Array,
  headerLength: number,
): { json: unknown; binary: Uint8Array } {
  if (!Number.isInteger(headerLength) || headerLength < 0 || headerLength > body.byteLength)
    throw new ProtocolError(
      `Inference-Header-Content-Length ${headerLength} does not fit a ${body.byteLength}-byte body`,
    );
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(body.subarray(0, headerLength)));
  } catch {
    throw new ProtocolError("the JSON header of the binary request is not valid JSON");
  }
  return { json, binary: body.subarray(headerLength) };
}

/**
 * `n` elements of `dtype` at byte `at` of the binary section: a view of the request body when aligned for the
 * type (./body.ts lays bodies out so that the first input is), else a copy.
 */
function tensorView(dtype: DType, binary: Uint8Array, at: number, n: number): Tensor["data"] {
  const offset = binary.byteOffset + at;
  if (offset % DTYPE_BYTES[dtype] === 0) return typedDataView(dtype, binary.buffer, offset, n);
  const data = allocData(dtype, n);
  new Uint8Array(data.buffer, data.byteOffset, data.byteLength).set(
    binary.subarray(at, at + n * DTYPE_BYTES[dtype]),
  );
  return data;
}

function flatten(data: unknown, out: unknown[], depth = 0): void {
  if (depth > 64) throw new ProtocolError("tensor data is nested more than 64 deep");
  if (Array.isArray(data)) for (const d of data) flatten(d, out, depth + 1);
  else out.push(data);
}

const safe = (s: unknown) => JSON.stringify(String(s)).slice(1, -1).slice(0, 80);

/**
 * A request's tensors in the model's input order, each with its batch size (dim 0). `batched`: the batch
 * dimension may be anything from 1 to the model's; otherwise shapes must equal the model's.
 */
export function decodeRequest(
  body: unknown,
  inputs: readonly TensorSpec[],
  batched: boolean,
  binary?: Uint8Array,
): {
  id?: string;
  tensors: Tensor[];
  batch: number;
  outputs?: string[];
  binaryOutputs: ReadonlySet<string> | "all";
  timeoutUs?: number;
} {
  let binaryAt = 0;
  if (typeof body !== "object" || body === null || Array.isArray(body))
    throw new ProtocolError("the request body must be a JSON object with an 'inputs' list");
  const req = body as Partial<InferRequest>;
  if (!Array.isArray(req.inputs)) throw new ProtocolError("the request has no 'inputs' list");
  if (req.id !== undefined && typeof req.id !== "string") throw new ProtocolError("'id' must be a string");
  const byName = new Map<string, RequestInput>();
  for (const x of req.inputs as unknown[]) {
    if (typeof x !== "object" || x === null) throw new ProtocolError("each input must be an object");
    const i = x as RequestInput;
    if (typeof i.name !== "string") throw new ProtocolError("an input has no 'name'");
    if (byName.has(i.name)) throw new ProtocolError(`input '${safe(i.name)}' is given twice`);
    byName.set(i.name, i);
  }
  for (const name of byName.keys())
    if (!inputs.some((s) => s.name === name))
      throw new ProtocolError(
        `unknown input '${safe(name)}' (the model's inputs: ${inputs.map((s) => s.name).join(", ")})`,
      );
  let batch = -1;
  const tensors = inputs.map((spec) => {
    const x = byName.get(spec.name);
    if (!x) throw new ProtocolError(`input '${spec.name}' is missing`);
    const want = DATATYPE[spec.dtype];
    if (x.datatype !== want)
      throw new ProtocolError(`input '${spec.name}': datatype ${safe(x.datatype)}, expected ${want}`);
    const shape = x.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0))
      throw new ProtocolError(`input '${spec.name}': 'shape' must be a list of non-negative integers`);
    const ok =
      shape.length === spec.shape.length &&
      shape.every((d, k) => d === spec.shape[k] || (batched && k === 0 && d >= 1 && d <= spec.shape[0]));
    if (!ok)
      throw new ProtocolError(
        `input '${spec.name}': shape [${shape.join(", ")}], expected [${batched ? `1..${spec.shape[0]}` : spec.shape[0]}${spec.shape
          .slice(1)
          .map((d) => `, ${d}`)
          .join("")}]`,
      );
    const b = shape[0] ?? 1;
    if (batch === -1) batch = b;
    else if (b !== batch) throw new ProtocolError(`inputs disagree on the batch size (${batch} and ${b})`);
    const n = numel(shape);
    const size = x.parameters?.binary_data_size;
    if (size !== undefined) {
      const bytes = n * DTYPE_BYTES[spec.dtype];
      if (size !== bytes)
        throw new ProtocolError(
          `input '${spec.name}': binary_data_size ${safe(size)}, expected ${bytes} for shape [${shape.join(", ")}]`,
        );
      if (!binary || binaryAt + bytes > binary.byteLength)
        throw new ProtocolError(
          `input '${spec.name}': the body holds fewer binary bytes than binary_data_size says`,
        );
      const data = tensorView(spec.dtype, binary, binaryAt, n);
      binaryAt += bytes;
      return { dtype: spec.dtype, shape: [...shape], data };
    }
    const flat: unknown[] = [];
    flatten(x.data, flat);
    if (flat.length !== n)
      throw new ProtocolError(
        `input '${spec.name}': ${flat.length} values for shape [${shape.join(", ")}] (${n} expected)`,
      );
    return { dtype: spec.dtype, shape: [...shape], data: encodeValues(spec.dtype, flat, spec.name) };
  });
  if (binary && binaryAt !== binary.byteLength)
    throw new ProtocolError(`the body has ${binary.byteLength - binaryAt} binary bytes no input claims`);
  let outputs: string[] | undefined;
  const binaryNamed = new Set<string>();
  if (req.outputs !== undefined) {
    if (!Array.isArray(req.outputs)) throw new ProtocolError("'outputs' must be a list");
    outputs = req.outputs.map((o) => {
      if (typeof o?.name !== "string") throw new ProtocolError("each requested output needs a 'name'");
      if ((o as { parameters?: { binary_data?: unknown } }).parameters?.binary_data === true)
        binaryNamed.add(o.name);
      return o.name;
    });
  }
  const binaryOutputs = req.parameters?.binary_data_output === true ? ("all" as const) : binaryNamed;
  const t = req.parameters?.timeout;
  if (t !== undefined && (typeof t !== "number" || !(t > 0)))
    throw new ProtocolError("parameters.timeout must be a positive number of microseconds");
  return {
    id: req.id,
    tensors,
    batch: Math.max(batch, 1),
    outputs,
    binaryOutputs,
    timeoutUs: t as number | undefined,
  };
}

function encodeValues(dtype: DType, values: readonly unknown[], name: string): Tensor["data"] {
  const out = allocData(dtype, values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (dtype === "bool") {
      if (typeof v !== "boolean") throw new ProtocolError(`input '${name}': BOOL data must be true or false`);
      (out as Uint8Array)[i] = v ? 1 : 0;
      continue;
    }
    if (
      typeof v !== "number" ||
      (!Number.isFinite(v) && dtype !== "float32" && dtype !== "float64" && dtype !== "float16")
    )
      throw new ProtocolError(`input '${name}': value ${i} is not a number`);
    if (dtype === "int64") {
      if (!Number.isSafeInteger(v)) throw new ProtocolError(`input '${name}': value ${i} is not an integer`);
      (out as BigInt64Array)[i] = BigInt(v);
    } else if (dtype === "float16") (out as Uint16Array)[i] = numberToFloat16Bits(v);
    else if (dtype.startsWith("int") || dtype === "uint8") {
      if (!Number.isInteger(v)) throw new ProtocolError(`input '${name}': value ${i} is not an integer`);
      (out as Int32Array)[i] = v;
    } else (out as Float32Array)[i] = v;
  }
  return out;
}

export function encodeTensor(name: string, t: Tensor): ResponseTensor {
  const datatype = DATATYPE[t.dtype];
  if (!datatype)
    throw new ProtocolError(`output '${name}' has dtype ${t.dtype}, which the protocol cannot carry`, 500);
  let data: (number | boolean)[];
  if (t.dtype === "bool") data = Array.from(t.data as Uint8Array, (v) => v !== 0);
  else if (t.dtype === "float16") data = Array.from(t.data as Uint16Array, float16BitsToNumber);
  else data = Array.from(toFloat64Array(t));
  return { name, shape: [...t.shape], datatype, data };
}

/** The raw little-endian bytes of a tensor (binary extension). */
export function tensorData(t: Tensor): Uint8Array {
  return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}
