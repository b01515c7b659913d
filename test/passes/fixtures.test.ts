// The pipeline on the PyTorch-made fixture models, in both torch.export flavours: the lowered graph must
// reproduce PyTorch's output, use only core ops, and (for the conv nets) be the same graph either way.
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadModel } from "../../src/frontends/load-model.js";
import type { Graph } from "../../src/ir/graph.js";
import { type Tensor, toFloat64Array } from "../../src/ir/tensor.js";
import { interpret } from "../../src/ops/index.js";
import { nonCoreOps } from "../../src/passes/core-ops.js";
import { defaultPipeline, type PipelineOptions, runPipeline } from "../../src/passes/pipeline.js";
import { readNpy } from "../../src/util/npy.js";
import { MODELS } from "../helpers.js";

const MODELS_WITH_BOTH_FLAVOURS = [
  "tiny_efficientnet",
  "tiny_mobilenetv3",
  "tiny_resnet",
  "conv_zoo",
  "mlp",
  "tiny_vit",
  "tiny_text_encoder",
];

function maxRelativeError(got: Tensor, want: Tensor): number {
  const [a, b] = [toFloat64Array(got), toFloat64Array(want)];
  const scale = Math.max(1e-6, ...Array.from(b, Math.abs));
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]) / scale);
  return worst;
}

const cache = new Map<string, ReturnType<typeof runPipeline>>();

async function lowered(name: string, flavour: "" | ".core", options: PipelineOptions = {}) {
  const key = JSON.stringify([name, flavour, options]);
  const hit = cache.get(key);
  if (hit) return hit;
  const model = await loadModel(join(MODELS, `${name}${flavour}.pt2`));
  const result = runPipeline(model.graph, defaultPipeline(options));
  cache.set(key, result);
  return result;
}

const opCounts = (g: Graph) => [...g.nodes.map((n) => n.op)].sort().join(" ");

describe("pipeline on fixture models", () => {
  const input = (name: string) => readNpy(join(MODELS, `${name}.input.npy`));
  const output = (name: string) => readNpy(join(MODELS, `${name}.output.npy`));

  it.each(MODELS_WITH_BOTH_FLAVOURS)(
    "%s: both flavours reproduce PyTorch and end in core ops",
    async (name) => {
      for (const flavour of ["", ".core"] as const) {
        const { graph } = await lowered(name, flavour);
        const [got] = interpret(graph, [input(name)]);
        expect(maxRelativeError(got, output(name))).toBeLessThan(1e-4);
        expect([...nonCoreOps(graph).keys()]).toEqual([]);
      }
    },
  );

  it.each(MODELS_WITH_BOTH_FLAVOURS)(
    "%s: the default IR and core ATen lower to the same ops",
    async (name) => {
      const [a, b] = await Promise.all([lowered(name, ""), lowered(name, ".core")]);
      expect(opCounts(b.graph)).toBe(opCounts(a.graph));
    },
  );

  it("tiny_efficientnet: no batch norm survives, and float16 stays close", async () => {
    const { graph, trace } = await lowered("tiny_efficientnet", ".core", { enabledPrecisions: ["float16"] });
    expect(graph.nodes.some((n) => n.op.includes("batch_norm"))).toBe(false);
    expect(trace.passes.map((p) => p.pass)).toContain("assign-precision");
    const [got] = interpret(graph, [input("tiny_efficientnet")]);
    expect(got.dtype).toBe("float32");
    expect(maxRelativeError(got, output("tiny_efficientnet"))).toBeLessThan(2e-2);
  });
});
