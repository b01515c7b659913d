// The register path of the warp-per-row rows kernels (codegen/rows-warp.ts): ≥ 2048 rows whose row is contiguous and
// a multiple of 16 bytes are read once with 16-byte loads, their statistics computed from registers, and written with
// 16-byte stores. The emulator runs the generated kernels on the host (warp shuffles through its shim), and the
// results are checked against the aten reference interpreter; rows that are not a whole number of 16-byte vectors
// keep the scalar loops.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { CodegenContext } from "../../../src/backends/cuda/codegen/element.js";
import { generateNormalizationKernel } from "../../../src/backends/cuda/codegen/rows.js";
import type { Step } from "../../../src/backends/cuda/fuse/steps.js";
import type { TensorInfo } from "../../../src/backends/cuda/plan/tensors.js";
import { convertGraph } from "../../../src/converters/index.js";
import type { Graph } from "../../../src/ir/graph.js";
import type { Tensor } from "../../../src/ir/tensor.js";
import type { NormalizationLayer } from "../../../src/network/layers/normalization.js";
import { interpret } from "../../../src/ops/index.js";
import { defaultPipeline, runPipeline } from "../../../src/passes/pipeline.js";
import { compareTensors } from "../../../src/util/compare.js";
import { inputsFor } from "../../passes/graphs.js";
import { AtenGraph, F, I, Is } from "./aten-graph.js";
import { emulateEngine, hasGxx } from "./emulate.js";

/** Just above the warp-per-row threshold (rows.ts MANY_ROWS = 2048), and not a multiple of the 8 rows per block. */
const N = 2052;
const MARK = "rows: register path";

function lower(graph: Graph, precision: "fp32" | "fp16") {
  const p = precision === "fp16" ? "float16" : "float32";
  return runPipeline(graph, defaultPipeline({ enabledPrecisions: [p] })).graph;
}

type Precision = "fp32" | "fp16";

/**
 * Emulates `graph`: returns the rows kernels' sources and every output's relative error against the aten reference,
 * and expects every tensor the rows steps write to match the same steps run as their layers' reference on the same
 * operands (the emulator's `cooperative: false`), which sees a kernel's error undiluted by the layers after it.
 */
function run(graph: Graph, precision: Precision) {
  const lowered = lower(graph, precision);
  const inputs = inputsFor(graph, 5);
  const named = Object.fromEntries(lowered.inputs.map((n, i) => [n, inputs[i]]));
  const emulate = (cooperative: boolean) => {
    const byStep: ReadonlyMap<string, Tensor>[] = [];
    const { plan, outputs } = emulateEngine(convertGraph(lowered), named, {
      precision,
      cooperative,
      onStep: (i, _, w) => {
        byStep[i] = w;
      },
    });
    const written = new Map(plan.steps.flatMap((st, i) => (isRows(st) ? [...byStep[i]] : [])));
    return { plan, outputs, written };
  };
  const { plan, outputs, written } = emulate(true);
  const reference = emulate(false).written;
  const want = interpret(graph, inputs);
  const rows = plan.steps.flatMap((s, i) => (isRows(s) ? [plan.kernels[i]?.source ?? ""] : []));
  // fp16 plans: the two differ by fp16 roundings (an ulp is 2^-11 relative), of the stored value and, where the
  // layer's logical dtype is float16 and its kernel keeps float32 values into the cast after it, of the layer's value
  expect(written.size).toBeGreaterThan(0);
  for (const [t, v] of written) {
    const half = precision === "fp16" || plan.infos.get(t)?.storage === "float16";
    expect(compareTensors(v, reference.get(t)!).relative, t).toBeLessThan(half ? 2e-3 : 1e-5);
  }
  return { rows, errors: outputs.map((o, i) => compareTensors(o, want[i]).relative), plan };
}

const isRows = (s: Step | undefined) => s?.kind === "normalization" || s?.kind === "softmax";

/** Features of the graph inputs: linear layers make the norm's operands and read its result (fp16 in an fp16 plan). */
const K = 16;

/** linear → [residual add of a second linear] → layer norm → linear; with `residual`, the sum is read again after. */
function layerNorm(width: number, opts: { affine?: boolean; residual?: boolean } = {}): Graph {
  const g = new AtenGraph();
  const x = g.input("x", [N, K]);
  // rows whose mean is far from 0 (a bias of 1…3), so that the statistics' errors show
  const proj = (name: string, src: string, out: number, inp: number) =>
    g.node("aten.linear.default", {
      input: src,
      weight: g.weight(name, [out, inp], { lo: -0.5, hi: 0.5 }),
      bias: g.weight(`${name}_b`, [out], { lo: 1, hi: 3 }),
    });
  let s = proj("wa", x, width, K);
  let sum: string | undefined;
  if (opts.residual) {
    sum = g.node("aten.add.Tensor", { self: s, other: proj("wb", x, width, K) });
    s = sum;
  }
  const affine: Record<string, string> =
    opts.affine === false
      ? {}
      : { weight: g.weight("w", [width], { lo: 0.5, hi: 1.5 }), bias: g.weight("b", [width]) };
  const y = g.node("aten.layer_norm.default", {
    input: s,
    normalized_shape: Is([width]),
    ...affine,
    eps: F(1e-5),
  });
  const out = proj("wo", y, K, width);
  // the residual sum is read after the norm too: the norm kernel stores it (RowsFusion.stores)
  if (sum) return g.build(out, proj("wr", sum, K, width));
  return g.build(out);
}

