// Swin-T's building blocks through the whole CPU side of the CUDA path: lowering, converters, the engine plan
// and its generated element kernels (emulated with g++, see emulate.ts). Each is compared three ways: the aten
// reference interpreter on the original graph (PyTorch semantics), the layer reference on the converted
// network, and the emulated engine.
import { describe, expect, it } from "vitest";
import { randomTensor, rng } from "../../../src/backends/cuda/testing/nets.js";
import { convertGraph } from "../../../src/converters/index.js";
import type { Graph } from "../../../src/ir/graph.js";
import { type Tensor, tensorFromNumbers } from "../../../src/ir/tensor.js";
import { NetworkBuilder } from "../../../src/network/builder.js";
import { runNetworkReference } from "../../../src/network/reference/index.js";
import { interpret } from "../../../src/ops/index.js";
import { functionalizeViews } from "../../../src/passes/functionalize-views.js";
import { defaultPipeline, runPipeline } from "../../../src/passes/pipeline.js";
import { assertClose } from "../../converters/harness.js";
import { inputsFor } from "../../passes/graphs.js";
import { emulateEngine, hasGxx } from "./emulate.js";
import { patchMergingGraph, stemAndHeadGraph, swinBlockGraph } from "./swin-graphs.js";

/** The larger cases take tens of seconds on two cores: TORCHC_SLOW=1 runs them. */
const SLOW = process.env.TORCHC_SLOW === "1";

function threeWay(graph: Graph, channelsLast = false, cooperative = true) {
  const inputs = inputsFor(graph, 11);
  const lowered = runPipeline(graph, defaultPipeline()).graph;
  // PyTorch's semantics: the graph with writes through views made explicit (functionalize-view-mutations), on
  // the aten reference interpreter
  const want = interpret(runPipeline(graph, [functionalizeViews]).graph, inputs);
  const net = convertGraph(lowered);
  const named: Record<string, Tensor> = Object.fromEntries(lowered.inputs.map((n, i) => [n, inputs[i]]));
  const ref = runNetworkReference(net, named);
  const emu = emulateEngine(net, named, { channelsLast, cooperative });
  return { want, ref, emu: emu.outputs, plan: emu.plan };
}

