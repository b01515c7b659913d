/**
 * The Open Inference Protocol's REST endpoints as a fastify app, over whatever runs a decoded request: the
 * server's own batcher (./server.ts), or the batcher on the main thread reached through a message port from an
 * ingest thread (./ingest-worker.ts). One implementation, so both answer the same requests the same way.
 *
 *   GET  /v2/health/live · /v2/health/ready · /v2 · /v2/models/{name} · /v2/models/{name}/ready
 *   POST /v2/models/{name}/infer                                     GET /metrics
 */
import type { IncomingMessage } from "node:http";
import Fastify, { type FastifyInstance } from "fastify";
import type { Tensor } from "../ir/tensor.js";
import { DeadlineError, QueueFullError } from "./batcher.js";
import { type BodyPool, readAlignedBody } from "./body.js";
import {
  DATATYPE,
  decodeRequest,
  encodeTensor,
  ProtocolError,
  type ResponseTensor,
  splitBinaryBody,
  type TensorSpec,
  tensorData,
} from "./protocol.js";

export const SERVER = { name: "torchc", version: "0.1.0", extensions: ["binary_tensor_data"] };

export type DecodedRequest = ReturnType<typeof decodeRequest>;

/** What a request's run answers: its wanted outputs by name. */
export type NamedOutputs = { name: string; tensor: Tensor }[];

export interface HttpAppOptions {
  readonly name: string;
  readonly version?: string;
  /** The model's metadata document (GET /v2/models/{name}). */
  readonly metadata: object;
  readonly inputs: readonly TensorSpec[];
  /** Whether requests carry a batch axis of their own size (dynamic batching). */
  readonly batching: boolean;
  readonly bodyLimit: number;
  /** JSON-line logs. */
  readonly log: boolean;
  /** Binary bodies are read into this pool's allocations. */
  readonly bodies?: BodyPool;
  /**
   * The bodies' allocations move to another thread with their tensors (and come back through `BodyPool.adopt`):
   * they are not given back to the pool when the request is answered.
   */
  readonly bodiesLeave?: boolean;
}

export interface HttpAppHandlers {
  draining(): boolean;
  /**
   * Runs a decoded request; throws ProtocolError, QueueFullError, DeadlineError, or anything else (500). `body`:
   * the binary body its tensors view, from the app's body pool.
   */
  infer(decoded: DecodedRequest, body?: Buffer): Promise<NamedOutputs>;
  /** Counts an answered request by HTTP status (200s too). */
  count(status: string): void;
  /** Counts request bodies by where an ingest thread read them (its page-locked slots, or allocations). */
  bodies?(placed: { readonly slot: number; readonly allocation: number }): void;
  metrics(): Promise<{ contentType: string; text: string }>;
}

