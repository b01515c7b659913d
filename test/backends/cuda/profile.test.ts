/**
 * The per-step profiler: the table's aggregation (medians, shares, totals per kind, kernel count) on synthetic
 * samples; step labels on a planned transformer block; and the event-pair timing through an execution context
 * against the fake libcuda (test/ffi/fakes), whose clock advances 2 ms at every event record, so a step that
 * records k more events in between measures 2 + 2k ms.
 */
import { rmSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { planCudaEngine } from "../../../src/backends/cuda/plan.js";
import { stepLabel } from "../../../src/backends/cuda/profile/labels.js";
import {
  buildProfileReport,
  formatProfileReport,
  median,
  shortNodes,
} from "../../../src/backends/cuda/profile/report.js";
import { convertGraph } from "../../../src/converters/index.js";
import type { ProfiledKind } from "../../../src/core/profile.js";
import { clearDiscoveryCache } from "../../../src/ffi/index.js";
import type { Graph } from "../../../src/ir/graph.js";
import { defaultPipeline, runPipeline } from "../../../src/passes/pipeline.js";
import { buildFakes } from "../../ffi/fakes/build.js";
import { preNormBlocksGraph } from "./transformer-graphs.js";

describe("profile table", () => {
  const samples = [
    {
      kind: "rows" as const,
      description: "normalization → n",
      nodes: ["add", "layer_norm"],
      ms: [0.004, 0.002, 0.003],
    },
    {
      kind: "cublaslt" as const,
      description: "matmul+bias → l",
      nodes: ["linear"],
      ms: [0.01, 0.012, 0.011, 0.009],
    },
    { kind: "rows" as const, description: "normalization → m", nodes: ["layer_norm_1"], ms: [0.003] },
    { kind: "libtorch" as const, description: "LibTorch segment 1", nodes: ["a", "b"], ms: [0.002, 0.002] },
  ];
  const r = buildProfileReport(samples, 4);

  it("takes medians (middle value, or the mean of the two middle ones) and shares of their sum", () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    for (const [i, want] of [0.003, 0.0105, 0.003, 0.002].entries())
      expect(r.steps[i].medianMs).toBeCloseTo(want, 12);
    expect(r.totalMs).toBeCloseTo(0.0185, 12);
    expect(r.steps[1].share).toBeCloseTo(0.0105 / 0.0185, 12);
    expect(r.steps.reduce((a, s) => a + s.share, 0)).toBeCloseTo(1, 12);
    expect(r.steps.map((s) => s.index)).toEqual([0, 1, 2, 3]);
  });

  it("totals per kind in descending time, and counts kernels without the LibTorch segments", () => {
    expect(r.byKind.map((k) => [k.kind, k.steps])).toEqual([
      ["cublaslt", 1],
      ["rows", 2],
      ["libtorch", 1],
    ]);
    expect(r.byKind[1].ms).toBeCloseTo(0.006, 12);
    expect(r.kernels).toBe(3);
  });

  it("prints one line per step, one per kind and the totals, in µs", () => {
    const text = formatProfileReport(r);
    const lines = text.split("\n");
    expect(lines[0]).toMatch(/step\s+kind\s+median µs\s+share\s+nodes/);
    expect(lines[2]).toMatch(/^\s+1\s+cuBLASLt\s+10\.5\s+56\.8%\s+linear$/);
    expect(text).toContain("rows kernel");
    expect(text).toMatch(/LibTorch segment\s+1\s+2\.0\s+10\.8%/);
    expect(lines.at(-1)).toMatch(
      /^total: 18\.5 µs over 4 steps, 3 kernels and library calls \(medians of 4 runs/,
    );
  });

  it("shortens long node lists to the first ones and how many more", () => {
    const nodes = Array.from({ length: 20 }, (_, i) => `node_${i}`);
    const s = shortNodes(nodes, 30);
    expect(s.length).toBeLessThanOrEqual(30);
    expect(s).toMatch(/^node_0, node_1, node_2 \(\+17\)$/);
    expect(shortNodes(["a", "b"])).toBe("a, b");
  });
});

describe("step labels", () => {
  it("names each step's kind and the IR nodes it covers", () => {
    const graph = preNormBlocksGraph({ B: 1, N: 5, C: 16, heads: 2, depth: 1 });
    const lowered = runPipeline(graph, defaultPipeline({ enabledPrecisions: ["float16"] })).graph;
    // GELU as its own element kernel, so that every kind of step is labelled here.
    process.env.TORCHC_GELU_EPILOGUE = "0";
    const plan = planCudaEngine(convertGraph(lowered), { precision: "fp16" });
    delete process.env.TORCHC_GELU_EPILOGUE;
    const labels = plan.steps.map((s) => stepLabel(s));
    const kinds = new Set(labels.map((l) => l.kind));
    for (const k of ["rows", "cublaslt", "attention", "element"] as ProfiledKind[])
      expect(kinds).toContain(k);
    // the second norm covers the residual add before it
    const norms = labels.filter((l) => l.kind === "rows");
    expect(norms[1].nodes.some((n) => n.startsWith("add"))).toBe(true);
    expect(norms[1].nodes.some((n) => n.startsWith("layer_norm"))).toBe(true);
    expect(labels.filter((l) => l.kind === "cublaslt")).toHaveLength(4);
    for (const l of labels) expect(l.nodes.length).toBeGreaterThan(0);
  });
});

const fakes = buildFakes();

describe.skipIf(!fakes)("profiling an execution context through the fake libcuda", () => {
  beforeAll(() => {
    process.env.TORCHC_LIBRARY_PATH = fakes!;
    process.env.TORCHC_PYTHON = "none";
    clearDiscoveryCache();
  });
  afterAll(() => {
    if (fakes) rmSync(fakes, { recursive: true, force: true });
  });

  it("times every engine step and each fallback segment between its own events, in launch order", async () => {
    const { CudaContext } = await import("../../../src/backends/cuda/device/context.js");
    const { CudaEvent } = await import("../../../src/backends/cuda/device/event.js");
    const { DeviceBuffer } = await import("../../../src/backends/cuda/device/memory.js");
    const { CudaExecutionContext } = await import("../../../src/backends/cuda/execution-context.js");
    CudaContext.get(0);
    const type = { dtype: "float32" as const, shape: [4] };
    const graph = {
      inputs: ["x"],
      outputs: ["y"],
      nodes: [],
      values: { x: type, h: type, y: type },
      weights: {},
    } as unknown as Graph;
    const ctxRef: { stream?: { handle: bigint } } = {};
    const tick = CudaEvent.create();
    // a launch that records `k` events on the context's stream: 2k ms more on the fake clock
    const busy = (k: number) => () => {
      for (let i = 0; i < k; i++) tick.record(ctxRef.stream as never);
    };
    const launched: string[] = [];
    const steps = [
      { description: "normalization → h", label: { kind: "rows", nodes: ["add", "layer_norm"] }, k: 0 },
      { description: "matmul+bias → h2", label: { kind: "cublaslt", nodes: ["linear"] }, k: 3 },
      { description: "element[activation] → h", label: { kind: "element", nodes: ["gelu"] }, k: 1 },
    ];
    const io = (name: string) => ({ name, type, bytes: 16 });
    const engine = {
      inputs: [io("x")],
      outputs: [io("h")],
      inputBuffers: [DeviceBuffer.alloc(256)],
      outputBuffers: [DeviceBuffer.alloc(256)],
      adoptStream: () => {},
      bindInput: () => {},
      warm: () => {},
      launch: () => {},
      stepLaunches: () =>
        steps.map((s) => ({
          description: s.description,
          label: s.label,
          launch: () => {
            launched.push(s.description);
            busy(s.k)();
          },
        })),
    };
    const fallback = {
      segment: { index: 1, nodes: [{ name: "topk" }, { name: "sort" }] },
      plan: { inputs: [{ name: "h", type }], outputs: [{ name: "y", type }] },
      launchDevice: () => {
        launched.push("libtorch");
        busy(2)();
        return new Map();
      },
    };
    const ctx = new CudaExecutionContext(0, graph, [{ engine } as never, fallback as never], true, "poll", 0);
    ctxRef.stream = ctx.stream;
    const report = ctx.profile(5);
    expect(report.steps.map((s) => [s.kind, s.description, s.medianMs])).toEqual([
      ["rows", "normalization → h", 2],
      ["cublaslt", "matmul+bias → h2", 8],
      ["element", "element[activation] → h", 4],
      ["libtorch", "LibTorch segment 1 (2 nodes)", 6],
    ]);
    expect(report.steps[3].nodes).toEqual(["topk", "sort"]);
    expect(report.totalMs).toBe(20);
    expect(report.kernels).toBe(3);
    expect(report.reps).toBe(5);
    // 3 warm-up passes and 5 timed ones, each step once per pass, in order
    expect(launched).toHaveLength(8 * 4);
    expect(launched.slice(0, 4)).toEqual([...steps.map((s) => s.description), "libtorch"]);
    tick.destroy();
    ctx.dispose();
  });
});
