import { GraphBuilder } from "../../ir/builder.js";
import type { Arg, Graph, NodeMeta, TensorType, Weight } from "../../ir/graph.js";
import type { Tensor } from "../../ir/tensor.js";
import { StaticError } from "./static-ops.js";
import type { TensorBox } from "./values.js";

/** Hands out value names that are unique across the graph and all its nested blocks. */
export class Names {
  private readonly used = new Set<string>();
  private readonly counters = new Map<string, number>();

  reserve(name: string): void {
    this.used.add(name);
  }

  fresh(hint: string): string {
    const base = sanitize(hint);
    if (!this.used.has(base)) {
      this.used.add(base);
      return base;
    }
    let n = this.counters.get(base) ?? 0;
    let name: string;
    do name = `${base}_${++n}`;
    while (this.used.has(name));
    this.counters.set(base, n);
    this.used.add(name);
    return name;
  }
}

export function sanitize(s: string): string {
  const t = s.replace(/[^A-Za-z0-9_]/g, "_");
  return t === "" ? "v" : /^[0-9]/.test(t) ? `_${t}` : t;
}

/** One block being built: the top-level graph, or a branch / loop body of a control-flow node. */
export class Block {
  readonly builder = new GraphBuilder();
  /** Boxes an in-place op rebound while this block was current, with the name each had before. */
  readonly rebinds = new Map<TensorBox, string | undefined>();
  constructor(readonly parent: Block | undefined) {}
}

/**
 * The graph under construction: a stack of blocks, one global type table (inner blocks read outer values by
 * name), weights and materialized constants kept in the top block.
 */
export class GraphState {
  readonly names = new Names();
  readonly types = new Map<string, TensorType>();
  readonly top = new Block(undefined);
  private current: Block = this.top;

  get block(): Block {
    return this.current;
  }

  typeOf(name: string): TensorType {
    const t = this.types.get(name);
    if (!t) throw new Error(`torchscript frontend: value '${name}' has no type`);
    return t;
  }

  addInput(name: string, type: TensorType): string {
    this.names.reserve(name);
    this.types.set(name, type);
    this.top.builder.addInput(name, type);
    return name;
  }

  addWeight(hint: string, weight: Weight): string {
    const name = this.names.fresh(hint);
    this.types.set(name, { dtype: weight.tensor.dtype, shape: weight.tensor.shape });
    this.top.builder.addWeight(name, weight);
    return name;
  }

  /** A graph value holding `box`: materializes a statically known tensor as a constant. */
  valueOf(box: TensorBox, hint = "const"): string {
    if (box.stale) throw new StaticError(box.stale);
    if (box.name !== undefined) return box.name;
    const t = box.known as Tensor;
    const name = this.names.fresh(hint);
    this.types.set(name, { dtype: t.dtype, shape: t.shape });
    // a constant's target is its own name, as GraphBuilder.addConstant does
    this.top.builder.addWeight(name, { kind: "constant", target: name, tensor: t });
    box.name = name;
    return name;
  }

  addNode(
    op: string,
    args: Record<string, Arg>,
    outputs: { hint: string; type: TensorType }[],
    meta: NodeMeta,
    subgraphs?: Graph[],
  ): string[] {
    const outs = outputs.map((o) => {
      const name = this.names.fresh(o.hint);
      this.types.set(name, o.type);
      return { name, type: o.type };
    });
    const nodeName = outs[0]?.name ?? this.names.fresh(op.split(".")[1] ?? "node");
    this.current.builder.addNode(op, args, outs, meta, nodeName, subgraphs);
    return outs.map((o) => o.name);
  }

  /** Points `box` at a new value (in-place ops), remembering the old one for the enclosing block. */
  rebind(box: TensorBox, name: string, type: TensorType): void {
    if (this.current !== this.top && !this.current.rebinds.has(box)) this.current.rebinds.set(box, box.name);
    if (box.name === undefined && box.known) this.valueOf(box);
    box.name = name;
    box.known = undefined;
    box.type = type;
  }

  /** Runs `fn` with a fresh inner block; returns the block (for building a subgraph) and fn's result. */
  inBlock<T>(fn: () => T): { block: Block; result: T } {
    const block = new Block(this.current);
    const saved = this.current;
    this.current = block;
    try {
      return { block, result: fn() };
    } finally {
      this.current = saved;
    }
  }

  /** Undoes a block's rebinds (so a sibling branch sees the values from before); returns them. */
  undoRebinds(block: Block): Map<TensorBox, string> {
    const after = new Map<TensorBox, string>();
    for (const [box, before] of block.rebinds) {
      after.set(box, box.name as string);
      box.name = before;
      if (before !== undefined) box.type = this.typeOf(before);
    }
    return after;
  }
}
