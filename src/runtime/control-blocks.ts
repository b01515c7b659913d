/**
 * The blocks of a control-flow node (`prim.If`: then, else; `prim.Loop`: body) as standalone graphs, so each
 * can be compiled like a model of its own. A block reads outer values by name; closed, those become inputs
 * after the block's own (the outer graph's weights become the block's weights), and its types are checked
 * against the node's before anything is built.
 */
import { TorchcError } from "../errors.js";
import type { Graph, Node, TensorType, Weight } from "../ir/graph.js";
import { formatLocation } from "../ir/graph.js";
import { formatType } from "../ir/printer.js";
import { nodeReads } from "../ir/reads.js";

/** A block closed over what it reads from the enclosing graph. */
export interface ClosedBlock {
  readonly graph: Graph;
  /** Inputs it takes from the enclosing graph, after the block's own (a loop body's iteration and carried values). */
  readonly captured: readonly string[];
}

export type ControlOp = "if" | "loop";

export function controlOp(node: Node): ControlOp {
  if (node.op === "prim.If") return "if";
  if (node.op === "prim.Loop") return "loop";
  throw new TorchcError(`${node.op} is not a control-flow op: ${formatLocation(node)}`, "graph.control-flow");
}

/** Names a block reads but neither takes as input nor defines. */
function freeNames(block: Graph): string[] {
  const defined = new Set<string>([...block.inputs, ...Object.keys(block.weights)]);
  const free: string[] = [];
  const use = (n: string) => {
    if (n !== "" && !defined.has(n) && !free.includes(n)) free.push(n);
  };
  for (const node of block.nodes) {
    for (const n of nodeReads(node)) use(n);
    for (const o of node.outputs) defined.add(o);
  }
  for (const o of block.outputs) use(o);
  return free;
}

export function closeBlock(outer: Graph, node: Node, block: Graph): ClosedBlock {
  const free = freeNames(block);
  const captured = free.filter((n) => !(n in outer.weights));
  const weights: Record<string, Weight> = { ...block.weights };
  const values: Record<string, TensorType> = { ...block.values };
  for (const n of free) {
    const t = outer.values[n] ?? outer.weights[n]?.tensor;
    if (!t)
      throw new TorchcError(
        `${node.op} reads '${n}', which the enclosing graph does not define: ${formatLocation(node)}`,
        "graph.control-flow",
      );
    values[n] = { dtype: t.dtype, shape: t.shape };
    if (n in outer.weights) weights[n] = outer.weights[n];
  }
  const graph: Graph = Object.freeze({
    inputs: Object.freeze([...block.inputs, ...captured]),
    outputs: block.outputs,
    nodes: block.nodes,
    values: Object.freeze(values),
    weights: Object.freeze(weights),
  });
  return { graph, captured };
}

const same = (a: TensorType | undefined, b: TensorType | undefined) =>
  a !== undefined &&
  b !== undefined &&
  a.dtype === b.dtype &&
  a.shape.length === b.shape.length &&
  a.shape.every((d, i) => d === b.shape[i]);

function refuse(node: Node, what: string): never {
  throw new TorchcError(
    `${formatLocation(node)}: ${what} (each block is compiled for fixed types, so they must agree)`,
    "graph.control-flow",
  );
}

const typeText = (t: TensorType | undefined) => (t ? formatType(t) : "unknown");

/**
 * Refuses an `if` whose branches give different types (or a loop whose body changes a carried value's type):
 * each block is compiled for fixed buffers, so the node's outputs must have one type whichever block ran.
 */
export function checkBlockTypes(outer: Graph, node: Node, blocks: readonly ClosedBlock[]): void {
  const outTypes = node.outputs.map((o) => outer.values[o]);
  if (controlOp(node) === "if") {
    const [a, b] = blocks.map((k) => k.graph);
    if (!a || !b) refuse(node, `it has ${blocks.length} block(s), not two`);
    if (a.outputs.length !== b.outputs.length)
      refuse(
        node,
        `the then-branch gives ${a.outputs.length} values and the else-branch ${b.outputs.length}`,
      );
    a.outputs.forEach((o, i) => {
      const ta = a.values[o];
      const tb = b.values[b.outputs[i]];
      if (!same(ta, tb))
        refuse(
          node,
          `output ${i} is ${typeText(ta)} in the then-branch and ${typeText(tb)} in the else-branch`,
        );
      if (outTypes[i] && !same(ta, outTypes[i]))
        refuse(
          node,
          `output ${i} is ${typeText(ta)} in the branches but ${typeText(outTypes[i])} after the if`,
        );
    });
    return;
  }
  const body = blocks[0]?.graph;
  if (!body) refuse(node, "it has no body");
  const init = node.args.init;
  const initNames = init?.kind === "tensors" ? init.names : init?.kind === "tensor" ? [init.name] : [];
  if (body.outputs.length !== initNames.length + 1 || body.inputs.length < initNames.length + 1)
    refuse(node, `the body gives ${body.outputs.length} values for ${initNames.length} carried`);
  initNames.forEach((n, k) => {
    const before = outer.values[n ?? ""] ?? outer.weights[n ?? ""]?.tensor;
    const after = body.values[body.outputs[k + 1]];
    if (!same(before && { dtype: before.dtype, shape: before.shape }, after))
      refuse(
        node,
        `carried value ${k} enters the loop as ${typeText(before)} and leaves the body as ${typeText(after)}`,
      );
  });
}
