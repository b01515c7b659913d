/**
 * A control-flow segment inside a CUDA execution context, through the fake libcuda (test/ffi/fakes: "device"
 * memory is host memory, copies happen at once): the predicate a fallback segment wrote is read back from its
 * device buffer, the branch it picks runs on views of the context's buffers (inputs: the producer's output
 * buffer; outputs: the context's buffer of the node's result), and the step after it reads that buffer. The block
 * modules here are stand-ins that record what they were given; real ones are compiled in the GPU test
 * (test/gpu/control-flow.gpu.test.ts).
 */
import { rmSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DeviceTensor } from "../../../src/core/device-tensor.js";
import { clearDiscoveryCache } from "../../../src/ffi/index.js";
import { GraphBuilder } from "../../../src/ir/builder.js";
import type { Graph, TensorType } from "../../../src/ir/graph.js";
import { type Tensor, tensorFromNumbers, toFloat64Array } from "../../../src/ir/tensor.js";
import type { CompiledModule } from "../../../src/runtime/compile.js";
import { closeBlock } from "../../../src/runtime/control-blocks.js";
import { ControlRunner } from "../../../src/runtime/control-runner.js";
import { buildFakes } from "../../ffi/fakes/build.js";

const fakes = buildFakes();
const f4: TensorType = { dtype: "float32", shape: [4] };
const bool0: TensorType = { dtype: "bool", shape: [] };

/** x → (c, h) in a fallback; r = if c: relu(h) else: neg(h). */
function ifGraph(): Graph {
  const branch = (op: string, out: string) => {
    const b = new GraphBuilder();
    b.addNode(op, { self: { kind: "tensor", name: "h" } }, [{ name: out, type: f4 }]);
    b.setOutputs([out]);
    return b.build();
  };
  const g = new GraphBuilder();
  g.addInput("x", f4);
  g.addNode("test.produce", {}, [
    { name: "c", type: bool0 },
    { name: "h", type: f4 },
  ]);
  g.addNode("prim.If", { cond: { kind: "tensor", name: "c" } }, [{ name: "r", type: f4 }], {}, "if", [
    branch("aten.relu.default", "a"),
    branch("aten.neg.default", "b"),
  ]);
  g.setOutputs(["r"]);
  return g.build();
}

describe.skipIf(!fakes)("a control-flow segment in a CUDA execution context (fake libcuda)", () => {
  beforeAll(() => {
    process.env.TORCHC_LIBRARY_PATH = fakes!;
    process.env.TORCHC_PYTHON = "none";
    clearDiscoveryCache();
  });
  afterAll(() => {
    if (fakes) rmSync(fakes, { recursive: true, force: true });
  });

  it("reads the predicate its producer wrote and runs the branch it picks on the context's buffers", async () => {
    const { CudaContext } = await import("../../../src/backends/cuda/device/context.js");
    const { PinnedBuffer, uploadAsync, copyDevice } = await import(
      "../../../src/backends/cuda/device/memory.js"
    );
    const { CudaExecutionContext } = await import("../../../src/backends/cuda/execution-context.js");
    CudaContext.get(0);
    const graph = ifGraph();
    const log: string[] = [];
    let predicate = 1;
    let hBuffer = 0n;
    const pinned = PinnedBuffer.alloc(64);
    /** Writes host numbers into device memory (the fake copies at once). */
    const write = (dst: { ptr: bigint; bytes: number; alive: boolean }, bytes: Uint8Array) => {
      new Uint8Array(pinned.arrayBuffer).set(bytes);
      uploadAsync(dst, pinned, null, { bytes: bytes.byteLength });
    };
    const producer = {
      segment: { index: 0, kind: "fallback", nodes: [graph.nodes[0]] },
      plan: {
        inputs: [{ name: "x", type: f4 }],
        outputs: [
          { name: "c", type: bool0 },
          { name: "h", type: f4 },
        ],
      },
      launchDevice: (
        ins: ReadonlyMap<string, { ptr: bigint; bytes: number; alive: boolean }>,
        opts: { outputs: ReadonlyMap<string, { ptr: bigint; bytes: number; alive: boolean }> },
      ) => {
        log.push(`produce c=${predicate}`);
        write(opts.outputs.get("c")!, Uint8Array.of(predicate));
        copyDevice(opts.outputs.get("h")!, ins.get("x")!, { bytes: 16 });
        hBuffer = opts.outputs.get("h")!.ptr;
        return opts.outputs;
      },
    };
    // Stand-in block modules: each records the views it was given and writes its own marker into the output.
    const seen: { branch: string; input: bigint; output: bigint }[] = [];
    const fakeModule = (branch: string, marker: number) =>
      ({
        report: { runners: [`${branch} engine`] },
        async run(inputs: DeviceTensor[], opts: { outputs: DeviceTensor[] }) {
          log.push(`run ${branch}`);
          seen.push({ branch, input: inputs[0].ptr, output: opts.outputs[0].ptr });
          expect(inputs[0].owner).toBe("user");
          write(opts.outputs[0], new Uint8Array(Float32Array.of(marker, marker, marker, marker).buffer));
          return opts.outputs;
        },
        async dispose() {},
      }) as unknown as CompiledModule;
    const node = graph.nodes[1];
    const segment = {
      index: 1,
      kind: "control" as const,
      nodes: [node],
      inputs: ["c", "h"],
      weights: [],
      outputs: ["r"],
      graph,
    };
    const blocks = node.subgraphs!.map((b) => closeBlock(graph, node, b));
    expect(blocks.map((b) => b.captured)).toEqual([["h"], ["h"]]);
    const control = new ControlRunner(segment, blocks, [fakeModule("then", 7), fakeModule("else", -7)]);
    const ctx = new CudaExecutionContext(0, graph, [producer as never, control], true, "poll", 0);
    try {
      const x = tensorFromNumbers("float32", [4], [1, -2, 3, -4]);
      for (const [p, branch, marker] of [
        [1, "then", 7],
        [0, "else", -7],
        [1, "then", 7],
      ] as const) {
        predicate = p;
        log.length = 0;
        const [r] = (await ctx.run([x])) as Tensor[];
        expect(log).toEqual([`produce c=${p}`, `run ${branch}`]);
        expect(Array.from(toFloat64Array(r))).toEqual([marker, marker, marker, marker]);
        const last = seen[seen.length - 1];
        expect(last.input).toBe(hBuffer);
      }
      // the output view is the same context buffer whichever branch ran
      expect(new Set(seen.map((s) => s.output)).size).toBe(1);
      expect(() => ctx.time(1)).toThrow(/control flow/);
    } finally {
      ctx.dispose();
      pinned.free();
    }
  });
});
