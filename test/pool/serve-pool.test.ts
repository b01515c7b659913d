import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { parseDevices } from "../../src/cli/commands/serve.js";
import { compareTensors } from "../../src/cli/compare.js";
import { loadModel } from "../../src/frontends/load-model.js";
import { compile } from "../../src/runtime/compile.js";
import { buildPool } from "../../src/runtime/pool.js";
import { InferenceClient } from "../../src/serve/client.js";
import { type Server, serve } from "../../src/serve/server.js";
import { MODELS } from "../helpers.js";
import { row, servedUrl, spawnServe, X, Y } from "../serve/support.js";
import { deviceLog, fakeDeviceBackend } from "./fake-device.js";

let server: Server | undefined;
afterEach(async () => {
  await server?.drain();
  server = undefined;
});

/** `name{model="model",device="d"} value` lines of one metric, by device. */
function byDevice(text: string, metric: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of text.matchAll(new RegExp(`^${metric}\\{([^}]*)\\} (\\S+)$`, "gm"))) {
    const device = /device="(\d+)"/.exec(m[1])?.[1];
    if (device !== undefined) out[device] = Number(m[2]);
  }
  return out;
}

describe("torchc serve over a pool of replicas (fake devices 0 and 1, 2 instances each)", () => {
  it("answers every request with its own row, and reports devices in metadata and per-device /metrics", async () => {
    for (let k = 1; k < 4; k++) expect(compareTensors(row(Y, k), row(Y, 0)).relative).toBeGreaterThan(1e-2);
    const log = deviceLog();
    const model = await loadModel(join(MODELS, "mlp.pt2"));
    const pool = await buildPool([0, 1], (d) =>
      compile(model, { backend: fakeDeviceBackend(d, log, { delayMs: 100 }), contexts: 2 }),
    );
    // No merging (max batch 1): every request is a run of its own, so the runs spread over the devices.
    server = await serve(pool, { port: 0, log: false, maxBatch: 1 });
    expect(server.batcher).toBeDefined();
    const c = new InferenceClient(server.url, "model");
    expect(await c.metadata()).toMatchObject({
      devices: [
        { device: 0, instances: 2 },
        { device: 1, instances: 2 },
      ],
    });
    const outs = await Promise.all(Array.from({ length: 16 }, (_, k) => c.infer({ x: row(X, k % 4) })));
    for (const [k, o] of outs.entries())
      expect(compareTensors(o.softmax, row(Y, k % 4)).relative, `request ${k}`).toBeLessThanOrEqual(1e-4);
    // Four runs in flight at once (2 devices × 2 instances), each device up to its two.
    expect(log.peak.get(0)).toBe(2);
    expect(log.peak.get(1)).toBe(2);
    const text = await (await fetch(new URL("/metrics", server.url))).text();
    const runs = byDevice(text, "torchc_device_runs_total");
    expect(runs[0] + runs[1]).toBe(16);
    expect(runs[0]).toBe(log.runs.filter((d) => d === 0).length);
    expect(runs[1]).toBe(log.runs.filter((d) => d === 1).length);
    expect(byDevice(text, "torchc_device_instances")).toEqual({ 0: 2, 1: 2 });
    expect(byDevice(text, "torchc_device_busy")).toEqual({ 0: 0, 1: 0 });
    expect(Object.keys(byDevice(text, "torchc_device_memory_bytes"))).toEqual(["0", "1"]);
    // A second scrape adds only what ran since (the run counters are counters).
    await c.infer({ x: row(X, 0) });
    const again = byDevice(
      await (await fetch(new URL("/metrics", server.url))).text(),
      "torchc_device_runs_total",
    );
    expect(again[0] + again[1]).toBe(17);
  });
});

describe("torchc serve --device", () => {
  it("parses one ordinal or a list, and refuses anything else by the flag's name", () => {
    expect(parseDevices(undefined)).toBeUndefined();
    expect(parseDevices("1")).toEqual([1]);
    expect(parseDevices("0,1")).toEqual([0, 1]);
    expect(parseDevices(" 0, 3 ")).toEqual([0, 3]);
    for (const bad of ["", "0,", "a", "0,-1", "1.5", "0;1"])
      expect(() => parseDevices(bad), bad).toThrow(/--device .*: expected a device ordinal/);
  });

  it("serves from the CLI with --device 0,1 --instances 2 (reference backend): replicas on both, per-device metrics", async () => {
    const child = spawnServe(join(MODELS, "mlp.pt2"), [
      "--device",
      "0,1",
      "--instances",
      "2",
      "--grpc-port",
      "off",
      "--max-batch",
      "1",
    ]);
    try {
      const { url, stderr } = await servedUrl(child);
      expect(stderr()).toMatch(/devices 0, 1;/);
      const c = new InferenceClient(url, "model");
      const outs = await Promise.all(Array.from({ length: 8 }, (_, k) => c.infer({ x: row(X, k % 4) })));
      for (const [k, o] of outs.entries())
        expect(compareTensors(o.softmax, row(Y, k % 4)).relative).toBeLessThanOrEqual(1e-4);
      const text = await (await fetch(new URL("/metrics", url))).text();
      const runs = byDevice(text, "torchc_device_runs_total");
      expect(runs[0] + runs[1]).toBe(8);
      // The reference backend has no execution contexts: a replica there takes one run at once.
      expect(byDevice(text, "torchc_device_instances")).toEqual({ 0: 1, 1: 1 });
      const exited = new Promise<number | null>((r) => child.on("exit", r));
      child.kill("SIGTERM");
      expect(await exited).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
    }
  }, 30_000);
});
