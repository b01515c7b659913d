/**
 * A control-flow segment inside a CUDA execution context, through the fake libcuda (test/ffi/fakes: "device"
 * memory is host memory, copies happen at once): the predicate a fallback segment wrote is read back from its
 * device buffer, the branch it picks runs on views of the context's buffers (inputs: the producer's output
 * buffer; outputs: the context's buffer of the node's result), and the step after it reads that buffer; a loop
 * reads its trip count back, alternates its body's two output sets (allocated once, at the context's build, and
 * freed with it) and copies the last into the node's output, reading the body's condition through the context's
 * readback buffer and event after each iteration (none when the condition is a constant). The block
 * modules here are stand-ins that record what they were given; real ones are compiled in the GPU test
 * (test/gpu/control-flow.gpu.test.ts).
 */
import { rmSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
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
afterAll(() => {
  if (fakes) rmSync(fakes, { recursive: true, force: true });
});
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

/**
 * y = x; for i in range(n): y = y * 2, stopping early once i reaches `stop` - 1 (the body's condition). With
 * `init`, y starts from that constant instead (a weight of the graph, as fold-constants makes `torch.zeros(…)`).
 */
function loopGraph(init?: Tensor): Graph {
  const body = new GraphBuilder();
  body.addInput("i", { dtype: "int64", shape: [] });
  body.addInput("y0", f4);
  body.addNode(
    "aten.mul.Scalar",
    { self: { kind: "tensor", name: "y0" }, other: { kind: "float", value: 2 } },
    [{ name: "y1", type: f4 }],
  );
  body.addNode("test.go", {}, [{ name: "go", type: bool0 }]);
  body.setOutputs(["go", "y1"]);
  const g = new GraphBuilder();
  g.addInput("x", f4);
  g.addInput("n", { dtype: "int64", shape: [] });
  const y0 = init ? g.addConstant("z", init) : "x";
  g.addNode(
    "prim.Loop",
    {
      max_trip_count: { kind: "tensor", name: "n" },
      cond: { kind: "bool", value: true },
      init: { kind: "tensors", names: [y0] },
    },
    [{ name: "y", type: f4 }],
    {},
    "loop",
    [body.build()],
  );
  g.setOutputs(["y"]);
  return g.build();
}

describe.skipIf(!fakes)("a loop segment in a CUDA execution context (fake libcuda)", () => {
  beforeAll(() => {
    process.env.TORCHC_LIBRARY_PATH = fakes!;
    process.env.TORCHC_PYTHON = "none";
    clearDiscoveryCache();
  });

  /** A CUDA execution context running `graph`'s loop with a stand-in body module; `stop` sets its condition. */
  async function loopHarness(graph: Graph, opts: { constantCondition?: boolean } = {}) {
    const { CudaContext } = await import("../../../src/backends/cuda/device/context.js");
    const { PinnedBuffer, uploadAsync, downloadAsync } = await import(
      "../../../src/backends/cuda/device/memory.js"
    );
    const { CudaDeviceTensor } = await import("../../../src/backends/cuda/device-tensor.js");
    const { CudaExecutionContext } = await import("../../../src/backends/cuda/execution-context.js");
    const { CudaEvent } = await import("../../../src/backends/cuda/device/event.js");
    CudaContext.get(0);
    const pinned = PinnedBuffer.alloc(64);
    const read = (src: DeviceTensor, bytes: number) => {
      downloadAsync(src, pinned, null, { bytes });
      return new Uint8Array(pinned.arrayBuffer, 0, bytes).slice();
    };
    const write = (dst: DeviceTensor, bytes: Uint8Array) => {
      new Uint8Array(pinned.arrayBuffer).set(bytes);
      uploadAsync(dst, pinned, null, { bytes: bytes.byteLength });
    };
    const state = { stop: 100 };
    const iterations: { i: number; input: bigint; output: bigint }[] = [];
    const allocated: DeviceTensor[] = [];
    /** Body runs and events recorded on the context's stream, in order (`log` is on while a run is timed). */
    const log: string[] = [];
    const counts = { toHost: 0 };
    // The body's compiled graph, as far as the runner reads it: with a constant condition (a `for`), `go` is a weight.
    const bodyGraph = opts.constantCondition
      ? {
          outputs: ["go", "y1"],
          weights: { go: { tensor: { dtype: "bool", shape: [], data: Uint8Array.of(1) } } },
        }
      : undefined;
    // A stand-in body module: y1 = y0 * 2 and go = i < stop - 1, read and written through device memory.
    const bodyModule = {
      report: { runners: ["body engine"] },
      allocateOutputs: () => {
        const set = [CudaDeviceTensor.alloc("bool", [], 0), CudaDeviceTensor.alloc("float32", [4], 0)];
        allocated.push(...set);
        return set;
      },
      async run(inputs: (Tensor | DeviceTensor)[], opts: { outputs: DeviceTensor[] }) {
        const i = Number((inputs[0] as Tensor).data[0]);
        const y = inputs[1] as DeviceTensor;
        iterations.push({ i, input: y.ptr, output: opts.outputs[1].ptr });
        log.push(`run ${i}`);
        const doubled = new Float32Array(read(y, 16).buffer).map((v) => v * 2);
        write(opts.outputs[1], new Uint8Array(doubled.buffer));
        write(opts.outputs[0], Uint8Array.of(bodyGraph || i < state.stop - 1 ? 1 : 0));
        return opts.outputs;
      },
      async toHost(t: DeviceTensor) {
        counts.toHost++;
        return { dtype: "bool", shape: [], data: read(t, 1) } as unknown as Tensor;
      },
      async dispose() {},
      graph: bodyGraph,
    } as unknown as CompiledModule;
    const node = graph.nodes[0];
    const segment = {
      index: 0,
      kind: "control" as const,
      nodes: [node],
      inputs: ["n", "x"],
      weights: [],
      outputs: ["y"],
      graph,
    };
    const blocks = node.subgraphs!.map((b) => closeBlock(graph, node, b));
    const control = new ControlRunner(segment, blocks, [bodyModule]);
    const ctx = new CudaExecutionContext(0, graph, [control], true, "poll", 0);
    const x = tensorFromNumbers("float32", [4], [1, -2, 3, -4]);
    const record = CudaEvent.prototype.record;
    const recorded = vi.spyOn(CudaEvent.prototype, "record").mockImplementation(function (this: never, s) {
      log.push(s === ctx.stream ? "event on the context's stream" : "event elsewhere");
      return record.call(this, s);
    });
    const run = async (n: number) => {
      iterations.length = 0;
      log.length = 0;
      const [y] = (await ctx.run([x, tensorFromNumbers("int64", [], [n])])) as Tensor[];
      return Array.from(toFloat64Array(y));
    };
    const dispose = () => {
      recorded.mockRestore();
      ctx.dispose();
      pinned.free();
    };
    return { run, iterations, allocated, state, log, counts, dispose };
  }

  it("reads the trip count back, alternates the body's output buffers, and copies the last into the node's output", async () => {
    const { run, iterations, allocated, state, dispose } = await loopHarness(loopGraph());
    try {
      expect(await run(3)).toEqual([8, -16, 24, -32]);
      expect(iterations.map((it) => it.i)).toEqual([0, 1, 2]);
      // each iteration reads what the one before wrote, and writes the other set
      for (let k = 1; k < iterations.length; k++) {
        expect(iterations[k].input).toBe(iterations[k - 1].output);
        expect(iterations[k].output).not.toBe(iterations[k].input);
      }
      // the two sets were allocated once, at the context's build, and stay with it between runs
      expect(allocated).toHaveLength(4);
      expect(allocated.every((t) => t.alive)).toBe(true);
      state.stop = 2;
      expect(await run(10)).toEqual([4, -8, 12, -16]);
      expect(iterations).toHaveLength(2);
      expect(await run(0)).toEqual([1, -2, 3, -4]);
      expect(iterations).toHaveLength(0);
      expect(allocated).toHaveLength(4);
    } finally {
      dispose();
    }
    // the context frees them
    expect(allocated.every((t) => !t.alive)).toBe(true);
  });

  it("allocates nothing, creates no stream and no pinned buffer, and never synchronizes in runs of several iterations", async () => {
    const memory = await import("../../../src/backends/cuda/device/memory.js");
    const { Stream } = await import("../../../src/backends/cuda/device/stream.js");
    const { CudaEvent } = await import("../../../src/backends/cuda/device/event.js");
    const ffi = await import("../../../src/ffi/index.js");
    const live = ffi
      .koffi()
      .load(ffi.CUDA.load().path)
      .func("int fake_live_allocations(void)") as () => number;
    const { run, iterations, allocated, log, counts, dispose } = await loopHarness(loopGraph());
    // each wrapper is the one path to its driver call (device/ is the only caller of src/ffi)
    const spies = {
      cuMemAlloc: vi.spyOn(memory.DeviceBuffer, "alloc"),
      cuMemFree: vi.spyOn(memory.DeviceBuffer.prototype, "free"),
      cuMemHostAlloc: vi.spyOn(memory.PinnedBuffer, "alloc"),
      cuMemFreeHost: vi.spyOn(memory.PinnedBuffer.prototype, "free"),
      cuStreamCreate: vi.spyOn(Stream, "create"),
      cuStreamSynchronize: vi.spyOn(Stream.prototype, "synchronize"),
      cuEventCreate: vi.spyOn(CudaEvent, "create"),
    };
    try {
      const before = live();
      expect(await run(5)).toEqual([32, -64, 96, -128]);
      expect(iterations).toHaveLength(5);
      // each body run is followed by its condition's readback event on the context's stream, before the next
      for (const i of [0, 1, 2, 3, 4])
        expect(log[log.indexOf(`run ${i}`) + 1]).toBe("event on the context's stream");
      expect(log).not.toContain("event elsewhere");
      expect(await run(3)).toEqual([8, -16, 24, -32]);
      expect(iterations).toHaveLength(3);
      const calls = Object.entries(spies).map(([k, s]) => [k, s.mock.calls.length]);
      expect(calls).toEqual(Object.keys(spies).map((k) => [k, 0]));
      expect(live()).toBe(before);
      expect(counts.toHost).toBe(0);
      expect(allocated).toHaveLength(4);
    } finally {
      for (const s of Object.values(spies)) s.mockRestore();
      dispose();
    }
  });

  it("reads nothing back for a constant condition (a `for`): one body run after another", async () => {
    const { run, iterations, log, dispose } = await loopHarness(loopGraph(), { constantCondition: true });
    try {
      expect(await run(3)).toEqual([8, -16, 24, -32]);
      expect(iterations.map((it) => it.i)).toEqual([0, 1, 2]);
      expect(log.slice(log.indexOf("run 0"), log.indexOf("run 2") + 1)).toEqual(["run 0", "run 1", "run 2"]);
      expect(await run(0)).toEqual([1, -2, 3, -4]);
    } finally {
      dispose();
    }
  });

  it("starts from a constant (a graph weight, as a folded torch.zeros is) on the device, for 2 trips and for 0", async () => {
    const init = tensorFromNumbers("float32", [4], [0.5, 1, -1, 2]);
    const { run, iterations, dispose } = await loopHarness(loopGraph(init));
    try {
      expect(await run(2)).toEqual([2, 4, -4, 8]);
      expect(iterations.map((it) => it.i)).toEqual([0, 1]);
      // 0 trips: the node's output is the constant itself
      expect(await run(0)).toEqual([0.5, 1, -1, 2]);
    } finally {
      dispose();
    }
  });
});

describe.skipIf(!fakes)("a constant output in a CUDA execution context (fake libcuda)", () => {
  beforeAll(() => {
    process.env.TORCHC_LIBRARY_PATH = fakes!;
    process.env.TORCHC_PYTHON = "none";
    clearDiscoveryCache();
  });

  it("is uploaded once, at the context's build, and copied on the stream in each run (a for body's condition)", async () => {
    const { CudaContext } = await import("../../../src/backends/cuda/device/context.js");
    const memory = await import("../../../src/backends/cuda/device/memory.js");
    const { Stream } = await import("../../../src/backends/cuda/device/stream.js");
    const { CudaDeviceTensor } = await import("../../../src/backends/cuda/device-tensor.js");
    const { CudaExecutionContext } = await import("../../../src/backends/cuda/execution-context.js");
    CudaContext.get(0);
    const g = new GraphBuilder();
    g.addInput("i", { dtype: "int64", shape: [] });
    g.addConstant("go", { dtype: "bool", shape: [], data: Uint8Array.of(1) } as unknown as Tensor);
    g.setOutputs(["go"]);
    const ctx = new CudaExecutionContext(0, g.build(), [], true, "poll", 0);
    const out = CudaDeviceTensor.alloc("bool", [], 0);
    const pinned = memory.PinnedBuffer.alloc(64);
    const spies = [
      vi.spyOn(memory.PinnedBuffer, "alloc"),
      vi.spyOn(memory.DeviceBuffer, "alloc"),
      vi.spyOn(Stream.prototype, "synchronize"),
    ];
    try {
      for (const i of [0, 1, 2]) {
        new Uint8Array(pinned.arrayBuffer)[0] = 7;
        memory.uploadAsync(out, pinned, null, { bytes: 1 });
        await ctx.run([tensorFromNumbers("int64", [], [i])], { outputs: [out] });
        memory.downloadAsync(out, pinned, null, { bytes: 1 });
        expect(new Uint8Array(pinned.arrayBuffer)[0]).toBe(1);
      }
      expect(spies.map((s) => s.mock.calls.length)).toEqual([0, 0, 0]);
      // a host output is still the weight itself
      const [host] = (await ctx.run([tensorFromNumbers("int64", [], [0])])) as Tensor[];
      expect(Array.from(toFloat64Array(host))).toEqual([1]);
    } finally {
      for (const s of spies) s.mockRestore();
      out.dispose();
      pinned.free();
      ctx.dispose();
    }
  });
});