/** The fastify app (not listening yet). */
export function httpApp(o: HttpAppOptions, h: HttpAppHandlers): FastifyInstance {
  const { name } = o;
  const app = Fastify({
    logger: o.log ? { level: "info" } : false,
    bodyLimit: o.bodyLimit,
    genReqId: () => crypto.randomUUID(),
  });
  const modelPath = `/v2/models/${encodeURIComponent(name)}`;
  // Binary tensor data extension: a JSON header of Inference-Header-Content-Length bytes, then raw tensors.
  const bodies = o.bodies;
  // Bodies whose batch has run: nothing reads their tensor views once the answer is sent.
  const spent = new WeakSet<object>();
  // Requests whose tensors went to a run: until it is done (spent), or for good when the bodies leave.
  const handed = new WeakSet<object>();
  if (bodies)
    app.addHook("onResponse", async (req) => {
      if (!Buffer.isBuffer(req.body)) return;
      // A body no run took is read by nothing now; one that went to a run comes back once the run is done (here
      // when answered; with bodiesLeave, from the thread that ran it).
      if (!handed.has(req) || (!o.bodiesLeave && spent.has(req))) bodies.give(req.body);
    });
  app.addContentTypeParser("application/octet-stream", (req, payload, done) => {
    readAlignedBody(payload as IncomingMessage, o.bodyLimit, bodies).then(
      (body) => done(null, body),
      (e: Error) => done(e, undefined),
    );
    void req;
  });

  // While draining, each answer closes its connection: a keep-alive connection left open after the last answer
  // would hold close() until the client hung up (an ingest thread until its 10 s grace ran out).
  app.addHook("onSend", async (_req, reply) => {
    if (h.draining()) reply.header("connection", "close");
  });

  app.setErrorHandler((e, req, reply) => {
    const err = e as Error & { statusCode?: number };
    // Body too large, malformed JSON: fastify's own 4xx; anything else is ours.
    const status = err.statusCode ?? 500;
    req.log.warn({ err: err.message }, "request failed");
    h.count(String(status));
    void reply.status(status).send({ error: err.message.split("\n")[0] });
  });

  app.get("/v2/health/live", async () => ({ live: true }));
  app.get("/v2/health/ready", async (_req, reply) =>
    h.draining() ? reply.status(503).send({ ready: false }) : { ready: true },
  );
  app.get("/v2", async () => SERVER);
  app.get(modelPath, async () => o.metadata);
  app.get(`${modelPath}/ready`, async (_req, reply) =>
    h.draining() ? reply.status(503).send({ ready: false }) : { name, ready: true },
  );
  app.get("/metrics", async (_req, reply) => {
    const m = await h.metrics();
    return reply.type(m.contentType).send(m.text);
  });

  app.post(`${modelPath}/infer`, async (req, reply) => {
    const fail = (status: number, message: string, headers: Record<string, string> = {}) => {
      h.count(String(status));
      return reply.status(status).headers(headers).send({ error: message });
    };
    if (h.draining()) return fail(503, "the server is shutting down", { "retry-after": "1" });
    let decoded: DecodedRequest;
    try {
      const headerLength = req.headers["inference-header-content-length"];
      if (headerLength !== undefined || Buffer.isBuffer(req.body)) {
        if (!Buffer.isBuffer(req.body))
          throw new ProtocolError("Inference-Header-Content-Length needs an application/octet-stream body");
        const n = headerLength === undefined ? req.body.byteLength : Number(headerLength);
        const { json, binary } = splitBinaryBody(req.body, n);
        decoded = decodeRequest(json, o.inputs, o.batching, binary);
      } else decoded = decodeRequest(req.body, o.inputs, o.batching);
    } catch (e) {
      if (e instanceof ProtocolError) return fail(e.status, e.message);
      throw e;
    }
    try {
      handed.add(req);
      const results = await h.infer(decoded, Buffer.isBuffer(req.body) ? req.body : undefined);
      spent.add(req);
      h.count("200");
      return encodeResponse(reply, o, decoded, results);
    } catch (e) {
      if (e instanceof ProtocolError) return fail(e.status, e.message);
      if (e instanceof QueueFullError) return fail(503, e.message, { "retry-after": String(e.retryAfterS) });
      if (e instanceof DeadlineError) return fail(504, e.message);
      req.log.error({ err: (e as Error).message }, "inference failed");
      return fail(500, `inference failed: ${(e as Error).message.split("\n")[0]}`);
    }
  });
  return app;
}

/** The infer answer: JSON, or the binary extension's JSON header and raw tensors for the outputs asked so. */
function encodeResponse(
  reply: import("fastify").FastifyReply,
  o: HttpAppOptions,
  decoded: DecodedRequest,
  results: NamedOutputs,
) {
  const bin = decoded.binaryOutputs;
  const chunks: Uint8Array[] = [];
  const body = {
    model_name: o.name,
    ...(o.version ? { model_version: o.version } : {}),
    ...(decoded.id !== undefined ? { id: decoded.id } : {}),
    outputs: results.map(({ name: n, tensor: t }): ResponseTensor => {
      if (bin !== "all" && !bin.has(n)) return encodeTensor(n, t);
      const bytes = tensorData(t);
      chunks.push(bytes);
      const meta = { binary_data_size: bytes.byteLength };
      return { name: n, shape: [...t.shape], datatype: DATATYPE[t.dtype] ?? t.dtype, parameters: meta };
    }),
  };
  if (chunks.length === 0) return body;
  const header = Buffer.from(JSON.stringify(body));
  return reply
    .header("inference-header-content-length", String(header.byteLength))
    .type("application/octet-stream")
    .send(Buffer.concat([header, ...chunks]));
}
