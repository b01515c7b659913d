import { describe, expect, it } from "vitest";
import { referenceBackend } from "../../src/backends/reference/index.js";
import { loadModel } from "../../src/frontends/load-model.js";
import type { Graph } from "../../src/ir/graph.js";
import type { Tensor } from "../../src/ir/tensor.js";
import { compile } from "../../src/runtime/compile.js";
import type { DynamicModule } from "../../src/runtime/dynamic-module.js";
import type { ExecutionContext } from "../../src/runtime/execution.js";
import type { Backend, SegmentRunner } from "../../src/runtime/segment-runner.js";
import { compareTensors } from "../../src/util/compare.js";
import { dynamicArchive } from "./make-dynamic.js";
import { golden, pickRows, rowPattern } from "./rows.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The reference backend with execution contexts that take a while, count themselves, and check their size. */
function contextBackend(made: { graph: Graph; index: number }[], disposed: number[]): Backend {
  let id = 0;
  return {
    ...referenceBackend,
    name: "contexts-reference",
    createContext(graph: Graph, runners: readonly SegmentRunner[], index: number): ExecutionContext {
      made.push({ graph, index });
      const me = id++;
      return {
        async run(inputs) {
          const x = inputs[0] as Tensor;
          // a context is built for one size: the module must never hand it another
          if (x.shape[0] !== graph.values[graph.inputs[0]].shape[0]) throw new Error("wrong bucket");
          await sleep(5);
          const values = new Map<string, Tensor>([[graph.inputs[0], x]]);
          for (const r of runners) for (const [k, v] of await r.run(values)) values.set(k, v);
          return graph.outputs.map((n) => values.get(n) as Tensor);
        },
        memory: {
          activations: 1000 * graph.values[graph.inputs[0]].shape[0],
          workspaces: 0,
          io: 0,
          pinnedHost: 0,
        },
        dispose() {
          disposed.push(me);
        },
      };
    },
  };
}

describe("a batch range with execution contexts", () => {
  it("every bucket gets its own contexts; overlapping runs at mixed sizes get their own rows; freed buckets free theirs", async () => {
    const { input, output } = golden("mlp");
    const made: { graph: Graph; index: number }[] = [];
    const disposed: number[] = [];
    const m = (await compile(await loadModel(dynamicArchive({ name: "mlp", batch: 4, min: 1, max: 16 })), {
      backend: contextBackend(made, disposed),
      contexts: 2,
      inputs: [{ minShape: [1, 20], optShape: [4, 20], maxShape: [16, 20] }],
      dynamic: { maxResidentBuckets: 3 },
    })) as DynamicModule;
    try {
      expect(made.map((c) => [c.graph.values[c.graph.inputs[0]].shape[0], c.index])).toEqual([
        [4, 0],
        [4, 1],
      ]);
      const sizes = [3, 4, 7, 4, 2, 3, 7, 1];
      const outs = await Promise.all(
        sizes.map(async (n, k) => {
          const rows = rowPattern(n + k, 4).slice(k);
          const [y] = await m.run([pickRows(input, rows)]);
          return { y: y as Tensor, rows };
        }),
      );
      for (const { y, rows } of outs)
        expect(compareTensors(y, pickRows(output, rows)).relative).toBeLessThanOrEqual(1e-4);
      // buckets 1, 2, 4 (opt), 8 were needed; at most 3 stay built, each with 2 contexts
      const resident = m.buckets.filter((b) => b.resident);
      expect(resident.length).toBeLessThanOrEqual(3);
      expect(resident.map((b) => b.size)).toContain(4);
      expect(disposed.length).toBe(made.length - 2 * resident.length);
      expect(m.memory().contexts).toBe(2 * resident.length);
      expect(m.queue?.contexts).toBe(2);
    } finally {
      await m.dispose();
    }
    expect(disposed.length).toBe(made.length);
  });
});
