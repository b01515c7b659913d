import {
  buildRegistry,
  convertGraph,
  DEFAULT_REGISTRY,
  graphContext,
  selectConverter,
} from "../../src/converters/index.js";
import type { AnyCandidate } from "../../src/converters/types.js";
import { GraphBuilder } from "../../src/ir/builder.js";
import type { DType } from "../../src/ir/dtype.js";
import { isFloating } from "../../src/ir/dtype.js";
import type { Arg, Graph, Node } from "../../src/ir/graph.js";
import { type Tensor, tensorFromNumbers, toFloat64Array } from "../../src/ir/tensor.js";
import { formatNetwork } from "../../src/network/printer.js";
import { runNetworkReference } from "../../src/network/reference/index.js";
import { verifyNetwork } from "../../src/network/verify.js";
import { evaluateNode, getOp, type OpName } from "../../src/ops/index.js";

/** A tensor of a case: plain numbers, so failing cases print as JSON and can be pasted into regressions.ts. */
export interface TensorSpec {
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly data: readonly number[];
  /** A graph weight (constant at build time) instead of a graph input. */
  readonly weight?: boolean;
}

/** One aten node with its operands: the unit every converter property draws. */
export interface OpCase {
  readonly op: OpName;
  readonly args: Readonly<Record<string, Arg>>;
  readonly tensors: Readonly<Record<string, TensorSpec>>;
  /** Output positions nothing reads (e.g. the indices of max_pool2d_with_indices). */
  readonly unusedOutputs?: readonly number[];
}

export function toTensor(t: TensorSpec): Tensor {
  return tensorFromNumbers(t.dtype, t.shape, t.data);
}

export function oneNodeGraph(c: OpCase): { graph: Graph; node: Node } {
  const b = new GraphBuilder();
  for (const [name, t] of Object.entries(c.tensors)) {
    if (t.weight) b.addWeight(name, { kind: "parameter", target: name, tensor: toTensor(t) });
    else b.addInput(name, { dtype: t.dtype, shape: t.shape });
  }
  const def = getOp(c.op);
  if (!def) throw new Error(`${c.op} is not in the op catalogue`);
  const types = def.infer(def.parse(c.args), (v) => b.typeOf(v));
  const outs = types.map((type, i) => ({ name: `out${i}`, type }));
  b.addNode(c.op, c.args, outs, {}, "node");
  const unused = new Set(c.unusedOutputs ?? []);
  b.setOutputs(outs.filter((_, i) => !unused.has(i)).map((o) => o.name));
  const graph = b.build();
  return { graph, node: graph.nodes[0] };
}

const RTOL: Partial<Record<DType, number>> = {
  float32: 1e-5,
  float64: 1e-5,
  float16: 2e-3,
  bfloat16: 1.6e-2,
};

/**
 * Float results agree when |a − e| ≤ rtol·(|e| + scale), scale being the largest |e| of the tensor (or a
 * larger `minScale`): relative to each element, with slack for elements that cancel to near zero. Integers
 * and bools must be equal.
 */
export function assertClose(actual: Tensor, expected: Tensor, what: string, minScale = 0): void {
  if (actual.dtype !== expected.dtype)
    throw new Error(`${what}: dtype ${actual.dtype}, expected ${expected.dtype}`);
  if (actual.shape.join() !== expected.shape.join())
    throw new Error(`${what}: shape [${actual.shape}], expected [${expected.shape}]`);
  const a = toFloat64Array(actual);
  const e = toFloat64Array(expected);
  const float = isFloating(expected.dtype);
  const rtol = RTOL[expected.dtype] ?? 0;
  let scale = minScale;
  for (const v of e) if (Number.isFinite(v)) scale = Math.max(scale, Math.abs(v));
  for (let i = 0; i < e.length; i++) {
    if (Object.is(a[i], e[i]) || a[i] === e[i]) continue;
    if (float && Number.isNaN(a[i]) && Number.isNaN(e[i])) continue;
    const ok = float && Number.isFinite(e[i]) && Math.abs(a[i] - e[i]) <= rtol * (Math.abs(e[i]) + scale);
    if (!ok)
      throw new Error(`${what}: element ${i} is ${a[i]}, expected ${e[i]} (rtol ${rtol}, scale ${scale})`);
  }
}

export function candidate(op: string, name: string): AnyCandidate {
  const c = DEFAULT_REGISTRY.byOp.get(op)?.find((x) => x.name === name);
  if (!c) throw new Error(`no converter '${name}' for ${op}`);
  return c;
}

/**
 * Converts the case's node with one named candidate, runs the network on the layer reference and compares
 * every output with the aten reference. Throws with the network printed when they disagree.
 */
export interface CheckOptions {
  /**
   * Measure errors against the inputs' magnitude too. For converters that decompose an op into several fp32
   * layers (folded batch norm, variance, addmm), where an fp32 engine loses digits to cancellation that the
   * single float64 reference does not: error ≈ ε·|inputs|, however small the result. A function gives the
   * scale itself, for ops whose conditioning amplifies that error (batch statistics: ε·|x|·|w|/√(var + eps)).
   */
  readonly inputScaled?: boolean | ((c: OpCase) => number);
}

/** The largest finite |value| over the case's floating-point tensors. */
export function inputScale(c: OpCase): number {
  let m = 0;
  for (const t of Object.values(c.tensors))
    if (isFloating(t.dtype)) for (const v of t.data) if (Number.isFinite(v)) m = Math.max(m, Math.abs(v));
  return m;
}

export function checkCase(c: OpCase, converterName: string, options: CheckOptions = {}): void {
  const { graph, node } = oneNodeGraph(c);
  const registry = buildRegistry([candidate(c.op, converterName)]);
  const sel = selectConverter(registry, node, graphContext(graph));
  if (!sel.ok) throw new Error(`case outside the domain of '${converterName}': ${sel.reason}`);
  const network = verifyNetwork(convertGraph(graph, { registry }));
  const inputs: Record<string, Tensor> = {};
  for (const name of graph.inputs) inputs[name] = toTensor(c.tensors[name]);
  const actual = runNetworkReference(network, inputs);
  const values = new Map<string, Tensor>(Object.entries(inputs));
  for (const [k, w] of Object.entries(graph.weights)) values.set(k, w.tensor);
  const expected = evaluateNode(node, (v) => values.get(v)!);
  graph.outputs.forEach((o, i) => {
    const e = expected[Number(o.slice(3))];
    try {
      const scaled = options.inputScaled;
      const minScale = typeof scaled === "function" ? scaled(c) : scaled ? inputScale(c) : 0;
      assertClose(actual[i], e, `output ${o}`, minScale);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${formatNetwork(network)}`);
    }
  });
}
