/**
 * Input specs (`compile(model, { inputs })`, Torch-TensorRT's `Input(min_shape, opt_shape, max_shape, dtype)`)
 * and the batch range they give: checked against the model's inputs and the symbolic dimensions torch.export
 * recorded, whose ranges are the default.
 */
import { InputError, TorchcError } from "../errors.js";
import type { DType } from "../ir/dtype.js";
import type { Graph } from "../ir/graph.js";
import { isSymbolic, type SymbolicGraph } from "../ir/symbolic.js";
import { formatShape, type Shape } from "../ir/tensor.js";

/**
 * One model input: a static `shape`, or a range `minShape`–`maxShape` tuned for `optShape` (all three, the
 * same rank; they may differ only in the model's dynamic dimension). `name` matches the model's input name
 * (else inputs are matched by position). `dtype` must be the model's (it is checked, not converted).
 */
export interface InputSpec {
  readonly name?: string;
  readonly dtype?: DType;
  readonly shape?: Shape;
  readonly minShape?: Shape;
  readonly optShape?: Shape;
  readonly maxShape?: Shape;
}

/** How a model with a batch range is built and cached (compile option `dynamic`). */
export interface DynamicOptions {
  /**
   * Sizes to build engines for (the largest must be the range's max; the opt size is always added); default:
   * the powers of two in the range, plus its opt and max sizes.
   */
  readonly buckets?: readonly number[];
  /** "lazy" (default): a bucket's engines are built the first time a batch needs it; "all": at compile time. */
  readonly build?: "lazy" | "all";
  /**
   * Most buckets kept built at once (engines, execution contexts, activations, CUDA graphs); the least recently
   * used other than the opt bucket is freed when another is needed, and rebuilt if used again. Default 8.
   */
  readonly maxResidentBuckets?: number;
  /**
   * Host batches larger than this run as pipelined pieces of this many rows (runtime/dynamic-pipeline.ts):
   * each piece's host → device copy overlaps the previous pieces' forward passes. It becomes a bucket, built
   * with one execution context per piece of the range's largest batch, 2 to 4 (a piece copies while others
   * compute), and never evicted. Off by default. For large inputs read from host memory (images at large batch);
   * device-resident I/O is never cut.
   */
  readonly pipelineRows?: number;
}

/** The model's dynamic dimension as compiled: its symbol, range and buckets, and where it sits in each input. */
export interface BatchRange {
  readonly symbol: string;
  readonly min: number;
  readonly opt: number;
  readonly max: number;
  readonly buckets: readonly number[];
  /** The axis of each graph input that is the symbol (undefined for an input without it), in input order. */
  readonly inputAxes: readonly (number | undefined)[];
  /** Other symbols of the program, each fixed to one value by the specs. */
  readonly fixed: Readonly<Record<string, number>>;
}

export type ResolvedShapes =
  | { readonly kind: "static"; readonly graph: Graph }
  | { readonly kind: "dynamic"; readonly range: BatchRange; readonly symbolic: SymbolicGraph };

const DEFAULT_MAX_RESIDENT = 8;

export function maxResidentBuckets(o: DynamicOptions | undefined): number {
  return o?.maxResidentBuckets ?? DEFAULT_MAX_RESIDENT;
}

function fail(detail: string): never {
  throw new TorchcError(detail, "options.inputs");
}

function isShape(v: unknown): v is Shape {
  return Array.isArray(v) && v.every((d) => Number.isSafeInteger(d) && d >= 0);
}

/** Parses the CLI's `1x3x224x224` or `1x3x224x224:8x3x224x224:64x3x224x224` (min:opt:max). */
export function parseInputShape(text: string): InputSpec {
  const shapes = text.split(":").map((part) => {
    const dims = part.trim().split("x").map(Number);
    if (part.trim() === "" || !isShape(dims))
      fail(`--input-shape '${text}': each shape is sizes joined by x, like 8x3x224x224`);
    return dims;
  });
  if (shapes.length === 1) return { shape: shapes[0] };
  if (shapes.length !== 3) fail(`--input-shape '${text}': give one shape, or min:opt:max`);
  return { minShape: shapes[0], optShape: shapes[1], maxShape: shapes[2] };
}

/** Power-of-two sizes in [min, max] plus opt and max: every size in the range has a bucket at least as large. */
export function defaultBuckets(min: number, opt: number, max: number): number[] {
  const out = new Set<number>([opt, max]);
  for (let p = 1; p <= max; p *= 2) if (p >= min) out.add(p);
  return [...out].sort((a, b) => a - b);
}

/** The smallest bucket that holds `n` rows. */
export function bucketFor(buckets: readonly number[], n: number): number | undefined {
  for (const b of buckets) if (b >= n) return b;
  return undefined;
}

