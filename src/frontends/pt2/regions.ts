// Higher-order ops that wrap a region of the graph in a context manager: torch.export keeps
// `with torch.autocast(...)` and `with torch.set_grad_enabled(...)` as `wrap_with_autocast(device_type, dtype,
// enabled, cache_enabled, body, *operands)` and `wrap_with_set_grad_enabled(enable_grad, body, *operands)`, the body a
// graph argument (`{as_graph: {name, graph}}`) with its own value names and tensor_values, serialized without a
// schema: every positional argument is named '' (torch/_export/serde/serialize.py, serialize_hoo_inputs). torchc
// inlines the body into the enclosing graph. Grad mode means nothing to inference. Under an enabled autocast, the
// ops autocast acts on get explicit casts of their floating inputs to the dtype the trace recorded for their
// result (the autocast dtype, or fp32 for the ops autocast keeps in fp32), so the inlined graph computes what
// PyTorch computed; a disabled autocast region (timm's EfficientViT keeps its linear attention in fp32 that way) is
// inlined as it is.
import { isObject, onlyKey } from "../decode.js";
import { AUTOCAST_OPS } from "./autocast-ops.js";

/** A node of model.json, as the reader takes it. */
export interface RegionNode {
  readonly target: string;
  readonly inputs: readonly { readonly name: string; readonly arg: unknown; readonly kind?: number }[];
  readonly outputs: readonly unknown[];
  readonly metadata?: Readonly<Record<string, unknown>> | null;
  readonly name?: string | null;
}

/** The inlined body: nodes in the enclosing graph's names, and the tensor metadata of the names it adds. */
export interface InlinedRegion {
  readonly nodes: readonly RegionNode[];
  readonly values: ReadonlyMap<string, unknown>;
}

export interface RegionContext {
  /** Whether the enclosing graph already has (or will have) a value of this name. */
  readonly taken: (name: string) => boolean;
  readonly fail: (detail: string, code?: string) => never;
  /** `node 'x' (op)`, for messages. */
  readonly where: string;
}

const AUTOCAST = "higher_order.wrap_with_autocast";
const SET_GRAD = "higher_order.wrap_with_set_grad_enabled";

/** Targets (without the `torch.ops.` prefix) of the region ops torchc inlines. */
export const REGION_OPS: ReadonlySet<string> = new Set([AUTOCAST, SET_GRAD]);

const FLOAT16 = 6;
const FLOAT32 = 7;
const BFLOAT16 = 13;
const FLOATING: ReadonlySet<number> = new Set([FLOAT16, FLOAT32, 8, BFLOAT16]);

/** `aten.linear.default` → `linear`. */
function baseName(target: string): string {
  const parts = target.replace(/^torch\.ops\./, "").split(".");
  return parts.length >= 2 ? parts[1] : target;
}

interface Body {
  readonly name: string;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly nodes: readonly RegionNode[];
  readonly values: Readonly<Record<string, unknown>>;
}

function tensorArgName(a: unknown): string | undefined {
  if (onlyKey(a) !== "as_tensor") return undefined;
  const t = (a as { as_tensor: unknown }).as_tensor;
  return isObject(t) && typeof t.name === "string" ? t.name : undefined;
}

