/**
 * A control-flow segment (one `prim.If` or `prim.Loop` node). Each block is closed into a graph of its own
 * (control-blocks.ts) and compiled once, at compile time, with the module's own pipeline: lowered,
 * partitioned, its straight-line parts engines of the same backend and the rest its fallback. At run time the
 * predicate (or trip count) is read on the host and the chosen block's module runs on the values; a loop runs
 * its body module with the carried values until the trip count is reached or the body's condition is false.
 *
 * On host tensors (the reference backend) that is `run`. On a device backend the execution context calls
 * `runDevice` with a `ControlDeviceHost`: the values stay on the device, and each read of a predicate is one
 * small device-to-host copy queued on the context's stream after the work that produced it. A loop's two
 * output sets are allocated once per execution context (`prepareDevice`, at the context's build) and kept
 * with it.
 */
import type { DeviceTensor } from "../core/device-tensor.js";
import type { Segment } from "../core/segment.js";
import type { SegmentRunner } from "../core/segment-runner.js";
import { TorchcError } from "../errors.js";
import type { Arg, Graph, Node } from "../ir/graph.js";
import { formatLocation } from "../ir/graph.js";
import type { Tensor } from "../ir/tensor.js";
import { nums } from "../ops/data.js";
import type { CompiledModule } from "./compile.js";
import {
  type ClosedBlock,
  type ControlOp,
  checkBlockTypes,
  closeBlock,
  controlOp,
} from "./control-blocks.js";

/** What an execution context gives a control segment to run it on device values. */
export interface ControlDeviceHost {
  /** Value `name` of the run, as a DeviceTensor over the context's buffer (not to be disposed). */
  tensor(name: string): DeviceTensor;
  /** A host copy of 0-d value `name`, read after everything queued before it on the context's stream. */
  read(name: string): Promise<Tensor>;
  /**
   * A host copy of 0-d device tensor `t` whose producer has completed (a block's run() that resolved), read
   * the way `read` reads (the context's readback buffer and event, on its stream).
   */
  readTensor(t: DeviceTensor): Promise<Tensor>;
  /**
   * Device tensors kept for `owner` while the context lives: `make` runs on the first call, later calls get
   * the same tensors, and the context frees them when it is disposed.
   */
  keep(owner: object, make: () => DeviceTensor[][]): DeviceTensor[][];
  /** Resolves once everything queued so far on the context's stream is done. */
  settle(): Promise<void>;
  /** Queues a copy of `src` into value `name`'s buffer on the context's stream. */
  copyInto(name: string, src: DeviceTensor): void;
}

/** Compiles one closed block with the enclosing module's options. */
export type CompileBlock = (graph: Graph, label: string) => Promise<CompiledModule>;

function truthy(t: Tensor, node: Node): boolean {
  const v = nums(t);
  if (v.length !== 1)
    throw new TorchcError(
      `${node.op} at ${formatLocation(node)}: a condition must have one element, got ${v.length}`,
      "graph.condition",
    );
  return v[0] !== 0;
}

const iteration = (i: number): Tensor => ({ dtype: "int64", shape: [], data: BigInt64Array.of(BigInt(i)) });

export class ControlRunner implements SegmentRunner {
  readonly op: ControlOp;
  readonly node: Node;
  readonly description: string;

  constructor(
    readonly segment: Segment,
    readonly blocks: readonly ClosedBlock[],
    /** One compiled module per block: then and else, or the loop body. */
    readonly modules: readonly CompiledModule[],
  ) {
    this.node = segment.nodes[0];
    this.op = controlOp(this.node);
    const names = this.op === "if" ? ["then", "else"] : ["body"];
    this.description = `${this.node.op}: ${modules
      .map((m, i) => `${names[i]} [${m.report.runners.join("; ") || "no segments"}]`)
      .join(", ")}`;
  }

  /** Host tensors (backends without execution contexts). */
  async run(values: ReadonlyMap<string, Tensor>): Promise<Map<string, Tensor>> {
    const get = (name: string) => {
      const t = values.get(name) ?? this.segment.graph.weights[name]?.tensor;
      if (!t) throw new Error(`control segment ${this.segment.index}: value '${name}' was not computed`);
      return t as Tensor;
    };
    const arg = (key: string) => this.scalarArg(key, async (n) => get(n));
    let outs: readonly Tensor[];
    if (this.op === "if") {
      const b = (await arg("cond")) ? 0 : 1;
      outs = await this.modules[b].run(this.blocks[b].captured.map(get));
    } else {
      const body = this.modules[0];
      const captured = this.blocks[0].captured.map(get);
      const trips = await arg("max_trip_count");
      let cond = (await arg("cond")) !== 0;
      let carried = this.initNames().map(get);
      for (let i = 0; i < trips && cond; i++) {
        const [c, ...next] = await body.run([iteration(i), ...carried, ...captured]);
        cond = truthy(c, this.node);
        carried = next;
      }
      outs = carried;
    }
    return new Map(this.node.outputs.map((o, i) => [o, outs[i]] as [string, Tensor]));
  }

