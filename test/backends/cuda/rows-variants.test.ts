// The opt-in variants of the warp-per-row rows kernels (codegen/rows-knobs.ts: TORCHC_ROWS_LANES, _ONEPASS, _GRID,
// _MINBLOCKS, _PRELOAD), emulated on the host: every variant's stored tensors match the default kernel's on the same
// operands, and the outputs the aten reference. Unset, the knobs leave the kernels as they were.
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { CodegenContext } from "../../../src/backends/cuda/codegen/element.js";
import {
  generateNormalizationKernel,
  generateSoftmaxKernel,
} from "../../../src/backends/cuda/codegen/rows.js";
import { lanesPerRow } from "../../../src/backends/cuda/codegen/rows-knobs.js";
import { assembleProgram } from "../../../src/backends/cuda/kernels/generated.js";
import type { TensorInfo } from "../../../src/backends/cuda/plan/tensors.js";
import { convertGraph } from "../../../src/converters/index.js";
import type { DType } from "../../../src/ir/dtype.js";
import type { Graph } from "../../../src/ir/graph.js";
import type { Tensor } from "../../../src/ir/tensor.js";
import type { NormalizationLayer } from "../../../src/network/layers/index.js";
import { interpret } from "../../../src/ops/index.js";
import { defaultPipeline, runPipeline } from "../../../src/passes/pipeline.js";
import { compareTensors } from "../../../src/util/compare.js";
import { inputsFor } from "../../passes/graphs.js";
import { AtenGraph, F, I, Is } from "./aten-graph.js";
import { emulateEngine, hasGxx } from "./emulate.js";
import { hasNvcc } from "./toolchain.js";

/** Above the warp-per-row threshold (rows.ts MANY_ROWS = 2048), not a multiple of any rows-per-block. */
const N = 2052;
const KNOBS = ["LANES", "ONEPASS", "GRID", "MINBLOCKS", "PRELOAD"].map((k) => `TORCHC_ROWS_${k}`);

function setKnobs(knobs: Record<string, string>) {
  for (const k of KNOBS) delete process.env[k];
  for (const [k, v] of Object.entries(knobs)) process.env[`TORCHC_ROWS_${k}`] = v;
}

afterEach(() => setKnobs({}));

type Precision = "fp32" | "fp16";
const isRows = (kind: string | undefined) => kind === "normalization" || kind === "softmax";

/** Emulates `graph` under the knobs: the rows kernels' sources, the tensors they write, the outputs. */
function emulate(graph: Graph, precision: Precision, knobs: Record<string, string>) {
  setKnobs(knobs);
  const p = precision === "fp16" ? "float16" : "float32";
  const lowered = runPipeline(graph, defaultPipeline({ enabledPrecisions: [p] })).graph;
  const inputs = inputsFor(graph, 5);
  const named = Object.fromEntries(lowered.inputs.map((n, i) => [n, inputs[i]]));
  const byStep: ReadonlyMap<string, Tensor>[] = [];
  const { plan, outputs } = emulateEngine(convertGraph(lowered), named, {
    precision,
    onStep: (i, _, w) => {
      byStep[i] = w;
    },
  });
  const written = new Map(plan.steps.flatMap((st, i) => (isRows(st.kind) ? [...byStep[i]] : [])));
  const sources = plan.steps.flatMap((s, i) => (isRows(s.kind) ? [plan.kernels[i]?.source ?? ""] : []));
  const errors = outputs.map((o, i) => compareTensors(o, interpret(graph, inputs)[i]).relative);
  return { written, sources, errors };
}

/** [N, width] → (residual add of a second input) → layer or RMS norm. Rows whose mean is far from 0. */
function norm(width: number, kind: "layer" | "rms", residual: boolean): Graph {
  const g = new AtenGraph();
  const x = g.input("x", [N, width]);
  const shift = g.weight("shift", [width], { lo: 1, hi: 3 });
  let s = g.node("aten.add.Tensor", { self: x, other: shift });
  let sum: string | undefined;
  if (residual) s = sum = g.node("aten.add.Tensor", { self: s, other: g.input("r", [N, width]) });
  const w = g.weight("w", [width], { lo: 0.5, hi: 1.5 });
  const y =
    kind === "layer"
      ? g.node("aten.layer_norm.default", {
          input: s,
          normalized_shape: Is([width]),
          weight: w,
          bias: g.weight("b", [width]),
          eps: F(1e-5),
        })
      : g.node("aten.rms_norm.default", { input: s, normalized_shape: Is([width]), weight: w, eps: F(1e-6) });
  const out = g.node("aten.tanh.default", { self: y });
  return sum ? g.build(out, g.node("aten.tanh.default", { self: sum })) : g.build(out);
}