/** `{as_graph: {name, graph}}` checked into the parts inlining needs. */
function readBody(a: unknown, ctx: RegionContext): Body {
  const bad = (what: string): never => ctx.fail(`${ctx.where}: its body ${what}`, "archive.bad-model");
  if (onlyKey(a) !== "as_graph") return ctx.fail(`${ctx.where} has no graph argument where its body belongs`);
  const ga = (a as { as_graph: unknown }).as_graph;
  if (!isObject(ga) || !isObject(ga.graph)) return bad("is not a graph");
  const g = ga.graph;
  const name = typeof ga.name === "string" ? ga.name : "region";
  if (
    !Array.isArray(g.nodes) ||
    !Array.isArray(g.inputs) ||
    !Array.isArray(g.outputs) ||
    !isObject(g.tensor_values)
  )
    return bad("lacks nodes, inputs, outputs or tensor_values");
  if (isObject(g.sym_int_values) && Object.keys(g.sym_int_values).length > 0)
    ctx.fail(
      `${ctx.where}: its body has symbolic sizes; torchc inlines static regions only`,
      "archive.dynamic-shape",
    );
  const names = (list: readonly unknown[], what: string) =>
    list.map((x) => tensorArgName(x) ?? bad(`has a ${what} that is not a tensor (${onlyKey(x) ?? "?"})`));
  for (const n of g.nodes)
    if (!isObject(n) || typeof n.target !== "string" || !Array.isArray(n.inputs) || !Array.isArray(n.outputs))
      bad("has a node that is not a node");
  return {
    name,
    inputs: names(g.inputs, "input"),
    outputs: names(g.outputs, "output"),
    nodes: g.nodes as RegionNode[],
    values: g.tensor_values,
  };
}

/** The positional arguments of a schema-less higher-order op (named ''), refusing keyword ones. */
function positional(node: RegionNode, ctx: RegionContext): unknown[] {
  const keyword = node.inputs.find((i) => i.name !== "");
  if (keyword)
    ctx.fail(`${ctx.where} has a keyword argument '${keyword.name.slice(0, 40)}', which torchc cannot place`);
  return node.inputs.map((i) => i.arg);
}

/** Names the enclosing graph gets the op's results under, in order (an unused one is named `…_unused_i`). */
function resultNames(node: RegionNode, ctx: RegionContext): string[] {
  const out: string[] = [];
  for (const o of node.outputs) {
    const k = onlyKey(o);
    const v = k === undefined ? undefined : (o as Record<string, unknown>)[k];
    if (k === "as_tensor" && isObject(v) && typeof v.name === "string") out.push(v.name);
    else if (k === "as_tensors" && Array.isArray(v))
      for (const t of v)
        out.push(
          isObject(t) && typeof t.name === "string"
            ? t.name
            : ctx.fail(`${ctx.where} returns an unnamed tensor`),
        );
    else
      ctx.fail(
        `${ctx.where} returns ${k ?? "something"} where torchc expects tensors`,
        "archive.unsupported",
      );
  }
  return out;
}

function dtypeOf(values: Readonly<Record<string, unknown>>, name: string): number | undefined {
  const m = Object.hasOwn(values, name) ? values[name] : undefined;
  return isObject(m) && typeof m.dtype === "number" ? m.dtype : undefined;
}

/** The argument with the tensor names it reads (as_tensor, as_tensors, optional tensors) mapped through f. */
function mapTensorNames(a: unknown, f: (name: string) => string): unknown {
  const k = onlyKey(a);
  if (k === undefined) return a;
  const v = (a as Record<string, unknown>)[k];
  const one = (t: unknown) => (isObject(t) && typeof t.name === "string" ? { ...t, name: f(t.name) } : t);
  switch (k) {
    case "as_tensor":
      return { as_tensor: one(v) };
    case "as_tensors":
      return { as_tensors: Array.isArray(v) ? v.map(one) : v };
    case "as_optional_tensor":
      return { as_optional_tensor: onlyKey(v) === "as_tensor" ? mapTensorNames(v, f) : v };
    case "as_optional_tensors":
      return {
        as_optional_tensors: Array.isArray(v)
          ? v.map((x) => (onlyKey(x) === "as_tensor" ? mapTensorNames(x, f) : x))
          : v,
      };
    default:
      return a; // scalars, and a nested region's body (its names are its own)
  }
}

/**
 * Casts in front of the ops autocast acts on: each floating tensor input whose recorded dtype differs from the
 * dtype recorded for the op's first floating result gets `aten._to_copy(dtype=…)`, when that dtype is one autocast
 * produces (its dtype, or fp32). Returns the body's nodes with the casts and the casts' result metadata.
 */
