import { TorchcError } from "../../errors.js";
import { freezeGraph } from "../../ir/frozen.js";
import type { Arg, Graph, Node, TensorType, Weight } from "../../ir/graph.js";
import { readsOf, renameReads } from "../graph-reads.js";
import { argsWithDefaults } from "../op-catalogue.js";
import type { GraphView, Producer } from "./graph-view.js";
import type { Replacement } from "./replacement.js";

/** A rule produced a replacement that would break the graph: a bug in that rule. */
export class RewriteError extends TorchcError {
  constructor(rule: string, node: Node, detail: string) {
    super(`rule '${rule}' at node '${node.name}' (${node.op}): ${detail}`, "passes.bad-rewrite");
    this.name = "RewriteError";
  }
}

/** A node's place in the working list. Opaque to everything but the driver's walk. */
export interface Slot {
  readonly node: Node;
}

interface MutableSlot extends Slot {
  node: Node;
  prev: MutableSlot | null;
  next: MutableSlot | null;
  order: number;
}

const sameType = (a: TensorType, b: TensorType) => a.dtype === b.dtype && a.shape.join() === b.shape.join();
const showType = (t: TensorType) => `${t.dtype}[${t.shape.join(", ")}]`;

/**
 * The rewrite driver's bookkeeping for one run: a linked list of immutable nodes plus producer, user and
 * type tables, all updated per replacement in time proportional to the replacement and the renamed
 * users, not to the graph. It never touches the Graph it starts from; `toGraph()` builds a fresh, frozen
 * graph (or returns the original when nothing changed). Node objects are never mutated: a renamed user
 * is a new Node in the same slot.
 */
export class WorkingGraph implements GraphView {
  private head: MutableSlot | null = null;
  private tail: MutableSlot | null = null;
  private readonly slots = new Map<string, MutableSlot>();
  private readonly producers = new Map<string, { slot: MutableSlot; index: number }>();
  private readonly users = new Map<string, Set<MutableSlot>>();
  /** Types changed since the original graph (undefined = removed); others are read from it. */
  private readonly types = new Map<string, TensorType | undefined>();
  private readonly weights = new Map<string, Weight>();
  private readonly inputs: ReadonlySet<string>;
  private readonly outputs: string[];
  private readonly outputCounts = new Map<string, number>();
  private readonly names = new Set<string>();
  private changed = false;

  constructor(
    private readonly original: Graph,
    private readonly reserved: (name: string) => boolean = () => false,
  ) {
    this.inputs = new Set(original.inputs);
    this.outputs = [...original.outputs];
    for (const o of this.outputs) this.outputCounts.set(o, (this.outputCounts.get(o) ?? 0) + 1);
    for (const [name, w] of Object.entries(original.weights)) this.weights.set(name, w);
    original.nodes.forEach((node, i) => {
      this.link(node, this.tail, i + 1, false);
    });
  }

  // ---- GraphView ----

  producerOf(value: string): Producer | undefined {
    const p = this.producers.get(value);
    return p && { node: p.slot.node, index: p.index };
  }

  typeOf(value: string): TensorType {
    const t = this.types.has(value) ? this.types.get(value) : this.original.values[value];
    if (!t) throw new Error(`graph: value '${value}' has no type`);
    return t;
  }

  hasValue(value: string): boolean {
    return (this.types.has(value) ? this.types.get(value) : this.original.values[value]) !== undefined;
  }

  weightOf(value: string): Weight | undefined {
    return this.weights.get(value);
  }

  isGraphInput(value: string): boolean {
    return this.inputs.has(value);
  }

  isGraphOutput(value: string): boolean {
    return (this.outputCounts.get(value) ?? 0) > 0;
  }

  usersOf(value: string): readonly Node[] {
    const set = this.users.get(value);
    if (!set || set.size === 0) return [];
    return [...set].sort((a, b) => a.order - b.order).map((s) => s.node);
  }

  isUnused(value: string): boolean {
    return (this.users.get(value)?.size ?? 0) === 0 && !this.isGraphOutput(value);
  }

  hasSingleUser(value: string): boolean {
    return (this.users.get(value)?.size ?? 0) === 1 && !this.isGraphOutput(value);
  }

  orderOf(node: Node): number {
    const s = this.slots.get(node.name);
    if (!s) throw new Error(`graph: node '${node.name}' is not in the graph`);
    return s.order;
  }

  argsOf(node: Node): Readonly<Record<string, Arg>> {
    return argsWithDefaults(node);
  }

  isNameTaken(name: string): boolean {
    return (
      this.names.has(name) || this.slots.has(name) || name in this.original.values || this.reserved(name)
    );
  }

