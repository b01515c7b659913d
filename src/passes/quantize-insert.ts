// Post-training quantization as a graph edit: before every convolution and linear layer with a constant
// weight, the activation goes through quantize → dequantize with the calibrated per-tensor scale, and the
// weight is stored quantized per output channel with a dequantize in front of the layer. The result is the
// graph PyTorch's own PT2E flow (prepare_pt2e → convert_pt2e) exports, so calibrated and pre-quantized
// models take the same path from here on.
//
// int8: symmetric, zero point 0; activations in [-128, 127] at amax/127, weights in [-127, 127] at
// amax_c/127 (PT2E's symmetric weight range). fp8: E4M3 with activations at amax/448 and weights per channel
// at amax_c/448; the graph has no float8 dtype, so both are rounded to the E4M3 grid in float32 (weights at
// build time, activations by a chain of elementwise ops the engine fuses into one kernel).
import { TorchcError } from "../errors.js";
import { GraphBuilder } from "../ir/builder.js";
import type { Arg, Graph, Node, TensorType } from "../ir/graph.js";
import { numel, type Tensor, tensorFromNumbers } from "../ir/tensor.js";
import { nums } from "../ops/data.js";
import { QDQ_OPS } from "../ops/quantize.js";
import { E4M3_MAX, quantizeValue, roundToE4M3 } from "../ops/quantize-math.js";
import { inferOutputTypes } from "./op-catalogue.js";

export type QuantPrecision = "int8" | "fp8";

/** One layer whose activation input is calibrated and whose weight is quantized. */
export interface QuantSite {
  readonly node: string;
  readonly op: string;
  /** The activation the layer reads (its `input`). */
  readonly input: string;
  /** The constant weight. */
  readonly weight: string;
}

const DEQUANTIZE_OPS: ReadonlySet<string> = new Set(QDQ_OPS.dequantize);
const FP8_WEIGHT_SUFFIX = "__fp8";

const INT8_ACT = { qmin: -128, qmax: 127, levels: 127 };
const INT8_WEIGHT = { qmin: -127, qmax: 127, levels: 127 };

/** Convolutions (not transposed) and linear layers whose weight is a float32 graph constant. */
export function quantizationSites(graph: Graph): QuantSite[] {
  const sites: QuantSite[] = [];
  const producer = new Map<string, string>();
  for (const node of graph.nodes) for (const o of node.outputs) producer.set(o, node.op);
  for (const node of graph.nodes) {
    if (node.op !== "aten.convolution.default" && node.op !== "aten.linear.default") continue;
    const x = node.args.input;
    const w = node.args.weight;
    if (x?.kind !== "tensor" || w?.kind !== "tensor") continue;
    if (
      node.op === "aten.convolution.default" &&
      node.args.transposed?.kind === "bool" &&
      node.args.transposed.value
    )
      continue;
    // Already quantized: a pre-quantized (PT2E) model, or a graph this pass produced.
    if (DEQUANTIZE_OPS.has(producer.get(x.name) ?? "") || w.name.endsWith(FP8_WEIGHT_SUFFIX)) continue;
    const weight = graph.weights[w.name]?.tensor;
    if (weight?.dtype !== "float32" || graph.values[x.name]?.dtype !== "float32") continue;
    if (node.op === "aten.convolution.default" && (onePixelMaps(graph, node) || depthwise(node))) continue;
    sites.push({ node: node.name, op: node.op, input: x.name, weight: w.name });
  }
  return sites;
}

/**
 * A convolution whose every output map is one pixel (squeeze-excite's reduce and expand convolutions): it stays in
 * float. Its arithmetic is a few thousand multiply-adds per sample, so int8 saves nothing, while quantizing its
 * input adds a kernel (the pooled vector's quantize) and keeps the pooling from being folded into its producer.
 */
function onePixelMaps(graph: Graph, node: Graph["nodes"][number]): boolean {
  const shape = graph.values[node.outputs[0]]?.shape;
  return shape !== undefined && shape.length > 2 && shape.slice(2).every((d) => d === 1);
}

/**
 * A grouped convolution (depthwise: one input channel per group) stays in float: torchc has no int8 kernel for it,
 * and simulating one costs a quantize pass over its input (its kernel reads the input in loops and cannot apply
 * the rounding as it loads).
 */