/** One spec's min/opt/max shapes (a static shape is all three). */
function shapesOf(spec: InputSpec, label: string): [Shape, Shape, Shape] {
  if (typeof spec !== "object" || spec === null) fail(`${label}: an input spec is an object`);
  const { shape, minShape, optShape, maxShape } = spec;
  const ranged = [minShape, optShape, maxShape];
  if (ranged.some((s) => s !== undefined)) {
    if (shape !== undefined) fail(`${label}: give shape or minShape/optShape/maxShape, not both`);
    if (!ranged.every(isShape))
      fail(`${label}: minShape, optShape and maxShape are all needed, lists of sizes`);
    const [lo, mid, hi] = ranged as Shape[];
    if (lo.length !== mid.length || lo.length !== hi.length)
      fail(`${label}: minShape, optShape and maxShape have different ranks`);
    lo.forEach((d, k) => {
      if (!(d <= mid[k] && mid[k] <= hi[k]))
        fail(
          `${label}: dimension ${k} needs min ≤ opt ≤ max (got ${d}, ${mid[k]}, ${hi[k]} from ${formatShape(lo)}, ${formatShape(mid)}, ${formatShape(hi)})`,
        );
    });
    return [lo, mid, hi];
  }
  if (!isShape(shape)) fail(`${label}: give shape, or minShape, optShape and maxShape`);
  return [shape, shape, shape];
}

/**
 * What to compile: the model's static graph, or its batch range. Specs narrow (or fix) the ranges the archive
 * recorded; without specs a model with symbolic sizes gets the archive's ranges.
 */
export function resolveShapes(
  graph: Graph,
  symbolic: SymbolicGraph | undefined,
  specs: readonly InputSpec[] | undefined,
  dynamic: DynamicOptions | undefined,
): ResolvedShapes {
  if (specs !== undefined && !Array.isArray(specs)) fail("inputs must be a list of input specs");
  const names = graph.inputs;
  if (specs && specs.length !== names.length)
    fail(
      `inputs: the model takes ${names.length} input(s) (${names.join(", ")}) but ${specs.length} spec(s) were given`,
    );
  // specs in graph input order: by name when named, else by position
  const ordered: (InputSpec | undefined)[] = names.map(() => undefined);
  specs?.forEach((s, i) => {
    const named = typeof s === "object" && s !== null && s.name !== undefined;
    const at = named ? names.indexOf(s.name as string) : i;
    if (at < 0) fail(`inputs[${i}]: the model has no input '${s.name}' (its inputs: ${names.join(", ")})`);
    if (ordered[at]) fail(`inputs: two specs for input '${names[at]}'`);
    ordered[at] = s;
  });
  const ranges = new Map<string, [number, number, number]>();
  const symbols = new Map((symbolic?.symbols ?? []).map((s) => [s.name, s]));
  names.forEach((name, i) => {
    const spec = ordered[i];
    if (!spec) return;
    const label = `input '${name}'`;
    const want = graph.values[name];
    if (spec.dtype !== undefined && spec.dtype !== want.dtype)
      fail(`${label}: dtype ${spec.dtype} given, but the model takes ${want.dtype}`);
    const [lo, mid, hi] = shapesOf(spec, label);
    const symType = symbolic?.inputTypes[name];
    const dims = symType?.shape ?? want.shape;
    if (lo.length !== dims.length)
      fail(
        `${label}: rank ${lo.length} given, but the model's input has rank ${dims.length} (${formatShape(want.shape)})`,
      );
    dims.forEach((d, k) => {
      if (!isSymbolic(d)) {
        if (lo[k] !== d || hi[k] !== d)
          fail(
            symbolic
              ? `${label}: dimension ${k} is static (${d}) in the exported program; only the dimensions exported with a Dim can take a range`
              : `${label}: shape ${lo[k] === hi[k] ? formatShape(lo) : `${formatShape(lo)}–${formatShape(hi)}`} given, but the model was exported with ${formatShape(want.shape)}; a range needs torch.export's dynamic_shapes (Dim) on that dimension`,
          );
        return;
      }
      const r: [number, number, number] = [lo[k], mid[k], hi[k]];
      const have = ranges.get(d.symbol);
      if (have?.some((v, j) => v !== r[j]))
        fail(
          `${label}: dimension ${k} is '${d.symbol}', which another input gives the range ${have.join(":")}`,
        );
      const rec = symbols.get(d.symbol);
      // torch.export records 2 as the least value of a Dim (0/1 specialization); 1 is accepted and checked
      const least = rec && rec.min <= 2 ? Math.min(rec.min, 1) : (rec?.min ?? 1);
      if (rec && (r[0] < least || (rec.max !== undefined && r[2] > rec.max)))
        fail(
          `${label}: dimension ${k} ('${d.symbol}') was exported with range ${rec.min}–${rec.max ?? "∞"}; ${r[0]}–${r[2]} is outside it`,
        );
      if (r[0] < 1) fail(`${label}: dimension ${k} ('${d.symbol}') needs a least size of 1 or more`);
      ranges.set(d.symbol, r);
    });
  });
  if (!symbolic) return { kind: "static", graph };
  for (const s of symbolic.symbols) {
    if (ranges.has(s.name)) continue;
    if (s.max === undefined)
      fail(
        `the exported dimension '${s.name}' has no upper bound; give one with inputs: [{ minShape, optShape, maxShape }] (or Dim(max=…) at export)`,
      );
    const hintInput = names.find((n) => symbolic.inputTypes[n]);
    const axis = hintInput
      ? symbolic.inputTypes[hintInput].shape.findIndex((d) => isSymbolic(d) && d.symbol === s.name)
      : -1;
    const hint = hintInput && axis >= 0 ? graph.values[hintInput].shape[axis] : s.max;
    const min = Math.max(1, s.min);
    ranges.set(s.name, [min, Math.min(Math.max(hint, min), s.max), s.max]);
  }
  const dynamicSymbols = [...ranges].filter(([, r]) => r[0] !== r[2]);
  if (dynamicSymbols.length > 1)
    fail(
      `torchc compiles one dynamic dimension (the batch); ${dynamicSymbols.map(([s]) => `'${s}'`).join(" and ")} both have ranges: fix all but one with inputs`,
    );
  const fixed: Record<string, number> = {};
  for (const [s, r] of ranges) if (r[0] === r[2]) fixed[s] = r[0];
  if (dynamicSymbols.length === 0) return { kind: "static", graph: symbolic.specialize(fixed) };
  const [symbol, [min, opt, max]] = dynamicSymbols[0];
  checkDynamicOptions(dynamic);
  // the opt size always has a bucket: it is built at compile time
  const pipe = dynamic?.pipelineRows;
  if (pipe !== undefined && (pipe < min || pipe >= max))
    fail(
      `dynamic.pipelineRows must be within ${min}–${max - 1} (batches larger than it are cut); got ${pipe}`,
    );
  const buckets = [
    ...new Set([...(dynamic?.buckets ?? defaultBuckets(min, opt, max)), opt, ...(pipe ? [pipe] : [])]),
  ].sort((a, b) => a - b);
  if (
    !buckets.every((b) => Number.isSafeInteger(b) && b >= min && b <= max) ||
    buckets[buckets.length - 1] !== max
  )
    fail(`dynamic.buckets must be sizes within ${min}–${max} and include ${max}; got ${buckets.join(", ")}`);
  const inputAxes = names.map((n) => {
    const t = symbolic.inputTypes[n];
    const k = t ? t.shape.findIndex((d) => isSymbolic(d) && d.symbol === symbol) : -1;
    return k >= 0 ? k : undefined;
  });
  return { kind: "dynamic", range: { symbol, min, opt, max, buckets, inputAxes, fixed }, symbolic };
}

