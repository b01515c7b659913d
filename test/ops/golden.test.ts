// Every op case PyTorch recorded in fixtures/ops/golden.json (and test/ops/extra-golden.json, made by
// test/ops/make_extra_golden.py): parse → infer (shape, dtype) → evaluate → compare.
import { existsSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { DType } from "../../src/ir/dtype.js";
import { isFloating } from "../../src/ir/dtype.js";
import type { Arg } from "../../src/ir/graph.js";
import { type Tensor, tensorFromBytes, toFloat64Array } from "../../src/ir/tensor.js";
import { getOp } from "../../src/ops/index.js";

interface JsonTensor {
  dtype: DType;
  shape: number[];
  data: string;
}
interface GoldenCase {
  id: string;
  op: string;
  args: Record<string, Arg>;
  tensors: Record<string, JsonTensor>;
  outputs: JsonTensor[];
}

const FILE = new URL("../../fixtures/ops/golden.json", import.meta.url);
const EXTRA = new URL("./extra-golden.json", import.meta.url);

function decode(j: JsonTensor): Tensor {
  return tensorFromBytes(j.dtype, j.shape, new Uint8Array(Buffer.from(j.data, "base64")));
}

/** Python's json writes inf and nan as bare words or strings; turn either back into numbers. */
function reviveArg(a: Arg): Arg {
  const num = (v: unknown) =>
    typeof v === "string"
      ? Number(v.replace(/^-?inf/, (s) => (s.startsWith("-") ? "-Infinity" : "Infinity")))
      : v;
  if (a.kind === "float") return { kind: "float", value: num(a.value) as number };
  if (a.kind === "floats") return { kind: "floats", value: a.value.map((v) => num(v) as number) };
  return a;
}

/** max|out − ref| / max|ref| for floats (NaN must match NaN); exact for ints and bools. */
function mismatch(out: Tensor, ref: Tensor): string | null {
  const o = toFloat64Array(out);
  const r = toFloat64Array(ref);
  if (!isFloating(ref.dtype)) {
    for (let i = 0; i < r.length; i++) if (o[i] !== r[i]) return `element ${i}: ${o[i]} != ${r[i]}`;
    return null;
  }
  let maxRef = 0;
  let maxErr = 0;
  for (let i = 0; i < r.length; i++) {
    if (Number.isNaN(r[i]) !== Number.isNaN(o[i])) return `element ${i}: ${o[i]} vs ${r[i]}`;
    if (Number.isNaN(r[i])) continue;
    if (!Number.isFinite(r[i]) || !Number.isFinite(o[i])) {
      if (o[i] !== r[i]) return `element ${i}: ${o[i]} vs ${r[i]}`;
      continue;
    }
    maxRef = Math.max(maxRef, Math.abs(r[i]));
    maxErr = Math.max(maxErr, Math.abs(o[i] - r[i]));
  }
  const rel = maxErr / Math.max(maxRef, 1e-30);
  return rel <= 1e-4 || maxErr <= 1e-6 ? null : `max error ${maxErr} is ${rel} of max |ref| ${maxRef}`;
}

function load(file: URL): { torch: string; cases: GoldenCase[] } {
  // Python's json writes bare Infinity/NaN, which JSON.parse refuses: quote them, reviveArg turns them back.
  return JSON.parse(readFileSync(file, "utf8").replace(/(-?)\b(Infinity|NaN)\b/g, '"$1$2"'));
}

function check(c: GoldenCase): void {
  const def = getOp(c.op);
  expect(def, `${c.op} is not in the op table`).toBeDefined();
  if (!def) return;
  const tensors = Object.fromEntries(Object.entries(c.tensors).map(([k, v]) => [k, decode(v)]));
  const valueAt = (n: string) => {
    const v = tensors[n];
    if (!v) throw new Error(`case ${c.id} has no tensor '${n}'`);
    return v;
  };
  const args = Object.fromEntries(Object.entries(c.args).map(([k, a]) => [k, reviveArg(a)]));
  const parsed = def.parse(args);
  const types = def.infer(parsed, valueAt);
  const refs = c.outputs.map(decode);
  expect(types.map((x) => `${x.dtype}[${x.shape}]`)).toEqual(refs.map((x) => `${x.dtype}[${x.shape}]`));
  const outs = def.evaluate(parsed, valueAt);
  expect(outs.map((x) => `${x.dtype}[${x.shape}]`)).toEqual(refs.map((x) => `${x.dtype}[${x.shape}]`));
  refs.forEach((ref, i) => {
    expect(mismatch(outs[i], ref), `${c.id} output ${i}`).toBeNull();
  });
}

if (!existsSync(FILE)) {
  describe("golden op cases", () => {
    it.skip("fixtures/ops/golden.json is absent: run fixtures/export.py to create it", () => {});
  });
  console.warn("test/ops/golden.test.ts: fixtures/ops/golden.json is absent, golden op cases skipped");
} else {
  const golden = load(FILE);
  describe(`golden op cases (torch ${golden.torch})`, () => {
    it.each(golden.cases.map((c) => [c.id, c] as const))("%s", (_id, c) => check(c));
  });
}

const extra = load(EXTRA);
describe(`extra op cases (torch ${extra.torch})`, () => {
  it.each(extra.cases.map((c) => [c.id, c] as const))("%s", (_id, c) => check(c));
});
