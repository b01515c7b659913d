/**
 * Whether two lowered graphs have the same architecture: the same inputs and outputs, the same nodes (name, op,
 * arguments, outputs) in the same order, the same value types, and weights of the same dtypes and shapes read in
 * the same places. Only weight values (and so which constants folding merged) may differ. The answer names the first difference, for refit's error.
 */
import type { Arg, Graph, Node, TensorType } from "../ir/graph.js";
import type { Segment } from "../partition/segment.js";
import { readsOf } from "../passes/graph-reads.js";

const typeText = (t: TensorType | undefined) => (t ? `${t.dtype}[${t.shape.join(", ")}]` : "absent");
const list = (xs: readonly string[]) => `[${xs.join(", ")}]`;

/**
 * An argument with each weight it reads written as the weight's type. Weights are matched by where they are read,
 * not by name or identity: folding names the constants it makes with counters, and CSE merges constants whose
 * values happen to be equal (default-initialised batch norms), so both differ from one set of weights to another.
 */
function argText(a: Arg | undefined, g: Graph): string {
  const weight = (v: unknown) =>
    typeof v === "string" && Object.hasOwn(g.weights, v) ? `#weight ${typeText(g.weights[v].tensor)}` : v;
  return JSON.stringify(a, (_k, v) => weight(v)) ?? "nothing";
}

/** The first weight `b` reads where `a` reads a weight of another type, worded for the error. */
function weightTypeDifference(
  a: Arg | undefined,
  b: Arg | undefined,
  built: Graph,
  next: Graph,
): string | undefined {
  const names = (x: Arg | undefined) =>
    x?.kind === "tensor" ? [x.name] : x?.kind === "tensors" ? x.names : [];
  const [na, nb] = [names(a), names(b)];
  for (const [i, n] of nb.entries()) {
    const m = na[i];
    if (n === null || m === null || m === undefined) continue;
    const [wa, wb] = [built.weights[m]?.tensor, next.weights[n]?.tensor];
    if (wa && wb && typeText(wa) !== typeText(wb))
      return `weight '${n}' is ${typeText(wb)}, the compiled one ${typeText(wa)}`;
  }
  return undefined;
}

/** The first way `next` differs from `built` in structure, or undefined when only weight values differ. */
export function firstDifference(built: Graph, next: Graph): string | undefined {
  if (list(built.inputs) !== list(next.inputs))
    return `inputs ${list(next.inputs)} differ from the compiled ${list(built.inputs)}`;
  const outs = (g: Graph) => g.outputs.map((o) => argText({ kind: "tensor", name: o }, g)).join();
  if (outs(built) !== outs(next))
    return `outputs ${list(next.outputs)} differ from the compiled ${list(built.outputs)}`;
  const n = Math.min(built.nodes.length, next.nodes.length);
  for (let i = 0; i < n; i++) {
    const [a, b] = [built.nodes[i], next.nodes[i]];
    const at = `node ${i} '${b.name}' (${b.op})`;
    if (a.name !== b.name || a.op !== b.op)
      return `${at} differs from the compiled node '${a.name}' (${a.op})`;
    if (list(a.outputs) !== list(b.outputs))
      return `${at}: outputs ${list(b.outputs)} differ from the compiled ${list(a.outputs)}`;
    const keys = new Set([...Object.keys(a.args), ...Object.keys(b.args)]);
    for (const k of keys) {
      if (argText(a.args[k], built) === argText(b.args[k], next)) continue;
      const w = weightTypeDifference(a.args[k], b.args[k], built, next);
      return w
        ? `${at}: ${w}`
        : `${at}: argument '${k}' is ${JSON.stringify(b.args[k])}, the compiled one ${JSON.stringify(a.args[k])}`;
    }
    for (const o of b.outputs)
      if (typeText(built.values[o]) !== typeText(next.values[o]))
        return `${at}: output '${o}' is ${typeText(next.values[o])}, the compiled one ${typeText(built.values[o])}`;
  }
  if (built.nodes.length !== next.nodes.length)
    return `the new model has ${next.nodes.length} nodes after lowering, the compiled one ${built.nodes.length}${
      n < next.nodes.length
        ? ` (first extra: '${next.nodes[n].name}')`
        : ` (first missing: '${built.nodes[n].name}')`
    }`;
  for (const name of built.inputs)
    if (typeText(built.values[name]) !== typeText(next.values[name]))
      return `input '${name}' is ${typeText(next.values[name])}, the compiled one ${typeText(built.values[name])}`;
  return undefined;
}

