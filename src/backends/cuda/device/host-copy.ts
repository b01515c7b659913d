/**
 * Host → pinned staging copies that run on koffi's worker threads (memcpy from the C library), several
 * chunks at once, so a large input is copied at the host's memory bandwidth rather than one core's, and the
 * JS thread stays free for the event loop while it happens. Each chunk is handed to `onChunk` as soon as it
 * has landed (to queue its DMA), so the copy to the GPU overlaps the host copy of the next chunks.
 *
 * The source must stay unchanged, and its buffer neither transferred nor detached, until the returned
 * promise settles (run() documents this for its inputs). Small copies are done on the JS thread: a thread
 * hand-off costs more than they do.
 */
import { availableParallelism } from "node:os";
import { setImmediate as yieldToLoop } from "node:timers/promises";
import { koffi } from "../../../ffi/koffi.js";
import { LIBC } from "../../../ffi/libc.js";
import { callAsync } from "../../../ffi/library.js";
import { checkBytes, fail } from "./validate.js";

/**
 * Asks for one libuv worker thread per core, 8 to 16 (Node's default is 4), unless UV_THREADPOOL_SIZE is set:
 * host copies of large inputs run on them. H100 machine (16 cores), session 11, EfficientNet-B0 batch 128 plain
 * input end to end: 7.499 ms on 8 threads, 6.995 ms on 16 (separate processes, same machine). It only takes
 * effect before the first asynchronous work of the process, so the torchc command calls it first thing and the
 * CUDA backend calls it when created; a program that already used the pool can set UV_THREADPOOL_SIZE itself.
 */
export function useHostCopyThreads(): void {
  process.env.UV_THREADPOOL_SIZE ??= String(Math.min(16, Math.max(8, availableParallelism())));
}

/** The libuv pool's size as this process asked for it (Node's default 4 when unset). */
function copyThreads(): number {
  const n = Number(process.env.UV_THREADPOOL_SIZE);
  return Number.isSafeInteger(n) && n > 0 ? n : 4;
}

/**
 * Below this, copy on the JS thread (TORCHC_WORKER_COPY_MIN_BYTES overrides it, for A/B timing): a thread
 * hand-off costs more. H100 run 4 of session 3: EfficientNet-B0's 588 KiB input, end to end 0.425 ms copied on
 * the JS thread against 0.446 ms on workers.
 */
export const WORKER_COPY_MIN_BYTES = 1 << 20;

/**
 * TORCHC_PAGEABLE_DMA_MAX_BYTES: host inputs up to this many bytes are copied to the device straight from the
 * caller's array (uploadPageableAsync: the driver stages them itself) instead of through the context's pinned
 * staging; default 0 (off) until an H100 A/B says which is faster at batch 1.
 */
export function pageableDmaMaxBytes(): number {
  const env = Number(process.env.TORCHC_PAGEABLE_DMA_MAX_BYTES);
  return Number.isSafeInteger(env) && env > 0 ? env : 0;
}

/** JS-thread copies above this go in pieces, each handed to `onChunk` at once, so its DMA overlaps the next. */
const JS_CHUNK_BYTES = 128 << 10;

/** TORCHC_COPY_CHUNK_BYTES: the worker copies' piece size (for A/B timing); multiples of 4 KiB. */
function chunkBytesFromEnv(): number | undefined {
  const env = Number(process.env.TORCHC_COPY_CHUNK_BYTES);
  return Number.isSafeInteger(env) && env >= 4096 ? Math.ceil(env / 4096) * 4096 : undefined;
}

function workerCopyMinBytes(): number {
  const env = Number(process.env.TORCHC_WORKER_COPY_MIN_BYTES);
  return process.env.TORCHC_WORKER_COPY_MIN_BYTES !== undefined && Number.isSafeInteger(env) && env >= 0
    ? env
    : WORKER_COPY_MIN_BYTES;
}

/**
 * The largest worker piece. H200, session 10, EfficientNet-B0 batch 128 plain input (77 MB) end to end:
 * 4 MiB pieces 6.663 ms, 2 MiB 6.275 ms, 1 MiB 6.767 ms (bench e2e, same process).
 */
const MAX_WORKER_CHUNK_BYTES = 2 << 20;

/**
 * TORCHC_COPY_QUEUE_GROUP: worker memcpys queued per event-loop turn (default: the pool's thread count; 0 = all
 * at once, for A/B timing). Queueing one costs ~16 µs on the JS thread (H100 machine, session 11 CPU profile:
 * 0.6 ms for a batch-128 input's 37 pieces in one synchronous loop, the largest share of the event loop's longest
 * gaps); a group per turn lets timers run between groups while every thread still has a piece queued.
 */
function queueGroup(): number {
  const raw = process.env.TORCHC_COPY_QUEUE_GROUP;
  const env = Number(raw);
  if (raw !== undefined && Number.isSafeInteger(env) && env >= 0) return env === 0 ? Infinity : env;
  return copyThreads();
}

