/**
 * serve's request slots and gathered batches (src/serve/device-gather.ts) against a stand-in module: slot size and
 * count from the model's inputs and TORCHC_SERVE_INGEST_SLOTS, registration only with a module that gathers,
 * device tensors reused only after a successful run, and freed at dispose.
 */
import { describe, expect, it } from "vitest";
import type { DeviceTensor } from "../../src/core/device-tensor.js";
import type { Tensor } from "../../src/ir/tensor.js";
import type { CompiledModule } from "../../src/runtime/compile.js";
import { deviceGather, ingestSlots } from "../../src/serve/device-gather.js";

/** A module whose "device" tensors are host arrays; `pinned` decides what counts as page-locked. */
function standIn(pinned: (v: ArrayBufferView) => boolean, gathers = true) {
  const made: { t: DeviceTensor; disposed: boolean }[] = [];
  const registered: SharedArrayBuffer[] = [];
  const module = {
    gatherable: (parts: readonly ArrayBufferView[]) => gathers && parts.every(pinned),
    registerHost(memory: SharedArrayBuffer) {
      registered.push(memory);
      return { offset: 0, bytes: memory.byteLength, release() {} };
    },
    async gatherToDevice(
      dtype: string,
      shape: readonly number[],
      parts: readonly ArrayBufferView[],
      into?: DeviceTensor,
    ) {
      if (parts.some((p) => (p as Float32Array)[0] === -1)) throw new Error("copy failed");
      if (into) return into;
      const rec = { disposed: false, t: undefined as unknown as DeviceTensor };
      rec.t = {
        kind: "device",
        dtype,
        shape: [...shape],
        device: 0,
        owner: "torchc",
        get alive() {
          return !rec.disposed;
        },
        dispose() {
          rec.disposed = true;
        },
      } as unknown as DeviceTensor;
      made.push(rec);
      return rec.t;
    },
  };
  return { module: module as unknown as CompiledModule, made, registered };
}

const part = (v: number): Tensor => ({ dtype: "float32", shape: [1, 2], data: Float32Array.of(v, v) });
const spec = [
  { name: "x", dtype: "float16" as const, shape: [32, 3, 224, 224] },
  { name: "m", dtype: "float32" as const, shape: [32, 10] },
];

describe("ingestSlots", () => {
  it("sizes a slot for one row of every input after the JSON header, in whole pages; 32 a thread by default", () => {
    const { module, registered } = standIn(() => true);
    const s = ingestSlots(module, spec, true, {})!;
    const row = 3 * 224 * 224 * 2 + 10 * 4;
    expect(s.slotBytes % 4096).toBe(0);
    expect(s.slotBytes).toBeGreaterThanOrEqual(row + (16 << 10));
    expect(s.slotBytes).toBeLessThan(row + (16 << 10) + 4096 + 64);
    expect(s.count).toBe(32);
    s.register!(new SharedArrayBuffer(4096));
    expect(registered.length).toBe(1);
    // no batch axis: the whole input per request
    expect(ingestSlots(module, spec, false, {})!.slotBytes).toBeGreaterThanOrEqual(32 * row);
    expect(ingestSlots(module, spec, true, { TORCHC_SERVE_INGEST_SLOTS: "5" })!.count).toBe(5);
    expect(ingestSlots(module, spec, true, { TORCHC_SERVE_INGEST_SLOTS: "0" })).toBeUndefined();
    expect(ingestSlots(module, spec, true, { TORCHC_SERVE_INGEST_SLOTS: "x" })).toBeUndefined();
  });

  it("a module that cannot gather gets slots only when asked for, and never registers them", () => {
    const { module } = standIn(() => true, false);
    expect(ingestSlots(module, spec, true, {})).toBeUndefined();
    const asked = ingestSlots(module, spec, true, { TORCHC_SERVE_INGEST_SLOTS: "4" })!;
    expect(asked.count).toBe(4);
    expect(asked.register).toBeUndefined();
    const pool = { replicas: [] } as unknown as CompiledModule;
    expect(ingestSlots(pool, spec, true, {})).toBeUndefined();
    expect(deviceGather(pool, 1)).toBeUndefined();
  });
});

describe("deviceGather", () => {
  it("takes only page-locked parts, reuses a device tensor after a successful run, never after a failed one", async () => {
    const { module, made } = standIn((v) => (v as Float32Array)[0] !== 99);
    const g = deviceGather(module, 1)!;
    expect(g.gather(0, [4, 2], [part(1), part(99)])).toBeUndefined(); // merged by the batcher instead
    const a = await g.gather(0, [4, 2], [part(1)])!;
    a.release(true);
    const b = await g.gather(0, [4, 2], [part(2)])!;
    expect(b.input).toBe(a.input); // reused
    b.release(false); // a failed run: not reused, freed
    expect(made[0].disposed).toBe(true);
    const c = await g.gather(0, [4, 2], [part(3)])!;
    expect(c.input).not.toBe(a.input);
    // another shape has its own tensors
    const d = await g.gather(0, [2, 2], [part(3)])!;
    expect(d.input).not.toBe(c.input);
    // a failing copy frees the tensor it was given
    c.release(true);
    await expect(g.gather(0, [4, 2], [part(-1)])!).rejects.toThrow("copy failed");
    expect(made[1].disposed).toBe(true);
    d.release(true);
    g.dispose();
    expect(made.every((m) => m.disposed)).toBe(true);
    // released after dispose: freed, not kept
    const e = await g.gather(0, [4, 2], [part(4)])!;
    e.release(true);
    expect(made.every((m) => m.disposed)).toBe(true);
  });
});
