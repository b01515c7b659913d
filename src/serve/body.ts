/**
 * The binary extension's request body read into one buffer laid out so that its tensor bytes (after the JSON
 * header of Inference-Header-Content-Length bytes) start 8-byte aligned: decodeRequest can then view them as
 * typed arrays in place instead of copying each input (a 602 KB image per request at thousands per second).
 * fastify's `parseAs: "buffer"` concatenates chunks wherever the allocator puts them; this does the same single
 * copy, into an aligned place, with the same body limit (HTTP 413).
 */
import type { IncomingMessage } from "node:http";

export class BodyError extends Error {
  constructor(
    message: string,
    readonly statusCode: number,
  ) {
    super(message);
    this.name = "BodyError";
  }
}

/** Bytes before the body in its allocation, so that byte `headerLength` of the body is 8-byte aligned. */
function padFor(headerLength: unknown): number {
  const h = Number(headerLength);
  return Number.isInteger(h) && h >= 0 ? (8 - (h % 8)) % 8 : 0;
}

/**
 * Body allocations handed back once their request has been answered, for the next request of the same size:
 * a fresh 602 KB allocation per request is mostly page faults and external memory the garbage collector has to
 * chase. Bounded in bytes; sizes are rounded to 4 KiB so that near sizes share.
 */
/**
 * Fixed-size places for request bodies in memory shared with the batching thread, which page-locked it
 * (`torchc serve --ingest-threads` on a GPU): a body read there reaches the GPU by DMA from where it landed.
 */
export interface BodySlots {
  readonly memory: SharedArrayBuffer;
  /** Where slot 0 starts in `memory`. */
  readonly offset: number;
  readonly slotBytes: number;
  readonly count: number;
}

export class BodyPool {
  private readonly free = new Map<number, ArrayBuffer[]>();
  private readonly mine = new WeakSet<ArrayBuffer>();
  private bytes = 0;
  /** Bodies placed since takePlaced() last asked: in a slot, or in an allocation (no slot fit or was free). */
  private placed = { slot: 0, allocation: 0 };
  /** Free slots (a stack: the most recently used slot's pages are the warmest). */
  private readonly freeSlots: number[] = [];
  private readonly slotTaken: Uint8Array;

  constructor(
    private readonly maxBytes = 64 << 20,
    private readonly slots?: BodySlots,
  ) {
    const n = slots?.count ?? 0;
    this.slotTaken = new Uint8Array(n);
    for (let i = n - 1; i >= 0; i--) this.freeSlots.push(i);
  }

  /**
   * A body buffer of `length` bytes with `pad` bytes before it in its allocation: a free slot when the body fits
   * one, else a pooled allocation.
   */
  body(length: number, pad: number): Buffer {
    const s = this.slots;
    if (s && length + pad <= s.slotBytes && this.freeSlots.length > 0) {
      const i = this.freeSlots.pop()!;
      this.slotTaken[i] = 1;
      this.placed.slot++;
      return Buffer.from(s.memory, s.offset + i * s.slotBytes + pad, length);
    }
    this.placed.allocation++;
    return Buffer.from(this.take(length + pad), pad, length);
  }

  /** Where bodies went since the last call (for the server's metrics). */
  takePlaced(): { slot: number; allocation: number } {
    const p = this.placed;
    this.placed = { slot: 0, allocation: 0 };
    return p;
  }

  /** The slot `body` lies in, if it is one of this pool's slots. */
  slotOf(body: Uint8Array): number | undefined {
    const s = this.slots;
    if (!s || body.buffer !== s.memory) return undefined;
    const i = Math.floor((body.byteOffset - s.offset) / s.slotBytes);
    return i >= 0 && i < s.count ? i : undefined;
  }

  /** Slot `i` is free again (nothing reads the body in it any more); a second free of it is ignored. */
  freeSlot(i: number): void {
    if (!Number.isInteger(i) || i < 0 || i >= this.slotTaken.length || !this.slotTaken[i]) return;
    this.slotTaken[i] = 0;
    this.freeSlots.push(i);
  }