export interface HostCopyOptions {
  /** Bytes per memcpy (default workerChunkBytes: at most 2 MiB, an equal number per copy thread). */
  readonly chunkBytes?: number;
  /** Memcpys queued per event-loop turn (default: TORCHC_COPY_QUEUE_GROUP, else the pool's thread count). */
  readonly queueGroup?: number;
  /** Copies below this many bytes run on the JS thread (default WORKER_COPY_MIN_BYTES). */
  readonly minWorkerBytes?: number;
  /** Called on the JS thread as each chunk lands: [offset, offset + bytes) of the destination is written. */
  readonly onChunk?: (offset: number, bytes: number) => void;
  /**
   * Called once every chunk has been handed to the worker threads (copies queued later run after these: the
   * pool takes work in order), before they have all landed; for a copy on the JS thread, once it is done.
   */
  readonly onQueued?: () => void;
}

/**
 * Piece size for a worker copy of `bytes`: every thread gets the same number of pieces of at most 2 MiB (at
 * least 128 KiB), so that no round ends with most threads idle: a pipelined piece of a batch (19 MB) in 2 MiB
 * pieces is 10 pieces, 10 of 16 threads busy. Not timed on its own: on an H100 machine (session 12, bench
 * host-pipeline) the static batch-128 copy measured 7.098 ms with it against 6.923 with 2 MiB pieces (within the
 * host's ±0.3 ms), and the pipelined figures were taken with it.
 */
export function workerChunkBytes(bytes: number, threads = copyThreads()): number {
  const rounds = Math.max(1, Math.ceil(bytes / (threads * MAX_WORKER_CHUNK_BYTES)));
  return Math.max(128 << 10, Math.ceil(bytes / (threads * rounds) / 4096) * 4096);
}

/** Host memory outside the JS heap (a PinnedBuffer, or any koffi allocation in tests). */
export interface HostMemory {
  readonly ptr: bigint;
  readonly bytes: number;
  readonly alive: boolean;
  readonly arrayBuffer: ArrayBuffer;
}

export async function copyIntoPinned(
  dst: HostMemory,
  dstOffset: number,
  src: Uint8Array,
  opts: HostCopyOptions = {},
): Promise<void> {
  const bytes = src.byteLength;
  checkBytes("dstOffset", dstOffset);
  if (!dst.alive) fail("the pinned staging buffer has been freed");
  if (dstOffset + bytes > dst.bytes)
    fail(`${bytes} bytes at offset ${dstOffset} do not fit ${dst.bytes} bytes of staging`);
  if (bytes === 0) return;
  if (bytes < (opts.minWorkerBytes ?? workerCopyMinBytes())) {
    const pieces = Math.max(1, Math.min(4, Math.floor(bytes / JS_CHUNK_BYTES)));
    const piece = Math.ceil(bytes / pieces / 64) * 64;
    for (let off = 0; off < bytes; off += piece) {
      const n = Math.min(piece, bytes - off);
      new Uint8Array(dst.arrayBuffer, dstOffset + off, n).set(src.subarray(off, off + n));
      opts.onChunk?.(dstOffset + off, n);
    }
    opts.onQueued?.();
    return;
  }
  // Off-heap (≥ 1 MiB) typed arrays never move, so their address is stable for the copy's duration.
  const from = koffi().address(src);
  const to = dst.ptr + BigInt(dstOffset);
  const chunk = opts.chunkBytes ?? chunkBytesFromEnv() ?? workerChunkBytes(bytes);
  const pieces: [number, number][] = [];
  for (let off = 0; off < bytes; off += chunk) pieces.push([off, Math.min(chunk, bytes - off)]);
  const copyPiece = ([off, n]: [number, number]) =>
    callAsync(LIBC.fn.memcpy, to + BigInt(off), from + BigInt(off), n).then(() =>
      opts.onChunk?.(dstOffset + off, n),
    );
  const group = Math.max(1, Math.floor(opts.queueGroup ?? queueGroup()) || 1);
  const copies: Promise<void>[] = [];
  // The run that called this may have just finished materializing another run's outputs: a turn of the event
  // loop before each group keeps the JS thread's synchronous stretches short. (CompiledModule.dispose waits for
  // runs in flight before it frees staging; the check below guards direct ExecutionContext use.)
  let freed = false;
  for (let i = 0; i < pieces.length && !freed; i++) {
    if (i % group === 0) {
      await yieldToLoop();
      freed = !dst.alive;
      if (freed) break;
    }
    copies.push(copyPiece(pieces[i]));
  }
  // A throwing callback must not end the copy early: the pieces still write (and land) after it.
  let queuedError: { error: unknown } | undefined;
  try {
    if (!freed) opts.onQueued?.();
  } catch (error) {
    queuedError = { error };
  }
  // Every piece must have stopped writing before this returns, also when one fails.
  const settled = await Promise.allSettled(copies);
  const failed = settled.find((r) => r.status === "rejected");
  if (failed) throw (failed as PromiseRejectedResult).reason;
  if (queuedError) throw queuedError.error;
  if (freed) fail("the pinned staging buffer was freed during the copy");
}
