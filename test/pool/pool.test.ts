import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { compareTensors } from "../../src/cli/compare.js";
import { InputError, type TorchcError } from "../../src/errors.js";
import { loadModel } from "../../src/frontends/load-model.js";
import { createPool as createPoolFromIndex } from "../../src/index.js";
import type { Tensor } from "../../src/ir/tensor.js";
import { compile } from "../../src/runtime/compile.js";
import type { DeviceTensor } from "../../src/runtime/device-tensor.js";
import { buildPool, createPool } from "../../src/runtime/pool.js";
import { readNpy } from "../../src/util/npy.js";
import { MODELS } from "../helpers.js";
import { deviceLog, type FakeDevice, fakeDeviceBackend } from "./fake-device.js";

const X = readNpy(join(MODELS, "mlp.input.npy")); // [4, 20]
const Y = readNpy(join(MODELS, "mlp.output.npy")); // [4, 10], PyTorch
const model = await loadModel(join(MODELS, "mlp.pt2"));

/** Input `k` of a set of distinct inputs (X scaled), with the reference's output for it computed once. */
const scaled = (k: number): Tensor => ({
  ...X,
  data: (X.data as Float32Array).map((v) => v * (1 + 0.25 * k)),
});

/** A pool of fake-device replicas (fake-device.ts) over `devices`, `contexts` each. */
async function fakePool(devices: number[], contexts: number, how: (d: number) => FakeDevice = () => ({})) {
  const log = deviceLog();
  const pool = await buildPool(devices, (d) =>
    compile(model, { backend: fakeDeviceBackend(d, log, how(d)), contexts }),
  );
  return { pool, log };
}

/** A DeviceTensor stand-in on `device` (the fake backend never reads its pointer). */
const onDevice = (device: number): DeviceTensor => ({
  kind: "device",
  dtype: X.dtype,
  shape: X.shape,
  ptr: 0n,
  bytes: 320,
  device,
  owner: "user",
  alive: true,
  dispose() {},
});

describe("createPool on the reference backend: replicas on devices 0 and 1", () => {
  it("every call gets its own input's answer, PyTorch's, from both replicas", async () => {
    // The check can only see a mixed-up input if different inputs give different outputs.
    const ref = await compile(model);
    const want = await Promise.all([0, 1, 2, 3].map(async (k) => (await ref.run([scaled(k)]))[0]));
    expect(compareTensors(want[0], Y).relative).toBeLessThanOrEqual(1e-4);
    for (let k = 1; k < 4; k++) expect(compareTensors(want[k], want[0]).relative).toBeGreaterThan(1e-2);

    const pool = await createPoolFromIndex(model, { devices: [0, 1], backend: "reference" });
    try {
      expect(pool.devices).toEqual([0, 1]);
      const outs = await Promise.all(Array.from({ length: 16 }, (_, i) => pool.run([scaled(i % 4)])));
      for (const [i, [y]] of outs.entries())
        expect(compareTensors(y, want[i % 4]).relative, `call ${i}`).toBeLessThanOrEqual(1e-6);
      const load = pool.load();
      expect(load.map((l) => l.device)).toEqual([0, 1]);
      expect(load[0].completed + load[1].completed).toBe(16);
      for (const l of load) expect(l.completed, `device ${l.device} ran calls`).toBeGreaterThan(0);
      // Inputs by name come back by name, as from a module.
      const named = await pool.run({ x: X });
      expect(compareTensors(named.softmax as Tensor, Y).relative).toBeLessThanOrEqual(1e-4);
      expect(pool.memory().devices.map((d) => d.device)).toEqual([0, 1]);
    } finally {
      await pool.dispose();
    }
    await expect(pool.run([X])).rejects.toThrow(/disposed/);
  });

  it("checks devices and the compile options once, before building anything", async () => {
    const bad = async (options: unknown) =>
      createPool(model, options as never).then(
        () => "built",
        (e: TorchcError) => e.code,
      );
    expect(await bad({ devices: [] })).toBe("options.devices");
    expect(await bad({ backend: "reference" })).toBe("options.devices");
    expect(await bad({ devices: [0, 0] })).toBe("options.devices");
    expect(await bad({ devices: [0, -1] })).toBe("options.devices");
    expect(await bad({ devices: [0, 1.5] })).toBe("options.devices");
    expect(await bad({ devices: [0, 1], device: 1 })).toBe("options.devices");
    expect(await bad({ devices: [0, 1], contxts: 2 })).toBe("options.unknown");
    await expect(createPool(model, { devices: [0, 0] })).rejects.toThrow(/use contexts/);
  });
});

