/**
 * The LibTorch fallback's rules are rules of the rewrite engine in src/passes (pattern: the node's op; the
 * trace records every firing), written against a small context that reads like the aten calls they make:
 * `emit` a node (rewritten again by the rule set, so a rule may produce ops that other rules lower further),
 * `scalarConstant`/`constant` for tensors uploaded once with the segment's weights, `bindConstant` for an
 * output computed at compile time. A rule that cannot lower a node throws RewriteRefused with the reason.
 */
import type { DType } from "../../ir/dtype.js";
import type { Arg, Node, TensorType } from "../../ir/graph.js";
import { scalarTensor, type Tensor } from "../../ir/tensor.js";
import { getOp, inferNode } from "../../ops/index.js";
import { anyOp, op } from "../../passes/rewrite/pattern.js";
import type { Replacement, ReplacementBuilder } from "../../passes/rewrite/replacement.js";
import { callerLocation, type Rule, rule } from "../../passes/rewrite/rule.js";

/** What a lowering rule sees: the node it rewrites, value types, fresh names, constants and new nodes. */
export interface LoweringContext {
  /** The node being rewritten. */
  readonly source: Node;
  typeOf(name: string): TensorType;
  /** A name no value uses yet. */
  fresh(base: string): string;
  /** A 0-d constant tensor (uploaded once when the runner is built); returns its value name. */
  scalarConstant(value: number, dtype: DType): string;
  /** A constant tensor named after `base` (uploaded once); returns its value name. */
  constant(base: string, t: Tensor): string;
  /**
   * Adds a node, which the rule set rewrites further; returns its output names. `outputs` lists the source's
   * outputs the node computes (they keep the source's types), else its outputs are new values.
   */
  emit(op: string, args: Record<string, Arg>, outputs?: readonly string[]): string[];
  /**
   * Adds a node whose outputs have the given types, for a kernel whose results differ in shape from what the
   * catalogue infers (CUDA's batch norm stats); `outputs[i]`, where given, is the source output it computes.
   */
  emitTyped(
    op: string,
    args: Record<string, Arg>,
    types: readonly TensorType[],
    outputs?: readonly (string | undefined)[],
  ): string[];
  /** The source's output `output` is the constant `t`: nothing runs for it. */
  bindConstant(output: string, t: Tensor): void;
}

/** A LoweringContext over the engine's ReplacementBuilder; `finish()` is the rule's Replacement. */
class LoweringBuilder implements LoweringContext {
  private readonly mapping: Record<string, string> = {};

  constructor(
    private readonly b: ReplacementBuilder,
    readonly source: Node,
  ) {}

  typeOf(name: string): TensorType {
    return this.b.typeOf(name);
  }

  fresh(base: string): string {
    return this.b.fresh(base);
  }

  scalarConstant(value: number, dtype: DType): string {
    return this.b.weight(`${this.source.name}_c`, scalarTensor(dtype, value));
  }

  constant(base: string, t: Tensor): string {
    return this.b.weight(base, t);
  }

  emit(op: string, args: Record<string, Arg>, outputs?: readonly string[]): string[] {
    const probe: Node = { name: this.source.name, op, args, outputs: [], meta: this.source.meta };
    // Inference also checks the arguments. An op outside the catalogue can only compute source outputs,
    // whose types are known; anywhere else inferNode refuses it.
    const inferred = outputs && !getOp(op) ? undefined : inferNode(probe, (n) => this.b.typeOf(n));
    const made = this.b.nodeOutputs(op, args, outputs ? outputs.map((o) => this.b.typeOf(o)) : inferred);
    outputs?.forEach((o, i) => {
      this.mapping[o] = made[i];
    });
    return made;
  }

  emitTyped(
    op: string,
    args: Record<string, Arg>,
    types: readonly TensorType[],
    outputs?: readonly (string | undefined)[],
  ): string[] {
    const made = this.b.nodeOutputs(op, args, types);
    outputs?.forEach((o, i) => {
      if (o) this.mapping[o] = made[i];
    });
    return made;
  }

  bindConstant(output: string, t: Tensor): void {
    this.mapping[output] = this.b.weight(output, t);
  }

  finish(): Replacement {
    return this.b.replace(this.mapping);
  }
}

export interface LoweringRuleSpec {
  readonly name: string;
  /** What the op becomes and why that computes the same. */
  readonly doc: string;
  /** The ops the rule rewrites; undefined for a rule on any op (its `lower` declines what it does not handle). */
  readonly ops?: string | readonly string[];
  /** Rewrites `node` through `cx`; `false` declines (the next rule is tried). */
  // biome-ignore lint/suspicious/noConfusingVoidType: a rule that fires returns nothing; only a decline says false
  lower(node: Node, cx: LoweringContext): false | void;
}

/** A rewrite-engine rule from a lowering function; its trace location is where `loweringRule` was called. */
export function loweringRule(spec: LoweringRuleSpec): Rule {
  return rule({
    name: spec.name,
    doc: spec.doc,
    pattern: spec.ops === undefined ? anyOp() : op(spec.ops),
    location: callerLocation(["/torch/lowering-rule."]),
    rewrite: ({ root }, ctx) => {
      const cx = new LoweringBuilder(ctx.build(), root.node);
      return spec.lower(root.node, cx) === false ? undefined : cx.finish();
    },
  });
}
