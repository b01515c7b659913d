import type { Arg } from "../../ir/graph.js";

/** An int-list argument of length n: PyTorch repeats a single int (`stride=2` means [2, 2]). */
export function intsOfLength(a: Arg | undefined, n: number, fill: number): number[] {
  if (a === undefined || a.kind === "none") return new Array<number>(n).fill(fill);
  if (a.kind === "int") return new Array<number>(n).fill(a.value);
  if (a.kind === "ints")
    return a.value.length === 1 && n > 1 ? new Array<number>(n).fill(a.value[0]) : [...a.value];
  throw new Error(`expected an int list, got ${a.kind}`);
}

/** A dim index in [0, rank). */
export const normDim = (d: number, rank: number) => (d < 0 ? d + rank : d);
