/**
 * The schema the LibTorch fallback plans a call from: the op catalogue's entry, or for aten overloads outside
 * it, PyTorch's own schema from aten-schemas.ts. An op outside the catalogue has no CPU reference, so its
 * result types come from the exported graph; it is run as LibTorch declares it.
 */
import type { Arg } from "../../ir/graph.js";
import { getOp, parseSchema } from "../../ops/index.js";
import type { ArgSpec } from "../../ops/types.js";
import { ATEN_SCHEMAS } from "./aten-schemas.js";

export interface CallSchema {
  readonly name: string;
  readonly schema: readonly ArgSpec[];
  readonly returns: number | "list";
  /** Where the schema came from. */
  readonly source: "catalogue" | "aten-schemas";
}

export type SchemaLookup = CallSchema | { readonly unsupported: string };

function splitReturns(text: string): { args: string; returns: string } | undefined {
  const arrow = text.lastIndexOf("->");
  if (arrow < 0) return undefined;
  return { args: text.slice(0, arrow).trim(), returns: text.slice(arrow + 2).trim() };
}

/** Tensor results: a count, "list" for one Tensor[], or a reason the fallback cannot bind them. */
function returnCount(op: string, text: string): number | "list" | string {
  const clean = text.replace(/\([a-z!|\s>*-]*\)/g, "").trim(); // alias annotations: Tensor(a!) → Tensor
  if (clean === "()") return 0;
  const items = clean.startsWith("(")
    ? clean
        .slice(1, -1)
        .split(",")
        .map((s) => s.trim().split(/\s+/)[0])
    : [clean.split(/\s+/)[0]];
  if (items.length === 1 && items[0] === "Tensor[]") return "list";
  if (items.every((t) => t === "Tensor")) return items.length;
  return `${op} returns ${text}; the fallback binds tensor results only`;
}

/** A CallSchema from a PyTorch schema text `args -> returns` (exported for tests). */
export function schemaFromText(op: string, text: string): SchemaLookup {
  const parts = splitReturns(text);
  if (!parts) return { unsupported: `${op}: malformed schema '${text}'` };
  const returns = returnCount(op, parts.returns);
  if (typeof returns === "string" && returns !== "list") return { unsupported: returns };
  // `Generator? generator=None` is always None here (inference graphs draw no random numbers); any optional
  // encodes None the same way, so it is read as one.
  const args = parts.args.replace(/\bGenerator\?(\s+\w+)=None/g, "Tensor?$1=None");
  try {
    return { name: op, schema: parseSchema(op, args), returns, source: "aten-schemas" };
  } catch (e) {
    return { unsupported: `${op}: ${(e as Error).message} (the fallback cannot encode it)` };
  }
}

const cache = new Map<string, SchemaLookup>();

/** The catalogue's schema, PyTorch's from aten-schemas.ts, or why there is none. */
export function callSchema(op: string, table: Readonly<Record<string, string>> = ATEN_SCHEMAS): SchemaLookup {
  const def = getOp(op);
  if (def) return { name: def.name, schema: def.schema, returns: def.returns, source: "catalogue" };
  if (table === ATEN_SCHEMAS && cache.has(op)) return cache.get(op) as SchemaLookup;
  let found: SchemaLookup;
  const text = table[op];
  const base = op.split(".")[1] ?? "";
  if (text === undefined)
    found = {
      unsupported: `${op} is in neither torchc's op table nor the aten schema table (src/backends/torch/aten-schemas.ts; regenerate it with test/backends/torch/make_aten_schemas.py)`,
    };
  else if (base.endsWith("_") || op.endsWith(".out"))
    found = { unsupported: `${op} writes into its arguments; only the catalogue's in-place ops are rebound` };
  else found = schemaFromText(op, text);
  if (table === ATEN_SCHEMAS) cache.set(op, found);
  return found;
}

/** Every schema argument, the given ones as they are and the rest at their defaults. */
export function withSchemaDefaults(s: CallSchema, args: Readonly<Record<string, Arg>>): Record<string, Arg> {
  const out: Record<string, Arg> = {};
  for (const k of Object.keys(args))
    if (!s.schema.some((a) => a.name === k))
      throw new Error(`${s.name}: argument '${k}' is not in the schema`);
  for (const a of s.schema) {
    const v = args[a.name] ?? a.default;
    if (v === undefined) throw new Error(`${s.name}: argument '${a.name}' is required but missing`);
    out[a.name] = v;
  }
  return out;
}
