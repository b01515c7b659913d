// The emulated CUDA engine in fp16 (half storage, channels-last around convolutions, 8-lane vector kernels),
// against the layer reference in fp32: relative L2 error within fp16's reach.
import { describe, expect, it } from "vitest";
import { familyCases } from "../../../src/backends/cuda/testing/families.js";
import { randomTensor, rng } from "../../../src/backends/cuda/testing/nets.js";
import { convertGraph } from "../../../src/converters/index.js";
import { isFloating } from "../../../src/ir/dtype.js";
import { type Tensor, toFloat64Array } from "../../../src/ir/tensor.js";
import { runNetworkReference } from "../../../src/network/reference/index.js";
import { defaultPipeline, runPipeline } from "../../../src/passes/pipeline.js";
import { inputsFor } from "../../passes/graphs.js";
import { emulateEngine, hasGxx } from "./emulate.js";
import { patchMergingGraph, stemAndHeadGraph, swinBlockGraph } from "./swin-graphs.js";

function relL2(got: Tensor, want: Tensor): number {
  const g = toFloat64Array(got);
  const w = toFloat64Array(want);
  let num = 0;
  let den = 0;
  for (let i = 0; i < w.length; i++) {
    num += (g[i] - w[i]) ** 2;
    den += w[i] ** 2;
  }
  return den === 0 ? Math.sqrt(num) : Math.sqrt(num / den);
}

describe.skipIf(!hasGxx())("CUDA engine emulated in fp16", () => {
  for (const c of familyCases()) {
    if (!c.precisions.includes("fp16")) continue;
    it(`${c.name}`, () => {
      const r = rng(5);
      const inputs = Object.fromEntries(
        c.net.inputs.map((n) => [n, randomTensor(r, c.net.tensors[n].dtype, c.net.tensors[n].shape)]),
      );
      const want = runNetworkReference(c.net, inputs);
      const { outputs } = emulateEngine(c.net, inputs, { precision: "fp16" });
      outputs.forEach((o, i) => {
        if (isFloating(want[i].dtype)) expect(relL2(o, want[i]), `${c.name} output ${i}`).toBeLessThan(1e-2);
        else expect(Array.from(toFloat64Array(o))).toEqual(Array.from(toFloat64Array(want[i])));
      });
    }, 60_000);
  }

  const graphs = [
    [
      "shifted Swin block 14×14×32",
      swinBlockGraph({ B: 1, H: 14, W: 14, C: 32, heads: 2, window: 7, shift: 3 }),
    ],
    [
      "Swin block, mask by slice writes",
      swinBlockGraph(
        { B: 1, H: 14, W: 14, C: 16, heads: 2, window: 7, shift: 3 },
        { maskBySliceWrites: true },
      ),
    ],
    ["patch merging", patchMergingGraph(1, 14, 14, 16)],
    ["stem and head", stemAndHeadGraph(2, 32, 24, 10)],
  ] as const;
  for (const [name, graph] of graphs) {
    it(`${name}`, () => {
      const inputs = inputsFor(graph, 13);
      const lowered = runPipeline(graph, defaultPipeline()).graph;
      const net = convertGraph(lowered);
      const named = Object.fromEntries(lowered.inputs.map((n, i) => [n, inputs[i]]));
      const [want] = runNetworkReference(net, named);
      const { outputs } = emulateEngine(net, named, { precision: "fp16" });
      expect(relL2(outputs[0], want)).toBeLessThan(1e-2);
    }, 120_000);
  }
});
