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
import { koffi } from "../../../ffi/koffi.js";
import { LIBC } from "../../../ffi/libc.js";
import { callAsync } from "../../../ffi/library.js";
import { checkBytes, fail } from "./validate.js";

/**
 * Asks for 8 libuv worker threads (Node's default is 4) unless UV_THREADPOOL_SIZE is set: host copies of large
 * inputs run on them. It only takes effect before the first asynchronous work of the process, so the torchc
 * command calls it first thing and the CUDA backend calls it when created; a program that already used the
 * pool can set UV_THREADPOOL_SIZE itself.
 */
export function useHostCopyThreads(): void {
  process.env.UV_THREADPOOL_SIZE ??= "8";
}

/**
 * Below this, copy on the JS thread (TORCHC_WORKER_COPY_MIN_BYTES overrides it, for A/B timing): a thread
 * hand-off costs more. H100 run 4 of session 3: EfficientNet-B0's 588 KiB input, end to end 0.425 ms copied on
 * the JS thread against 0.446 ms on workers.
 */
export const WORKER_COPY_MIN_BYTES = 1 << 20;

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
 * TORCHC_COPY_IN_FLIGHT: at most this many worker memcpys queued at once, the next queued as one lands (for
 * A/B timing of the event loop: all of a batch-128 input's 37 pieces are otherwise queued in one synchronous
 * loop). Unset or 0: all at once.
 */
function inFlightFromEnv(): number | undefined {
  const env = Number(process.env.TORCHC_COPY_IN_FLIGHT);
  return Number.isSafeInteger(env) && env > 0 ? env : undefined;
}

export interface HostCopyOptions {
  /** Bytes per memcpy (default 2 MiB; smaller for medium copies so that several threads share them). */
  readonly chunkBytes?: number;
  /** At most this many memcpys queued on the worker pool at once (default: all of them). */
  readonly maxInFlight?: number;
  /** Called on the JS thread as each chunk lands: [offset, offset + bytes) of the destination is written. */
  readonly onChunk?: (offset: number, bytes: number) => void;
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
  if (bytes < workerCopyMinBytes()) {
    const pieces = Math.max(1, Math.min(4, Math.floor(bytes / JS_CHUNK_BYTES)));
    const piece = Math.ceil(bytes / pieces / 64) * 64;
    for (let off = 0; off < bytes; off += piece) {
      const n = Math.min(piece, bytes - off);
      new Uint8Array(dst.arrayBuffer, dstOffset + off, n).set(src.subarray(off, off + n));
      opts.onChunk?.(dstOffset + off, n);
    }
    return;
  }
  // Off-heap (≥ 1 MiB) typed arrays never move, so their address is stable for the copy's duration.
  const from = koffi().address(src);
  const to = dst.ptr + BigInt(dstOffset);
  const chunk =
    opts.chunkBytes ??
    chunkBytesFromEnv() ??
    Math.max(128 << 10, Math.min(MAX_WORKER_CHUNK_BYTES, Math.ceil(bytes / 4 / 4096) * 4096));
  const pieces: [number, number][] = [];
  for (let off = 0; off < bytes; off += chunk) pieces.push([off, Math.min(chunk, bytes - off)]);
  const copyPiece = ([off, n]: [number, number]) =>
    callAsync(LIBC.fn.memcpy, to + BigInt(off), from + BigInt(off), n).then(() =>
      opts.onChunk?.(dstOffset + off, n),
    );
  const lanes = Math.min(pieces.length, opts.maxInFlight ?? inFlightFromEnv() ?? pieces.length);
  // Each lane copies its next piece when the last one has landed; a failed piece stops only its own lane.
  let next = 0;
  const lane = async () => {
    while (next < pieces.length) await copyPiece(pieces[next++]);
  };
  // Every piece must have stopped writing before this returns, also when one fails.
  const settled = await Promise.allSettled(Array.from({ length: lanes }, lane));
  const failed = settled.find((r) => r.status === "rejected");
  if (failed) throw (failed as PromiseRejectedResult).reason;
}
