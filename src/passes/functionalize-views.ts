// In-place updates through views, made functional. torch.export's default IR keeps Python's item assignment as
// an in-place op on a view of a base tensor: torchvision's Swin builds its shifted-window mask with
//   attn_mask = x.new_zeros((H, W)); attn_mask[h0:h1, w0:w1] = count
// which exports as slice → slice → copy_(slice, value). The write lands in `attn_mask`'s memory, so every later
// read of the base (and of any other view of it) sees it. torchc's value graph only rebinds the mutated value
// itself (the slice), so without this pass the base silently keeps its old contents (Swin's mask stays zero).
//
// For every in-place node whose written value is a view (a chain of view ops from a root value), or whose written
// root has views read later, this pass emits:
//   r  = the functional op (copy_ → copy, add_ → add, …)
//   b' = where(M, index(view(r, [-1]), [P]), b)   // M, P: constants from the view chain on the root's shape
// and renames later reads of the root to b', and of every view of the root to that view re-derived from b'.
// The positions come from running the view chain on an iota tensor with the op catalogue's references, so any
// chain of static view ops works (slice, select, view, permute, transpose, squeeze, unsqueeze, split …).
import { TorchcError } from "../errors.js";
import { freezeGraph } from "../ir/frozen.js";
import type { Arg, Graph, Node, TensorType } from "../ir/graph.js";
import { formatLocation, renameNodeInputs } from "../ir/graph.js";
import { numel, type Tensor, tensorFromNumbers, toFloat64Array } from "../ir/tensor.js";
import { evaluateNode, functionalVariant, mutatedValue } from "../ops/index.js";
import type { Pass } from "./pass.js";

/** Ops whose outputs alias their `self`/`input` (value-wise: a rearrangement of some of its elements). */
export const VIEW_OPS: ReadonlySet<string> = new Set([
  "aten.slice.Tensor",
  "aten.select.int",
  "aten.narrow.default",
  "aten.view.default",
  "aten.reshape.default",
  "aten._unsafe_view.default",
  "aten.permute.default",
  "aten.transpose.int",
  "aten.t.default",
  "aten.unsqueeze.default",
  "aten.squeeze.default",
  "aten.squeeze.dim",
  "aten.squeeze.dims",
  "aten.alias.default",
  "aten.flatten.using_ints",
  "aten.unflatten.int",
  "aten.split.Tensor",
  "aten.split_with_sizes.default",
  "aten.chunk.default",
  "aten.unbind.int",
  "aten.as_strided.default",
  "aten.diagonal.default",
]);

/** The tensor argument a view op reads. */
function viewSource(node: Node): string | undefined {
  const a = node.args.self ?? node.args.input;
  return a?.kind === "tensor" ? a.name : undefined;
}

interface ViewInfo {
  /** The value that owns the memory. */
  readonly root: string;
  /** The view ops from the root to this value, each with the output index it takes. */
  readonly chain: readonly { node: Node; output: number }[];
}

/**
 * The value name a write stores everywhere in its view, when it is one value of the view's dtype: copy_ of a
 * one-element source, or fill_ of a number (made a 0-d constant). Undefined otherwise.
 */
function uniformValue(
  node: Node,
  view: TensorType,
  typeOf: (v: string) => TensorType,
  constant: (t: Tensor) => string,
): string | undefined {
  if (node.op === "aten.copy_.default" || node.op === "aten.fill_.Tensor") {
    const src = node.args.src ?? node.args.value;
    if (src?.kind !== "tensor") return undefined;
    const t = typeOf(src.name);
    return numel(t.shape) === 1 && t.dtype === view.dtype && t.shape.length <= view.shape.length
      ? src.name
      : undefined;
  }
  if (node.op === "aten.fill_.Scalar") {
    const v = node.args.value;
    if (v?.kind !== "int" && v?.kind !== "float") return undefined;
    return constant(tensorFromNumbers(view.dtype, [], [Number(v.value)]));
  }
  return undefined;
}

