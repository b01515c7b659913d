/**
 * Symbolic sizes: a dimension that is a multiple of a named symbol with a range (`s0` ∈ [1, 128], the batch),
 * and a graph whose sizes depend on such symbols. Ops infer shapes on numbers, so a symbolic graph is kept as
 * the function that gives the graph at any value of its symbols; the symbolic type of every value is read off
 * two specializations (and checked at a third), which is exact for sizes that are k·s.
 */
import type { DType } from "./dtype.js";
import type { Graph } from "./graph.js";

/** A named size with its inclusive range, as torch.export's `Dim("batch", min=1, max=128)` records it. */
export interface SymbolRange {
  readonly name: string;
  readonly min: number;
  /** Undefined when the archive recorded no upper bound. */
  readonly max: number | undefined;
}

/** One dimension of a symbolic type: a static size, or `coeff`·`symbol`. */
export type SymDim = number | { readonly symbol: string; readonly coeff: number };

export interface SymbolicType {
  readonly dtype: DType;
  readonly shape: readonly SymDim[];
}

/** A graph whose sizes depend on symbols: its inputs' symbolic types and the graph at any binding. */
export interface SymbolicGraph {
  readonly symbols: readonly SymbolRange[];
  /** Symbolic types of the graph inputs, by input name (the only place symbols are declared). */
  readonly inputTypes: Readonly<Record<string, SymbolicType>>;
  /** The static graph with every symbol bound to a number (sizes and size arguments evaluated). */
  specialize(binding: Readonly<Record<string, number>>): Graph;
}

export function isSymbolic(d: SymDim): d is { readonly symbol: string; readonly coeff: number } {
  return typeof d === "object";
}

export function formatSymDim(d: SymDim): string {
  if (!isSymbolic(d)) return String(d);
  return d.coeff === 1 ? d.symbol : `${d.coeff}*${d.symbol}`;
}

export function formatSymShape(shape: readonly SymDim[]): string {
  return `[${shape.map(formatSymDim).join(", ")}]`;
}

/** A symbolic shape at a value of its symbol. */
export function bindShape(shape: readonly SymDim[], binding: Readonly<Record<string, number>>): number[] {
  return shape.map((d) => {
    if (!isSymbolic(d)) return d;
    const v = binding[d.symbol];
    if (v === undefined) throw new Error(`symbol '${d.symbol}' has no value`);
    return d.coeff * v;
  });
}

/** Why a value's sizes are not k·symbol: the value and its shapes at the values tried. */
export interface IrregularValue {
  readonly value: string;
  readonly shapes: readonly (readonly number[])[];
}

export interface SymbolicTypes {
  readonly types: Readonly<Record<string, SymbolicType>>;
  /** Values whose sizes are not static or k·symbol (`s + 1`, `s // 2`, …), or whose rank changes. */
  readonly irregular: readonly IrregularValue[];
}

/**
 * Symbolic types of every value of a one-symbol graph, read off specializations at `at` (two or more distinct
 * values of the symbol): a size equal in all is static, a size that is the same multiple k of the symbol in all
 * is k·symbol, anything else makes the value irregular.
 */
export function inferSymbolicTypes(
  graphs: readonly Graph[],
  symbol: string,
  at: readonly number[],
): SymbolicTypes {
  if (graphs.length < 2 || graphs.length !== at.length || new Set(at).size !== at.length)
    throw new Error("inferSymbolicTypes: needs two or more graphs at distinct values of the symbol");
  const first = graphs[0];
  const types: Record<string, SymbolicType> = {};
  const irregular: IrregularValue[] = [];
  for (const name of Object.keys(first.values)) {
    const shapes = graphs.map((g) => g.values[name]?.shape);
    const t0 = first.values[name];
    if (shapes.some((s) => s === undefined || s.length !== t0.shape.length)) {
      irregular.push({ value: name, shapes: shapes.map((s) => s ?? []) });
      continue;
    }
    const dims: SymDim[] = [];
    let ok = true;
    for (let k = 0; k < t0.shape.length; k++) {
      const sizes = shapes.map((s) => (s as readonly number[])[k]);
      if (sizes.every((v) => v === sizes[0])) dims.push(sizes[0]);
      else {
        const coeff = sizes[0] / at[0];
        if (Number.isInteger(coeff) && coeff > 0 && sizes.every((v, i) => v === coeff * at[i]))
          dims.push({ symbol, coeff });
        else ok = false;
      }
    }
    if (ok) types[name] = { dtype: t0.dtype, shape: dims };
    else irregular.push({ value: name, shapes: shapes as number[][] });
  }
  return { types, irregular };
}
