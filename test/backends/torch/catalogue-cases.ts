/**
 * One representative call of every overload in torchc's op catalogue, for the LibTorch fallback's coverage:
 * PyTorch's own recorded calls first (fixtures/ops/golden.json, test/ops/extra-golden.json), then a draw from
 * the converter property cases, then a call synthesized from the schema (tensor operands float32 [2, 3]; the
 * rest at their defaults, or a plain value of their type). Only the argument kinds matter to the planner, so a
 * synthesized call that PyTorch would reject for its values still says whether the fallback can encode it.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import type { DType } from "../../../src/ir/dtype.js";
import type { Arg, TensorType } from "../../../src/ir/graph.js";
import { type Tensor, tensorFromBytes, tensorFromNumbers } from "../../../src/ir/tensor.js";
import { getOp, inferNode, OP_NAMES } from "../../../src/ops/index.js";
import type { ArgSpec } from "../../../src/ops/types.js";
import { ALL_CASES } from "../../converters/cases/index.js";
import type { RewriteCase } from "./cases.js";

interface JsonCase {
  op: string;
  args: Record<string, Arg>;
  tensors: Record<string, { dtype: DType; shape: number[]; data: string }>;
}

// From the sources (test/backends/torch) or compiled for the GPU machine (.gpu-carry/build/test/backends/torch).
const here = dirname(fileURLToPath(import.meta.url));
const ROOT = [join(here, "..", "..", ".."), join(here, "..", "..", "..", "..", "..")].find((r) =>
  existsSync(join(r, "fixtures", "ops", "golden.json")),
);

function goldenCases(): JsonCase[] {
  if (ROOT === undefined) throw new Error("fixtures/ops/golden.json not found above " + here);
  const read = (path: string) => (JSON.parse(readFileSync(path, "utf8")) as { cases: JsonCase[] }).cases;
  return [
    ...read(join(ROOT, "fixtures", "ops", "golden.json")),
    ...read(join(ROOT, "test", "ops", "extra-golden.json")),
  ];
}

const f32 = (...shape: number[]): TensorType => ({ dtype: "float32", shape });

/** Python's json writes inf and nan as strings; turn them back into numbers (as test/ops/golden.test.ts does). */
function reviveArgs(args: Record<string, Arg>): Record<string, Arg> {
  const num = (v: unknown) =>
    typeof v === "string"
      ? Number(v.replace(/^-?inf/, (x) => (x.startsWith("-") ? "-Infinity" : "Infinity")))
      : v;
  const out: Record<string, Arg> = {};
  for (const [k, a] of Object.entries(args)) {
    if (a.kind === "float") out[k] = { kind: "float", value: num(a.value) as number };
    else if (a.kind === "floats") out[k] = { kind: "floats", value: a.value.map((v) => num(v) as number) };
    else out[k] = a;
  }
  return out;
}

/** A plain value of a non-tensor schema type (for required arguments of synthesized calls). */
function plainValue(spec: ArgSpec): Arg | undefined {
  const base = spec.type.replace(/\?$/, "");
  if (spec.type.endsWith("?")) return { kind: "none" };
  if (base === "int" || base === "SymInt") return { kind: "int", value: 1 };
  if (base === "float" || base === "Scalar") return { kind: "float", value: 1 };
  if (base === "bool") return { kind: "bool", value: false };
  if (base.startsWith("int[") || base.startsWith("SymInt[")) return { kind: "ints", value: [1] };
  if (base.startsWith("float[")) return { kind: "floats", value: [1] };
  if (base.startsWith("bool[")) return { kind: "bools", value: [false] };
  if (base === "str") return { kind: "string", value: "none" };
  if (base === "ScalarType") return { kind: "dtype", value: "float32" };
  if (base === "Layout") return { kind: "layout", value: "strided" };
  if (base === "MemoryFormat") return { kind: "memoryFormat", value: "contiguous_format" };
  if (base === "Device") return { kind: "device", value: "cpu" };
  return undefined;
}

