/**
 * A typed client for the Open Inference Protocol's REST endpoints (torchc serve, Triton, KServe):
 * `import { InferenceClient } from "torchc/client"`. Tensors go in and come back as torchc host tensors.
 */
import type { DType } from "../ir/dtype.js";
import { numel, type Tensor, tensorFromNumbers } from "../ir/tensor.js";
import { DATATYPE, type ResponseTensor } from "./protocol.js";

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
    const body = {
      ...(opts.id ? { id: opts.id } : {}),
      inputs: Object.entries(inputs).map(([name, t]) => ({
        name,
        shape: t.shape,
        datatype: DATATYPE[t.dtype],
        data:
          t.dtype === "int64"
            ? Array.from(t.data as BigInt64Array, Number)
            : Array.from(t.data as Float32Array),
      })),
      ...(opts.outputs ? { outputs: opts.outputs.map((name) => ({ name })) } : {}),
      ...(opts.timeoutUs ? { parameters: { timeout: opts.timeoutUs } } : {}),
    };
    const r = await fetch(new URL(`/v2/models/${encodeURIComponent(this.model)}/infer`, this.baseUrl), {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    const json = (await r.json().catch(() => ({}))) as { error?: string; outputs?: ResponseTensor[] };
    if (!r.ok)
      throw new InferenceError(
        r.status,
        json.error ?? r.statusText,
        r.headers.get("retry-after") ?? undefined,
      );
    const out: Record<string, Tensor> = {};
    for (const o of json.outputs ?? []) {
      const dtype = DTYPE_OF[o.datatype];
      if (!dtype || numel(o.shape) !== o.data.length)
        throw new InferenceError(502, `malformed output '${o.name}'`);
      out[o.name] = tensorFromNumbers(dtype, o.shape, o.data.map(Number));
    }
    return out;
  }
}