  /** On device values: the context's buffers in, the node's output buffers out. */
  async runDevice(host: ControlDeviceHost): Promise<void> {
    const arg = (key: string) => this.scalarArg(key, (n) => host.read(n));
    // A constant predicate reads nothing: the blocks' own streams must still wait for the values' producers.
    await host.settle();
    if (this.op === "if") {
      const b = (await arg("cond")) ? 0 : 1;
      await this.modules[b].run(this.blocks[b].captured.map(host.tensor), {
        outputs: this.node.outputs.map(host.tensor),
      });
      return;
    }
    await this.loopOnDevice(host, await arg("max_trip_count"), (await arg("cond")) !== 0);
  }

  /**
   * The buffers `runDevice` needs on this host, made now (an execution context calls this at its build): a
   * loop body's two output sets, kept with the context and reused by every run.
   */
  prepareDevice(host: ControlDeviceHost): void {
    if (this.op === "loop") this.outputSets(host);
  }

  private outputSets(host: ControlDeviceHost): DeviceTensor[][] {
    const body = this.modules[0];
    return host.keep(this, () => {
      const first = body.allocateOutputs();
      try {
        return [first, body.allocateOutputs()];
      } catch (e) {
        for (const t of first) t.dispose();
        throw e;
      }
    });
  }

  /** constantCondition()'s answer, found at its first call (the body's compiled graph does not change). */
  private constantConditionOnce: { readonly value: boolean | undefined } | undefined;

  /** The body's condition when it is a constant of the body's compiled graph (a `for`): nothing to read. */
  private constantCondition(): boolean | undefined {
    if (this.constantConditionOnce) return this.constantConditionOnce.value;
    const g = this.modules[0].graph as Graph | undefined;
    const w = g?.weights[g.outputs[0]]?.tensor as Tensor | undefined;
    const value = w ? truthy(w, this.node) : undefined;
    this.constantConditionOnce = { value };
    return value;
  }

  /** The body's outputs alternate between two sets of buffers: one holds the carried values the next reads. */
  private async loopOnDevice(host: ControlDeviceHost, trips: number, cond: boolean): Promise<void> {
    const body = this.modules[0];
    const captured = this.blocks[0].captured.map(host.tensor);
    let carried: DeviceTensor[] = this.initNames().map(host.tensor);
    const sets = trips > 0 && cond ? this.outputSets(host) : [];
    const constant = this.constantCondition();
    for (let i = 0; i < trips && cond; i++) {
      const out = sets[i % 2];
      await body.run([iteration(i), ...carried, ...captured], { outputs: out });
      cond = constant ?? truthy(await host.readTensor(out[0]), this.node);
      carried = out.slice(1);
    }
    carried.forEach((t, k) => {
      host.copyInto(this.node.outputs[k], t);
    });
    await host.settle();
  }

  private initNames(): string[] {
    const init = this.node.args.init;
    const names = init?.kind === "tensors" ? init.names : init?.kind === "tensor" ? [init.name] : [];
    return names.map((n) => n ?? "");
  }

  /** A numeric argument (condition, trip count): a constant, or a 0-d tensor read through `read`. */
  private async scalarArg(key: string, read: (name: string) => Promise<Tensor>): Promise<number> {
    const a: Arg | undefined = this.node.args[key];
    if (a?.kind === "int" || a?.kind === "float") return a.value;
    if (a?.kind === "bool") return a.value ? 1 : 0;
    if (a?.kind === "tensor") {
      const t = await read(a.name);
      if (key === "cond") return truthy(t, this.node) ? 1 : 0;
      return nums(t)[0];
    }
    throw new TorchcError(
      `${this.node.op} needs argument '${key}': ${formatLocation(this.node)}`,
      "graph.control-flow",
    );
  }

  async dispose(): Promise<void> {
    for (const m of this.modules) await m.dispose();
  }
}

/** Closes and type-checks the node's blocks, then compiles each: the runner of one control segment. */
export async function createControlRunner(
  segment: Segment,
  outer: Graph,
  compileBlock: CompileBlock,
): Promise<ControlRunner> {
  const node = segment.nodes[0];
  const blocks = (node.subgraphs ?? []).map((b) => closeBlock(outer, node, b));
  checkBlockTypes(outer, node, blocks);
  const modules: CompiledModule[] = [];
  try {
    for (const [i, b] of blocks.entries())
      modules.push(await compileBlock(b.graph, `${node.name} block ${i}`));
  } catch (e) {
    for (const m of modules) await m.dispose();
    throw e;
  }
  return new ControlRunner(segment, blocks, modules);
}

export function isControlRunner(r: SegmentRunner): r is ControlRunner {
  return r instanceof ControlRunner;
}