function withAutocastCasts(
  body: Body,
  autocastDtype: number | undefined,
): { nodes: RegionNode[]; values: Map<string, unknown> } {
  const allowed = new Set(
    autocastDtype === undefined ? [FLOAT16, BFLOAT16, FLOAT32] : [autocastDtype, FLOAT32],
  );
  const extra = new Map<string, unknown>();
  const casts = new Map<string, string>();
  const nodes: RegionNode[] = [];
  const free = (base: string) => {
    let name = base;
    for (let i = 1; Object.hasOwn(body.values, name) || extra.has(name); i++) name = `${base}_${i}`;
    return name;
  };
  for (const n of body.nodes) {
    if (!AUTOCAST_OPS.has(baseName(n.target))) {
      nodes.push(n);
      continue;
    }
    let target: number | undefined;
    for (const o of n.outputs) {
      const name = tensorArgName(o);
      const d = name === undefined ? undefined : dtypeOf(body.values, name);
      if (d !== undefined && FLOATING.has(d)) {
        target = d;
        break;
      }
    }
    if (target === undefined || !allowed.has(target)) {
      nodes.push(n);
      continue;
    }
    const to = target;
    const castOf = (x: string): string => {
      const d = dtypeOf(body.values, x);
      if (d === undefined || d === to || !FLOATING.has(d)) return x;
      const key = `${x}\0${to}`;
      const known = casts.get(key);
      if (known) return known;
      const y = free(
        `${x}_autocast_${to === FLOAT32 ? "fp32" : to === FLOAT16 ? "fp16" : to === BFLOAT16 ? "bf16" : to}`,
      );
      const meta = body.values[x] as Record<string, unknown>;
      extra.set(y, { ...meta, dtype: to });
      casts.set(key, y);
      nodes.push({
        target: "torch.ops.aten._to_copy.default",
        inputs: [
          { name: "self", arg: { as_tensor: { name: x } } },
          { name: "dtype", arg: { as_scalar_type: to } },
        ],
        outputs: [{ as_tensor: { name: y } }],
        metadata: n.metadata ?? null,
        name: y,
      });
      return y;
    };
    nodes.push({ ...n, inputs: n.inputs.map((i) => ({ ...i, arg: mapTensorNames(i.arg, castOf) })) });
  }
  return { nodes, values: extra };
}

/**
 * The body of a region op as nodes of the enclosing graph: its inputs bound to the op's operands, its values
 * renamed (`<op node>__<name>`, made unique against the enclosing graph), its results defining the op's result
 * names (through `aten.alias` where a result is an operand or is returned twice).
 */