function softmax(width: number, log: boolean): Graph {
  const g = new AtenGraph();
  const x = g.input("x", [N, width]);
  const op = log ? "aten._log_softmax.default" : "aten._softmax.default";
  return g.build(g.node(op, { self: x, dim: I(-1), half_to_float: { kind: "bool", value: false } }));
}

// Every case runs these; each explicit lane count runs on the one case whose width it suits (each emulation
// compiles the engine with g++: the suite's cost, kept to what covers each knob).
const VARIANTS: Record<string, string>[] = [
  { LANES: "auto" },
  { ONEPASS: "1" },
  { GRID: "7" },
  { PRELOAD: "1", MINBLOCKS: "6" },
  { LANES: "auto", ONEPASS: "1", GRID: "5", PRELOAD: "1" },
];

const CASES: [string, () => Graph, Precision, Record<string, string>[]?][] = [
  ["layer norm + residual [N, 768] fp16", () => norm(768, "layer", true), "fp16"],
  ["layer norm + residual [N, 192] fp16", () => norm(192, "layer", true), "fp16", [{ LANES: "8" }]],
  ["layer norm [N, 96] fp16 (Swin stage 1)", () => norm(96, "layer", false), "fp16", [{ LANES: "4" }]],
  ["layer norm + residual [N, 1000] fp32", () => norm(1000, "layer", true), "fp32"],
  ["layer norm [N, 392] fp16 (49·8)", () => norm(392, "layer", false), "fp16", [{ LANES: "16" }]],
  ["RMS norm [N, 256] fp16", () => norm(256, "rms", false), "fp16"],
  ["softmax [N, 49] fp16 (scalar loops)", () => softmax(49, false), "fp16"],
  ["log_softmax [N, 128] fp16", () => softmax(128, true), "fp16"],
];

describe.skipIf(!hasGxx())("rows kernel variants, emulated: the default kernel's numbers", () => {
  for (const [title, graph, precision, extra] of CASES)
    it(title, () => {
      const g = graph();
      const base = emulate(g, precision, {});
      const half = precision === "fp16";
      for (const knobs of [...VARIANTS, ...(extra ?? [])]) {
        const label = JSON.stringify(knobs);
        const v = emulate(g, precision, knobs);
        expect(v.written.size, label).toBe(base.written.size);
        for (const [t, x] of v.written)
          expect(compareTensors(x, base.written.get(t)!).relative, `${label} ${t}`).toBeLessThan(
            half ? 2e-3 : 2e-5,
          );
        for (const err of v.errors) expect(err, label).toBeLessThan(half ? 1e-2 : 1e-5);
      }
    }, 600_000);
});

/** A norm or softmax over x [rows, width] of `dtype` storage, generated with the knobs. */
function source(
  knobs: Record<string, string>,
  rows: number,
  width: number,
  dtype: DType,
  softmaxToo = false,
) {
  setKnobs(knobs);
  const info = (name: string, shape: number[], role: TensorInfo["role"] = "activation"): TensorInfo => ({
    name,
    shape,
    logicalDType: dtype,
    storage: dtype,
    layout: shape.map((_, i) => i),
    role,
  });
  const infos = new Map<string, TensorInfo>([
    ["x", info("x", [rows, width])],
    ["w", info("w", [width], "constant")],
    ["b", info("b", [width], "constant")],
    ["y", info("y", [rows, width])],
  ]);
  const ctx: CodegenContext = { info: (t) => infos.get(t)!, scalarConstant: () => undefined };
  const layer: NormalizationLayer = {
    type: "normalization",
    name: "ln",
    inputs: ["x", "w", "b"],
    output: "y",
    kind: "layer",
    beginAxis: 1,
    epsilon: 1e-5,
  };
  const kernels = [generateNormalizationKernel("k_ln", layer, ctx)];
  if (softmaxToo)
    kernels.push(
      generateSoftmaxKernel(
        "k_sm",
        { type: "softmax", name: "sm", inputs: ["x"], output: "y", axis: 1, log: false },
        ctx,
      ),
    );
  return kernels;
}