function synthesized(op: string): RewriteCase | undefined {
  const def = getOp(op);
  if (!def) return undefined;
  const inputs: Record<string, TensorType> = {};
  const args: Record<string, Arg> = {};
  for (const s of def.schema) {
    if (s.default !== undefined) continue;
    const base = s.type.replace(/\?$/, "");
    if (base === "Tensor") {
      inputs[s.name] = f32(2, 3);
      args[s.name] = { kind: "tensor", name: s.name };
    } else if (base === "Tensor[]" || base === "Tensor?[]") {
      inputs[`${s.name}0`] = f32(2, 3);
      args[s.name] = { kind: "tensors", names: [`${s.name}0`] };
    } else {
      const v = plainValue(s);
      if (!v) return undefined;
      args[s.name] = v;
    }
  }
  return { label: `${op} (synthesized)`, op, inputs, args };
}

/** Ops whose results are uninitialised memory: only their type is comparable. */
export const UNINITIALIZED: ReadonlySet<string> = new Set([
  "aten.empty.memory_format",
  "aten.empty_like.default",
  "aten.new_empty.default",
  "aten.empty_strided.default",
]);

export interface CatalogueCase {
  readonly op: string;
  readonly source: "golden" | "property" | "synthesized";
  readonly case: RewriteCase;
  /** Valid operand values (PyTorch's recorded ones, or a draw inside the converter's domain); none when synthesized. */
  readonly values?: Readonly<Record<string, Tensor>>;
}

/** Whether the catalogue can type the call (a synthesized one may not be well-formed for its op). */
function types(k: RewriteCase): boolean {
  try {
    inferNode({ name: "n", op: k.op, args: k.args, outputs: [], meta: {} }, (n) => k.inputs[n]);
    return true;
  } catch {
    return false;
  }
}

/** A call per catalogue overload (undefined where none could be made or typed). */
export function catalogueCases(): Map<string, CatalogueCase | undefined> {
  const golden = new Map<string, JsonCase>();
  for (const c of goldenCases()) if (!golden.has(c.op)) golden.set(c.op, c);
  const out = new Map<string, CatalogueCase | undefined>();
  for (const op of OP_NAMES) {
    const g = golden.get(op);
    if (g) {
      const inputs = Object.fromEntries(
        Object.entries(g.tensors).map(([k, t]) => [k, { dtype: t.dtype, shape: t.shape }]),
      );
      const k: RewriteCase = { label: `${op} (golden)`, op, inputs, args: reviveArgs(g.args) };
      if (types(k)) {
        const values = Object.fromEntries(
          Object.entries(g.tensors).map(([n, t]) => [
            n,
            tensorFromBytes(t.dtype, t.shape, new Uint8Array(Buffer.from(t.data, "base64"))),
          ]),
        );
        out.set(op, { op, source: "golden", case: k, values });
        continue;
      }
    }
    const spec = ALL_CASES.find((c) => c.op === op);
    if (spec) {
      const [draw] = fc.sample(spec.arb, { seed: 11, numRuns: 1 });
      // weights become inputs: the fallback reads both the same way
      const inputs = Object.fromEntries(
        Object.entries(draw.tensors).map(([k, t]) => [k, { dtype: t.dtype, shape: t.shape }]),
      );
      const k: RewriteCase = { label: `${op} (property)`, op, inputs, args: draw.args };
      if (types(k)) {
        const values = Object.fromEntries(
          Object.entries(draw.tensors).map(([n, t]) => [n, tensorFromNumbers(t.dtype, t.shape, t.data)]),
        );
        out.set(op, { op, source: "property", case: k, values });
        continue;
      }
    }
    const s = synthesized(op);
    out.set(op, s && types(s) ? { op, source: "synthesized", case: s } : undefined);
  }
  return out;
}
