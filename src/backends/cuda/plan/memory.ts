/**
 * Activation memory: every intermediate tensor that owns memory (views share their root's) lives in one arena,
 * at an offset chosen so that tensors whose lifetimes (first write … last read, in step order) overlap never
 * share bytes. Greedy best-fit by decreasing size; offsets are 256-byte aligned.
 */
import { DTYPE_BYTES } from "../../../ir/dtype.js";
import { numel } from "../../../ir/tensor.js";
import { storageRoot, type TensorInfo } from "./tensors.js";

export const ALIGN = 256;

export interface Lifetime {
  readonly tensor: string;
  readonly bytes: number;
  readonly first: number;
  readonly last: number;
}

export interface MemoryPlan {
  readonly offsets: ReadonlyMap<string, number>;
  readonly arenaBytes: number;
  /** Bytes without reuse (every activation its own buffer), for the statistics. */
  readonly naiveBytes: number;
  readonly lifetimes: readonly Lifetime[];
}

export function tensorBytes(info: TensorInfo): number {
  return numel(info.shape) * DTYPE_BYTES[info.storage];
}

export function alignUp(n: number, a = ALIGN): number {
  return Math.ceil(n / a) * a;
}

/** Lifetimes of arena tensors from each step's reads and writes (tensor names, views allowed). */
export function lifetimes(
  steps: readonly { reads: readonly string[]; writes: readonly string[] }[],
  infos: ReadonlyMap<string, TensorInfo>,
): Lifetime[] {
  const span = new Map<string, { first: number; last: number }>();
  const touch = (t: string, i: number) => {
    const root = storageRoot(infos, t);
    if (infos.get(root)?.role !== "activation") return;
    const s = span.get(root);
    if (!s) span.set(root, { first: i, last: i });
    else {
      s.first = Math.min(s.first, i);
      s.last = Math.max(s.last, i);
    }
  };
  steps.forEach((s, i) => {
    for (const t of s.writes) touch(t, i);
    for (const t of s.reads) touch(t, i);
  });
  return [...span].map(([tensor, s]) => ({ tensor, bytes: alignUp(tensorBytes(infos.get(tensor)!)), ...s }));
}

export function planMemory(lives: readonly Lifetime[]): MemoryPlan {
  const placed: { off: number; end: number; first: number; last: number }[] = [];
  const offsets = new Map<string, number>();
  const order = [...lives].sort((a, b) => b.bytes - a.bytes || a.first - b.first);
  let arenaBytes = 0;
  for (const t of order) {
    const clashes = placed
      .filter((p) => p.first <= t.last && t.first <= p.last)
      .sort((a, b) => a.off - b.off);
    let off = 0;
    let best = -1;
    let bestGap = Number.POSITIVE_INFINITY;
    for (const c of clashes) {
      const gap = c.off - off;
      if (gap >= t.bytes && gap < bestGap) {
        best = off;
        bestGap = gap;
      }
      off = Math.max(off, c.end);
    }
    if (best < 0) best = off;
    placed.push({ off: best, end: best + t.bytes, first: t.first, last: t.last });
    offsets.set(t.tensor, best);
    arenaBytes = Math.max(arenaBytes, best + t.bytes);
  }
  return { offsets, arenaBytes, naiveBytes: lives.reduce((s, t) => s + t.bytes, 0), lifetimes: lives };
}
