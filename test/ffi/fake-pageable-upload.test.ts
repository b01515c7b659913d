/**
 * Host → device copies straight from pageable memory (uploadPageableAsync, device/memory.ts), through koffi against
 * the fake libcuda (test/ffi/fakes): offsets, views and refusals. The run path that uses it for small inputs
 * (TORCHC_PAGEABLE_DMA_MAX_BYTES, execution-context.ts) is not covered here; bench e2e runs it on the GPU.
 * Skipped when no C compiler is available.
 */
import { expect, it } from "vitest";
import {
  CudaContext,
  DeviceBuffer,
  download,
  Stream,
  uploadPageableAsync,
} from "../../src/backends/cuda/device/index.js";
import { useFakeLibraries } from "./fakes/build.js";

const { suite } = useFakeLibraries();

suite("pageable host → device copies (fake libcuda)", () => {
  it("copies a typed array's bytes at an offset and refuses what does not fit before calling the driver", () => {
    CudaContext.get(0);
    const stream = Stream.create();
    const dev = DeviceBuffer.alloc(64);
    const src = new Float32Array([1.5, -2, 3.25, 4]);
    uploadPageableAsync(dev, new Uint8Array(src.buffer), stream, 16);
    stream.synchronize();
    expect(Array.from(download(dev, new Float32Array(4), 16))).toEqual([1.5, -2, 3.25, 4]);
    expect(() => uploadPageableAsync(dev, new Uint8Array(60), stream, 8)).toThrow(/dst/);
    expect(() => uploadPageableAsync(dev, src as unknown as Uint8Array, stream)).toThrow(/Uint8Array/);
    dev.free();
    expect(() => uploadPageableAsync(dev, new Uint8Array(4), stream)).toThrow();
  });
});
