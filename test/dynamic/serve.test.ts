import { afterEach, describe, expect, it } from "vitest";
import { loadModel } from "../../src/frontends/load-model.js";
import type { Tensor } from "../../src/ir/tensor.js";
import { compile } from "../../src/runtime/compile.js";
import type { DynamicModule } from "../../src/runtime/dynamic-module.js";
import { InferenceClient } from "../../src/serve/client.js";
import { type Server, serve } from "../../src/serve/server.js";
import { compareTensors } from "../../src/util/compare.js";
import { dynamicArchive } from "./make-dynamic.js";
import { golden, pickRows } from "./rows.js";

let server: Server | undefined;
afterEach(async () => {
  await server?.drain();
  server = undefined;
});

describe("torchc serve with a batch range", () => {
  it("merges requests into batches of their bucket's size (no padding to a fixed batch), each gets its rows", async () => {
    const { input, output } = golden("mlp");
    const compiled = (await compile(
      await loadModel(dynamicArchive({ name: "mlp", batch: 4, min: 1, max: 16 })),
      {
        inputs: [{ minShape: [1, 20], optShape: [4, 20], maxShape: [12, 20] }],
      },
    )) as DynamicModule;
    const seen: number[] = [];
    const run = compiled.run.bind(compiled);
    (compiled as { run: unknown }).run = (x: Tensor[]) => {
      seen.push(x[0].shape[0]);
      return run(x);
    };
    server = await serve(compiled, { port: 0, log: false, maxQueueDelayUs: 100_000 });
    const client = new InferenceClient(server.url, "model");
    const meta = (await client.metadata()) as { inputs: { shape: number[] }[] };
    expect(meta.inputs[0].shape).toEqual([-1, 20]);
    const requests = [[0], [3, 1], [2], [1, 0, 3]];
    const outs = await Promise.all(requests.map((rows) => client.infer({ x: pickRows(input, rows) })));
    for (const [k, o] of outs.entries()) {
      const y = Object.values(o)[0] as Tensor;
      expect(compareTensors(y, pickRows(output, requests[k])).relative).toBeLessThanOrEqual(1e-4);
    }
    // 7 rows arrive within the delay window: one run, written straight at its bucket's 8 rows (the batcher pads
    // with a zero row, so the module pads nothing again), not at the opt or max size
    expect(compiled.range.buckets).toContain(8);
    expect(seen).toEqual([8]);
    // a request larger than the opt size and up to max is accepted
    const big = Array.from({ length: 12 }, (_, i) => i % 4);
    const y = Object.values(await client.infer({ x: pickRows(input, big) }))[0] as Tensor;
    expect(compareTensors(y, pickRows(output, big)).relative).toBeLessThanOrEqual(1e-4);
  });
});
