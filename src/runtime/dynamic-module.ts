/**
 * A compiled model with a batch range: one static build per size bucket (powers of two in the range, plus its
 * opt and max sizes), made the first time a batch needs it (or all at compile time), on one backend, so the
 * CUDA backend's weights are uploaded once (cuda/shared-weights.ts) and its kernel cache, device and LibTorch
 * environment are shared. A batch of n rows runs in the bucket of exactly n rows when there is one, else in the
 * smallest larger bucket with zero rows appended and the outputs cut back, which the row check
 * (dynamic-rows.ts) makes exact. At most `maxResidentBuckets` buckets stay built; the least recently used one
 * (never the opt bucket) is freed, activations, CUDA graphs and plans with it, when another is needed.
 */
import { InputError, TorchcError } from "../errors.js";
import type { LoadedModel } from "../frontends/load-model.js";
import type { Graph } from "../ir/graph.js";
import { formatSymShape, inferSymbolicTypes, isSymbolic, type SymbolicGraph } from "../ir/symbolic.js";
import { formatShape, numel, type Tensor } from "../ir/tensor.js";
import { type BenchmarkResult, CompiledModule, compile, loadBackend } from "./compile.js";
import type { PoolStats } from "./context-pool.js";
import { type DeviceTensor, isDeviceTensor } from "./device-tensor.js";
import { padRows, sliceRows } from "./dynamic-pad.js";
import {
  joinPieces,
  pipelineAxesRefusal,
  pipelineContexts,
  pipelinePieces,
  pipelineRunRefusal,
  rowView,
  runPieces,
} from "./dynamic-pipeline.js";
import { batchAxisOf, checkRowIndependence } from "./dynamic-rows.js";
import { type ModuleMemory, moduleMemory, type RunOptions } from "./execution.js";
import type { CompileOptions } from "./options.js";
import type { Backend } from "./segment-runner.js";
import { type BatchRange, bucketFor, checkDynamicOptions, maxResidentBuckets } from "./shape-range.js";

/** One built bucket: a static module for exactly `size` rows. */
interface Bucket {
  readonly size: number;
  readonly module: CompiledModule;
  /** Calls running in it now (it is never freed while one is). */
  inflight: number;
  lastUse: number;
}

/** What `compiled.buckets` reports. */
export interface BucketInfo {
  readonly size: number;
  readonly resident: boolean;
  /** Times it was built (more than once when it was freed and needed again). */
  readonly builds: number;
}

/** Where the batch sits in each output (undefined: the output does not depend on the batch size). */
type OutputAxes = readonly ({ axis: number; coeff: number } | undefined)[];

/**
 * Checks that `symbolic` keeps batch rows apart, builds the opt bucket (or every bucket) and returns the
 * module. Sizes are read off specializations at up to three values of the range.
 */
export async function compileDynamic(
  model: LoadedModel | Graph,
  symbolic: SymbolicGraph,
  range: BatchRange,
  options: CompileOptions,
): Promise<CompiledModule> {
  checkDynamicOptions(options.dynamic);
  const { symbol } = range;
  const at = [...new Set([range.opt, range.max, range.min])];
  const graphs = at.map((v) => symbolic.specialize({ ...range.fixed, [symbol]: v }));
  const sym = inferSymbolicTypes(graphs, symbol, at);
  checkRowIndependence(graphs[0], sym, symbol);
  const outputAxes: OutputAxes = graphs[0].outputs.map((n) => batchAxisOf(sym.types[n]));
  if (options.dynamic?.pipelineRows !== undefined) {
    const why = pipelineAxesRefusal(range.inputAxes, outputAxes);
    if (why)
      throw new TorchcError(
        `dynamic.pipelineRows: this model can't be pipelined: ${why} (pieces are cut along the first axis)`,
        "options.inputs",
      );
  }
  const backend = await loadBackend(options.backend ?? "reference", options);
  // Buckets share the backend (device, weight store, LibTorch environment); only the module disposes it.
  const shared: Backend = Object.create(backend, { dispose: { value: undefined } });
  const source = "path" in model ? model.path : "<graph>";
  let opt: CompiledModule;
  try {
    opt = await buildBucket(symbolic, range, range.opt, options, shared);
  } catch (e) {
    await backend.dispose?.();
    throw e;
  }
  const module = new DynamicModule(symbolic, range, outputAxes, options, backend, shared, source, opt);
  if (options.dynamic?.build === "all") {
    try {
      for (const size of range.buckets) if (size !== range.opt) await module.warmBucket(size);
    } catch (e) {
      await module.dispose();
      throw e;
    }
  }
  return module;
}

