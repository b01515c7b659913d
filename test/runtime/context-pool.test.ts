import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { referenceBackend } from "../../src/backends/reference/index.js";
import { compareTensors } from "../../src/cli/compare.js";
import { loadModel } from "../../src/frontends/load-model.js";
import type { Graph } from "../../src/ir/graph.js";
import type { Tensor } from "../../src/ir/tensor.js";
import { compile } from "../../src/runtime/compile.js";
import { ContextPool } from "../../src/runtime/context-pool.js";
import type { ExecutionContext } from "../../src/runtime/execution.js";
import type { Backend, SegmentRunner } from "../../src/runtime/segment-runner.js";
import { readNpy } from "../../src/util/npy.js";
import { MODELS } from "../helpers.js";

const tick = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Seeded jitter (xorshift), so the interleavings are the same on every run. */
function jitter(seed: number): (n: number) => number {
  let s = seed >>> 0 || 1;
  return (n) => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) % n;
  };
}

describe("ContextPool", () => {
  it("gives each call a context of its own, never more calls than contexts, in FIFO order", async () => {
    const contexts = [
      { id: 0, inUse: 0 },
      { id: 1, inUse: 0 },
      { id: 2, inUse: 0 },
    ];
    const pool = new ContextPool(contexts);
    let running = 0;
    let peak = 0;
    const started: number[] = [];
    const results = await Promise.all(
      Array.from({ length: 64 }, (_, i) =>
        pool.use(async (c) => {
          started.push(i);
          c.inUse++;
          running++;
          peak = Math.max(peak, running);
          expect(c.inUse).toBe(1);
          await tick(i % 3);
          c.inUse--;
          running--;
          return i * 10;
        }),
      ),
    );
    expect(results).toEqual(Array.from({ length: 64 }, (_, i) => i * 10));
    expect(peak).toBe(3);
    expect(started).toEqual(Array.from({ length: 64 }, (_, i) => i));
    expect(pool.stats).toMatchObject({ contexts: 3, busy: 0, queued: 0, completed: 64 });
    expect(pool.stats.maxQueued).toBe(61);
  });

  it("returns the context when a call fails, and later calls still run", async () => {
    const pool = new ContextPool(["only"]);
    const failing = pool.use(async () => {
      await tick(1);
      throw new Error("boom");
    });
    const next = pool.use(async (c) => `${c} ok`);
    await expect(failing).rejects.toThrow("boom");
    await expect(next).resolves.toBe("only ok");
    expect(pool.stats.busy).toBe(0);
  });

  it("close() waits for running and queued calls, then refuses new ones", async () => {
    const pool = new ContextPool([1]);
    const done: number[] = [];
    const a = pool.use(async () => {
      await tick(5);
      done.push(1);
    });
    const b = pool.use(async () => {
      await tick(1);
      done.push(2);
    });
    await pool.close();
    expect(done).toEqual([1, 2]);
    await Promise.all([a, b]);
    await expect(pool.use(async () => 0)).rejects.toThrow(/disposed/);
  });

  it("refuses an empty pool", () => {
    expect(() => new ContextPool([])).toThrow(/at least one context/);
  });
});

/**
 * A backend whose contexts behave like GPU ones: a run stages its input into the context's own buffer,
 * yields (as a GPU run would while copies and kernels are in flight), then computes from the staged copy.
 * A pool that let two calls share a context would make one of them compute on the other's input.
 */
function stagingBackend(): Backend & { peakPerContext: number } {
  const state = { peakPerContext: 0 };
  const rand = jitter(7);
  const backend: Backend & { peakPerContext: number } = {
    ...referenceBackend,
    name: "fake-staging",
    get peakPerContext() {
      return state.peakPerContext;
    },
    createContext(graph: Graph, runners: readonly SegmentRunner[]): ExecutionContext {
      let staged: Float32Array | undefined;
      let active = 0;
      return {
        async run(inputs) {
          active++;
          state.peakPerContext = Math.max(state.peakPerContext, active);
          const x = inputs[0] as Tensor;
          staged = new Float32Array(x.data as Float32Array);
          await tick(rand(3));
          const values = new Map<string, Tensor>([[graph.inputs[0], { ...x, data: staged }]]);
          for (const r of runners) for (const [k, v] of await r.run(values)) values.set(k, v);
          await tick(rand(2));
          active--;
          return graph.outputs.map((n) => values.get(n)!);
        },
        memory: { activations: 100, workspaces: 10, io: 20, pinnedHost: 30 },
        dispose() {},
      };
    },
    weightBytes: () => 1000,
  };
  return backend;
}

describe("CompiledModule with execution contexts (fake backend)", () => {
  const input = readNpy(join(MODELS, "mlp.input.npy"));
  const variants = Array.from({ length: 16 }, (_, k) => ({
    ...input,
    data: (input.data as Float32Array).map((v, i) => v * (1 + 0.25 * k) + Math.sin(i + k)),
  }));

  it.each([1, 3])(
    "64 overlapping run() calls on %i context(s) each get the answer for their own input",
    async (n) => {
      const model = await loadModel(join(MODELS, "mlp.pt2"));
      const reference = await compile(model, { backend: "reference" });
      const want = await Promise.all(variants.map(async (v) => (await reference.run([v]))[0]));
      // The check is only meaningful if different inputs give clearly different outputs.
      expect(compareTensors(want[0], want[1]).relative).toBeGreaterThan(1e-2);
      const backend = stagingBackend();
      const compiled = await compile(model, { backend, contexts: n });
      const got = await Promise.all(Array.from({ length: 64 }, (_, i) => compiled.run([variants[i % 16]])));
      for (const [i, [out]] of got.entries())
        expect(compareTensors(out as Tensor, want[i % 16]).relative).toBeLessThan(1e-6);
      expect(backend.peakPerContext).toBe(1);
      expect(compiled.queue?.completed).toBe(64);
      expect(compiled.memory()).toMatchObject({
        weights: 1000,
        activations: 100 * n,
        contexts: n,
        pinnedHost: 30 * n,
      });
      await compiled.dispose();
      await expect(compiled.run([variants[0]])).rejects.toThrow(/disposed/);
    },
  );

  it("refuses a context count outside 1..64 before building anything", async () => {
    const model = await loadModel(join(MODELS, "mlp.pt2"));
    await expect(compile(model, { backend: "reference", contexts: 0 })).rejects.toThrow(/contexts must be/);
    await expect(compile(model, { backend: "reference", contexts: 1.5 })).rejects.toThrow(/contexts must be/);
  });

  it("the reference backend refuses device tensors with a clear message", async () => {
    const model = await loadModel(join(MODELS, "mlp.pt2"));
    const compiled = await compile(model, { backend: "reference" });
    const fake = {
      kind: "device",
      dtype: input.dtype,
      shape: input.shape,
      ptr: 0n,
      bytes: 0,
      device: 0,
      owner: "user",
      alive: true,
      dispose() {},
    } as const;
    await expect(compiled.run([fake])).rejects.toThrow(/host tensors only/);
    expect(() => compiled.allocateInputs()).toThrow(/no device memory/);
  });
});