describe.skipIf(!hasGxx())(
  "Swin-T blocks: aten reference vs converted network vs emulated CUDA engine",
  () => {
    const cases = [
      {
        name: "shifted block 14×14×32, 2 heads, window 7, shift 3",
        s: { B: 1, H: 14, W: 14, C: 32, heads: 2, window: 7, shift: 3 },
      },
      ...(SLOW
        ? [
            {
              name: "unshifted block 14×14×32",
              s: { B: 1, H: 14, W: 14, C: 32, heads: 2, window: 7, shift: 0 },
            },
            {
              name: "shifted block, batch 2, 21×14",
              s: { B: 2, H: 21, W: 14, C: 16, heads: 2, window: 7, shift: 3 },
            },
            // Swin-T's first stage: 56×56×96, 3 heads
            {
              name: "Swin-T stage 1 shifted block 56×56×96",
              s: { B: 1, H: 56, W: 56, C: 96, heads: 3, window: 7, shift: 3 },
            },
          ]
        : []),
    ];
    for (const c of cases) {
      for (const maskFromInput of c.s.shift > 0 && SLOW ? [false, true] : [false]) {
        it(`${c.name}${maskFromInput ? ", mask built from new_zeros(x)" : ""}`, () => {
          // at stage-1 size the cooperative kernels (thousands of 256-thread blocks) would hold the test
          // worker for minutes: their layers run on the reference there, the element kernels still emulated
          const { want, ref, emu } = threeWay(swinBlockGraph(c.s, { maskFromInput }), false, c.s.H < 56);
          assertClose(ref[0], want[0], "converted network vs aten reference", 1e-2);
          assertClose(emu[0], want[0], "emulated engine vs aten reference", 1e-2);
          expect(emu[0].shape).toEqual([c.s.B, c.s.H, c.s.W, c.s.C]);
        }, 120_000);
      }
    }
    it("shifted block: the roll and the window partition after it are one kernel (views join the roll's group)", () => {
      const s = { B: 1, H: 14, W: 14, C: 16, heads: 2, window: 7, shift: 3 };
      const fused = threeWay(swinBlockGraph(s));
      assertClose(fused.emu[0], fused.want[0], "emulated engine vs aten reference", 1e-2);
      const rollThenPartition = (p: typeof fused.plan) =>
        p.steps.filter(
          (st) =>
            st.kind === "element" &&
            st.group.layers.some((l) => l.type === "concatenation") &&
            st.group.layers.some((l) => l.type === "shuffle"),
        ).length;
      expect(rollThenPartition(fused.plan), fused.plan.summary.join("\n")).toBeGreaterThan(0);
      process.env.TORCHC_FUSE_VIEWS = "0";
      try {
        const apart = threeWay(swinBlockGraph(s));
        expect(apart.plan.steps.length).toBeGreaterThan(fused.plan.steps.length);
        assertClose(apart.emu[0], fused.want[0], "emulated engine (views apart) vs aten reference", 1e-2);
      } finally {
        delete process.env.TORCHC_FUSE_VIEWS;
      }
    }, 120_000);

    it("a group whose other members are read elsewhere is not re-rooted at a view of its result", () => {
      // y = x + 1 (also read by u), z = y · 2, w = transpose(z) + 1: y and z's group may not take the transpose in,
      // or y would be stored at the transposed coordinates
      const nb = new NetworkBuilder();
      const x = nb.addInput("x", { dtype: "float32", shape: [2, 3, 4, 5] });
      const scalar = (v: number) => nb.constant(tensorFromNumbers("float32", [], [v]));
      const y = nb.add({ type: "elementwise", op: "add", inputs: [x, scalar(1)] });
      const z = nb.add({ type: "elementwise", op: "mul", inputs: [y, scalar(2)] });
      const v = nb.add({
        type: "shuffle",
        inputs: [z],
        firstTranspose: [0, 2, 3, 1],
        reshape: null,
        secondTranspose: null,
      });
      const w = nb.add({ type: "elementwise", op: "add", inputs: [v, scalar(1)] });
      // read after the transpose's reader is placed
      const u = nb.add({ type: "elementwise", op: "sub", inputs: [y, scalar(2)] });
      const net = nb.build([
        { tensor: w, as: "w" },
        { tensor: u, as: "u" },
      ]);
      const inputs = { x: randomTensor(rng(3), "float32", [2, 3, 4, 5]) };
      const want = runNetworkReference(net, inputs);
      const { outputs } = emulateEngine(net, inputs, {});
      assertClose(outputs[0], want[0], "w", 1e-6);
      assertClose(outputs[1], want[1], "u", 1e-6);
    });

    it("shifted block with the mask built by writes through slices (torchvision's construction)", () => {
      const s = { B: 1, H: 14, W: 14, C: 16, heads: 2, window: 7, shift: 3 };
      const { want, ref, emu } = threeWay(swinBlockGraph(s, { maskBySliceWrites: true }));
      // the same block with the mask as a constant: the writes must have reached the mask
      const { want: constant } = threeWay(swinBlockGraph(s));
      assertClose(want[0], constant[0], "mask by slice writes vs constant mask (aten reference)", 1e-2);
      assertClose(ref[0], want[0], "converted network vs aten reference", 1e-2);
      assertClose(emu[0], want[0], "emulated engine vs aten reference", 1e-2);
    }, 120_000);
    for (const channelsLast of [false, true]) {
      it(`stem (conv 4×4/4 → NHWC → layer norm) and head (→ NCHW → avg pool → linear), channelsLast=${channelsLast}`, () => {
        const { want, ref, emu } = threeWay(stemAndHeadGraph(2, 32, 24, 10), channelsLast);
        assertClose(ref[0], want[0], "converted network vs aten reference", 1e-2);
        assertClose(emu[0], want[0], "emulated engine vs aten reference", 1e-2);
      }, 120_000);
    }
    it("patch merging 14×14×16", () => {
      const { want, ref, emu } = threeWay(patchMergingGraph(1, 14, 14, 16));
      assertClose(ref[0], want[0], "converted network vs aten reference", 1e-2);
      assertClose(emu[0], want[0], "emulated engine vs aten reference", 1e-2);
    }, 120_000);
  },
);
