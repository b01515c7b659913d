import { describe, expect, it } from "vitest";
import { referenceBackend } from "../../src/backends/reference/index.js";
import { loadModel } from "../../src/frontends/load-model.js";
import type { Graph } from "../../src/ir/graph.js";
import type { Tensor } from "../../src/ir/tensor.js";
import { compile } from "../../src/runtime/compile.js";
import type { DynamicModule } from "../../src/runtime/dynamic-module.js";
import {
  joinPieces,
  pipelineAxesRefusal,
  pipelineContexts,
  pipelinePieces,
  pipelineRunRefusal,
  rowView,
  runPieces,
} from "../../src/runtime/dynamic-pipeline.js";
import type { ExecutionContext, RunOptions } from "../../src/runtime/execution.js";
import type { Backend, SegmentRunner } from "../../src/runtime/segment-runner.js";
import { compareTensors } from "../../src/util/compare.js";
import { dynamicArchive } from "./make-dynamic.js";
import { golden, pickRows, rowPattern } from "./rows.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const f32 = (shape: number[], values: number[]): Tensor => ({
  dtype: "float32",
  shape,
  data: Float32Array.from(values),
});

describe("pipelined host batches: the pieces", () => {
  it("cuts a batch into pieces of `rows`, the remainder last", () => {
    expect(pipelinePieces(10, 4)).toEqual([
      { start: 0, rows: 4 },
      { start: 4, rows: 4 },
      { start: 8, rows: 2 },
    ]);
    expect(pipelinePieces(8, 4).map((p) => p.rows)).toEqual([4, 4]);
  });

  it("a piece's input is a view of the caller's rows, not a copy", () => {
    const t = f32([3, 2], [0, 1, 2, 3, 4, 5]);
    const v = rowView(t, 1, 2);
    expect(v.shape).toEqual([2, 2]);
    expect([...v.data]).toEqual([2, 3, 4, 5]);
    expect(v.data.buffer).toBe(t.data.buffer);
  });

  it("joins pieces' outputs in batch order, with a batch coefficient, and keeps batch-free outputs once", () => {
    const pieces = pipelinePieces(3, 2);
    // output 0: 2 entries per row along axis 0 (coeff 2) × 1; output 1: no batch axis
    const parts = [
      [f32([4, 1], [0, 1, 2, 3]), f32([2], [9, 9])],
      [f32([2, 1], [4, 5]), f32([2], [7, 7])],
    ];
    const [a, b] = joinPieces(pieces, parts, [{ axis: 0, coeff: 2 }, undefined], 3);
    expect(a.shape).toEqual([6, 1]);
    expect([...a.data]).toEqual([0, 1, 2, 3, 4, 5]);
    expect([...b.data]).toEqual([9, 9]);
  });

  it("refuses device I/O and a batch that is not the leading axis", () => {
    const x = f32([2, 2], [0, 0, 0, 0]);
    expect(pipelineRunRefusal([x], {})).toBeUndefined();
    expect(pipelineRunRefusal([x], { outputs: "device" })).toMatch(/host/);
    expect(pipelineAxesRefusal([0], [{ axis: 0, coeff: 1 }])).toBeUndefined();
    expect(pipelineAxesRefusal([1], [undefined])).toMatch(/first axis of every input/);
    expect(pipelineAxesRefusal([0], [{ axis: 1, coeff: 1 }])).toMatch(/first axis of every output/);
  });

  it("starts piece k+1 once piece k's copies are queued, not before, and overlaps the rest", async () => {
    const log: string[] = [];
    let running = 0;
    let most = 0;
    await runPieces(pipelinePieces(12, 4), async (p, _index, inputsQueued) => {
      log.push(`start ${p.start}`);
      running++;
      most = Math.max(most, running);
      await sleep(5);
      log.push(`queued ${p.start}`);
      inputsQueued();
      await sleep(15);
      running--;
      return [];
    });
    expect(log.slice(0, 3)).toEqual(["start 0", "queued 0", "start 4"]);
    expect(log.indexOf("start 8")).toBeGreaterThan(log.indexOf("queued 4"));
    expect(most).toBeGreaterThanOrEqual(2);
  });

  it("a failing piece fails the run only after every started piece has settled; later ones don't start", async () => {
    let started = 0;
    let settled = 0;
    const run = runPieces(pipelinePieces(16, 4), async (p, _index, inputsQueued) => {
      started++;
      inputsQueued();
      if (p.start === 0) {
        await sleep(5);
        throw new Error("piece 0 failed");
      }
      await sleep(10);
      settled++;
      return [];
    });
    await expect(run).rejects.toThrow("piece 0 failed");
    // pieces 1–3 started while piece 0 ran (each at its predecessor's copies); all finished before the rejection
    expect(started).toBe(4);
    expect(settled).toBe(3);
    let later = 0;
    const slow = runPieces(pipelinePieces(12, 4), async (p) => {
      if (p.start === 0) throw new Error("piece 0 failed");
      later++;
      return [];
    });
    await expect(slow).rejects.toThrow("piece 0 failed");
    // the gate opened only when piece 0 settled (it never reported its copies): nothing else started
    expect(later).toBe(0);
  });
});

