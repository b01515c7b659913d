// Aten graphs for the CUDA tests' model pieces (swin-graphs.ts, transformer-graphs.ts), typed by the op catalogue.
import { randomTensor, rng } from "../../../src/backends/cuda/testing/nets.js";
import { GraphBuilder } from "../../../src/ir/builder.js";
import type { Arg, Graph } from "../../../src/ir/graph.js";
import { tensorFromNumbers } from "../../../src/ir/tensor.js";
import { getOp } from "../../../src/ops/index.js";

/** Builds aten graphs typed by the op catalogue (no test-runner imports: the GPU tests use it under node:test). */
export class AtenGraph {
  private readonly b = new GraphBuilder();
  private seed = 1;

  input(name: string, shape: readonly number[]): string {
    return this.b.addInput(name, { dtype: "float32", shape });
  }

  weight(
    name: string,
    shape: readonly number[],
    opts: { lo?: number; hi?: number; values?: number[] } = {},
  ): string {
    const lo = opts.lo ?? -1;
    const hi = opts.hi ?? 1;
    const tensor = opts.values
      ? tensorFromNumbers("float32", shape, opts.values)
      : randomTensor(rng(this.seed++), "float32", shape, (hi - lo) / 2, (hi + lo) / 2);
    return this.b.addWeight(name, { kind: "parameter", target: name, tensor });
  }

  node(op: string, args: Record<string, Arg | string>): string {
    const def = getOp(op);
    if (!def) throw new Error(`${op} is not in the catalogue`);
    const full: Record<string, Arg> = {};
    for (const [k, a] of Object.entries(args))
      full[k] = typeof a === "string" ? { kind: "tensor", name: a } : a;
    const [type] = def.infer(def.parse(full), (v) => this.b.typeOf(v));
    const name = this.b.fresh(op.split(".")[1]);
    return this.b.addNode(op, full, [{ name, type }], {})[0];
  }

  build(...outputs: string[]): Graph {
    this.b.setOutputs(outputs);
    return this.b.build();
  }
}

export const I = (value: number): Arg => ({ kind: "int", value });
export const Is = (value: readonly number[]): Arg => ({ kind: "ints", value: [...value] });
export const F = (value: number): Arg => ({ kind: "float", value });
