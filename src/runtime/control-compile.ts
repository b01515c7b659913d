/**
 * How compile() builds the blocks of control-flow segments (control-runner.ts) and reports them. Each block is
 * compiled as a model of its own with the enclosing module's options, so its straight-line parts become engines
 * of the same backend kind and the rest its fallback.
 */
import { TorchcError } from "../errors.js";
import type { Graph, Node, Weight } from "../ir/graph.js";
import { tensorBytes } from "../ir/tensor.js";
import type { CompiledModule } from "./compile.js";
import type { CompileBlock, ControlRunner } from "./control-runner.js";
import { isControlRunner } from "./control-runner.js";
import type { CompileOptions } from "./options.js";
import type { Backend, SegmentRunner } from "./segment-runner.js";

type Compile = (graph: Graph, options: CompileOptions) => Promise<CompiledModule>;

/**
 * Options for a block: the module's, less what names the module's own inputs or saved engines (input shapes, a
 * batch range, package artifacts keyed by the module's segment indices), calibration and verification.
 */
export function blockOptions(options: CompileOptions): CompileOptions {
  const {
    inputs: _inputs,
    dynamic: _dynamic,
    artifacts: _artifacts,
    calibration: _calibration,
    verify: _verify,
    backend,
    ...rest
  } = options;
  return {
    ...rest,
    // A block is small (a branch is often two or three nodes); under the default minBlockSize a whole branch
    // that converts would run in the fallback. An explicit minBlockSize still holds.
    minBlockSize: options.minBlockSize ?? 1,
    // `passes` is kept: a loaded package's `passes: []` reaches its blocks too, which it saved already lowered
    // (savedControlGraph below), so they are built as the saved module's were.
    // A backend object is shared; the block's module must not dispose it. A named one is opened per block, so
    // its engines' recorded choices never mix with the module's (they are keyed by segment index).
    ...(backend === undefined ? {} : { backend: typeof backend === "string" ? backend : borrowed(backend) }),
  };
}

function borrowed(backend: Backend): Backend {
  return Object.create(backend, { dispose: { value: undefined } }) as Backend;
}

export function blockCompiler(compile: Compile, options: CompileOptions): CompileBlock {
  const opts = blockOptions(options);
  return (graph) => compile(graph, opts);
}

/** The compile report's line on control flow, if the module has any. */
export function controlFlowSummary(runners: readonly SegmentRunner[]): string[] {
  const control = runners.filter(isControlRunner);
  if (control.length === 0) return [];
  const ifs = control.filter((r) => r.op === "if").length;
  const loops = control.length - ifs;
  const parts = [ifs > 0 ? `${ifs} if` : "", loops > 0 ? `${loops} loop${loops === 1 ? "" : "s"}` : ""];
  const what = [ifs > 0 ? "branches" : "", loops > 0 ? "loop bodies" : ""].filter(Boolean).join(" and ");
  return [
    `control flow: ${parts.filter(Boolean).join(", ")}, ${what} compiled separately (each engine keeps its own ` +
      "CUDA graph; the module is not one graph, and each predicate is read back to the host)",
    ...control.map((r) => `  segment ${r.segment.index}: ${r.description}`),
  ];
}

/**
 * The graph a package saves for a module: each control node's blocks replaced by the blocks its runner compiled,
 * as they were after lowering (precision assignment included), their own control nodes likewise. A loaded
 * package compiles with no passes, so its blocks are then built from exactly what the saved module ran: the
 * same outputs, with no lowering on load. `blockGraph(m)` gives a block module's own saved graph (recursion).
 */
export function savedControlGraph(
  graph: Graph,
  runners: readonly SegmentRunner[],
  blockGraph: (m: CompiledModule) => Graph,
): Graph {
  const byNode = new Map<string, ControlRunner>();
  for (const r of runners) if (isControlRunner(r)) byNode.set(r.node.name, r);
  if (byNode.size === 0) return graph;
  const nodes = graph.nodes.map((n): Node => {
    const r = byNode.get(n.name);
    if (!r || !n.subgraphs) return n;
    const subgraphs = r.modules.map((m, i) => openBlock(blockGraph(m), r.blocks[i].captured, graph, n));
    return Object.freeze({ ...n, subgraphs: Object.freeze(subgraphs) });
  });
  return Object.freeze({ ...graph, nodes: Object.freeze(nodes) });
}

/**
 * A compiled (closed) block opened again, as control-blocks.ts's closeBlock takes it: the values it captured
 * from the enclosing graph are no longer inputs, and of its weights it keeps those that are its own (the
 * enclosing graph's, unchanged by the block's lowering, are read from there again).
 */
function openBlock(lowered: Graph, captured: readonly string[], outer: Graph, node: Node): Graph {
  const own = lowered.inputs.length - captured.length;
  if (own < 0 || captured.some((n, k) => lowered.inputs[own + k] !== n))
    throw new TorchcError(
      `cannot save ${node.op} '${node.name}': its compiled block's inputs (${lowered.inputs.join(", ")}) do not end with the values it captured (${captured.join(", ")})`,
      "runtime.control-save",
    );
  const weights: Record<string, Weight> = {};
  for (const [name, w] of Object.entries(lowered.weights)) {
    const o = outer.weights[name];
    if (!o || !sameTensor(o, w)) weights[name] = w;
  }
  return Object.freeze({
    inputs: Object.freeze(lowered.inputs.slice(0, own)),
    outputs: lowered.outputs,
    nodes: lowered.nodes,
    values: lowered.values,
    weights: Object.freeze(weights),
  });
}

function sameTensor(a: Weight, b: Weight): boolean {
  const x = a.tensor;
  const y = b.tensor;
  if (x === y) return true;
  if (x.dtype !== y.dtype || x.shape.length !== y.shape.length || x.shape.some((d, i) => d !== y.shape[i]))
    return false;
  return Buffer.from(tensorBytes(x)).equals(tensorBytes(y));
}
