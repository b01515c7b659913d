// The pipeline on the PyTorch-made fixture models, in all three archive flavours: the lowered graph must
// reproduce PyTorch's output, use only core ops, and have the same ops whichever flavour it came from.
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadModel } from "../../src/frontends/load-model.js";
import type { Graph } from "../../src/ir/graph.js";
import { type Tensor, toFloat64Array } from "../../src/ir/tensor.js";
import { interpret } from "../../src/ops/index.js";
import { nonCoreOps } from "../../src/passes/core-ops.js";
import { defaultPipeline, type PipelineOptions, runPipeline } from "../../src/passes/pipeline.js";
import { readNpy } from "../../src/util/npy.js";
import { MODELS as MODEL_DIR } from "../helpers.js";

const MODELS = [
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

/** Flavours: torch.export's default IR (".pt2"), core ATen (".core.pt2"), TorchScript (".traced.pt"). */
type Flavour = "" | ".core" | ".traced";
const FLAVOURS: readonly Flavour[] = ["", ".core", ".traced"];

async function lowered(name: string, flavour: Flavour, options: PipelineOptions = {}) {
  const key = JSON.stringify([name, flavour, options]);
  const hit = cache.get(key);
  if (hit) return hit;
  const input = readNpy(join(MODEL_DIR, `${name}.input.npy`));
  const file = flavour === ".traced" ? `${name}.traced.pt` : `${name}${flavour}.pt2`;
  const model = await loadModel(join(MODEL_DIR, file), {
    inputTypes: [{ dtype: input.dtype, shape: input.shape }],
  });
  const result = runPipeline(model.graph, defaultPipeline(options));
  cache.set(key, result);
  return result;
}

const opCounts = (g: Graph) => [...g.nodes.map((n) => n.op)].sort().join(" ");

describe("pipeline on fixture models", () => {
  const input = (name: string) => readNpy(join(MODEL_DIR, `${name}.input.npy`));
  const output = (name: string) => readNpy(join(MODEL_DIR, `${name}.output.npy`));

  it.each(MODELS)("%s: every flavour reproduces PyTorch and ends in core ops", async (name) => {
    for (const flavour of FLAVOURS) {
      const { graph } = await lowered(name, flavour);
      const [got] = interpret(graph, [input(name)]);
      expect(maxRelativeError(got, output(name))).toBeLessThan(1e-4);
      expect([...nonCoreOps(graph).keys()]).toEqual([]);
    }
  });

  it.each(MODELS)("%s: the default IR, core ATen and TorchScript lower to the same ops", async (name) => {
    const [first, ...others] = await Promise.all(FLAVOURS.map((f) => lowered(name, f)));
    for (const other of others) expect(opCounts(other.graph)).toBe(opCounts(first.graph));
  });

  it("tiny_efficientnet: no batch norm survives, and float16 stays close", async () => {
    const { graph, trace } = await lowered("tiny_efficientnet", ".core", { enabledPrecisions: ["float16"] });
    expect(graph.nodes.some((n) => n.op.includes("batch_norm"))).toBe(false);
    expect(trace.passes.map((p) => p.pass)).toContain("assign-precision");
    const [got] = interpret(graph, [input("tiny_efficientnet")]);
    expect(got.dtype).toBe("float32");
    expect(maxRelativeError(got, output("tiny_efficientnet"))).toBeLessThan(2e-2);
  });
});