  // ---- walking and rewriting (driver only) ----

  first(): Slot | null {
    return this.head;
  }

  next(slot: Slot): Slot | null {
    return (slot as MutableSlot).next;
  }

  get nodeCount(): number {
    return this.slots.size;
  }

  /**
   * Puts a replacement in place of the slot's node: new nodes go where it was (so order stays
   * topological), readers of its outputs are renamed, and nodes that fed it and are now unused are
   * pruned. Returns the slot to continue the walk from: the first new node, or the one after the root.
   */
  replace(slot: Slot, r: Replacement, rule: string): Slot | null {
    const at = slot as MutableSlot;
    const root = at.node;
    this.check(at, r, rule);
    const adopted = adoptRootNames(root, r);
    const gone = this.prunable(at, adopted);
    this.changed = true;

    const before = at.prev;
    const after = at.next;
    this.unlink(at);
    for (const out of root.outputs) if (!(out in adopted.values)) this.types.set(out, undefined);
    for (const [name, w] of Object.entries(adopted.weights)) this.weights.set(name, w);
    for (const [name, t] of Object.entries(adopted.values)) {
      this.types.set(name, t);
      this.names.add(name);
    }
    let firstNew: MutableSlot | null = null;
    let prev = before;
    adopted.nodes.forEach((node, i) => {
      const lo = before?.order ?? (after ? after.order - 1 : 0);
      const hi = after?.order ?? lo + 1;
      const s = this.link(node, prev, lo + ((hi - lo) * (i + 1)) / (adopted.nodes.length + 1));
      firstNew ??= s;
      prev = s;
    });
    if (firstNew !== null && !this.ordersDistinct(before, after)) this.renumber();

    const rename = (v: string) => adopted.mapping[v] ?? v;
    for (const from of Object.keys(adopted.mapping)) {
      for (const user of [...(this.users.get(from) ?? [])]) {
        this.removeUses(user);
        user.node = renameReads(user.node, rename);
        this.addUses(user);
      }
      this.outputs.forEach((o, i) => {
        if (o === from) this.outputs[i] = adopted.mapping[from];
      });
      const n = this.outputCounts.get(from) ?? 0;
      if (n > 0) {
        const to = adopted.mapping[from];
        this.outputCounts.set(to, (this.outputCounts.get(to) ?? 0) + n);
        this.outputCounts.delete(from);
      }
    }
    for (const dead of gone) {
      this.unlink(dead);
      for (const out of dead.node.outputs) this.types.set(out, undefined);
    }
    return firstNew ?? after;
  }

  /** The graph as it stands, fresh and frozen (the original object when nothing changed). */
  toGraph(): Graph {
    if (!this.changed) return this.original;
    const nodes: Node[] = [];
    for (let s = this.head; s; s = s.next) nodes.push(s.node);
    const values: Record<string, TensorType> = {};
    const weights: Record<string, Weight> = {};
    for (const name of this.original.inputs) values[name] = this.typeOf(name);
    for (const [name, w] of this.weights) {
      weights[name] = w;
      values[name] = this.typeOf(name);
    }
    for (const n of nodes) for (const o of n.outputs) values[o] = this.typeOf(o);
    return freezeGraph({
      inputs: this.original.inputs,
      outputs: [...this.outputs],
      nodes,
      values,
      weights,
    });
  }

  // ---- internals ----

  /** Inserts a node after `prev`; `isNew` nodes' names are recorded (the original's are known already). */
  private link(node: Node, prev: MutableSlot | null, order: number, isNew = true): MutableSlot {
    const next = prev ? prev.next : this.head;
    const s: MutableSlot = { node, prev, next, order };
    if (prev) prev.next = s;
    else this.head = s;
    if (next) next.prev = s;
    else this.tail = s;
    this.slots.set(node.name, s);
    node.outputs.forEach((out, index) => {
      this.producers.set(out, { slot: s, index });
      if (isNew) this.names.add(out);
    });
    if (isNew) this.names.add(node.name);
    this.addUses(s);
    return s;
  }

  private unlink(s: MutableSlot): void {
    if (s.prev) s.prev.next = s.next;
    else this.head = s.next;
    if (s.next) s.next.prev = s.prev;
    else this.tail = s.prev;
    if (this.slots.get(s.node.name) === s) this.slots.delete(s.node.name);
    for (const out of s.node.outputs) if (this.producers.get(out)?.slot === s) this.producers.delete(out);
    this.removeUses(s);
  }

  private addUses(s: MutableSlot): void {
    for (const v of readsOf(s.node)) {
      const set = this.users.get(v);
      if (set) set.add(s);
      else this.users.set(v, new Set([s]));
    }
  }