/** A static module for `size` rows: the program specialized, then compiled as any static model. */
async function buildBucket(
  symbolic: SymbolicGraph,
  range: BatchRange,
  size: number,
  options: CompileOptions,
  backend: Backend,
): Promise<CompiledModule> {
  const graph = symbolic.specialize({ ...range.fixed, [range.symbol]: size });
  const { inputs: _inputs, dynamic, verify, ...rest } = options;
  // pieces copy while others compute: the pipeline's bucket needs several contexts
  const contexts =
    size === dynamic?.pipelineRows ? { contexts: pipelineContexts(options.contexts, size, range.max) } : {};
  // verified once, at the opt size: every bucket is the same program
  return compile(graph, {
    ...rest,
    ...contexts,
    backend,
    ...(size === range.opt && verify ? { verify } : {}),
  });
}

export class DynamicModule extends CompiledModule {
  private readonly resident = new Map<number, Bucket>();
  private readonly building = new Map<number, Promise<Bucket>>();
  private readonly builds = new Map<number, number>();
  /** Calls waiting for a bucket's build: it is not freed between its build and their first use. */
  private readonly waiters = new Map<number, number>();
  private clock = 0;
  private closed = false;
  private readonly maxResident: number;

  constructor(
    private readonly symbolic: SymbolicGraph,
    /** The dynamic dimension as compiled: symbol, min/opt/max and bucket sizes. */
    readonly range: BatchRange,
    private readonly outputAxes: OutputAxes,
    options: CompileOptions,
    backend: Backend,
    private readonly shared: Backend,
    source: string,
    opt: CompiledModule,
  ) {
    // The base holds the opt bucket's graph, partition and report (input names, outputs, allocate*() at the
    // opt size); runs go to the buckets.
    const report = withRangeLine(opt, symbolic, range, options);
    super(opt.graph, opt.partition, [], report, backend, options, source, [], opt.registry);
    this.maxResident = maxResidentBuckets(options.dynamic);
    this.verification = opt.verification;
    this.resident.set(range.opt, { size: range.opt, module: opt, inflight: 0, lastUse: 0 });
    this.builds.set(range.opt, 1);
  }

  /** Builds the bucket of `size` rows now (compile option `dynamic.build: "all"`). */
  async warmBucket(size: number): Promise<void> {
    const b = await this.bucket(size);
    b.inflight--;
  }

  /** Each bucket: its size, whether it is built now, and how many times it was built. */
  get buckets(): BucketInfo[] {
    return this.range.buckets.map((size) => ({
      size,
      resident: this.resident.has(size),
      builds: this.builds.get(size) ?? 0,
    }));
  }

  override get queue(): PoolStats | undefined {
    return this.resident.get(this.range.opt)?.module.queue;
  }

  override save(_path: string): void {
    throw new TorchcError(
      "saving a module with a batch range is not supported yet; save a static compile (inputs with one shape)",
      "runtime.dynamic-save",
    );
  }

  /** The bucket of `size` rows, built if needed, with a call counted in it (the caller must count it out). */
  private async bucket(size: number): Promise<Bucket> {
    const have = this.resident.get(size);
    if (have) {
      have.inflight++;
      have.lastUse = ++this.clock;
      return have;
    }
    let pending = this.building.get(size);
    if (!pending) {
      pending = this.build(size);
      this.building.set(size, pending);
      pending.finally(() => this.building.delete(size)).catch(() => {});
    }
    this.waiters.set(size, (this.waiters.get(size) ?? 0) + 1);
    let b: Bucket;
    try {
      b = await pending;
    } finally {
      this.waiters.set(size, (this.waiters.get(size) ?? 1) - 1);
    }
    b.inflight++;
    b.lastUse = ++this.clock;
    // counted in first, so that it is not the one freed
    await this.evict();
    return b;
  }

  private async build(size: number): Promise<Bucket> {
    if (this.closed) throw new TorchcError("the compiled module has been disposed", "runtime.disposed");
    const module = await buildBucket(this.symbolic, this.range, size, this.options, this.shared);
    if (this.closed) {
      await module.dispose();
      throw new TorchcError("the compiled module has been disposed", "runtime.disposed");
    }
    const bucket: Bucket = { size, module, inflight: 0, lastUse: ++this.clock };
    this.resident.set(size, bucket);
    this.builds.set(size, (this.builds.get(size) ?? 0) + 1);
    return bucket;
  }

  /** Counts a call out of `b`, then frees buckets over the limit (held back while `b` was busy). */
  private async release(b: Bucket): Promise<void> {
    b.inflight--;
    if (this.resident.size > this.maxResident) await this.evict();
  }

  /**
   * Frees least recently used idle buckets (never the opt one, nor the pipeline's: it has several contexts and
   * every pipelined batch needs it) until at most maxResident are built.
   */
  private async evict(): Promise<void> {
    while (this.resident.size > this.maxResident) {
      let victim: Bucket | undefined;
      for (const b of this.resident.values())
        if (
          b.size !== this.range.opt &&
          b.size !== this.options.dynamic?.pipelineRows &&
          b.inflight === 0 &&
          !this.waiters.get(b.size) &&
          (!victim || b.lastUse < victim.lastUse)
        )
          victim = b;
      if (!victim) return; // all busy: freed when they finish
      this.resident.delete(victim.size);
      await victim.module.dispose();
    }
  }

