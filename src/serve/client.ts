/**
 * A typed client for the Open Inference Protocol's REST endpoints (torchc serve, Triton, KServe):
 * `import { InferenceClient } from "torchc/client"`. Tensors go in and come back as torchc host tensors.
 */
import { DTYPE_BYTES, type DType } from "../ir/dtype.js";
import { numel, type Tensor, tensorFromBytes, tensorFromNumbers } from "../ir/tensor.js";
import { DATATYPE, type ResponseTensor, splitBinaryBody, tensorData } from "./protocol.js";

const DTYPE_OF: Readonly<Record<string, DType>> = Object.fromEntries(
  Object.entries(DATATYPE).map(([d, name]) => [name, d as DType]),
);

export class InferenceError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly retryAfter?: string,
  ) {
    super(`${status}: ${message}`);
    this.name = "InferenceError";
  }
}

export interface InferOptions {
  readonly id?: string;
  /** Send inputs and receive outputs as raw bytes (the binary tensor data extension). */
  readonly binary?: boolean;
  /** Only these outputs. */
  readonly outputs?: readonly string[];
  /** Deadline in microseconds (the protocol's `parameters.timeout`). */
  readonly timeoutUs?: number;
}

export class InferenceClient {
  constructor(
    readonly baseUrl: string,
    readonly model = "model",
  ) {}

  private async get(path: string): Promise<{ status: number; body: unknown }> {
    const r = await fetch(new URL(path, this.baseUrl));
    return { status: r.status, body: await r.json().catch(() => undefined) };
  }

  async live(): Promise<boolean> {
    return (await this.get("/v2/health/live")).status === 200;
  }

  async ready(): Promise<boolean> {
    return (await this.get(`/v2/models/${encodeURIComponent(this.model)}/ready`)).status === 200;
  }

  async metadata(): Promise<unknown> {
    return (await this.get(`/v2/models/${encodeURIComponent(this.model)}`)).body;
  }

  /** Inputs by name; outputs by name. Non-2xx answers throw InferenceError with the server's message. */
  async infer(
    inputs: Readonly<Record<string, Tensor>>,
    opts: InferOptions = {},
  ): Promise<Record<string, Tensor>> {
    const entries = Object.entries(inputs);
    const header = {
      ...(opts.id ? { id: opts.id } : {}),
      inputs: entries.map(([name, t]) => ({
        name,
        shape: t.shape,
        datatype: DATATYPE[t.dtype],
        ...(opts.binary
          ? { parameters: { binary_data_size: tensorData(t).byteLength } }
          : {
              data:
                t.dtype === "int64"
                  ? Array.from(t.data as BigInt64Array, Number)
                  : Array.from(t.data as Float32Array),
            }),
      })),
      ...(opts.outputs ? { outputs: opts.outputs.map((name) => ({ name })) } : {}),
      parameters: {
        ...(opts.timeoutUs ? { timeout: opts.timeoutUs } : {}),
        ...(opts.binary ? { binary_data_output: true } : {}),
      },
    };
    const json = new TextEncoder().encode(JSON.stringify(header));
    const r = await fetch(new URL(`/v2/models/${encodeURIComponent(this.model)}/infer`, this.baseUrl), {
      method: "POST",
      headers: opts.binary
        ? {
            "content-type": "application/octet-stream",
            "inference-header-content-length": String(json.byteLength),
          }
        : { "content-type": "application/json" },
      body: opts.binary ? Buffer.concat([json, ...entries.map(([, t]) => tensorData(t))]) : json,
    });
    const raw = new Uint8Array(await r.arrayBuffer());
    const headerLength = r.headers.get("inference-header-content-length");
    const split =
      headerLength === null
        ? { json: safeJson(raw), binary: new Uint8Array(0) }
        : splitBinaryBody(raw, Number(headerLength));
    const body = (split.json ?? {}) as { error?: string; outputs?: ResponseTensor[] };
    if (!r.ok)
      throw new InferenceError(
        r.status,
        body.error ?? r.statusText,
        r.headers.get("retry-after") ?? undefined,
      );
    const out: Record<string, Tensor> = {};
    let at = 0;
    for (const o of body.outputs ?? []) {
      const dtype = DTYPE_OF[o.datatype];
      if (!dtype) throw new InferenceError(502, `output '${o.name}' has datatype ${o.datatype}`);
      const size = o.parameters?.binary_data_size;
      if (size !== undefined) {
        if (size !== numel(o.shape) * DTYPE_BYTES[dtype] || at + size > split.binary.byteLength)
          throw new InferenceError(502, `malformed binary output '${o.name}'`);
        out[o.name] = tensorFromBytes(dtype, o.shape, split.binary.slice(at, at + size));
        at += size;
      } else {
        if (!o.data || numel(o.shape) !== o.data.length)
          throw new InferenceError(502, `malformed output '${o.name}'`);
        out[o.name] = tensorFromNumbers(dtype, o.shape, o.data.map(Number));
      }
    }
    return out;
  }
}

function safeJson(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return undefined;
  }
}