function depthwise(node: Graph["nodes"][number]): boolean {
  const g = node.args.groups;
  return g?.kind === "int" && g.value > 1;
}

/** The activations calibration must observe: every site's input, once each, in graph order. */
export function calibratedValues(graph: Graph): string[] {
  return [...new Set(quantizationSites(graph).map((s) => s.input))];
}

/** Per-output-channel max |w| of a weight whose first dim is the output channel. */
export function channelAmax(w: Tensor): number[] {
  const c = w.shape[0];
  const per = numel(w.shape) / c;
  const v = nums(w);
  const out = new Array<number>(c).fill(0);
  for (let k = 0; k < c; k++)
    for (let i = k * per; i < (k + 1) * per; i++) out[k] = Math.max(out[k], Math.abs(v[i]));
  return out;
}

/** A scale that never divides by zero: an all-zero channel or tensor quantizes to zeros at any scale. */
const safeScale = (amax: number, levels: number) => (amax > 0 ? amax / levels : 1);

class QuantizedGraphBuilder {
  readonly b = new GraphBuilder();
  private readonly done = new Map<string, string>();

  constructor(
    private readonly graph: Graph,
    private readonly precision: QuantPrecision,
  ) {}

  node(op: string, args: Record<string, Arg>, hint: string, meta: Node["meta"]): string {
    const types = inferOutputTypes(op, args, (v) => this.b.typeOf(v));
    if (!types) throw new Error(`quantize-insert: ${op} is not in the op catalogue`);
    const outs = types.map((type: TensorType, i: number) => ({
      name: this.b.fresh(i ? `${hint}_${i}` : hint),
      type,
    }));
    return this.b.addNode(op, args, outs, meta, this.b.fresh(hint))[0];
  }

  /** The fake-quantized activation (shared by every layer that reads it). */
  activation(x: string, amax: number, meta: Node["meta"]): string {
    const key = `${x}`;
    const hit = this.done.get(key);
    if (hit) return hit;
    const out =
      this.precision === "int8" ? this.int8Activation(x, amax, meta) : this.fp8Activation(x, amax, meta);
    this.done.set(key, out);
    return out;
  }

  private int8Activation(x: string, amax: number, meta: Node["meta"]): string {
    const common = {
      scale: { kind: "float", value: safeScale(amax, INT8_ACT.levels) },
      zero_point: { kind: "int", value: 0 },
      quant_min: { kind: "int", value: INT8_ACT.qmin },
      quant_max: { kind: "int", value: INT8_ACT.qmax },
      dtype: { kind: "dtype", value: "int8" },
    } as const;
    const q = this.node(
      "quantized_decomposed.quantize_per_tensor.default",
      { input: T(x), ...common },
      `${x}__q`,
      meta,
    );
    return this.node(
      "quantized_decomposed.dequantize_per_tensor.default",
      { input: T(q), ...common },
      `${x}__dq`,
      meta,
    );
  }

  /**
   * x ↦ s · e4m3(clamp(x / s, ±448)) with the E4M3 rounding written as aten ops: the exponent of |y|
   * (at least −6, the subnormal range) gives the step 2^(e−3) between neighbouring E4M3 values; y is
   * rounded (half to even) to a multiple of it.
   */
  private fp8Activation(x: string, amax: number, meta: Node["meta"]): string {
    const s = safeScale(amax, E4M3_MAX);
    const n = (op: string, args: Record<string, Arg>, hint: string) =>
      this.node(op, args, `${x}__fp8_${hint}`, meta);
    const y = n("aten.mul.Tensor", { self: T(x), other: F(1 / s) }, "scaled");
    const c = n("aten.clamp.default", { self: T(y), min: F(-E4M3_MAX), max: F(E4M3_MAX) }, "clamped");
    const a = n("aten.abs.default", { self: T(c) }, "abs");
    const floor = n("aten.clamp_min.default", { self: T(a), min: F(2 ** -6) }, "normal");
    const e = n("aten.floor.default", { self: T(n("aten.log2.default", { self: T(floor) }, "log2")) }, "exp");
    const step = n(
      "aten.exp2.default",
      { self: T(n("aten.sub.Tensor", { self: T(e), other: F(3) }, "e3")) },
      "step",
    );
    const r = n(
      "aten.round.default",
      { self: T(n("aten.div.Tensor", { self: T(c), other: T(step) }, "units")) },
      "round",
    );
    const v = n("aten.mul.Tensor", { self: T(r), other: T(step) }, "e4m3");
    return n("aten.mul.Tensor", { self: T(v), other: F(s) }, "dq");
  }

