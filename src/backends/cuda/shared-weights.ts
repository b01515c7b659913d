/**
 * One device copy of identical engine weights. The engines of a module with a batch range (one per size
 * bucket) are built from the same program, so each packs the same constants in the same order: the store
 * keys a packed weight set by a hash of its bytes and layout, uploads it once, and frees it when the last
 * engine holding it is released. A set that differs (another layout or precision) is simply uploaded on its
 * own, so sharing never changes what an engine reads.
 */
import { createHash } from "node:crypto";
import { DeviceBuffer } from "./device/memory.js";

/** What an engine keeps of its weights: the base address of the packed set, and a release. */
export interface WeightBuffer {
  readonly ptr: bigint;
  /** Gives this engine's hold back; the device memory is freed with the last one. */
  free(): void;
}

/** One constant (or conv channel operand) at its offset in the packed weight set. */
export interface WeightBlob {
  readonly offset: number;
  readonly bytes: Uint8Array;
}

/** A device buffer of `total` bytes (256 at least) holding the packed set; freed again if an upload fails. */
export function uploadWeightSet(blobs: readonly WeightBlob[], total: number): DeviceBuffer {
  const buffer = DeviceBuffer.alloc(Math.max(256, total));
  try {
    for (const b of blobs) if (b.bytes.byteLength > 0) buffer.upload(b.bytes, b.offset);
  } catch (e) {
    buffer.free();
    throw e;
  }
  return buffer;
}

interface Entry {
  readonly buffer: DeviceBuffer;
  readonly bytes: number;
  refs: number;
}

export class WeightStore {
  private readonly sets = new Map<string, Entry>();

  /** Device bytes held now (each distinct set once). */
  get bytes(): number {
    let n = 0;
    for (const e of this.sets.values()) n += e.bytes;
    return n;
  }

  /** Distinct weight sets held now. */
  get size(): number {
    return this.sets.size;
  }

  /** The device copy of this packed set (`total` bytes), uploaded now if no engine holds an identical one. */
  acquire(blobs: readonly WeightBlob[], total: number): WeightBuffer {
    const key = keyOf(blobs, total);
    let entry = this.sets.get(key);
    if (!entry) {
      entry = { buffer: uploadWeightSet(blobs, total), bytes: total, refs: 0 };
      this.sets.set(key, entry);
    }
    entry.refs++;
    const held = entry;
    let released = false;
    return {
      get ptr() {
        return held.buffer.ptr;
      },
      free: () => {
        if (released) return;
        released = true;
        if (--held.refs > 0) return;
        this.sets.delete(key);
        held.buffer.free();
      },
    };
  }
}

function keyOf(blobs: readonly WeightBlob[], total: number): string {
  const h = createHash("sha256");
  const head = new Float64Array(2 + blobs.length * 2);
  head[0] = total;
  head[1] = blobs.length;
  blobs.forEach((b, i) => {
    head[2 + 2 * i] = b.offset;
    head[3 + 2 * i] = b.bytes.byteLength;
  });
  h.update(new Uint8Array(head.buffer));
  for (const b of blobs) h.update(b.bytes);
  return h.digest("hex");
}
