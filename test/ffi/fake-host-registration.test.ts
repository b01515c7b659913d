/**
 * Host memory page-locked in place and batches gathered from it (backends/cuda/host-registration.ts,
 * gather-rows.ts), through koffi against the fake libcuda (test/ffi/fakes): the registered range is whole pages,
 * views inside it count as pinned, a gather lays the parts back to back with zeros after, and memory outside any
 * registration is refused by name before an address reaches the driver. Skipped when no C compiler is available.
 */
import { expect, it } from "vitest";
import { cudaDeviceAllocator } from "../../src/backends/cuda/device-allocator.js";
import { pinnedSource } from "../../src/backends/cuda/device-tensor.js";
import { useFakeLibraries } from "./fakes/build.js";

const { suite } = useFakeLibraries();

suite("host memory page-locked in place (fake libcuda)", () => {
  it("registers whole pages inside a SharedArrayBuffer and gathers rows from them with zeros after", async () => {
    const mem = cudaDeviceAllocator(0, "poll");
    const sab = new SharedArrayBuffer(5 * 4096 + 100);
    const reg = mem.registerHost(sab);
    expect(reg.offset % 1).toBe(0);
    expect(reg.offset).toBeLessThan(4096);
    expect(reg.bytes % 4096).toBe(0);
    expect(reg.offset + reg.bytes).toBeLessThanOrEqual(sab.byteLength);
    expect(reg.bytes).toBeGreaterThanOrEqual(4 * 4096);

    // two "request rows" of 3 floats each, in different slots of the registered range
    const rowA = new Float32Array(sab, reg.offset + 8, 3);
    const rowB = new Float32Array(sab, reg.offset + 4096 + 16, 3);
    rowA.set([1, 2, 3]);
    rowB.set([4, 5, 6]);
    // a view made from another object over the same memory (as a worker thread's message gives) also counts
    const again = new Float32Array(sab, reg.offset + 8, 3);
    expect(pinnedSource({ dtype: "float32", shape: [1, 3], data: again })).toBeDefined();
    expect(mem.gatherable([rowA, rowB])).toBe(true);
    expect(mem.gatherable([rowA, new Float32Array(3)])).toBe(false);

    const batch = await mem.gatherToDevice("float32", [4, 3], [rowA, rowB]);
    const host = await mem.toHost(batch);
    expect(Array.from(host.data as Float32Array)).toEqual([1, 2, 3, 4, 5, 6, 0, 0, 0, 0, 0, 0]);

    // reused target: earlier rows are overwritten and the tail zeroed again
    rowA.set([7, 8, 9]);
    const reused = await mem.gatherToDevice("float32", [4, 3], [rowA], batch);
    expect(reused).toBe(batch);
    expect(Array.from((await mem.toHost(batch)).data as Float32Array)).toEqual([
      7, 8, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ]);
    batch.dispose();

    reg.release();
    reg.release(); // once
    expect(mem.gatherable([rowA])).toBe(false);
    expect(pinnedSource({ dtype: "float32", shape: [1, 3], data: rowA })).toBeUndefined();
  });

  it("refuses ordinary memory, rows larger than the batch, and a target of another type", async () => {
    const mem = cudaDeviceAllocator(0, "poll");
    await expect(mem.gatherToDevice("float32", [2, 3], [new Float32Array(3)])).rejects.toThrow(
      "part 0 of the batch is not in page-locked host memory",
    );
    const sab = new SharedArrayBuffer(3 * 4096);
    const reg = mem.registerHost(sab);
    const big = new Uint8Array(sab, reg.offset, 4096);
    await expect(mem.gatherToDevice("float32", [2, 3], [big])).rejects.toThrow("do not fit");
    const other = mem.deviceTensor("float32", [3, 3]);
    await expect(mem.gatherToDevice("float32", [2, 3], [], other)).rejects.toThrow("expected float32[2,3]");
    other.dispose();
    // the same pages twice: the driver's refusal, named
    expect(() => mem.registerHost(sab)).toThrow(/cuMemHostRegister_v2 failed/);
    reg.release();
  });

  it("refuses a buffer with no whole page", () => {
    const mem = cudaDeviceAllocator(0, "poll");
    expect(() => mem.registerHost(new SharedArrayBuffer(100))).toThrow("holds no whole page");
  });
});