export function inlineRegion(op: string, node: RegionNode, ctx: RegionContext): InlinedRegion {
  const args = positional(node, ctx);
  let bodyAt: number;
  let autocast: { enabled: boolean; dtype: number | undefined } | undefined;
  if (op === AUTOCAST) {
    // (device_type, dtype, enabled, cache_enabled, body, *operands)
    bodyAt = 4;
    const enabled = args[2];
    const dtype = args[1];
    if (onlyKey(enabled) !== "as_bool" || typeof (enabled as { as_bool: unknown }).as_bool !== "boolean")
      ctx.fail(`${ctx.where}: its third argument (enabled) is not a bool`);
    const d =
      onlyKey(dtype) === "as_scalar_type" ? (dtype as { as_scalar_type: unknown }).as_scalar_type : undefined;
    autocast = {
      enabled: (enabled as { as_bool: boolean }).as_bool,
      dtype: typeof d === "number" ? d : undefined,
    };
  } else if (op === SET_GRAD) {
    bodyAt = 1; // (enable_grad, body, *operands)
  } else {
    return ctx.fail(`${ctx.where} is not a region op torchc inlines`, "archive.unsupported");
  }
  if (args.length <= bodyAt) ctx.fail(`${ctx.where} has ${args.length} arguments; its body is missing`);
  const body = readBody(args[bodyAt], ctx);
  const operands = args
    .slice(bodyAt + 1)
    .map(
      (a, i) =>
        tensorArgName(a) ??
        ctx.fail(`${ctx.where}: operand ${i} is ${onlyKey(a) ?? "?"}, not a tensor`, "archive.unsupported"),
    );
  if (operands.length !== body.inputs.length)
    ctx.fail(`${ctx.where} passes ${operands.length} operands to a body of ${body.inputs.length} inputs`);
  const results = resultNames(node, ctx);
  if (results.length !== body.outputs.length)
    ctx.fail(`${ctx.where} has ${results.length} results for a body of ${body.outputs.length} outputs`);

  const cast = autocast?.enabled ? withAutocastCasts(body, autocast.dtype) : undefined;
  const nodes = cast?.nodes ?? [...body.nodes];
  const innerMeta = (n: string) => (cast?.values.has(n) ? cast.values.get(n) : body.values[n]);

  const rename = new Map<string, string>();
  const added = new Map<string, unknown>();
  for (const [i, x] of body.inputs.entries()) rename.set(x, operands[i]);
  const produced = new Set<string>();
  for (const n of nodes) for (const o of n.outputs) for (const x of outputNames(o)) produced.add(x);
  // A result the body computes defines the op's result name directly (once); others go through an alias below.
  const aliases: { from: string; to: string }[] = [];
  for (const [i, x] of body.outputs.entries()) {
    if (produced.has(x) && !rename.has(x)) rename.set(x, results[i]);
    else aliases.push({ from: x, to: results[i] });
  }
  const prefix = node.name ?? body.name;
  const fresh = (x: string): string => {
    let name = `${prefix}__${x}`;
    for (let i = 1; ctx.taken(name) || added.has(name); i++) name = `${prefix}__${x}_${i}`;
    return name;
  };
  const define = (x: string): string => {
    const known = rename.get(x); // a result of the op: its metadata is the enclosing graph's
    if (known !== undefined) return known;
    const y = fresh(x);
    rename.set(x, y);
    added.set(y, innerMeta(x));
    return y;
  };
  const read = (x: string): string =>
    rename.get(x) ?? ctx.fail(`${ctx.where}: its body reads '${x.slice(0, 80)}' before defining it`);
  const out: RegionNode[] = [];
  for (const n of nodes) {
    const inputs = n.inputs.map((i) => ({ ...i, arg: mapTensorNames(i.arg, read) }));
    const outputs = n.outputs.map((o) => mapOutputNames(o, define));
    const first = outputs.flatMap(outputNames)[0];
    out.push({ ...n, inputs, outputs, name: first ?? (n.name ? fresh(n.name) : null) });
  }
  for (const a of aliases)
    out.push({
      target: "torch.ops.aten.alias.default",
      inputs: [{ name: "self", arg: { as_tensor: { name: read(a.from) } } }],
      outputs: [{ as_tensor: { name: a.to } }],
      metadata: node.metadata ?? null,
      name: a.to,
    });
  return { nodes: out, values: added };
}

function outputNames(o: unknown): string[] {
  const k = onlyKey(o);
  const v = k === undefined ? undefined : (o as Record<string, unknown>)[k];
  if (k === "as_tensor" && isObject(v) && typeof v.name === "string") return [v.name];
  if (k === "as_tensors" && Array.isArray(v))
    return v.flatMap((t) => (isObject(t) && typeof t.name === "string" ? [t.name] : []));
  return [];
}

function mapOutputNames(o: unknown, f: (name: string) => string): unknown {
  const k = onlyKey(o);
  return k === "as_tensor" || k === "as_tensors" ? mapTensorNames(o, f) : o;
}