/** The first way the new partition differs from the built one (segment kinds and node lists). */
export function firstSegmentDifference(
  built: readonly Segment[],
  next: readonly Segment[],
): string | undefined {
  if (built.length !== next.length)
    return `the new model partitions into ${next.length} segments, the compiled one into ${built.length}`;
  for (const [i, s] of next.entries()) {
    const b = built[i];
    const names = (x: Segment) => x.nodes.map((nd) => nd.name).join(",");
    if (s.kind !== b.kind || names(s) !== names(b))
      return `segment ${i} (${s.kind}, ${s.nodes.length} nodes) differs from the compiled one (${b.kind}, ${b.nodes.length} nodes)`;
  }
  return undefined;
}

/**
 * The weights `next` reads, each paired with the weight `built` reads in the same place (graphs of the same
 * structure), limited to `nodes` (names) when given.
 */
export function weightReads(built: Graph, next: Graph, nodes?: ReadonlySet<string>): [string, string][] {
  const pairs: [string, string][] = [];
  const seen = new Set<string>();
  const names = (x: Arg | undefined) =>
    x?.kind === "tensor" ? [x.name] : x?.kind === "tensors" ? x.names : [];
  for (const [i, b] of next.nodes.entries()) {
    if (nodes && !nodes.has(b.name)) continue;
    const a = built.nodes[i];
    for (const [k, arg] of Object.entries(b.args)) {
      const na = names(a.args[k]);
      for (const [j, n] of names(arg).entries()) {
        const m = na[j];
        if (n === null || m === null || m === undefined || !Object.hasOwn(next.weights, n) || seen.has(n))
          continue;
        if (!Object.hasOwn(built.weights, m)) continue;
        seen.add(n);
        pairs.push([m, n]);
      }
    }
  }
  return pairs;
}

/** Whether two tensors hold different bytes. */
export function bytesDiffer(
  a: TensorType & { data: ArrayBufferView },
  b: TensorType & { data: ArrayBufferView },
): boolean {
  const [x, y] = [a.data, b.data];
  if (x.byteLength !== y.byteLength) return true;
  // memcmp, not a loop in JS: refit compares every weight of the model.
  return !Buffer.from(x.buffer, x.byteOffset, x.byteLength).equals(
    Buffer.from(y.buffer, y.byteOffset, y.byteLength),
  );
}

/** Weights of `next` (read in `nodes`, when given) whose values differ from those `built` reads there. */
export function changedWeights(built: Graph, next: Graph, nodes?: ReadonlySet<string>): string[] {
  return weightReads(built, next, nodes)
    .filter(([m, n]) => bytesDiffer(built.weights[m].tensor as never, next.weights[n].tensor as never))
    .map(([, n]) => n);
}

/**
 * Weights a control-flow node's blocks use whose values changed: their own weights (constants folded inside a
 * branch or loop body) and the outer weights they read, paired by position (the graphs have the same structure).
 * refit's check of a control segment; `changedWeights` sees only a node's direct arguments.
 */
export function changedBlockWeights(built: Graph, next: Graph, a: Node, b: Node): string[] {
  const changed: string[] = [];
  const differ = (x: TensorType | undefined, y: TensorType | undefined) =>
    x === undefined || y === undefined || bytesDiffer(x as never, y as never);
  const [ra, rb] = [readsOf(a), readsOf(b)];
  for (const [j, n] of rb.entries())
    if (Object.hasOwn(next.weights, n) && differ(built.weights[ra[j]]?.tensor, next.weights[n].tensor))
      changed.push(n);
  for (const [k, sb] of (b.subgraphs ?? []).entries()) {
    const sa = a.subgraphs?.[k];
    const [ka, kb] = [Object.keys(sa?.weights ?? {}), Object.keys(sb.weights)];
    for (const [j, n] of kb.entries())
      if (differ(sa?.weights[ka[j]]?.tensor, sb.weights[n].tensor)) changed.push(`${b.name}/${n}`);
    for (const [i, nb] of sb.nodes.entries()) {
      const na = sa?.nodes[i];
      if (nb.subgraphs?.length && na && sa) changed.push(...changedBlockWeights(sa, sb, na, nb));
    }
  }
  return changed;
}
