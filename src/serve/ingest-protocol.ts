/**
 * The messages between an ingest thread (./ingest-worker.ts) and the thread that owns the batcher (./ingest.ts).
 * Request tensors cross by transfer (the body allocation moves, it is not copied); results are copied out of the
 * batch's output rows first, since a view would clone the whole batch buffer.
 */
import type { Tensor } from "../ir/tensor.js";
import { DeadlineError, QueueFullError } from "./batcher.js";
import type { BodySlots } from "./body.js";
import type { DecodedRequest, HttpAppOptions, NamedOutputs } from "./http-app.js";
import { ProtocolError } from "./protocol.js";

/** What an ingest thread starts with (its workerData). */
export interface IngestWorkerData {
  readonly app: Omit<HttpAppOptions, "bodies">;
  readonly host: string;
  readonly port: number;
  /** Listen with SO_REUSEPORT (several threads on one port). */
  readonly reusePort: boolean;
  /** Body slots in memory shared with the batcher's thread (page-locked there on a GPU backend). */
  readonly slots?: BodySlots;
}

/** Why a request failed on the batcher's side, as the ingest thread rebuilds it for the HTTP answer. */
export type WireError =
  | { readonly kind: "protocol"; readonly message: string; readonly status: number }
  | { readonly kind: "queue"; readonly retryAfterS: number }
  | { readonly kind: "deadline" }
  | { readonly kind: "other"; readonly message: string };

export type ToMain =
  | { readonly t: "listening"; readonly url: string; readonly port: number }
  | { readonly t: "failed"; readonly message: string }
  | { readonly t: "infer"; readonly id: number; readonly req: DecodedRequest }
  | {
      readonly t: "count";
      readonly status: string;
      /** Bodies read since the last count, by where they went (slots or allocations). */
      readonly bodies?: { readonly slot: number; readonly allocation: number };
    }
  | { readonly t: "metrics"; readonly id: number };

/** `bodies`: the request's moved buffers, moved back once its batch ran (nothing reads them any more). */
export type ToWorker =
  | {
      readonly t: "result";
      readonly id: number;
      readonly outputs: NamedOutputs;
      readonly bodies?: ArrayBuffer[];
    }
  | { readonly t: "error"; readonly id: number; readonly error: WireError; readonly bodies?: ArrayBuffer[] }
  | { readonly t: "metrics"; readonly id: number; readonly contentType: string; readonly text: string }
  | { readonly t: "drain" }
  | { readonly t: "close" };

/** Body allocations at least this large are moved (Node's shared pool slabs are smaller and cannot be). */
const TRANSFER_MIN_BYTES = 1 << 14;

/** The distinct buffers behind `tensors` that can move to the other thread instead of being copied. */
export function transferables(tensors: readonly Tensor[]): ArrayBuffer[] {
  const out = new Set<ArrayBuffer>();
  for (const t of tensors) {
    const b = t.data.buffer;
    if (b instanceof ArrayBuffer && b.byteLength >= TRANSFER_MIN_BYTES) out.add(b);
  }
  return [...out];
}

/** Each output in a buffer of its own (a batch's output row is a view into the whole batch's buffer). */
export function ownedOutputs(outputs: NamedOutputs): NamedOutputs {
  return outputs.map(({ name, tensor }) => ({
    name,
    tensor: { dtype: tensor.dtype, shape: [...tensor.shape], data: tensor.data.slice() } as Tensor,
  }));
}

export function toWireError(e: unknown): WireError {
  if (e instanceof ProtocolError) return { kind: "protocol", message: e.message, status: e.status };
  if (e instanceof QueueFullError) return { kind: "queue", retryAfterS: e.retryAfterS };
  if (e instanceof DeadlineError) return { kind: "deadline" };
  return { kind: "other", message: e instanceof Error ? e.message : String(e) };
}

export function fromWireError(w: WireError): Error {
  switch (w.kind) {
    case "protocol":
      return new ProtocolError(w.message, w.status);
    case "queue":
      return new QueueFullError(w.retryAfterS);
    case "deadline":
      return new DeadlineError();
    case "other":
      return new Error(w.message);
  }
}