/** The reference backend with contexts that report their "inputs" phase, count overlap and check their size. */
function pipelineBackend(seen: { sizes: number[]; most: number; contexts: Map<number, number> }): Backend {
  let running = 0;
  return {
    ...referenceBackend,
    name: "pipeline-reference",
    createContext(graph: Graph, runners: readonly SegmentRunner[]): ExecutionContext {
      const size = graph.values[graph.inputs[0]].shape[0];
      seen.contexts.set(size, (seen.contexts.get(size) ?? 0) + 1);
      return {
        async run(inputs, opts: RunOptions = {}) {
          const x = inputs[0] as Tensor;
          if (x.shape[0] !== size) throw new Error("wrong bucket");
          seen.sizes.push(size);
          running++;
          seen.most = Math.max(seen.most, running);
          await sleep(2);
          opts.onPhase?.("copying", performance.now());
          await sleep(2);
          opts.onPhase?.("inputs", performance.now());
          await sleep(10);
          const values = new Map<string, Tensor>([[graph.inputs[0], x]]);
          for (const r of runners) for (const [k, v] of await r.run(values)) values.set(k, v);
          running--;
          return graph.outputs.map((n) => values.get(n) as Tensor);
        },
        memory: { activations: 0, workspaces: 0, io: 0, pinnedHost: 0 },
        dispose() {},
      };
    },
  };
}

describe("pipelined host batches in a module with a batch range", () => {
  const archive = () => dynamicArchive({ name: "mlp", batch: 4, min: 1, max: 16 });
  const spec = [{ minShape: [1, 20], optShape: [4, 20], maxShape: [16, 20] }];

  it("runs a batch of 11 as 4 + 4 + 3 rows, the pieces overlapping, each row PyTorch's", async () => {
    const { input, output } = golden("mlp");
    const seen = { sizes: [] as number[], most: 0, contexts: new Map<number, number>() };
    const m = (await compile(await loadModel(archive()), {
      backend: pipelineBackend(seen),
      inputs: spec,
      dynamic: { pipelineRows: 4 },
    })) as DynamicModule;
    try {
      // the pipeline's bucket (here also the opt one) gets a context per piece of the largest batch (16 / 4)
      // though `contexts` was not set
      expect(seen.contexts.get(4)).toBe(4);
      expect(m.report.text).toMatch(/pipelined pieces of 4/);
      const rows = rowPattern(11, 4);
      const [y] = (await m.run([pickRows(input, rows)])) as Tensor[];
      expect(y.shape[0]).toBe(11);
      expect(compareTensors(y, pickRows(output, rows)).relative).toBeLessThanOrEqual(1e-4);
      // 4 + 4 in the pipeline's bucket, the remainder 3 in the bucket of 4 (padded): three runs of 4 rows
      expect(seen.sizes).toEqual([4, 4, 4]);
      // each piece started at its predecessor's "copying" phase: all three in flight at once
      expect(seen.most).toBe(3);
      // a batch within the piece size runs whole
      seen.sizes.length = 0;
      await m.run([pickRows(input, [0, 1, 2])]);
      expect(seen.sizes).toEqual([4]);
    } finally {
      await m.dispose();
    }
  });

  it("on the reference backend (no contexts) the pieces run one after another and give the same rows", async () => {
    const { input, output } = golden("mlp");
    const m = await compile(await loadModel(archive()), {
      backend: referenceBackend,
      inputs: spec,
      dynamic: { pipelineRows: 2, buckets: [2, 16] },
    });
    try {
      const rows = rowPattern(9, 4);
      const [y] = (await m.run([pickRows(input, rows)])) as Tensor[];
      expect(compareTensors(y, pickRows(output, rows)).relative).toBeLessThanOrEqual(1e-4);
    } finally {
      await m.dispose();
    }
  });

  it("gives the pipeline's bucket a context per piece of the largest batch, 2 to 4, or what the module asked", () => {
    expect(pipelineContexts(undefined, 32, 128)).toBe(4);
    expect(pipelineContexts(undefined, 64, 128)).toBe(2);
    expect(pipelineContexts(undefined, 100, 128)).toBe(2);
    expect(pipelineContexts(undefined, 8, 128)).toBe(4);
    expect(pipelineContexts(6, 32, 128)).toBe(6);
  });

  it("keeps the pipeline's bucket built under a tight cache, and says why a pipelined size can't be benchmarked", async () => {
    const { input } = golden("mlp");
    const m = (await compile(await loadModel(archive()), {
      backend: referenceBackend,
      inputs: spec,
      dynamic: { pipelineRows: 2, maxResidentBuckets: 1 },
    })) as DynamicModule;
    try {
      for (const n of [5, 7, 5]) await m.run([pickRows(input, rowPattern(n, 4))]);
      expect(m.buckets.find((b) => b.size === 2)).toMatchObject({ resident: true, builds: 1 });
      expect(() => m.benchmark([pickRows(input, rowPattern(7, 4))])).toThrow(/pipelined pieces of 2/);
    } finally {
      await m.dispose();
    }
  });

  it("refuses a piece size outside the range, or not an integer", async () => {
    const model = await loadModel(archive());
    for (const [rows, message] of [
      [16, /within 1–15/],
      [0, /integer of 1 or more|within/],
      [2.5, /integer of 1 or more/],
    ] as const)
      await expect(
        compile(model, { backend: referenceBackend, inputs: spec, dynamic: { pipelineRows: rows } }),
      ).rejects.toThrow(message);
  });
});