/**
 * A model with symbolic sizes at the sizes of these inputs (for one run, e.g. `torchc run`): the static program
 * with each symbol bound from the inputs; a size outside the exported range is an InputError naming the input.
 * Inputs that do not fit the model are left for `validateInputs` to report.
 */
export function specializeToInputs<M extends { readonly graph: Graph; readonly dynamic?: SymbolicGraph }>(
  model: M,
  shapes: readonly Shape[],
  labels?: readonly string[],
): M {
  const symbolic = model.dynamic;
  if (!symbolic) return model;
  const binding: Record<string, number> = {};
  const ranges = new Map(symbolic.symbols.map((s) => [s.name, s]));
  model.graph.inputs.forEach((name, i) => {
    const t = symbolic.inputTypes[name];
    const shape = shapes[i];
    if (!t || !shape || shape.length !== t.shape.length) return;
    t.shape.forEach((d, k) => {
      if (!isSymbolic(d)) return;
      const v = shape[k];
      const r = ranges.get(d.symbol);
      const least = r && r.min <= 2 ? Math.min(r.min, 1) : (r?.min ?? 1);
      if (r && (v < least || (r.max !== undefined && v > r.max)))
        throw new InputError(
          `${labels?.[i] ?? `input '${name}'`}: dimension ${k} is ${v}, outside the range ${least}–${r.max ?? "∞"} the model was exported with`,
          "input.range",
        );
      binding[d.symbol] ??= v;
    });
  });
  // a symbol no given input sets keeps the size the loaded graph has (the archive's example size)
  for (const name of model.graph.inputs)
    symbolic.inputTypes[name]?.shape.forEach((d, k) => {
      if (isSymbolic(d)) binding[d.symbol] ??= model.graph.values[name].shape[k];
    });
  return { ...model, graph: symbolic.specialize(binding), dynamic: undefined };
}

/** Checks the `dynamic` compile option before anything is built. */
export function checkDynamicOptions(o: DynamicOptions | undefined): void {
  if (o === undefined) return;
  if (typeof o !== "object" || o === null) fail("dynamic must be an object");
  if (o.build !== undefined && o.build !== "lazy" && o.build !== "all")
    fail(`dynamic.build must be "lazy" or "all", got '${String(o.build)}'`);
  const m = o.maxResidentBuckets;
  if (m !== undefined && (!Number.isSafeInteger(m) || m < 1))
    fail(`dynamic.maxResidentBuckets must be an integer of 1 or more, got ${String(m)}`);
  if (o.buckets !== undefined && (!Array.isArray(o.buckets) || o.buckets.length === 0))
    fail("dynamic.buckets must be a non-empty list of sizes");
  const p = o.pipelineRows;
  if (p !== undefined && (!Number.isSafeInteger(p) || p < 1))
    fail(`dynamic.pipelineRows must be an integer of 1 or more, got ${String(p)}`);
}
