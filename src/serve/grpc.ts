/**
 * The Open Inference Protocol over gRPC (@grpc/grpc-js, the protocol's .proto in proto/). Requests become
 * the same checked form as REST requests (protocol.ts decodeRequest), so both transports refuse the same
 * things with the same messages; raw_input_contents travel as the binary extension does. Status codes:
 * a malformed request INVALID_ARGUMENT, a full queue UNAVAILABLE, a passed deadline (the call's own or
 * parameters.timeout) DEADLINE_EXCEEDED, a failing run INTERNAL.
 */
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import type { Tensor } from "../ir/tensor.js";
import { DeadlineError, QueueFullError } from "./batcher.js";
import { DATATYPE, ProtocolError, type RequestInput, tensorData } from "./protocol.js";

/** proto/ at the package root, from src/serve (a checkout) or dist/serve (an install). */
export function protoPath(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const p = join(here, "..", "..", "proto", "grpc_predict_v2.proto");
  if (!existsSync(p)) throw new Error(`the protocol's .proto is missing at ${p}`);
  return p;
}

export function loadInferenceService(): grpc.ServiceClientConstructor {
  const def = protoLoader.loadSync(protoPath(), {
    keepCase: true,
    longs: Number,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const pkg = grpc.loadPackageDefinition(def) as unknown as {
    inference: { GRPCInferenceService: grpc.ServiceClientConstructor };
  };
  return pkg.inference.GRPCInferenceService;
}

interface GrpcTensor {
  name: string;
  datatype: string;
  shape: number[];
  parameters?: Record<string, { bool_param?: boolean; int64_param?: number; string_param?: string }>;
  contents?: Record<string, unknown[]>;
}

const CONTENTS: Readonly<Record<string, string>> = {
  FP32: "fp32_contents",
  FP64: "fp64_contents",
  INT64: "int64_contents",
  INT32: "int_contents",
  INT16: "int_contents",
  INT8: "int_contents",
  UINT8: "uint_contents",
  BOOL: "bool_contents",
};

/** A gRPC ModelInferRequest as the JSON body REST receives (raw contents as the binary extension). */
export function requestFromGrpc(req: {
  id?: string;
  inputs?: GrpcTensor[];
  outputs?: { name: string }[];
  raw_input_contents?: Buffer[];
  parameters?: GrpcTensor["parameters"];
}): { body: unknown; binary?: Uint8Array } {
  const raw = req.raw_input_contents ?? [];
  if (raw.length > 0 && raw.length !== (req.inputs ?? []).length)
    throw new ProtocolError(
      `raw_input_contents has ${raw.length} entries for ${(req.inputs ?? []).length} inputs`,
    );
  const inputs: RequestInput[] = (req.inputs ?? []).map((x, i) => {
    if (raw.length > 0)
      return {
        name: x.name,
        shape: x.shape,
        datatype: x.datatype,
        parameters: { binary_data_size: raw[i].byteLength },
      };
    const field = CONTENTS[x.datatype];
    return {
      name: x.name,
      shape: x.shape,
      datatype: x.datatype,
      data: field ? (x.contents?.[field] ?? []) : [],
    };
  });
  const timeout = req.parameters?.timeout?.int64_param;
  return {
    body: {
      ...(req.id ? { id: req.id } : {}),
      inputs,
      ...(req.outputs?.length ? { outputs: req.outputs.map((o) => ({ name: o.name })) } : {}),
      ...(timeout ? { parameters: { timeout } } : {}),
    },
    binary: raw.length > 0 ? Buffer.concat(raw) : undefined,
  };
}

/** Outputs as raw_output_contents (compact, and the only way FP16 travels). */
export function responseToGrpc(
  name: string,
  version: string | undefined,
  id: string | undefined,
  outputs: readonly { name: string; tensor: Tensor }[],
) {
  return {
    model_name: name,
    model_version: version ?? "",
    id: id ?? "",
    outputs: outputs.map((o) => ({
      name: o.name,
      datatype: DATATYPE[o.tensor.dtype],
      shape: [...o.tensor.shape],
    })),
    raw_output_contents: outputs.map((o) => Buffer.from(tensorData(o.tensor))),
  };
}

export function grpcStatusOf(e: unknown): { code: grpc.status; details: string } {
  const message = (e as Error).message?.split("\n")[0] ?? String(e);
  if (e instanceof ProtocolError) return { code: grpc.status.INVALID_ARGUMENT, details: message };
  if (e instanceof QueueFullError) return { code: grpc.status.UNAVAILABLE, details: message };
  if (e instanceof DeadlineError) return { code: grpc.status.DEADLINE_EXCEEDED, details: message };
  return { code: grpc.status.INTERNAL, details: `inference failed: ${message}` };
}

export { grpc };
