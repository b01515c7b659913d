// Folds PT2E's quantized layers into torchc's own: a convolution or linear layer whose input is
// dequantize(quantize(x)) with one set of per-tensor parameters and whose weight is dequantize(int8 constant)
// becomes torchc.quantized_convolution / torchc.quantized_linear, which carries the model's scales and keeps
// the weight in int8 (src/ops/quantized-layers.ts: its reference is what int8 hardware computes). It runs
// before constant folding, which would otherwise turn the int8 weight back into floats.
import { GraphBuilder } from "../ir/builder.js";
import type { Arg, Graph, Node } from "../ir/graph.js";
import { tensorFromNumbers } from "../ir/tensor.js";
import { nums } from "../ops/data.js";
import type { Pass, PassContext } from "./pass.js";

const Q = new Set([
  "quantized_decomposed.quantize_per_tensor.default",
  "quantized_decomposed.quantize_per_tensor.tensor",
]);
const DQ_TENSOR = new Set([
  "quantized_decomposed.dequantize_per_tensor.default",
  "quantized_decomposed.dequantize_per_tensor.tensor",
]);
const DQ_CHANNEL = "quantized_decomposed.dequantize_per_channel.default";
const RULE = { name: "fold-quantized-layer" } as const;

interface PerTensor {
  readonly scale: number;
  readonly zeroPoint: number;
  readonly qmin: number;
  readonly qmax: number;
  readonly dtype: string;
}

/** A Q/DQ node's per-tensor parameters as numbers, or undefined if a `.tensor` parameter is not a constant. */
function perTensor(node: Node, graph: Graph): PerTensor | undefined {
  const num = (a: Arg | undefined): number | undefined => {
    if (a?.kind === "float" || a?.kind === "int") return Number(a.value);
    if (a?.kind === "tensor") {
      const t = graph.weights[a.name]?.tensor;
      return t && t.shape.reduce((p, d) => p * d, 1) === 1 ? nums(t)[0] : undefined;
    }
    return undefined;
  };
  const scale = num(node.args.scale);
  const zeroPoint = num(node.args.zero_point);
  const qmin = num(node.args.quant_min);
  const qmax = num(node.args.quant_max);
  const dtype = node.args.dtype?.kind === "dtype" ? node.args.dtype.value : undefined;
  if (scale === undefined || zeroPoint === undefined || qmin === undefined || qmax === undefined || !dtype)
    return undefined;
  return { scale, zeroPoint, qmin, qmax, dtype };
}

const same = (a: PerTensor, b: PerTensor) =>
  a.scale === b.scale &&
  a.zeroPoint === b.zeroPoint &&
  a.qmin === b.qmin &&
  a.qmax === b.qmax &&
  a.dtype === b.dtype;

interface Fold {
  readonly x: string;
  readonly act: PerTensor;
  readonly weight: string;
  /** Graph weights holding the per-channel scales and zero points, or numbers of a per-tensor weight. */
  readonly scales: string | number;
  readonly zeroPoints: string | number | null;
}