  /** Slots holding a body now. */
  get slotsInUse(): number {
    return this.slotTaken.length - this.freeSlots.length;
  }

  take(bytes: number): ArrayBuffer {
    const size = Math.ceil(bytes / 4096) * 4096;
    const ab = this.free.get(size)?.pop();
    if (ab) {
      this.bytes -= size;
      return ab;
    }
    const fresh = new ArrayBuffer(size);
    this.mine.add(fresh);
    return fresh;
  }

  /**
   * Takes in an allocation that came back from another thread (an ingest thread's body, moved to the batcher's
   * thread and moved back once its batch ran): a new ArrayBuffer object over the same bytes, of a pool size.
   */
  adopt(ab: ArrayBuffer): void {
    if (ab.byteLength === 0 || ab.byteLength % 4096 !== 0) return;
    this.mine.add(ab);
    this.give(new Uint8Array(ab));
  }

  /** Takes back the allocation (or slot) behind `body`, when it came from this pool and nothing reads it any more. */
  give(body: Uint8Array): void {
    const slot = this.slotOf(body);
    if (slot !== undefined) {
      this.freeSlot(slot);
      return;
    }
    const ab = body.buffer as ArrayBuffer;
    if (!this.mine.has(ab) || this.bytes + ab.byteLength > this.maxBytes) return;
    const list = this.free.get(ab.byteLength) ?? [];
    if (list.includes(ab)) return;
    list.push(ab);
    this.free.set(ab.byteLength, list);
    this.bytes += ab.byteLength;
  }
}

/** Bodies up to this size are written straight into their final place as they arrive. */
const DIRECT_MAX = 16 << 20;

export function readAlignedBody(stream: IncomingMessage, limit: number, pool?: BodyPool): Promise<Buffer> {
  const declared = stream.headers["content-length"];
  const pad = padFor(stream.headers["inference-header-content-length"]);
  const tooLarge = () => new BodyError(`the request body is larger than ${limit} bytes`, 413);
  return new Promise((resolve, reject) => {
    const length = declared === undefined ? undefined : Number(declared);
    if (length !== undefined && (!Number.isSafeInteger(length) || length < 0)) {
      reject(new BodyError("Content-Length is not a byte count", 400));
      return;
    }
    if (length !== undefined && length > limit) {
      stream.resume();
      reject(tooLarge());
      return;
    }
    // Known length up to DIRECT_MAX: one aligned allocation filled as chunks arrive. Longer or chunked: gather,
    // then one aligned copy (memory follows the bytes that actually arrive, not what a client claims).
    const into =
      length === undefined || length > DIRECT_MAX
        ? undefined
        : pool
          ? pool.body(length, pad)
          : Buffer.allocUnsafeSlow(length + pad).subarray(pad);
    const chunks: Buffer[] = [];
    let at = 0;
    let failed = false;
    const fail = (e: BodyError) => {
      if (failed) return;
      failed = true;
      // nothing views a body that never arrived whole: its slot or allocation goes back now
      if (into) pool?.give(into);
      stream.resume();
      reject(e);
    };
    stream.on("data", (chunk: Buffer) => {
      if (failed) return;
      if (at + chunk.byteLength > (length ?? limit)) {
        fail(
          length === undefined ? tooLarge() : new BodyError("the body is longer than Content-Length", 400),
        );
        return;
      }
      if (into) chunk.copy(into, at);
      else chunks.push(chunk);
      at += chunk.byteLength;
    });
    stream.on("error", (e) => fail(new BodyError(`reading the request body: ${e.message}`, 400)));
    stream.on("aborted", () => fail(new BodyError("the client aborted the request body", 400)));
    stream.on("end", () => {
      if (failed) return;
      if (length !== undefined && at !== length) {
        fail(new BodyError(`the body has ${at} bytes, Content-Length says ${length}`, 400));
        return;
      }
      if (into) {
        resolve(into);
        return;
      }
      const out = Buffer.allocUnsafeSlow(at + pad).subarray(pad);
      let o = 0;
      for (const c of chunks) {
        c.copy(out, o);
        o += c.byteLength;
      }
      resolve(out);
    });
  });
}
