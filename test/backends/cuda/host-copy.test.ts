import { describe, expect, it } from "vitest";
import {
  copyIntoPinned,
  type HostMemory,
  WORKER_COPY_MIN_BYTES,
  workerChunkBytes,
} from "../../../src/backends/cuda/device/host-copy.js";
import { koffi } from "../../../src/ffi/koffi.js";

/** Off-heap memory from koffi standing in for pinned staging (no GPU needed). */
function hostMemory(bytes: number): HostMemory & { free(): void } {
  const k = koffi();
  const p = k.alloc("uint8_t", bytes);
  let alive = true;
  return {
    ptr: k.address(p),
    bytes,
    get alive() {
      return alive;
    },
    arrayBuffer: k.view(p, bytes),
    free() {
      alive = false;
      k.free(p);
    },
  };
}

describe("copyIntoPinned (worker-thread memcpy into staging)", () => {
  it.each([100, WORKER_COPY_MIN_BYTES - 1, WORKER_COPY_MIN_BYTES, 5 * 1024 * 1024 + 12345])(
    "copies %i bytes exactly, reporting chunks that tile the range",
    async (n) => {
      const dst = hostMemory(n + 64);
      const src = new Uint8Array(n);
      for (let i = 0; i < n; i++) src[i] = (i * 2654435761) >>> 24;
      new Uint8Array(dst.arrayBuffer).fill(0xee);
      const chunks: [number, number][] = [];
      await copyIntoPinned(dst, 32, src, { onChunk: (o, b) => chunks.push([o, b]) });
      const out = new Uint8Array(dst.arrayBuffer);
      expect(Buffer.compare(out.subarray(32, 32 + n), src)).toBe(0);
      expect(out[31]).toBe(0xee);
      expect(out[32 + n]).toBe(0xee);
      chunks.sort((a, b) => a[0] - b[0]);
      let at = 32;
      for (const [o, b] of chunks) {
        expect(o).toBe(at);
        at += b;
      }
      expect(at).toBe(32 + n);
      if (n >= WORKER_COPY_MIN_BYTES) expect(chunks.length).toBeGreaterThan(1);
      dst.free();
    },
  );

  it.each([1, 3, Infinity])(
    "queued %s pieces per event-loop turn, copies exactly, every piece reported once",
    async (group) => {
      const n = 3 * 1024 * 1024 + 777;
      const dst = hostMemory(n);
      const src = new Uint8Array(n).map((_, i) => (i * 7) & 0xff);
      const chunks: number[] = [];
      await copyIntoPinned(dst, 0, src, {
        chunkBytes: 256 << 10,
        queueGroup: group,
        onChunk: (o) => chunks.push(o),
      });
      expect(chunks.length).toBe(Math.ceil(n / (256 << 10)));
      expect(new Set(chunks).size).toBe(chunks.length);
      expect(Buffer.compare(new Uint8Array(dst.arrayBuffer), src)).toBe(0);
      dst.free();
    },
  );

  it("stops queueing, and says so, when the staging is freed between groups", async () => {
    const n = 4 * 1024 * 1024;
    const mem = hostMemory(n);
    // Marked dead (as PinnedBuffer.free does) after the first group was queued; really freed only once the
    // queued copies have stopped, which is what the copy must wait for.
    let alive = true;
    const dst: HostMemory = {
      ...mem,
      ptr: mem.ptr,
      arrayBuffer: mem.arrayBuffer,
      get alive() {
        return alive;
      },
    };
    setImmediate(() =>
      setImmediate(() => {
        alive = false;
      }),
    );
    await expect(
      copyIntoPinned(dst, 0, new Uint8Array(n), { chunkBytes: 256 << 10, queueGroup: 1 }),
    ).rejects.toThrow(/freed during the copy/);
    mem.free();
  });

  it("copies from a view at an offset inside a larger buffer", async () => {
    const whole = new Float32Array(300_000).map((_, i) => i);
    const view = new Uint8Array(whole.buffer, 4000, 1_000_000);
    const dst = hostMemory(view.byteLength);
    await copyIntoPinned(dst, 0, view);
    expect(new Float32Array(dst.arrayBuffer)[0]).toBe(1000);
    expect(Buffer.compare(new Uint8Array(dst.arrayBuffer), view)).toBe(0);
    dst.free();
  });

  it("says when every piece is queued: after the last is handed over, before the last lands", async () => {
    const n = 3 * 1024 * 1024;
    const dst = hostMemory(n);
    const events: string[] = [];
    await copyIntoPinned(dst, 0, new Uint8Array(n), {
      chunkBytes: 256 << 10,
      queueGroup: 4,
      onChunk: () => events.push("landed"),
      onQueued: () => events.push("queued"),
    });
    expect(events.filter((e) => e === "queued")).toHaveLength(1);
    expect(events.filter((e) => e === "landed")).toHaveLength(12);
    // queued once the third group of 4 went out: at most the first two groups can have landed by then
    expect(events.indexOf("queued")).toBeLessThanOrEqual(8);
    // a copy on the JS thread says it once it is done
    const small: string[] = [];
    await copyIntoPinned(dst, 0, new Uint8Array(1000), {
      onChunk: () => small.push("landed"),
      onQueued: () => small.push("queued"),
    });
    expect(small.at(-1)).toBe("queued");
    dst.free();
  });

  it("a throwing onQueued fails the copy only after every piece has landed", async () => {
    const n = 4 * 1024 * 1024;
    const dst = hostMemory(n);
    let landed = 0;
    const copy = copyIntoPinned(dst, 0, new Uint8Array(n), {
      chunkBytes: 256 << 10,
      onChunk: () => landed++,
      onQueued: () => {
        throw new Error("callback failed");
      },
    });
    await expect(copy).rejects.toThrow("callback failed");
    expect(landed).toBe(16);
    dst.free();
  });

  it("gives every copy thread the same number of pieces of at most 2 MiB", () => {
    const MiB = 1 << 20;
    for (const [bytes, threads] of [
      [77 * MiB, 16],
      [19.3 * MiB, 16],
      [9.6 * MiB, 16],
      [77 * MiB, 8],
      [1.5 * MiB, 16],
    ]) {
      const chunk = workerChunkBytes(Math.round(bytes), threads);
      const pieces = Math.ceil(Math.round(bytes) / chunk);
      expect(chunk).toBeLessThanOrEqual(2 * MiB);
      expect(chunk % 4096).toBe(0);
      // no round leaves more than one thread short (rounding to 4 KiB can cost the last piece a little)
      if (chunk > 128 << 10) expect(threads - (pieces % threads || threads)).toBeLessThanOrEqual(1);
    }
    expect(workerChunkBytes(19.3 * MiB, 16)).toBeLessThan(2 * MiB);
  });

  it("refuses a copy that does not fit, or into freed memory, before any native call", async () => {
    const dst = hostMemory(1024);
    await expect(copyIntoPinned(dst, 1000, new Uint8Array(100))).rejects.toThrow(/do not fit/);
    dst.free();
    await expect(copyIntoPinned(dst, 0, new Uint8Array(10))).rejects.toThrow(/freed/);
  });
});