  private removeUses(s: MutableSlot): void {
    for (const v of readsOf(s.node)) this.users.get(v)?.delete(s);
  }

  /** Whether the orders from `before` to `after` still strictly increase (float gaps can run out). */
  private ordersDistinct(before: MutableSlot | null, after: MutableSlot | null): boolean {
    for (let s = before ?? this.head; s && s !== after; s = s.next)
      if (s.next && s.next.order <= s.order) return false;
    return true;
  }

  private renumber(): void {
    let order = 0;
    for (let s = this.head; s; s = s.next) {
      order += 1;
      s.order = order;
    }
  }

  private isDefinedBefore(value: string, root: MutableSlot): boolean {
    const p = this.producers.get(value);
    if (p) return p.slot.order < root.order;
    return this.inputs.has(value) || this.weights.has(value);
  }

  private check(at: MutableSlot, r: Replacement, rule: string): void {
    const root = at.node;
    const fail = (detail: string) => new RewriteError(rule, root, detail);
    const typeOf = (v: string) => r.values[v] ?? (this.hasValue(v) ? this.typeOf(v) : undefined);
    for (const [from, to] of Object.entries(r.mapping)) {
      if (!root.outputs.includes(from)) throw fail(`maps '${from}', which is not an output of the node`);
      const t = typeOf(to);
      if (!t) throw fail(`maps '${from}' to unknown value '${to}'`);
      if (!sameType(t, this.typeOf(from)))
        throw fail(`replaces '${from}': ${showType(this.typeOf(from))} by '${to}': ${showType(t)}`);
    }
    for (const out of root.outputs) {
      if (!(out in r.mapping) && !this.isUnused(out))
        throw fail(`drops output '${out}', which is still used`);
    }
    const available = new Set<string>(Object.keys(r.weights));
    for (const node of r.nodes) {
      for (const input of readsOf(node)) {
        if (!available.has(input) && !this.isDefinedBefore(input, at)) {
          throw fail(`new node '${node.name}' reads '${input}', not defined before it`);
        }
      }
      for (const out of node.outputs) available.add(out);
    }
    for (const to of Object.values(r.mapping)) {
      if (!available.has(to) && !this.isDefinedBefore(to, at))
        throw fail(`maps an output to '${to}', not defined before the node`);
    }
  }

  /** The root's producers that nothing reads once the replacement is in, and transitively theirs. */
  private prunable(at: MutableSlot, r: Replacement): Set<MutableSlot> {
    const newReads = new Set(r.nodes.flatMap((n) => readsOf(n)));
    const live = new Set<string>();
    for (const [from, to] of Object.entries(r.mapping)) if (!this.isUnused(from)) live.add(to);
    const gone = new Set<MutableSlot>([at]);
    const used = (v: string) =>
      this.isGraphOutput(v) ||
      newReads.has(v) ||
      live.has(v) ||
      [...(this.users.get(v) ?? [])].some((u) => !gone.has(u));
    const work = readsOf(at.node).map((v) => this.producers.get(v)?.slot);
    while (work.length > 0) {
      const s = work.pop();
      if (!s || gone.has(s) || s.node.outputs.length === 0 || s.node.outputs.some(used)) continue;
      gone.add(s);
      for (const v of readsOf(s.node)) work.push(this.producers.get(v)?.slot);
    }
    gone.delete(at);
    return gone;
  }
}

/**
 * New values that replace a root output take over its name (and the node making the first one takes the
 * root's node name), so value names such as graph outputs stay stable through lowering and a trace can
 * follow a node from pass to pass. Only mappings to pre-existing values still need renaming downstream.
 */
function adoptRootNames(root: Node, r: Replacement): Replacement {
  const adopt = new Map<string, string>();
  const mapping: Record<string, string> = {};
  for (const [from, to] of Object.entries(r.mapping)) {
    if (to in r.values && !adopt.has(to)) adopt.set(to, from);
    else mapping[from] = to;
  }
  if (adopt.size === 0) return r;
  const name = (v: string) => adopt.get(v) ?? v;
  const first = r.mapping[root.outputs[0]];
  const nodes = r.nodes.map((n) => {
    const renamed = renameReads(n, name);
    const named = first !== undefined && adopt.has(first) && n.outputs.includes(first) ? root.name : n.name;
    return { ...renamed, name: named, outputs: n.outputs.map(name) };
  });
  const values: Record<string, TensorType> = {};
  for (const [v, t] of Object.entries(r.values)) values[name(v)] = t;
  const weights: Record<string, Weight> = {};
  for (const [v, w] of Object.entries(r.weights)) weights[name(v)] = w;
  return { nodes, values, weights, mapping };
}