describe("the pool's scheduling over fake devices (execution contexts, delays, failures)", () => {
  it("fills both devices up to their contexts, never more, and reports per-device load and memory", async () => {
    const { pool, log } = await fakePool([0, 1], 2, () => ({ delayMs: 15 }));
    try {
      expect(pool.queue.contexts).toBe(4);
      const outs = await Promise.all(Array.from({ length: 12 }, (_, i) => pool.run([scaled(i % 4)])));
      expect(outs).toHaveLength(12);
      expect(log.peak.get(0)).toBe(2);
      expect(log.peak.get(1)).toBe(2);
      // The first four calls spread over the devices before any doubles up.
      expect(log.runs.slice(0, 4).sort()).toEqual([0, 0, 1, 1]);
      expect(log.runs.slice(0, 2)).toEqual([0, 1]);
      expect(pool.queue).toMatchObject({ contexts: 4, busy: 0, queued: 0, completed: 12, maxQueued: 8 });
      const mem = pool.memory();
      expect(mem.devices.map((d) => [d.device, d.memory.activations])).toEqual([
        [0, 2000],
        [1, 4000],
      ]);
      expect(mem.deviceTotal).toBe(6000);
    } finally {
      await pool.dispose();
    }
    expect(log.disposed.sort()).toEqual([0, 1]);
  });

  it("a slow device does not hold up calls the other can take", async () => {
    const { pool, log } = await fakePool([0, 1], 1, (d) => ({ delayMs: d === 0 ? 400 : 5 }));
    try {
      await Promise.all(Array.from({ length: 8 }, () => pool.run([X])));
      // Device 0 took the first call and was busy for the rest of the time; device 1 ran the other seven.
      expect(log.runs.filter((d) => d === 0)).toHaveLength(1);
      expect(log.runs.filter((d) => d === 1)).toHaveLength(7);
    } finally {
      await pool.dispose();
    }
  });

  it("device tensors go to the replica on their device, even when another is idle", async () => {
    const { pool, log } = await fakePool([0, 1], 1);
    try {
      await pool.run([onDevice(1)]);
      await pool.run([X], { outputs: [onDevice(1)] });
      expect(log.runs).toEqual([1, 1]);
      await expect(pool.run([onDevice(5)])).rejects.toThrow(/on device 5; the pool's devices are 0, 1/);
      await expect(pool.run([X], { outputs: [onDevice(0), onDevice(1)] })).rejects.toBeInstanceOf(InputError);
    } finally {
      await pool.dispose();
    }
  });

  it("a failing run names its device and fails alone; input errors are not blamed on a device", async () => {
    const { pool } = await fakePool([0, 1], 1, (d) => ({ failRun: d === 1 }));
    try {
      const [a, b] = await Promise.allSettled([pool.run([X]), pool.run([X])]);
      expect(a.status).toBe("fulfilled");
      expect(b.status).toBe("rejected");
      expect(((b as PromiseRejectedResult).reason as Error).message).toBe("device 1: injected failure");
      expect(pool.load()[1]).toMatchObject({ device: 1, failed: 1, busy: 0 });
      // The failure gave its slot back and the pool goes on.
      expect((await pool.run([X]))[0].shape).toEqual([4, 10]);
      const wrong: Tensor = { dtype: "float32", shape: [4, 3], data: new Float32Array(12) };
      const e = await pool.run([wrong]).catch((x: Error) => x);
      expect(e).toBeInstanceOf(InputError);
      expect((e as Error).message).not.toMatch(/^device/);
    } finally {
      await pool.dispose();
    }
  });

  it("a replica that fails to build names its device, and the built ones are disposed", async () => {
    const log = deviceLog();
    const built = buildPool([0, 1, 2], (d) =>
      compile(model, { backend: fakeDeviceBackend(d, log, { failBuild: d === 1 }), contexts: 1 }),
    );
    await expect(built).rejects.toThrow(/^device 1: out of memory while building/);
    expect(log.disposed.sort()).toEqual([0, 2]);
  });
});