export function functionalizeViewMutations(
  graph: Graph,
  onChange?: (node: Node, detail: string) => void,
): Graph {
  const views = new Map<string, ViewInfo>();
  const infoOf = (v: string): ViewInfo => views.get(v) ?? { root: v, chain: [] };
  // This pass runs first on every graph: most have no in-place node at all.
  if (!graph.nodes.some((n) => mutatedValue(n) !== undefined)) return graph;
  // Does any in-place node write into a view, or into a root whose views are read after it?
  const lastRead = new Map<string, number>();
  graph.nodes.forEach((n, i) => {
    for (const a of Object.values(n.args)) {
      const names = a.kind === "tensor" ? [a.name] : a.kind === "tensors" ? a.names : [];
      for (const x of names) if (x !== null) lastRead.set(x, i);
    }
  });
  let needed = false;
  for (const [i, n] of graph.nodes.entries()) {
    if (VIEW_OPS.has(n.op)) {
      const src = viewSource(n);
      if (src !== undefined) {
        const base = infoOf(src);
        n.outputs.forEach((o, k) => {
          views.set(o, { root: base.root, chain: [...base.chain, { node: n, output: k }] });
        });
      }
    }
    const m = mutatedValue(n);
    if (m === undefined) continue;
    const root = infoOf(m).root;
    const aliases = [root, ...[...views].filter(([, v]) => v.root === root).map(([k]) => k)];
    const readLater = (v: string) => (lastRead.get(v) ?? -1) > i || graph.outputs.includes(v);
    if (aliases.some((v) => v !== m && readLater(v))) needed = true;
  }
  if (!needed) return graph;

  const values: Record<string, TensorType> = { ...graph.values };
  const weights = { ...graph.weights };
  const taken = new Set<string>([...Object.keys(values), ...graph.nodes.map((n) => n.name)]);
  const fresh = (base: string) => {
    let name = base;
    for (let i = 1; taken.has(name); i++) name = `${base}_${i}`;
    taken.add(name);
    return name;
  };
  const current = new Map<string, string>();
  const cur = (v: string) => current.get(v) ?? v;
  const out: Node[] = [];
  const liveViews = new Map<string, ViewInfo>();

  const addNode = (
    base: Node,
    op: string,
    args: Record<string, Arg>,
    type: TensorType,
    name: string,
  ): string => {
    const v = fresh(name);
    values[v] = type;
    out.push({ name: fresh(`${name}_node`), op, args, outputs: [v], meta: base.meta });
    return v;
  };
  const addConstant = (name: string, t: Tensor): string => {
    const v = fresh(name);
    values[v] = { dtype: t.dtype, shape: [...t.shape] };
    weights[v] = { kind: "constant", target: `functionalized:${name}`, tensor: t };
    return v;
  };

  /** Positions in the root (flat, row-major) of each element of the view, by running the chain on an iota. */
  const positions = (info: ViewInfo): Float64Array => {
    const rootType = values[info.root];
    let t: Tensor = tensorFromNumbers(
      "float64",
      rootType.shape,
      Array.from({ length: numel(rootType.shape) }, (_, i) => i),
    );
    for (const step of info.chain) {
      const src = viewSource(step.node) as string;
      t = evaluateNode(step.node, (name) => (name === src ? t : (undefined as never)))[step.output];
    }
    return toFloat64Array(t);
  };

  /** Re-derives a view from the root's current value by replaying its chain. */
  const rederive = (base: Node, info: ViewInfo): string => {
    let v = cur(info.root);
    for (const step of info.chain) {
      const key = step.node.args.self !== undefined ? "self" : "input";
      const args = { ...step.node.args, [key]: { kind: "tensor", name: v } as Arg };
      const type = values[step.node.outputs[step.output]];
      if (step.node.outputs.length === 1)
        v = addNode(base, step.node.op, args, type, `${step.node.outputs[0]}_fv`);
      else {
        // multi-output views (split, unbind): emit the node, take the output we need
        const outs = step.node.outputs.map((o) => {
          const n = fresh(`${o}_fv`);
          values[n] = values[o];
          return n;
        });
        out.push({
          name: fresh(`${step.node.name}_fv`),
          op: step.node.op,
          args,
          outputs: outs,
          meta: base.meta,
        });
        v = outs[step.output];
      }
    }
    return v;
  };

  for (const original of graph.nodes) {
    const node = renameNodeInputs(original, cur);
    if (VIEW_OPS.has(original.op)) {
      const src = viewSource(original);
      if (src !== undefined) {
        const base = views.get(src) ?? liveViews.get(src) ?? { root: src, chain: [] };
        original.outputs.forEach((o, k) => {
          liveViews.set(o, { root: base.root, chain: [...base.chain, { node: original, output: k }] });
        });
      }
      out.push(node);
      continue;
    }
    const m = mutatedValue(original);
    if (m === undefined) {
      out.push(node);
      continue;
    }
    const info = liveViews.get(m) ?? { root: m, chain: [] };
    const rootAliases = [...liveViews].filter(([, v]) => v.root === info.root);
    if (info.chain.length === 0 && rootAliases.length === 0) {
      out.push(node); // a plain in-place op: partition/functionalize.ts rebinds its value
      continue;
    }
    const functional = functionalVariant(original.op);
    if (!functional)
      throw new TorchcError(
        `${original.op} writes through a view and has no functional form: ${formatLocation(original)}`,
        "graph.mutation",
      );
    const result = node.outputs[0] ?? fresh(`${original.name}_out`);
    values[result] = values[m];
    out.push({ ...node, op: functional, outputs: [result, ...node.outputs.slice(1)] });
    let newRoot: string;
    const uniform =
      info.chain.length > 0
        ? uniformValue(
            node,
            values[m],
            (v) => values[v],
            (t) => addConstant(`${original.name}_value`, t),
          )
        : undefined;
    if (info.chain.length === 0) newRoot = result;
    else if (numel(values[m].shape) === 0)
      newRoot = cur(info.root); // an empty view writes nothing
    else if (uniform !== undefined) {
      // one value written everywhere (copy_ of a one-element source, fill_): where(M, value, root), the value
      // broadcast, so a mask built from constants (Swin's) folds to a constant
      const rootType = values[info.root];
      const mask = new Float64Array(numel(rootType.shape));
      for (const p of positions(info)) mask[p] = 1;
      const maskC = addConstant(`${info.root}_written`, tensorFromNumbers("bool", rootType.shape, mask));
      newRoot = addNode(
        original,
        "aten.where.self",
        {
          condition: { kind: "tensor", name: maskC },
          self: { kind: "tensor", name: uniform },
          other: { kind: "tensor", name: cur(info.root) },
        },
        rootType,
        `${info.root}_updated`,
      );
    } else {
      const rootType = values[info.root];
      const n = numel(rootType.shape);
      const pos = positions(info);
      const mask = new Float64Array(n);
      const inv = new Float64Array(n);
      pos.forEach((p, k) => {
        mask[p] = 1;
        inv[p] = k;
      });
      const maskC = addConstant(`${info.root}_written`, tensorFromNumbers("bool", rootType.shape, mask));
      const invC = addConstant(`${info.root}_from`, tensorFromNumbers("int64", rootType.shape, inv));
      const flat = addNode(
        original,
        "aten.view.default",
        { self: { kind: "tensor", name: result }, size: { kind: "ints", value: [pos.length] } },
        { dtype: values[m].dtype, shape: [pos.length] },
        `${result}_flat`,
      );
      const scattered = addNode(
        original,
        "aten.index.Tensor",
        { self: { kind: "tensor", name: flat }, indices: { kind: "tensors", names: [invC] } },
        { dtype: values[m].dtype, shape: rootType.shape },
        `${result}_scattered`,
      );
      newRoot = addNode(
        original,
        "aten.where.self",
        {
          condition: { kind: "tensor", name: maskC },
          self: { kind: "tensor", name: scattered },
          other: { kind: "tensor", name: cur(info.root) },
        },
        rootType,
        `${info.root}_updated`,
      );
    }
    current.set(info.root, newRoot);
    // every view of the root (the written one included) now reads the updated root
    for (const [v, vi] of rootAliases)
      current.set(v, v === m && info.chain.length > 0 ? result : rederive(original, vi));
    if (info.chain.length > 0) current.set(m, result);
    for (const o of original.outputs) if (o !== result) current.set(o, result);
    current.set(original.outputs[0] ?? result, result);
    onChange?.(
      original,
      `${original.op} through ${info.chain.map((s) => s.node.op.split(".")[1]).join(" → ") || "its root"} of '${info.root}'`,
    );
  }
  return freezeGraph({
    inputs: graph.inputs,
    outputs: graph.outputs.map(cur),
    nodes: out,
    values,
    weights,
  });
}

export const functionalizeViews: Pass = Object.freeze({
  name: "functionalize-view-mutations",
  doc: "in-place writes through views (x[a:b] = v) update the base and its other views (where + constant index maps)",
  run: (
    graph: Graph,
    ctx: { trace: { fired: (pass: string, rule: { name: string }, node: Node, detail?: string) => void } },
  ) =>
    functionalizeViewMutations(graph, (node, detail) =>
      ctx.trace.fired("functionalize-view-mutations", { name: "write-through-view" }, node, detail),
    ),
});