  /** The weight as the layer will see it: int8 + a per-channel dequantize, or E4M3-rounded floats. */
  weight(name: string, meta: Node["meta"]): string {
    const hit = this.done.get(`w:${name}`);
    if (hit) return hit;
    const w = this.graph.weights[name].tensor;
    const amax = channelAmax(w);
    const per = numel(w.shape) / w.shape[0];
    const v = nums(w);
    let out: string;
    if (this.precision === "int8") {
      const scales = amax.map((m) => Math.fround(safeScale(m, INT8_WEIGHT.levels)));
      const q = new Array<number>(v.length);
      for (let i = 0; i < v.length; i++) {
        const s = scales[Math.floor(i / per)];
        q[i] = quantizeValue(v[i], Math.fround(1 / s), 0, INT8_WEIGHT.qmin, INT8_WEIGHT.qmax);
      }
      const qw = this.b.addConstant(`${name}__int8`, tensorFromNumbers("int8", w.shape, q));
      const sw = this.b.addConstant(`${name}__scales`, tensorFromNumbers("float32", [scales.length], scales));
      const zw = this.b.addConstant(
        `${name}__zero_points`,
        tensorFromNumbers(
          "int64",
          [scales.length],
          scales.map(() => 0),
        ),
      );
      out = this.node(
        "quantized_decomposed.dequantize_per_channel.default",
        {
          input: T(qw),
          scales: T(sw),
          zero_points: T(zw),
          axis: { kind: "int", value: 0 },
          quant_min: { kind: "int", value: INT8_WEIGHT.qmin },
          quant_max: { kind: "int", value: INT8_WEIGHT.qmax },
          dtype: { kind: "dtype", value: "int8" },
        },
        `${name}__dq`,
        meta,
      );
    } else {
      const r = new Array<number>(v.length);
      for (let i = 0; i < v.length; i++) {
        const s = safeScale(amax[Math.floor(i / per)], E4M3_MAX);
        r[i] = roundToE4M3(v[i] / s) * s;
      }
      out = this.b.addConstant(`${name}${FP8_WEIGHT_SUFFIX}`, tensorFromNumbers("float32", w.shape, r));
    }
    this.done.set(`w:${name}`, out);
    return out;
  }
}

const T = (name: string): Arg => ({ kind: "tensor", name });
const F = (value: number): Arg => ({ kind: "float", value });

/**
 * The graph with quantization around every site. `amax` holds each site input's calibrated clipping range;
 * a missing one is an error (the caller checked the cache against the graph), a zero one leaves that
 * activation unquantized (it was all zeros in the calibration data). Sites named in `keep` stay float
 * (mixed precision by sensitivity, runtime/calibration-sensitivity.ts): neither their activation nor their
 * weight is quantized, also where another site reads the same activation quantized.
 */
export function insertQuantization(
  graph: Graph,
  amax: ReadonlyMap<string, number>,
  precision: QuantPrecision,
  keep: ReadonlySet<string> = new Set(),
): Graph {
  const sites = new Map(quantizationSites(graph).map((s) => [s.node, s]));
  const qb = new QuantizedGraphBuilder(graph, precision);
  const b = qb.b;
  for (const name of graph.inputs) b.addInput(name, graph.values[name]);
  for (const [name, w] of Object.entries(graph.weights)) b.addWeight(name, w);
  for (const node of graph.nodes) {
    const site = keep.has(node.name) ? undefined : sites.get(node.name);
    let args = node.args;
    if (site) {
      const m = amax.get(site.input);
      if (m === undefined)
        throw new TorchcError(
          `quantization: no calibrated range for '${site.input}' (read by ${node.name})`,
          "calibration.missing",
        );
      const x = m > 0 && Number.isFinite(m) ? qb.activation(site.input, m, node.meta) : site.input;
      args = { ...node.args, input: T(x), weight: T(qb.weight(site.weight, node.meta)) };
    }
    b.addNode(
      node.op,
      args,
      node.outputs.map((o) => ({ name: o, type: graph.values[o] })),
      node.meta,
      node.name,
      node.subgraphs,
    );
  }
  b.setOutputs(graph.outputs);
  return b.build();
}
