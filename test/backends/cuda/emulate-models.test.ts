// The PyTorch-made fixture models through the whole CPU side of the CUDA path: load, lower, convert the
// graph into one network, plan it as the CUDA engine and run the plan's generated kernels on the CPU
// (emulate.ts), in fp32 and fp16, against PyTorch's stored output for that input.
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { convertGraph } from "../../../src/converters/index.js";
import { loadModel } from "../../../src/frontends/load-model.js";
import { type Tensor, toFloat64Array } from "../../../src/ir/tensor.js";
import { defaultPipeline, runPipeline } from "../../../src/passes/pipeline.js";
import { readNpy } from "../../../src/util/npy.js";
import { MODELS } from "../../helpers.js";
import { emulateEngine, hasGxx } from "./emulate.js";

function relL2(got: Tensor, want: Tensor): number {
  const g = toFloat64Array(got);
  const w = toFloat64Array(want);
  let num = 0;
  let den = 0;
  for (let i = 0; i < w.length; i++) {
    num += (g[i] - w[i]) ** 2;
    den += w[i] ** 2;
  }
  return Math.sqrt(num / Math.max(den, 1e-30));
}

const NAMES = ["tiny_resnet", "tiny_efficientnet", "tiny_mobilenetv3", "conv_zoo", "mlp", "tiny_vit"];

describe.skipIf(!hasGxx())("fixture models on the emulated CUDA engine vs PyTorch", () => {
  for (const name of NAMES) {
    for (const precision of ["fp32", "fp16"] as const) {
      it(`${name} ${precision}`, async () => {
        const model = await loadModel(join(MODELS, `${name}.pt2`));
        const graph = runPipeline(model.graph, defaultPipeline()).graph;
        const input = readNpy(join(MODELS, `${name}.input.npy`));
        const want = readNpy(join(MODELS, `${name}.output.npy`));
        const net = convertGraph(graph);
        const { outputs } = emulateEngine(net, { [graph.inputs[0]]: input }, { precision });
        const err = relL2(outputs[0], want);
        expect(err, `${name} ${precision}: relative L2 error ${err}`).toBeLessThan(
          precision === "fp32" ? 1e-4 : 1e-2,
        );
      }, 120_000);
    }
  }
});
