/**
 * `truncateDouble` (Torch-TensorRT's truncate_double): a model that computes in float64 is compiled to compute in
 * float32. float64 weights become float32, every float64 value inside the graph becomes float32, dtype arguments
 * that ask for float64 ask for float32, and the graph's interface keeps its types: a float64 input is cast to
 * float32 on entry and a float64 output cast back on exit, so callers pass and get the tensors they did before.
 * Applied before the lowering pipeline.
 */
import type { Arg, Graph, Node, TensorType, Weight } from "../ir/graph.js";
import { tensorFromNumbers, toFloat64Array } from "../ir/tensor.js";

const to32 = (t: TensorType): TensorType => (t.dtype === "float64" ? { ...t, dtype: "float32" } : t);

function castNode(name: string, output: string, from: string, dtype: "float32" | "float64"): Node {
  return {
    name,
    op: "aten._to_copy.default",
    args: { self: { kind: "tensor", name: from }, dtype: { kind: "dtype", value: dtype } },
    outputs: [output],
    meta: {},
  };
}

function renamedArgs(
  args: Readonly<Record<string, Arg>>,
  rename: ReadonlyMap<string, string>,
): Record<string, Arg> {
  const out: Record<string, Arg> = {};
  for (const [k, a] of Object.entries(args)) {
    if (a.kind === "tensor") out[k] = { kind: "tensor", name: rename.get(a.name) ?? a.name };
    else if (a.kind === "tensors")
      out[k] = { kind: "tensors", names: a.names.map((n) => (n === null ? n : (rename.get(n) ?? n))) };
    else if (a.kind === "dtype" && a.value === "float64") out[k] = { kind: "dtype", value: "float32" };
    else out[k] = a;
  }
  return out;
}

/** Whether the graph has anything in float64. */
export function hasDouble(g: Graph): boolean {
  return (
    Object.values(g.values).some((t) => t.dtype === "float64") ||
    Object.values(g.weights).some((w) => w.tensor.dtype === "float64")
  );
}

/** The graph computing in float32 wherever it computed in float64, with its inputs' and outputs' types kept. */
export function truncateDouble(g: Graph): Graph {
  if (!hasDouble(g)) return g;
  const taken = new Set([...Object.keys(g.values), ...Object.keys(g.weights), ...g.nodes.map((n) => n.name)]);
  const fresh = (base: string) => {
    let name = `${base}_f32`;
    for (let i = 1; taken.has(name); i++) name = `${base}_f32_${i}`;
    taken.add(name);
    return name;
  };
  const values: Record<string, TensorType> = {};
  for (const [name, t] of Object.entries(g.values)) values[name] = to32(t);
  const weights: Record<string, Weight> = {};
  for (const [name, w] of Object.entries(g.weights)) {
    const t = w.tensor;
    weights[name] =
      t.dtype === "float64" ? { ...w, tensor: tensorFromNumbers("float32", t.shape, toFloat64Array(t)) } : w;
  }
  const rename = new Map<string, string>();
  const nodes: Node[] = [];
  for (const x of g.inputs) {
    if (g.values[x]?.dtype !== "float64") continue;
    const inner = fresh(x);
    rename.set(x, inner);
    values[x] = g.values[x];
    values[inner] = to32(g.values[x]);
    nodes.push(castNode(inner, inner, x, "float32"));
  }
  // Outputs in float64: the node that made one now makes a float32 value, cast back at the end.
  const outRename = new Map<string, string>();
  for (const y of g.outputs) {
    if (g.values[y]?.dtype !== "float64" || g.inputs.includes(y) || outRename.has(y)) continue;
    const inner = fresh(y);
    outRename.set(y, inner);
    values[inner] = to32(g.values[y]);
    values[y] = g.values[y];
  }
  const all = new Map([...rename, ...outRename]);
  for (const n of g.nodes)
    nodes.push({
      ...n,
      args: renamedArgs(n.args, all),
      outputs: n.outputs.map((o) => outRename.get(o) ?? o),
      ...(n.subgraphs ? { subgraphs: n.subgraphs.map(truncateDouble) } : {}),
    });
  for (const [y, inner] of outRename) nodes.push(castNode(fresh(`${y}_to_float64`), y, inner, "float64"));
  return Object.freeze({ inputs: g.inputs, outputs: g.outputs, nodes, values, weights });
}
