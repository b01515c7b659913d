import type { DType } from "../ir/dtype.js";
import type { Graph, Node, TensorType } from "../ir/graph.js";
import type { Tensor } from "../ir/tensor.js";
import type { NetworkBuilder } from "../network/builder.js";
import type { OPS, OpName } from "../ops/index.js";
import type { OpDef } from "../ops/types.js";

/** The typed argument record of an op overload, as its `parse` returns it. */
export type ArgsOf<N extends OpName> = (typeof OPS)[N] extends OpDef<infer A> ? A : never;

/** Whether a converter takes a node; a refusal says why in words a user can act on. */
export type Support = { readonly ok: true } | { readonly ok: false; readonly reason: string };

export const SUPPORTED: Support = Object.freeze({ ok: true });

export function refuse(reason: string): Support {
  return { ok: false, reason };
}

/** Checks in order; the first refusal wins. */
export function allOf(...checks: (() => Support)[]): Support {
  for (const c of checks) {
    const r = c();
    if (!r.ok) return r;
  }
  return SUPPORTED;
}

/** What the target engine can do; converters gate on it in `supports()`, never at load time. */
export interface EngineCapabilities {
  /** How reasons name the engine: "the engine", "cuDNN". */
  readonly name: string;
  readonly dtypes: ReadonlySet<DType>;
}

export const DEFAULT_CAPABILITIES: EngineCapabilities = Object.freeze({
  name: "the engine",
  dtypes: new Set<DType>(["float32", "float16", "bfloat16", "int64", "int32", "int8", "uint8", "bool"]),
});

/** What `supports()` may ask about the graph around a node. */
export interface ConvertContext {
  readonly graph: Graph;
  readonly caps: EngineCapabilities;
  typeOf(value: string): TensorType;
  /** Data of a value fixed at build time (a weight or constant), else undefined. */
  constantOf(value: string): Tensor | undefined;
  /** Whether another node or the graph outputs read this value. */
  isUsed(value: string): boolean;
}

/**
 * What `convert()` builds with: the network builder plus access to graph values. Graph values and network
 * tensors are different namespaces: `input(value)` gives the network tensor standing for a graph value.
 */
export interface ConversionNet extends ConvertContext {
  readonly net: NetworkBuilder;
  /** The network tensor for a graph value; weights become (shared) constant layers. */
  input(value: string): string;
}

/** One network tensor per node output, in order; null only for an output nothing reads. */
export type ConvertResult = readonly (string | null)[];

export interface ConverterSpec<A> {
  /** A short label for reports: "matmul", "conv-constant-weight". */
  readonly name: string;
  /** Higher runs first; ties keep table order. Default 0. */
  readonly priority?: number;
  /** One line for `torchc converters`. */
  readonly notes?: string;
  // Function-typed properties (not methods) so argument records are checked contravariantly.
  readonly supports: (node: Node, args: A, ctx: ConvertContext) => Support;
  readonly convert: (node: Node, args: A, net: ConversionNet) => ConvertResult;
}

export interface ConverterCandidate<N extends OpName = OpName> extends ConverterSpec<ArgsOf<N>> {
  readonly op: N;
  readonly priority: number;
}

/** A candidate for some op: the union over every op name, so tables hold mixed ops and stay checked. */
export type AnyCandidate = { [N in OpName]: ConverterCandidate<N> }[OpName];

/** Declares a converter candidate for one op overload; the argument record is the op's own. */
export function converter<N extends OpName>(op: N, spec: ConverterSpec<ArgsOf<N>>): ConverterCandidate<N> {
  return Object.freeze({ ...spec, op, priority: spec.priority ?? 0 });
}