  /** The batch size of a run's inputs, checked against the range, the model's static sizes and dtypes. */
  private batchOf(inputs: readonly (Tensor | DeviceTensor)[]): number {
    const g = this.graph;
    if (!Array.isArray(inputs) || inputs.length !== g.inputs.length)
      throw new InputError(
        `the model takes ${g.inputs.length} input(s) (${g.inputs.join(", ")}) but ${Array.isArray(inputs) ? inputs.length : "no list"} were given`,
        "input.count",
      );
    const r = this.range;
    let batch: number | undefined;
    inputs.forEach((t, i) => {
      const name = g.inputs[i];
      const want = this.symbolic.inputTypes[name];
      const have = g.values[name];
      if (typeof t !== "object" || t === null || !Array.isArray(t.shape))
        throw new InputError(
          `input '${name}': not a tensor (expected { dtype, shape, data } or a DeviceTensor)`,
          "input.invalid",
        );
      if (t.dtype !== have.dtype)
        throw new InputError(
          `input '${name}': dtype ${t.dtype} does not match the model's ${have.dtype}`,
          "input.dtype",
        );
      const dims = want?.shape ?? have.shape;
      const axis = r.inputAxes[i];
      const expected = `${formatSymShape(dims)} with ${r.symbol} in ${r.min}–${r.max}`;
      if (
        t.shape.length !== dims.length ||
        dims.some((d, k) => !isSymbolic(d) && k !== axis && t.shape[k] !== d)
      )
        throw new InputError(
          `input '${name}': shape ${formatShape(t.shape)} does not match the model's ${expected}`,
          "input.shape",
        );
      if (axis === undefined) return;
      const n = t.shape[axis];
      if (!Number.isSafeInteger(n) || n < r.min || n > r.max)
        throw new InputError(
          `input '${name}': dimension ${axis} is ${n}, outside the compiled range ${r.min}–${r.max} of '${r.symbol}' (shapes ${formatShape(dims.map((d) => (isSymbolic(d) ? r.min : d)))} to ${formatShape(dims.map((d) => (isSymbolic(d) ? r.max : d)))})`,
          "input.range",
        );
      if (batch !== undefined && n !== batch)
        throw new InputError(
          `input '${name}': dimension ${axis} ('${r.symbol}') is ${n} but an earlier input's is ${batch}`,
          "input.shape",
        );
      batch = n;
      if (!isDeviceTensor(t)) {
        const data = (t as { data?: unknown }).data;
        const len = ArrayBuffer.isView(data) ? (data as unknown as { length: number }).length : -1;
        if (len !== numel(t.shape))
          throw new InputError(
            `input '${name}': data must be a typed array of ${numel(t.shape)} elements for shape ${formatShape(t.shape)}`,
            "input.shape",
          );
      }
    });
    return batch ?? r.opt;
  }

  protected override async runPositional(
    inputs: readonly (Tensor | DeviceTensor)[],
    opts: RunOptions,
  ): Promise<(Tensor | DeviceTensor)[]> {
    if (this.closed) throw new TorchcError("the compiled module has been disposed", "runtime.disposed");
    const n = this.batchOf(inputs);
    const pipe = this.options.dynamic?.pipelineRows;
    // the model's axes were checked at compile time (compileDynamic)
    if (pipe !== undefined && n > pipe && pipelineRunRefusal(inputs, opts) === undefined)
      return this.runPipelined(inputs as readonly Tensor[], n, pipe, opts);
    return this.runSized(inputs, n, opts);
  }

  /** A batch of n rows in its bucket (padded to it when there is no bucket of exactly n). */
  private async runSized(
    inputs: readonly (Tensor | DeviceTensor)[],
    n: number,
    opts: RunOptions,
  ): Promise<(Tensor | DeviceTensor)[]> {
    const r = this.range;
    const size = r.buckets.includes(n) ? n : (bucketFor(r.buckets, n) as number);
    if (
      size !== n &&
      (inputs.some(isDeviceTensor) || (opts.outputs !== undefined && opts.outputs !== "host"))
    )
      throw new InputError(
        `a batch of ${n} runs padded to the bucket of ${size}; DeviceTensors and output buffers need a bucket size (${r.buckets.join(", ")})`,
        "input.bucket",
      );
    const b = await this.bucket(size);
    try {
      if (size === n) return await b.module.run(inputs, opts);
      const padded = inputs.map((t, i) => {
        const axis = r.inputAxes[i];
        return axis === undefined ? (t as Tensor) : padRows(t as Tensor, axis, size);
      });
      const outs = (await b.module.run(padded, opts)) as Tensor[];
      return outs.map((t, i) => {
        const a = this.outputAxes[i];
        return a ? sliceRows(t, a.axis, a.coeff * n) : t;
      });
    } finally {
      await this.release(b);
    }
  }