describe("rows kernel variants: what the knobs change", () => {
  it("unset, nothing changes; each knob changes what it says", () => {
    const base = source({}, 12608, 768, "float16")[0];
    expect(base.source).not.toContain("tc_seg_");
    expect(base.grid[0]).toBe(1576);
    expect(source({ LANES: "16" }, 12608, 768, "float16")[0].source).toContain("16 lanes per row");
    const l8 = source({ LANES: "auto" }, 25216, 192, "float16")[0];
    expect(l8.source).toContain("8 lanes per row, 8-element (16-byte) vectors, 3 per lane");
    expect(l8.source).toContain("tc_seg_sum(s, 8)");
    expect(l8.grid[0]).toBe(25216 / 32);
    const grid = source({ GRID: "528" }, 12608, 768, "float16")[0];
    expect(grid.source).toContain("for (int it = 0; it < 3; ++it)");
    expect(grid.grid[0]).toBe(526);
    expect(source({ MINBLOCKS: "6" }, 12608, 768, "float16")[0].source).toContain(
      "__launch_bounds__(256, 6)",
    );
    const one = source({ ONEPASS: "1" }, 12608, 768, "float16")[0].source;
    expect(one).toContain("q2 += x * x");
    expect(one).not.toContain("const float d =");
    expect(source({ PRELOAD: "1" }, 12608, 768, "float16")[0].source).toMatch(/pr\d+\[23\] = \(float\)/);
  });

  it("auto lanes: about three 16-byte chunks a lane", () => {
    expect(lanesPerRow("auto", 768, 2)).toBe(32);
    expect(lanesPerRow("auto", 384, 2)).toBe(16);
    expect(lanesPerRow("auto", 192, 2)).toBe(8);
    expect(lanesPerRow("auto", 96, 2)).toBe(4);
    expect(lanesPerRow("auto", 192, 4)).toBe(16);
  });

  // bfloat16 storage is not emulated: the variants must at least compile for sm_90 (nvcc, where installed).
  it.skipIf(!hasNvcc())(
    "bf16, fp16 and fp32 variants compile for sm_90; the default and the combined knobs without spills",
    () => {
      const all: Record<string, string> = { LANES: "auto", ONEPASS: "1", GRID: "528", PRELOAD: "1" };
      const sets: Record<string, string>[] = [{}, all, { LANES: "16", MINBLOCKS: "4" }];
      const kernels = (["bfloat16", "float16", "float32"] as const).flatMap((dt, i) =>
        sets.flatMap((knobs, j) =>
          [768, 192, 96].flatMap((w, k) =>
            source(knobs, 12608, w, dt, true).map((g) => {
              const name = `${g.name}_${i}_${j}_${k}`;
              return { ...g, name, source: g.source.replace(`${g.name}(`, `${name}(`) };
            }),
          ),
        ),
      );
      const program = assembleProgram(kernels, new Set(["bfloat16", "float16"]));
      const dir = mkdtempSync(join(tmpdir(), "torchc-rows-"));
      writeFileSync(join(dir, "k.cu"), program.source);
      const r = spawnSync(
        "nvcc",
        ["-cubin", "-arch=sm_90", "--ptxas-options=-v", "-o", join(dir, "k.cubin"), join(dir, "k.cu")],
        { encoding: "utf8" },
      );
      const log = `${r.stdout}${r.stderr}`;
      expect(r.status, log).toBe(0);
      expect(log.match(/Used \d+ registers/g)?.length).toBe(kernels.length);
      // spills by entry function: none for the default and the combined knobs (`_0_`, `_1_`); 16 lanes a row with
      // 4 blocks an SM may spill at 768 (48 floats a lane under a 64-register cap), which the bench reports
      const spills = [...log.matchAll(/entry function '(\w+)'[\s\S]*?(\d+) bytes spill stores/g)]
        .filter((m) => m[2] !== "0")
        .map((m) => m[1]);
      expect(spills.filter((k) => !/_\d_2_\d$/.test(k))).toEqual([]);
    },
    300_000,
  );
});
