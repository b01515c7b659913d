// Small-graph helpers for pass tests: a builder that types nodes with the op catalogue, seeded random
// tensors, and an interpreter comparison.
import { expect } from "vitest";
import { GraphBuilder } from "../../src/ir/builder.js";
import type { DType } from "../../src/ir/dtype.js";
import type { Arg, Graph, WeightKind } from "../../src/ir/graph.js";
import { numel, type Tensor, tensorFromNumbers, toFloat64Array } from "../../src/ir/tensor.js";
import { getOp, interpret } from "../../src/ops/index.js";
import type { Pass } from "../../src/passes/pass.js";
import { runPipeline } from "../../src/passes/pipeline.js";

/** Deterministic uniform numbers in [lo, hi) (mulberry32). */
export function random(seed: number): (lo?: number, hi?: number) => number {
  let s = seed >>> 0;
  return (lo = -1, hi = 1) => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return lo + (((t ^ (t >>> 14)) >>> 0) / 4294967296) * (hi - lo);
  };
}

export function randomTensor(
  shape: readonly number[],
  seed: number,
  lo = -1,
  hi = 1,
  dtype: DType = "float32",
): Tensor {
  const r = random(seed);
  return tensorFromNumbers(
    dtype,
    shape,
    Array.from({ length: numel(shape) }, () => r(lo, hi)),
  );
}

type ArgLike = Arg | string;

/** Builds test graphs: node output types come from the op catalogue's inference. */
export class TestGraph {
  private readonly b = new GraphBuilder();
  private seed = 1;

  input(name: string, shape: readonly number[], dtype: DType = "float32"): string {
    return this.b.addInput(name, { dtype, shape });
  }

  /** A weight with seeded values in [lo, hi), or the given values. */
  weight(
    name: string,
    shape: readonly number[],
    opts: { lo?: number; hi?: number; values?: number[]; kind?: WeightKind } = {},
  ): string {
    const tensor = opts.values
      ? tensorFromNumbers("float32", shape, opts.values)
      : randomTensor(shape, this.seed++, opts.lo ?? -1, opts.hi ?? 1);
    return this.b.addWeight(name, { kind: opts.kind ?? "parameter", target: name, tensor });
  }

  nodeOutputs(op: string, args: Record<string, ArgLike>, name?: string): string[] {
    const def = getOp(op);
    if (!def) throw new Error(`test graph: op ${op} is not in the catalogue`);
    const full: Record<string, Arg> = {};
    for (const [k, a] of Object.entries(args))
      full[k] = typeof a === "string" ? { kind: "tensor", name: a } : a;
    const types = def.infer(def.parse(full), (v) => this.b.typeOf(v));
    const base = name ?? op.split(".")[1];
    const outs = types.map((type, i) => ({
      name: this.b.fresh(types.length === 1 ? base : `${base}_${i}`),
      type,
    }));
    return this.b.addNode(op, full, outs, { sourceLocation: `model.py:${this.seed} in forward` }, name);
  }

  node(op: string, args: Record<string, ArgLike>, name?: string): string {
    return this.nodeOutputs(op, args, name)[0];
  }

  build(...outputs: string[]): Graph {
    this.b.setOutputs(outputs);
    return this.b.build();
  }
}

export function inputsFor(graph: Graph, seed = 7): Tensor[] {
  return graph.inputs.map((name, i) =>
    randomTensor(graph.values[name].shape, seed + i, -2, 2, graph.values[name].dtype),
  );
}

/** Runs both graphs on the same inputs and expects equal outputs within a relative tolerance. */
export function expectSameResults(
  before: Graph,
  after: Graph,
  rtol = 1e-4,
  inputs = inputsFor(before),
): void {
  const want = interpret(before, inputs);
  const got = interpret(after, inputs);
  expect(got.length).toBe(want.length);
  got.forEach((t, i) => {
    expect(t.shape).toEqual(want[i].shape);
    expect(t.dtype).toBe(want[i].dtype);
    const [a, b] = [toFloat64Array(t), toFloat64Array(want[i])];
    const scale = Math.max(1e-3, ...Array.from(b, Math.abs));
    for (let j = 0; j < a.length; j++) {
      if (Math.abs(a[j] - b[j]) > rtol * scale) {
        throw new Error(`output ${i} element ${j}: got ${a[j]}, want ${b[j]} (rtol ${rtol}, scale ${scale})`);
      }
    }
  });
}

export const opsOf = (graph: Graph) => graph.nodes.map((n) => n.op);

export const int = (value: number): Arg => ({ kind: "int", value });
export const float = (value: number): Arg => ({ kind: "float", value });
export const ints = (value: number[]): Arg => ({ kind: "ints", value });
export const bool = (value: boolean): Arg => ({ kind: "bool", value });
export const none: Arg = { kind: "none" };
export const dtype = (value: DType): Arg => ({ kind: "dtype", value });

/** Runs passes through the pipeline runner (which verifies the graph after each). */
export function lower(graph: Graph, ...passes: Pass[]) {
  return runPipeline(graph, passes);
}
