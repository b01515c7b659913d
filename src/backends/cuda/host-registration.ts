/**
 * Host memory page-locked in place (cuMemHostRegister), for `torchc serve --ingest-threads`: the ingest threads
 * read request bodies into slots of a SharedArrayBuffer this process registered, so a batch's rows reach the GPU
 * by DMA from where the bodies landed, with no copy on the batching thread. (H100, session 16: copying 32 rows of
 * 602 KB a batch on that thread, or dispatching those copies to worker threads, was half of its time at 5,468 req/s.)
 *
 * A view over registered memory counts as pinned wherever run() looks (pinnedSource); gatherToDevice writes a
 * batch from such views.
 */
import { koffi } from "../../ffi/koffi.js";
import { CudaContext } from "./device/context.js";
import { PinnedBuffer } from "./device/memory.js";
import { fail } from "./device/validate.js";

/** What a registration page-locked: `bytes` from `offset` (whole pages inside the buffer). */
export interface HostRegistration {
  readonly offset: number;
  readonly bytes: number;
  /** Unregisters (once); views over the memory are ordinary memory again. */
  release(): void;
}

const PAGE = 4096;
const live = new Set<PinnedBuffer>();

/** Page-locks the whole pages inside `memory`, on `device`'s context (portable: every context may copy from it). */
export function registerHostMemory(
  memory: SharedArrayBuffer | ArrayBuffer,
  device: number,
): HostRegistration {
  if (memory.byteLength === 0) fail("no host memory to page-lock: the buffer is empty");
  const base = koffi().address(new Uint8Array(memory)) as bigint;
  const offset = Number((BigInt(PAGE) - (base % BigInt(PAGE))) % BigInt(PAGE));
  const bytes = Math.floor((memory.byteLength - offset) / PAGE) * PAGE;
  if (bytes <= 0) fail(`a buffer of ${memory.byteLength} bytes holds no whole page to page-lock`);
  CudaContext.get(device);
  const pinned = PinnedBuffer.register(memory, offset, bytes);
  live.add(pinned);
  return {
    offset,
    bytes,
    release() {
      if (!live.delete(pinned)) return;
      CudaContext.get(device);
      pinned.free();
    },
  };
}

/** The registration holding all of `view`'s bytes, and where they start in it; undefined for any other memory. */
export function registeredSource(
  view: ArrayBufferView,
): { pinned: PinnedBuffer; offset: number } | undefined {
  if (live.size === 0 || view.byteLength === 0) return undefined;
  const at = koffi().address(view) as bigint;
  for (const pinned of live) {
    if (!pinned.alive) continue;
    const off = at - pinned.ptr;
    if (off >= 0n && off + BigInt(view.byteLength) <= BigInt(pinned.bytes))
      return { pinned, offset: Number(off) };
  }
  return undefined;
}
