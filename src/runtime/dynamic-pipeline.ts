/**
 * Pipelined host batches (compile option `dynamic.pipelineRows`): a batch of host tensors larger than
 * `rows` runs as pieces of `rows` rows, piece k+1's inputs copied to the device while piece k's forward pass
 * runs. A large input's host → device copy (EfficientNet-B0 at batch 128: 77 MB, ~3 ms at host memcpy rate
 * into pinned staging) then hides behind the GPU work instead of preceding all of it. Exact because the
 * graph keeps rows apart (dynamic-rows.ts): a row's outputs do not depend on which rows share its pass.
 *
 * Inputs are cut as views (no copy) and each piece's outputs are written into one tensor per output, so the
 * only extra host work is the output copy, which is small for models whose input is the large tensor.
 */
import { allocData, numel, type Tensor } from "../ir/tensor.js";
import { type DeviceTensor, isDeviceTensor } from "./device-tensor.js";
import type { RunOptions } from "./execution.js";

/** Rows [start, start + rows) of the batch. */
export interface Piece {
  readonly start: number;
  readonly rows: number;
}

/** Where the batch sits in an output (undefined: the output does not depend on the batch size). */
export type OutputAxis = { readonly axis: number; readonly coeff: number } | undefined;

/**
 * Execution contexts of the pipeline's bucket: one per piece of the largest batch, 2 to 4. A piece holds its
 * context from its copy until its outputs are out, so with fewer contexts than pieces a later piece's copy waits
 * for an earlier piece's forward pass (EfficientNet-B0 b128 in pieces of 32 on an H100: 7.40 ms with 2 contexts,
 * 6.30 with 3). More if the module asked for more; TORCHC_PIPELINE_CONTEXTS sets it (A/B timing).
 */
export function pipelineContexts(contexts: number | undefined, rows: number, max: number): number {
  const env = Number(process.env.TORCHC_PIPELINE_CONTEXTS);
  const base = Number.isSafeInteger(env) && env >= 1 ? env : Math.min(4, Math.max(2, Math.ceil(max / rows)));
  return Math.max(base, contexts ?? 1);
}

/** Pieces of `rows` rows covering a batch of n; the last one holds the remainder. */
export function pipelinePieces(n: number, rows: number): Piece[] {
  const pieces: Piece[] = [];
  for (let start = 0; start < n; start += rows) pieces.push({ start, rows: Math.min(rows, n - start) });
  return pieces;
}

/**
 * Why a model can't be pipelined (undefined: it can): pieces are cut where the batch leads, so every batched input
 * and every batch-dependent output must have the batch as axis 0. Checked once, at compile time.
 */
export function pipelineAxesRefusal(
  inputAxes: readonly (number | undefined)[],
  outputAxes: readonly OutputAxis[],
): string | undefined {
  if (inputAxes.some((a) => a !== undefined && a !== 0))
    return "the batch is not the first axis of every input";
  if (outputAxes.some((a) => a !== undefined && a.axis !== 0))
    return "the batch is not the first axis of every output";
  return undefined;
}

/** Why a run is not pipelined (undefined: it is): device-resident I/O has no host copy to hide. */
export function pipelineRunRefusal(
  inputs: readonly (Tensor | DeviceTensor)[],
  opts: RunOptions,
): string | undefined {
  if (inputs.some(isDeviceTensor)) return "an input is a DeviceTensor";
  if (opts.outputs !== undefined && opts.outputs !== "host") return "outputs are not new host tensors";
  return undefined;
}

/** Rows [start, start + rows) of `t` along axis 0, as a view of its data (no copy). */
export function rowView(t: Tensor, start: number, rows: number): Tensor {
  const inner = numel(t.shape.slice(1));
  const data = (t.data as unknown as { subarray(a: number, b: number): Tensor["data"] }).subarray(
    start * inner,
    (start + rows) * inner,
  );
  return { dtype: t.dtype, shape: [rows, ...t.shape.slice(1)], data };
}

/** One tensor per output from the pieces' outputs, rows in batch order (outputs without the batch: piece 0's). */
export function joinPieces(
  pieces: readonly Piece[],
  parts: readonly (readonly Tensor[])[],
  outputAxes: readonly OutputAxis[],
  n: number,
): Tensor[] {
  return outputAxes.map((a, i) => {
    const first = parts[0][i];
    if (!a) return first;
    const shape = [a.coeff * n, ...first.shape.slice(1)];
    const inner = numel(first.shape.slice(1)) * a.coeff;
    const data = allocData(first.dtype, numel(shape));
    const dst = data as unknown as { set(src: ArrayLike<number>, at: number): void };
    pieces.forEach((p, k) => {
      dst.set(parts[k][i].data as unknown as ArrayLike<number>, p.start * inner);
    });
    return { dtype: first.dtype, shape, data };
  });
}

/**
 * Runs the pieces in order of their input copies: piece k+1 starts once piece k's host copies are all queued
 * on the copy threads (`copiesQueued`, from the run's "copying" phase) or piece k has settled. The threads take
 * work in order, so piece k's copies finish first and piece 0 reaches the GPU first, while the threads never
 * wait between pieces. Waits for every piece before it settles, also when one fails (pieces not yet started
 * then don't start): no piece may still read the caller's inputs afterwards.
 */
export async function runPieces(
  pieces: readonly Piece[],
  runPiece: (piece: Piece, index: number, copiesQueued: () => void) => Promise<Tensor[]>,
): Promise<Tensor[][]> {
  let gate: Promise<void> = Promise.resolve();
  let failure: { error: unknown } | undefined;
  const runs = pieces.map((piece, index) => {
    const previous = gate;
    let open!: () => void;
    gate = new Promise<void>((r) => {
      open = r;
    });
    return (async () => {
      await previous;
      try {
        // a piece not yet started when another failed is not run: the call fails anyway
        if (failure) throw failure.error;
        return await runPiece(piece, index, open);
      } catch (error) {
        failure ??= { error };
        throw error;
      } finally {
        open();
      }
    })();
  });
  const settled = await Promise.allSettled(runs);
  const failed = settled.find((r) => r.status === "rejected");
  if (failed) throw (failed as PromiseRejectedResult).reason;
  return settled.map((r) => (r as PromiseFulfilledResult<Tensor[]>).value);
}