/** The norm's kernel moves only storage of `precision` (fp16 plan: halves in, halves out, as in a ViT block). */
function expectStorage(source: string, precision: Precision) {
  const params = /__launch_bounds__\(\d+\) \w+\(([^)]*)\)/.exec(source)?.[1] ?? "";
  for (const p of params.split(", "))
    expect(
      p.startsWith(precision === "fp16" ? "const __half*" : "const float*") ||
        p.startsWith(precision === "fp16" ? "__half*" : "float*"),
      p,
    ).toBe(true);
}

const tolerance = (p: Precision) => (p === "fp32" ? 1e-5 : 1e-2);

// The register path is the default; the tests pin it on in case the environment turned it off. The residual add
// stays in the norm's prologue (these blocks are large enough for the matmul epilogue to take it by default).
beforeEach(() => {
  process.env.TORCHC_ROWS_VECTOR = "1";
  process.env.TORCHC_GEMM_RESIDUAL = "0";
});

afterEach(() => {
  delete process.env.TORCHC_ROWS_VECTOR;
  delete process.env.TORCHC_GEMM_RESIDUAL;
});

describe.skipIf(!hasGxx())("rows kernels: the warp register path, emulated", () => {
  for (const precision of ["fp16", "fp32"] as const)
    for (const width of [768, 192])
      it(`layer norm [${N}, ${width}] ${precision}: 16-byte vectors, the reference's numbers`, () => {
        const { rows, errors } = run(layerNorm(width), precision);
        expect(rows).toHaveLength(1);
        expect(rows[0]).toContain(MARK);
        expect(rows[0]).toContain("uint4");
        expect(rows[0]).toContain(`${precision === "fp16" ? 8 : 4}-element (16-byte) vectors`);
        expectStorage(rows[0], precision);
        expect(errors[0]).toBeLessThan(tolerance(precision));
      }, 120_000);

  it("layer norm without weight and bias, fp16", () => {
    const { rows, errors } = run(layerNorm(768, { affine: false }), "fp16");
    expect(rows[0]).toContain(MARK);
    expect(errors[0]).toBeLessThan(1e-2);
  }, 120_000);

  for (const precision of ["fp16", "fp32"] as const)
    it(`layer norm of a residual sum ${precision}: the add fused, the sum stored with wide stores`, () => {
      const { rows, errors, plan } = run(layerNorm(768, { residual: true }), precision);
      const norm = plan.steps.find((s) => s.kind === "normalization");
      expect(norm?.prologue?.length, plan.summary.join("\n")).toBeGreaterThan(0);
      expect(norm?.stores?.length, plan.summary.join("\n")).toBe(1);
      expect(rows[0]).toContain(MARK);
      expectStorage(rows[0], precision);
      // per chunk: two inputs, the weight and the bias loaded, the sum and the result stored, 16 bytes at a time
      const chunks = precision === "fp16" ? 3 : 6;
      expect(rows[0].match(/reinterpret_cast<const uint4\*>\(p/g)?.length).toBe(4 * chunks);
      expect(rows[0].match(/reinterpret_cast<uint4\*>\(p/g)?.length).toBe(2 * chunks);
      for (const err of errors) expect(err).toBeLessThan(tolerance(precision));
    }, 120_000);

  it("fp32 plan, a cast to fp16 after the norm: fp16 stores, fp32 loads of 32 bytes, 8 lanes", () => {
    const g = new AtenGraph();
    const x = g.input("x", [N, 256]);
    const y = g.node("aten.layer_norm.default", {
      input: x,
      normalized_shape: Is([256]),
      weight: g.weight("w", [256], { lo: 0.5, hi: 1.5 }),
      bias: g.weight("b", [256]),
      eps: F(1e-5),
    });
    const h = g.node("aten._to_copy.default", { self: y, dtype: { kind: "dtype", value: "float16" } });
    const { rows, errors, plan } = run(g.build(h), "fp32");
    const norm = plan.steps.find((s) => s.kind === "normalization");
    expect(norm?.epilogue?.map((l) => l.type)).toEqual(["cast"]);
    expect(rows[0]).toContain(`${MARK}, a warp per row, 8-element`);
    expect(errors[0]).toBeLessThan(1e-3);
  }, 120_000);

  it("RMS norm [N, 256] fp16: the register path, no mean pass", () => {
    const g = new AtenGraph();
    const x = g.input("x", [N, 256]);
    const y = g.node("aten.rms_norm.default", {
      input: x,
      normalized_shape: Is([256]),
      weight: g.weight("w", [256], { lo: 0.5, hi: 1.5 }),
      eps: F(1e-6),
    });
    const { rows, errors } = run(g.build(y), "fp16");
    expect(rows).toHaveLength(1);
    expect(rows[0]).toContain(MARK);
    expect(rows[0]).not.toContain("sum_w");
    expect(errors[0]).toBeLessThan(1e-2);
  }, 120_000);

  for (const log of [false, true])
    it(`${log ? "log_softmax" : "softmax"} [${N}, 128] fp16: the register path`, () => {
      const g = new AtenGraph();
      const x = g.input("x", [N, 128]);
      const op = log ? "aten._log_softmax.default" : "aten._softmax.default";
      const y = g.node(op, { self: x, dim: I(-1), half_to_float: { kind: "bool", value: false } });
      const { rows, errors } = run(g.build(y), "fp16");
      expect(rows).toHaveLength(1);
      expect(rows[0]).toContain(MARK);
      expect(errors[0]).toBeLessThan(1e-2);
    }, 120_000);

  it("rows that are not a whole number of 16-byte vectors keep the scalar loops", () => {
    // 100 halves: 12.5 vectors
    const { rows, errors } = run(layerNorm(100), "fp16");
    expect(rows).toHaveLength(1);
    expect(rows[0]).not.toContain(MARK);
    expect(rows[0]).toContain("tc_warp_sum");
    expect(errors[0]).toBeLessThan(1e-2);
  }, 120_000);

  it("is on when TORCHC_ROWS_VECTOR is unset; TORCHC_ROWS_VECTOR=0 keeps the scalar loops, with the same numbers", () => {
    delete process.env.TORCHC_ROWS_VECTOR;
    expect(run(layerNorm(192, { residual: true }), "fp16").rows[0]).toContain(MARK);
    process.env.TORCHC_ROWS_VECTOR = "0";
    const { rows, errors } = run(layerNorm(192, { residual: true }), "fp16");
    expect(rows[0]).not.toContain(MARK);
    for (const err of errors) expect(err).toBeLessThan(1e-2);
  }, 240_000);
});

describe("rows kernels: when the register path applies", () => {
  const layer: NormalizationLayer = {
    type: "normalization",
    name: "ln",
    inputs: ["x", "w", "b"],
    output: "y",
    kind: "layer",
    beginAxis: 1,
    epsilon: 1e-5,
  };
  /** A norm over x [rows, width] fp16, x with `view`'s strides and offset (a strided view into a wider tensor). */
  function source(
    rows: number,
    width: number,
    view: { strides?: number[]; offset?: number } = {},
    kind: NormalizationLayer["kind"] = "layer",
  ) {
    const info = (name: string, shape: number[], extra: Partial<TensorInfo> = {}): TensorInfo => ({
      name,
      shape,
      logicalDType: "float16",
      storage: "float16",
      layout: shape.map((_, i) => i),
      role: "activation",
      ...extra,
    });
    const infos = new Map<string, TensorInfo>([
      ["x", info("x", [rows, width], { ...view, viewOf: view.strides ? "root" : undefined })],
      ["w", info("w", [width], { role: "constant" })],
      ["b", info("b", [width], { role: "constant" })],
      ["y", info("y", [rows, width])],
    ]);
    const ctx: CodegenContext = { info: (t) => infos.get(t)!, scalarConstant: () => undefined };
    const l = (
      kind === "group" ? { ...layer, kind, numGroups: 1 } : { ...layer, kind }
    ) as NormalizationLayer;
    return generateNormalizationKernel("k", l, ctx).source;
  }

  it("a warp per row over contiguous rows of whole vectors, layer norm and RMS norm", () => {
    expect(source(12608, 768)).toContain(`${MARK}, a warp per row, 8-element (16-byte) vectors, 3 per lane`);
    expect(source(12608, 192)).toContain(`${MARK}, a warp per row, 8-element (16-byte) vectors, 1 per lane`);
    expect(source(12608, 1024, {}, "rms")).toContain("4 per lane");
    // a row pitch of whole vectors, offset by whole vectors: still 16-byte aligned
    expect(source(4096, 768, { strides: [776, 1], offset: 8 })).toContain(MARK);
  });

  it("keeps the scalar loops where 16-byte alignment or contiguity is not certain", () => {
    // rows that start 8 bytes past a 16-byte boundary
    expect(source(4096, 768, { strides: [768, 1], offset: 4 })).not.toContain(MARK);
    expect(source(4096, 768, { strides: [772, 1] })).not.toContain(MARK);
    // the row not along memory (its elements 4096 apart)
    expect(source(4096, 768, { strides: [1, 4096] })).not.toContain(MARK);
    // few rows: a block per row; long rows: more than a warp's 32 registers a lane
    expect(source(64, 768)).not.toContain(MARK);
    expect(source(4096, 2048)).not.toContain(MARK);
    expect(source(4096, 100)).not.toContain(MARK);
  });
});