  /**
   * A host batch of n > `rows` as pieces of `rows` rows in the pipeline's bucket (the remainder in its own
   * bucket), each piece's copy overlapping the previous piece's forward pass (dynamic-pipeline.ts).
   */
  private async runPipelined(
    inputs: readonly Tensor[],
    n: number,
    rows: number,
    opts: RunOptions,
  ): Promise<Tensor[]> {
    const b = await this.bucket(rows);
    const axes = this.range.inputAxes;
    const pieces = pipelinePieces(n, rows);
    try {
      const parts = await runPieces(pieces, (piece, index, copiesQueued) => {
        const views = inputs.map((t, i) => (axes[i] === undefined ? t : rowView(t, piece.start, piece.rows)));
        const onPhase: RunOptions["onPhase"] = (phase, at) => {
          if (phase === "copying" || phase === "inputs") copiesQueued();
          opts.onPhase?.(phase, at, index);
        };
        const run =
          piece.rows === rows
            ? b.module.run(views, { ...opts, onPhase })
            : this.runSized(views, piece.rows, { ...opts, onPhase });
        return run as Promise<Tensor[]>;
      });
      return joinPieces(pieces, parts, this.outputAxes, n);
    } finally {
      await this.release(b);
    }
  }

  /** GPU time of the bucket that `inputs`' batch runs in (built by an earlier run()), as a static module's. */
  override benchmark(
    inputs: readonly Tensor[],
    options: { reps?: number; batch?: number } = {},
  ): BenchmarkResult {
    const n = this.batchOf(inputs);
    const size = this.range.buckets.includes(n) ? n : (bucketFor(this.range.buckets, n) as number);
    const b = this.resident.get(size);
    if (!b) {
      const pipe = this.options.dynamic?.pipelineRows;
      const why =
        pipe !== undefined && n > pipe
          ? `host batches of ${n} rows run as pipelined pieces of ${pipe} (dynamic.pipelineRows), so it is never built; benchmark a batch of ${pipe}`
          : `run() a batch of ${n} once before benchmarking it`;
      throw new TorchcError(`the bucket of ${size} rows is not built; ${why}`, "bench.bucket");
    }
    const padded = inputs.map((t, i) => {
      const axis = this.range.inputAxes[i];
      return axis === undefined ? t : padRows(t, axis, size);
    });
    return b.module.benchmark(padded, { ...options, batch: options.batch ?? n });
  }

  /** Bytes of every built bucket; weights once (the CUDA backend shares them between buckets). */
  override memory(): ModuleMemory {
    const all = [...this.resident.values()].map((b) => b.module.memory());
    const sum = (k: "activations" | "workspaces" | "io" | "pinnedHost" | "contexts") =>
      all.reduce((a, m) => a + m[k], 0);
    // the CUDA backend counts its shared weight sets; elsewhere every bucket reads the same host weights
    const shared = (this.shared as { sharedWeightBytes?: () => number }).sharedWeightBytes?.();
    const weights = shared ?? all.reduce((a, m) => Math.max(a, m.weights), 0);
    const opt = this.resident.get(this.range.opt)?.module.memory();
    return moduleMemory(weights, sum, sum("contexts"), opt?.perContext);
  }

  override async dispose(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled([...this.building.values()]);
    for (const b of this.resident.values()) await b.module.dispose();
    this.resident.clear();
    await super.dispose();
  }
}

/** The opt bucket's report with a line on the range and its buckets. */
function withRangeLine(
  opt: CompiledModule,
  symbolic: SymbolicGraph,
  r: BatchRange,
  options: CompileOptions,
): CompiledModule["report"] {
  const inputs = opt.graph.inputs
    .map((n) => `${n} ${formatSymShape(symbolic.inputTypes[n]?.shape ?? opt.graph.values[n].shape)}`)
    .join(", ");
  const when = options.dynamic?.build === "all" ? "at compile time" : "when first needed";
  const pipe = options.dynamic?.pipelineRows;
  const pipeline = pipe
    ? `; host batches over ${pipe} rows run as pipelined pieces of ${pipe} (its bucket has ${pipelineContexts(options.contexts, pipe, r.max)} contexts)`
    : "";
  const line = `dynamic: ${r.symbol} in ${r.min}–${r.max} (opt ${r.opt}) for ${inputs}; buckets ${r.buckets.join(", ")}, built ${when}, at most ${maxResidentBuckets(options.dynamic)} kept${pipeline}`;
  return { ...opt.report, text: `${opt.report.text}\n${line}` };
}