function foldOf(node: Node, graph: Graph, producer: ReadonlyMap<string, Node>): Fold | undefined {
  if (node.op !== "aten.convolution.default" && node.op !== "aten.linear.default") return undefined;
  if (
    node.op === "aten.convolution.default" &&
    (node.args.transposed?.kind !== "bool" || node.args.transposed.value)
  )
    return undefined;
  const inArg = node.args.input;
  const wArg = node.args.weight;
  if (inArg?.kind !== "tensor" || wArg?.kind !== "tensor") return undefined;
  const dq = producer.get(inArg.name);
  if (!dq || !DQ_TENSOR.has(dq.op) || dq.args.input?.kind !== "tensor") return undefined;
  const q = producer.get(dq.args.input.name);
  if (!q || !Q.has(q.op) || q.args.input?.kind !== "tensor") return undefined;
  const qp = perTensor(q, graph);
  const dqp = perTensor(dq, graph);
  if (!qp || !dqp || !same(qp, dqp) || (qp.dtype !== "int8" && qp.dtype !== "uint8")) return undefined;
  if (dq.args.out_dtype && dq.args.out_dtype.kind !== "none") return undefined;
  const dw = producer.get(wArg.name);
  if (dw?.args.input?.kind !== "tensor") return undefined;
  const wq = graph.weights[dw.args.input.name]?.tensor;
  if (!wq || (wq.dtype !== "int8" && wq.dtype !== "uint8")) return undefined;
  if (dw.op === DQ_CHANNEL) {
    const s = dw.args.scales;
    const z = dw.args.zero_points;
    const axis = dw.args.axis;
    if (s?.kind !== "tensor" || !graph.weights[s.name] || axis?.kind !== "int" || axis.value !== 0)
      return undefined;
    if (z?.kind === "tensor" && !graph.weights[z.name]) return undefined;
    if (dw.args.out_dtype && dw.args.out_dtype.kind !== "none") return undefined;
    return {
      x: q.args.input.name,
      act: qp,
      weight: dw.args.input.name,
      scales: s.name,
      zeroPoints: z?.kind === "tensor" ? z.name : null,
    };
  }
  if (DQ_TENSOR.has(dw.op)) {
    const wp = perTensor(dw, graph);
    if (!wp || (dw.args.out_dtype && dw.args.out_dtype.kind !== "none")) return undefined;
    return {
      x: q.args.input.name,
      act: qp,
      weight: dw.args.input.name,
      scales: wp.scale,
      zeroPoints: wp.zeroPoint,
    };
  }
  return undefined;
}

/** The graph with every foldable quantized conv/linear replaced; the Q/DQ nodes left for dead-code removal. */
export function foldQuantizedLayers(graph: Graph, ctx?: PassContext): Graph {
  const producer = new Map<string, Node>();
  for (const n of graph.nodes) for (const o of n.outputs) producer.set(o, n);
  const folds = new Map<Node, Fold>();
  for (const n of graph.nodes) {
    const f = foldOf(n, graph, producer);
    if (f) folds.set(n, f);
  }
  if (folds.size === 0) return graph;
  const b = new GraphBuilder();
  for (const name of graph.inputs) b.addInput(name, graph.values[name]);
  for (const [name, w] of Object.entries(graph.weights)) b.addWeight(name, w);
  const T = (name: string): Arg => ({ kind: "tensor", name });
  const constant = (v: string | number, dtype: "float32" | "int64", hint: string): Arg =>
    typeof v === "string" ? T(v) : T(b.addConstant(hint, tensorFromNumbers(dtype, [1], [v])));
  for (const node of graph.nodes) {
    const f = folds.get(node);
    if (!f) {
      b.addNode(
        node.op,
        node.args,
        node.outputs.map((o) => ({ name: o, type: graph.values[o] })),
        node.meta,
        node.name,
        node.subgraphs,
      );
      continue;
    }
    const args: Record<string, Arg> = {
      input: T(f.x),
      input_scale: { kind: "float", value: f.act.scale },
      input_zero_point: { kind: "int", value: f.act.zeroPoint },
      input_quant_min: { kind: "int", value: f.act.qmin },
      input_quant_max: { kind: "int", value: f.act.qmax },
      weight: T(f.weight),
      weight_scales: constant(f.scales, "float32", `${f.weight}__scale`),
      weight_zero_points:
        f.zeroPoints === null ? { kind: "none" } : constant(f.zeroPoints, "int64", `${f.weight}__zero_point`),
      bias: node.args.bias ?? { kind: "none" },
    };
    let op = "torchc.quantized_linear.default";
    if (node.op === "aten.convolution.default") {
      op = "torchc.quantized_convolution.default";
      args.stride = node.args.stride;
      args.padding = node.args.padding;
      args.dilation = node.args.dilation;
      args.groups = node.args.groups;
    }
    ctx?.trace.fired("fold-quantized-layers", RULE, node, op);
    b.addNode(
      op,
      args,
      node.outputs.map((o) => ({ name: o, type: graph.values[o] })),
      node.meta,
      node.name,
    );
  }
  b.setOutputs(graph.outputs);
  return b.build();
}

export const foldQuantizedLayersPass: Pass = Object.freeze({
  name: "fold-quantized-layers",
  doc: "dequantize(quantize(x)) → conv/linear(dequantize(int8 weight)) ⇒ torchc.quantized_convolution / _linear (int8 weight kept)",
  run: (graph: Graph, ctx: PassContext) => foldQuantizedLayers(graph, ctx),
});
