/**
 * Device placement without a GPU: the CUDA driver replaced by a fake with two devices that records which context
 * is current at each allocation and free. Checks the rules modules on several GPUs rely on: CudaContext.get()
 * re-sets the current context when several are retained (LibTorch may have switched the thread behind its
 * cache), a DeviceTensor is allocated and freed in its own device's context whichever ran last, and an ordinal
 * the driver does not see is refused by the CUDA backend by name.
 */
import { describe, expect, it, vi } from "vitest";

const driver = vi.hoisted(() => {
  const state = {
    current: 0n,
    setCurrentCalls: 0,
    allocs: [] as { ctx: bigint; ptr: bigint }[],
    frees: [] as { ctx: bigint; ptr: bigint }[],
    next: 0x10000n,
  };
  const ok = 0;
  const fn = {
    cuInit: () => ok,
    cuDeviceGetCount: (n: number[]) => {
      n[0] = 2;
      return ok;
    },
    cuDeviceGet: (dev: number[], ordinal: number) => {
      if (ordinal >= 2) return 101; // CUDA_ERROR_INVALID_DEVICE
      dev[0] = 100 + ordinal;
      return ok;
    },
    cuDevicePrimaryCtxRetain: (ctx: (bigint | null)[], dev: number) => {
      ctx[0] = BigInt(1000 + dev);
      return ok;
    },
    cuCtxSetCurrent: (h: bigint) => {
      state.current = h;
      state.setCurrentCalls++;
      return ok;
    },
    cuDeviceGetAttribute: (v: number[]) => {
      v[0] = 9;
      return ok;
    },
    cuDeviceGetName: (buf: Uint8Array) => {
      buf.set(new TextEncoder().encode("Fake GPU\0"));
      return ok;
    },
    cuDeviceTotalMem_v2: (n: number[]) => {
      n[0] = 80 << 30;
      return ok;
    },
    cuDriverGetVersion: (n: number[]) => {
      n[0] = 13000;
      return ok;
    },
    cuMemAlloc_v2: (out: BigUint64Array) => {
      out[0] = state.next;
      state.allocs.push({ ctx: state.current, ptr: state.next });
      state.next += 0x1000n;
      return ok;
    },
    cuMemFree_v2: (ptr: bigint) => {
      state.frees.push({ ctx: state.current, ptr });
      return ok;
    },
    cuGetErrorName: () => 1,
    cuGetErrorString: () => 1,
  };
  return { state, fn };
});

vi.mock("../../src/ffi/cuda.js", async (original) => ({
  ...(await original<typeof import("../../src/ffi/cuda.js")>()),
  CUDA: { fn: driver.fn },
}));

const { CudaContext } = await import("../../src/backends/cuda/device/context.js");
const { CudaDeviceTensor } = await import("../../src/backends/cuda/device-tensor.js");
const ctxOf = (device: number) => BigInt(1000 + 100 + device);

describe("device placement rules (fake driver, two devices)", () => {
  it("with several devices retained, get() sets the context again even when its cache says it is current", () => {
    CudaContext.get(0);
    expect(driver.state.current).toBe(ctxOf(0));
    CudaContext.get(1);
    CudaContext.get(0);
    expect(driver.state.current).toBe(ctxOf(0));
    // LibTorch's device guard switches the thread to device 1's primary context behind torchc's cache.
    driver.state.current = ctxOf(1);
    const calls = driver.state.setCurrentCalls;
    CudaContext.get(0);
    expect(driver.state.setCurrentCalls).toBe(calls + 1);
    expect(driver.state.current).toBe(ctxOf(0));
  });

  it("a DeviceTensor is allocated and freed in its own device's context, whichever module ran last", () => {
    CudaContext.get(0);
    const t = CudaDeviceTensor.alloc("float32", [4, 4], 1);
    expect(driver.state.allocs.at(-1)).toEqual({ ctx: ctxOf(1), ptr: t.ptr });
    CudaContext.get(0);
    const ptr = t.ptr;
    t.dispose();
    expect(driver.state.frees.at(-1)).toEqual({ ctx: ctxOf(1), ptr });
    const u = CudaDeviceTensor.alloc("float16", [8], 0);
    expect(driver.state.allocs.at(-1)?.ctx).toBe(ctxOf(0));
    u.dispose();
  });

  it("the CUDA backend refuses a device the driver does not see, by name", async () => {
    const { createCudaBackend } = await import("../../src/backends/cuda-backend.js");
    await expect(createCudaBackend({ device: 2 })).rejects.toMatchObject({
      code: "options.device",
      message: "device 2: no such GPU (the driver sees 2: ordinals 0 to 1)",
    });
  });
});
