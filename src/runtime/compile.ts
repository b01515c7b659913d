import { convertSegment } from "../converters/convert-segment.js";
import {
  buildRegistry,
  CONVERTER_TABLES,
  type ConverterRegistry,
  defaultRegistry,
} from "../converters/index.js";
import { inplaceCandidates } from "../converters/inplace.js";
import type { ProfileReport } from "../core/profile.js";
import { InputError, TorchcError } from "../errors.js";
import type { LoadedModel } from "../frontends/load-model.js";
import type { DType } from "../ir/dtype.js";
import type { Graph } from "../ir/graph.js";
import { summarizeGraph } from "../ir/summary.js";
import { allocData, numel, type Shape, type Tensor } from "../ir/tensor.js";
import { formatPartitionReport, type Partition, partitionGraph } from "../partition/index.js";
import { reducedPrecisionOf } from "../passes/assign-precision.js";
import { type Fp16OverflowResult, formatKeptNodes, type KeptNode } from "../passes/fp16-overflow.js";
import { formatInt8Choice, type Int8SpeedReport } from "../passes/int8-speed-report.js";
import type { Pass } from "../passes/pass.js";
import { defaultPipeline, runPipeline } from "../passes/pipeline.js";
import { formatSensitivity, keptPrecisionName, type SensitivityReport } from "../passes/quantize-keep.js";
import { appendTrace, formatTrace, type Trace } from "../passes/rewrite/trace.js";
import { reportProgress } from "../util/progress.js";
import { randomInput } from "../util/random-input.js";
import { type VerifyReport, verifyCompiled } from "../verify/verify.js";
import { quantizeForCompile, quantPrecisionOf } from "./calibration.js";
import { backendInt8Probe } from "./calibration-speed.js";
import { ContextPool, type PoolStats } from "./context-pool.js";
import { blockCompiler, controlFlowSummary, savedControlGraph } from "./control-compile.js";
import { createControlRunner } from "./control-runner.js";
import { type DeviceTensor, isDeviceTensor } from "./device-tensor.js";
import {
  type ContextMemory,
  type DeviceAllocator,
  type ExecutionContext,
  type HostRegistration,
  type ModuleMemory,
  moduleMemory,
  type RunOptions,
} from "./execution.js";
import { fp16OverflowPipelineOption } from "./fp16-overflow-samples.js";
import { type CompileOptions, normalizePrecisions } from "./options.js";
import { loadPackage, savePackage } from "./package.js";
import type { RebuildPolicy } from "./package-artifacts.js";
import { type RefitReport, type RefitSource, refitModule } from "./refit.js";
import type { Backend, SegmentRunner } from "./segment-runner.js";
import { resolveShapes } from "./shape-range.js";
import { truncateDouble } from "./truncate-double.js";
import { validateInputs } from "./validate-inputs.js";
import { checkCompileOptions, checkRebuild } from "./validate-options.js";

export interface BenchmarkResult {
  readonly medianMs: number;
  readonly p90Ms: number;
  readonly reps: number;
  /** Samples per second. */
  readonly throughput: number;
}

export interface CompileReport {
  /** Nodes before and after lowering. */
  readonly nodesBefore: number;
  readonly nodesAfter: number;
  readonly trace: Trace;
  readonly partition: Partition["report"];
  /** Nodes kept in float32 because a sample run overflows fp16 (the fp16Overflow option), in graph order. */
  readonly fp32Islands?: readonly KeptNode[];
  /** int8: each quantizable convolution's int8 and float times, and which stayed float for speed (./calibration-speed.ts). */
  readonly int8Choice?: Int8SpeedReport;
  /** Milliseconds per phase. */
  readonly timings: Readonly<Record<"lower" | "partition" | "convert" | "build", number>>;
  readonly runners: readonly string[];
  /** Everything above as text, for the CLI. */
  readonly text: string;
}

/** A compiled model: lowered graph, segments and their runners, and (on the GPU) its execution contexts. */
export class CompiledModule {
  private readonly pool: ContextPool<ExecutionContext> | undefined;
  /** What `verify` found, when compiled with it (see src/verify/verify.ts). */
  verification: VerifyReport | undefined;
  private disposed = false;

  constructor(
    /** The model's graph after lowering (the one the segments were cut from). */
    readonly graph: Graph,
    readonly partition: Partition,
    private readonly runners: readonly SegmentRunner[],
    readonly report: CompileReport,
    private readonly backend: Backend,
    /** The options it was compiled with and the model file it came from, for save(). */
    readonly options: CompileOptions,
    readonly source: string,
    private readonly contexts: readonly ExecutionContext[] = [],
    /** The converter registry the engine segments were converted with (custom converters included). */
    readonly registry: ConverterRegistry = defaultRegistry(),
  ) {
    this.pool = contexts.length > 0 ? new ContextPool(contexts) : undefined;
  }

  /** Writes the lowered graph, weights and options (see runtime/package.ts); engines are rebuilt on load. */
  save(path: string): void {
    // Functions and tensors in the options (custom backend, converters, verify inputs) are not saved.
    // Calibration data is not saved either: the saved graph is already quantized.
    const {
      backend,
      converters: _converters,
      verify: _verify,
      calibration: _calibration,
      ...rest
    } = this.options;
    const options = typeof backend === "string" ? { ...rest, backend } : rest;
    const artifacts = this.backend.saveArtifacts?.(this.runners);
    savePackage(path, {
      graph: this.savedGraph(),
      options,
      source: this.source,
      ...(artifacts ? { artifacts } : {}),
    });
  }

  /**
   * The graph save() writes: this.graph, with each control-flow node's blocks as they were compiled (lowered,
   * precisions assigned; runtime/control-compile.ts), so that a load, which runs no passes, builds the same blocks.
   */
  savedGraph(): Graph {
    return savedControlGraph(this.graph, this.runners, (m) => m.savedGraph());
  }

  /**
   * Runs the model on inputs in the model's input order: host tensors or DeviceTensors. The promise settles
   * when the outputs are ready, without blocking the event loop while the GPU works. Overlapping calls are
   * safe: each runs in an execution context of its own, or waits in order for one (`contexts` option).
   * Outputs are new host tensors unless `outputs` asks for "device" tensors or names tensors to fill.
   */
  async run(inputs: readonly Tensor[]): Promise<Tensor[]>;
  async run(
    inputs: readonly (Tensor | DeviceTensor)[],
    opts: RunOptions & { outputs: "device" },
  ): Promise<DeviceTensor[]>;
  async run(
    inputs: readonly (Tensor | DeviceTensor)[],
    opts?: RunOptions,
  ): Promise<(Tensor | DeviceTensor)[]>;
  /** Inputs by name (the model's input names): outputs come back by name too. */
  async run(
    inputs: Readonly<Record<string, Tensor | DeviceTensor>>,
    opts?: RunOptions,
  ): Promise<Record<string, Tensor | DeviceTensor>>;
  async run(
    inputs: readonly (Tensor | DeviceTensor)[] | Readonly<Record<string, Tensor | DeviceTensor>>,
    opts: RunOptions = {},
  ): Promise<(Tensor | DeviceTensor)[] | Record<string, Tensor | DeviceTensor>> {
    if (Array.isArray(inputs)) return this.runPositional(inputs, opts);
    if (typeof inputs !== "object" || inputs === null)
      throw new InputError(
        "inputs must be an array of tensors or a record of them by input name",
        "input.invalid",
      );
    const record = inputs as Readonly<Record<string, Tensor | DeviceTensor>>;
    const expected = this.graph.inputs;
    const extra = Object.keys(record).filter((k) => !expected.includes(k));
    const missing = expected.filter((k) => !Object.hasOwn(record, k));
    if (extra.length || missing.length) {
      const parts = [
        missing.length ? `missing ${missing.map((n) => `'${n}'`).join(", ")}` : "",
        extra.length ? `unknown ${extra.map((n) => `'${n}'`).join(", ")}` : "",
      ].filter(Boolean);
      throw new InputError(
        `inputs by name: ${parts.join("; ")} (the model's inputs: ${expected.join(", ")})`,
        "input.names",
      );
    }
    const outs = await this.runPositional(
      expected.map((n) => record[n]),
      opts,
    );
    return Object.fromEntries(this.graph.outputs.map((n, i) => [n, outs[i]]));
  }

  protected async runPositional(
    inputs: readonly (Tensor | DeviceTensor)[],
    opts: RunOptions,
  ): Promise<(Tensor | DeviceTensor)[]> {
    if (this.disposed) throw new TorchcError("the compiled module has been disposed", "runtime.disposed");
    validateInputs(this.graph, inputs);
    if (this.pool) return this.pool.use((ctx) => ctx.run(inputs, opts));
    if (inputs.some(isDeviceTensor) || opts.outputs !== undefined)
      throw new TorchcError(
        `the ${this.backend.name} backend runs on host tensors only; DeviceTensors and output buffers need --backend cuda`,
        "options.backend",
      );
    const values = new Map<string, Tensor>();
    for (const [i, name] of this.graph.inputs.entries()) values.set(name, inputs[i] as Tensor);
    for (const runner of this.runners) {
      for (const [k, v] of await runner.run(values)) values.set(k, v);
    }
    return this.graph.outputs.map((name) => {
      const t = values.get(name) ?? (this.graph.weights[name]?.tensor as Tensor | undefined);
      if (!t) throw new Error(`output '${name}' was not produced`);
      return t;
    });
  }

  /**
   * Swaps in the weights of a model with the same architecture (a loaded model, a graph, a .torchc package or a
   * path) without rebuilding engines; the structure must match after lowering (runtime/refit.ts). Call it with
   * no run() in flight. Outputs afterwards are those of a fresh compile of the new model.
   */
  async refit(source: RefitSource): Promise<RefitReport> {
    if (this.disposed) throw new TorchcError("the compiled module has been disposed", "runtime.disposed");
    const q = this.pool?.stats;
    if (q && (q.busy > 0 || q.queued > 0))
      throw new TorchcError("refit: runs are in flight; await them first", "refit.busy");
    const r = await refitModule(
      {
        graph: this.graph,
        partition: this.partition,
        options: this.options,
        registry: this.registry,
        runners: this.runners as SegmentRunner[],
        backend: this.backend,
        contexts: this.contexts.length > 0,
      },
      source,
    );
    // The module now stands for the new weights (save() writes them).
    Object.assign(this, { graph: r.graph, partition: r.partition });
    return r.report;
  }

  /** Calls in flight and waiting (execution-context backends). */
  get queue(): PoolStats | undefined {
    return this.pool?.stats;
  }

  /** Bytes the module holds: weights, activation arenas, workspaces, I/O buffers, pinned host staging. */
  memory(): ModuleMemory {
    const per = this.contexts.map((c) => c.memory);
    const sum = (k: keyof ContextMemory) => per.reduce((a, m) => a + m[k], 0);
    const weights = this.backend.weightBytes?.(this.runners) ?? 0;
    return moduleMemory(weights, sum, per.length, per[per.length - 1]);
  }

  /** DeviceTensors shaped like the model's inputs, to fill on the device and pass to run() (no host trip). */
  allocateInputs(): DeviceTensor[] {
    return this.graph.inputs.map((n) =>
      this.allocator().deviceTensor(this.graph.values[n].dtype, this.graph.values[n].shape),
    );
  }

  /** DeviceTensors shaped like the model's outputs, for `run(inputs, { outputs })`. */
  allocateOutputs(): DeviceTensor[] {
    return this.graph.outputs.map((n) =>
      this.allocator().deviceTensor(this.graph.values[n].dtype, this.graph.values[n].shape),
    );
  }

  /** Host tensors in page-locked memory shaped like the inputs: run() copies them to the GPU with no staging copy. */
  allocateHostInputs(): Tensor[] {
    return this.graph.inputs.map((n) =>
      this.allocator().pinnedTensor(this.graph.values[n].dtype, this.graph.values[n].shape),
    );
  }

  /**
   * A host tensor of any shape for run()'s inputs: page-locked when the backend has device memory (run() then
   * copies it with no staging copy), an ordinary array otherwise.
   */
  allocateHost(dtype: DType, shape: Shape): Tensor {
    const b = this.backend as Partial<DeviceAllocator>;
    if (b.pinnedTensor) return b.pinnedTensor(dtype, shape);
    return { dtype, shape: [...shape], data: allocData(dtype, numel(shape)) };
  }

  /**
   * Writes `src` into a host tensor at `byteOffset`: for a tensor from `allocateHost` on a GPU backend, a C memcpy
   * on a worker thread (the JS thread stays free; many run at once), else a copy here. `src` must not change
   * until the promise settles.
   */
  async copyIntoHost(dst: Tensor, byteOffset: number, src: Uint8Array): Promise<void> {
    const b = this.backend as Partial<DeviceAllocator>;
    if (b.copyIntoHost) return b.copyIntoHost(dst, byteOffset, src);
    if (byteOffset < 0 || byteOffset + src.byteLength > dst.data.byteLength)
      throw new RangeError(`${src.byteLength} bytes at ${byteOffset} do not fit ${dst.data.byteLength}`);
    new Uint8Array(dst.data.buffer, dst.data.byteOffset + byteOffset, src.byteLength).set(src);
  }

  /**
   * Page-locks the whole pages inside `memory` in place, so that host tensors viewing them are copied to the GPU
   * with no staging copy (a server's request bodies, written there by other threads). On a backend without device
   * memory nothing is locked: the registration covers the whole buffer and releases nothing.
   */
  registerHost(memory: SharedArrayBuffer | ArrayBuffer): HostRegistration {
    const b = this.backend as Partial<DeviceAllocator>;
    if (b.registerHost) return b.registerHost(memory);
    return { offset: 0, bytes: memory.byteLength, release() {} };
  }

  /** Whether gatherToDevice can take these views: each lies in page-locked host memory of this backend. */
  gatherable(parts: readonly ArrayBufferView[]): boolean {
    const b = this.backend as Partial<DeviceAllocator>;
    return b.gatherable !== undefined && b.gatherToDevice !== undefined && b.gatherable(parts);
  }

  /**
   * A DeviceTensor of `dtype[shape]` holding `parts` (gatherable views) back to back from its first byte, zeros
   * after: a batch written from its requests' rows by one DMA each, with no host copy. `into` (a DeviceTensor of
   * that type from this module) is reused. The parts must not change until the promise settles.
   */
  gatherToDevice(
    dtype: DType,
    shape: Shape,
    parts: readonly ArrayBufferView[],
    into?: DeviceTensor,
  ): Promise<DeviceTensor> {
    const b = this.backend as Partial<DeviceAllocator>;
    if (!b.gatherToDevice)
      throw new TorchcError(
        `the ${this.backend.name} backend has no device memory; use --backend cuda`,
        "options.backend",
      );
    return b.gatherToDevice(dtype, shape, parts, into);
  }

  /** Page-locked host tensors shaped like the outputs, for `run(inputs, { outputs })`. */
  allocateHostOutputs(): Tensor[] {
    return this.graph.outputs.map((n) =>
      this.allocator().pinnedTensor(this.graph.values[n].dtype, this.graph.values[n].shape),
    );
  }

  /** A device copy of a host tensor (for device-resident inputs and chains of models). */
  toDevice(t: Tensor): Promise<DeviceTensor> {
    return this.allocator().toDevice(t);
  }

  /** A host copy of a device tensor. */
  toHost(t: DeviceTensor): Promise<Tensor> {
    return this.allocator().toHost(t);
  }

  private allocator(): DeviceAllocator {
    const b = this.backend as Partial<DeviceAllocator>;
    if (!b.deviceTensor || !b.pinnedTensor || !b.toDevice || !b.toHost)
      throw new TorchcError(
        `the ${this.backend.name} backend has no device memory; use --backend cuda`,
        "options.backend",
      );
    return b as DeviceAllocator;
  }

  /**
   * Latency of whole forward passes, inputs already in place: median and p90 in ms, and throughput in
   * samples per second for `batch` samples per pass. GPU backends time with CUDA events after warm-up.
   */
  benchmark(inputs: readonly Tensor[], options: { reps?: number; batch?: number } = {}): BenchmarkResult {
    validateInputs(this.graph, inputs);
    const reps = options.reps ?? 100;
    const ctx = this.contexts[0];
    if (!ctx?.time)
      throw new TorchcError(
        `the ${this.backend.name} backend cannot time runs; use --backend cuda`,
        "bench.backend",
      );
    const times = ctx.time(reps);
    const sorted = [...times].sort((a, b) => a - b);
    const median = sorted[Math.floor((sorted.length - 1) / 2)];
    const p90 = sorted[Math.floor(0.9 * (sorted.length - 1))];
    const batch = options.batch ?? this.graph.values[this.graph.inputs[0]]?.shape[0] ?? 1;
    return { medianMs: median, p90Ms: p90, reps: sorted.length, throughput: (batch * 1000) / median };
  }

  /**
   * Where a forward pass spends GPU time: each step (generated kernel, library call, fallback segment) run on its
   * own between CUDA events, eagerly, `reps` times (default 50); medians, shares, totals per kind. Inputs already
   * in place, as for benchmark(): run() the inputs first.
   */
  profile(options: { reps?: number } = {}): ProfileReport {
    const ctx = this.contexts[0];
    if (!ctx?.profile)
      throw new TorchcError(
        `the ${this.backend.name} backend cannot profile steps; use --backend cuda`,
        "bench.backend",
      );
    return ctx.profile(options.reps ?? 50);
  }

  /** Lets running calls finish, refuses new ones, then frees everything. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await this.pool?.close();
    for (const c of this.contexts) c.dispose();
    for (const r of this.runners) await r.dispose?.();
    await this.backend.dispose?.();
  }
}

function registryWith(extra: NonNullable<CompileOptions["converters"]>) {
  try {
    return buildRegistry(
      ...Object.values(CONVERTER_TABLES),
      inplaceCandidates(Object.values(CONVERTER_TABLES).flat()),
      ...extra,
    );
  } catch (e) {
    throw new TorchcError(`converters: ${(e as Error).message}`, "options.converters");
  }
}

export async function loadBackend(name: string | Backend, options: CompileOptions): Promise<Backend> {
  if (typeof name === "object" && name !== null) return name;
  if (name === "reference") return (await import("../backends/reference/index.js")).referenceBackend;
  if (name === "cuda") return (await import("../backends/cuda-backend.js")).createCudaBackend(options);
  throw new TorchcError(`unknown backend '${name}' (reference, cuda)`, "options.backend");
}

/**
 * Lowers, partitions and builds a model. Engine segments go to the chosen backend; the rest falls back
 * (LibTorch on the GPU, the aten reference interpreter on the CPU).
 */
export async function compile(
  model: LoadedModel | Graph,
  options: CompileOptions = {},
): Promise<CompiledModule> {
  const loaded = "graph" in model ? model.graph : model;
  checkCompileOptions(options, loaded);
  // inputs (static shapes or a batch range) against the model; a range compiles one module per size bucket
  const shapes = resolveShapes(
    loaded,
    "dynamic" in model ? model.dynamic : undefined,
    options.inputs,
    options.dynamic,
  );
  if (shapes.kind === "dynamic") {
    const { compileDynamic } = await import("./dynamic-module.js");
    return compileDynamic(model, shapes.symbolic, shapes.range, options);
  }
  if (options.dynamic?.pipelineRows !== undefined)
    throw new InputError(
      "dynamic.pipelineRows (--pipeline-rows) needs a batch range: inputs with minShape/optShape/maxShape (--input-shape min:opt:max), or a .pt2 exported with a dynamic batch",
      "options.inputs",
    );
  const graph0 = options.truncateDouble ? truncateDouble(shapes.graph) : shapes.graph;
  const precisions = normalizePrecisions(options.enabledPrecisions);
  const t0 = performance.now();
  // fp16Overflow: the analysis runs inside the pipeline's assign-precision; its result goes to the report.
  let overflow = undefined as { result: Fp16OverflowResult; source: string } | undefined;
  const fp16Overflow = await fp16OverflowPipelineOption(
    graph0,
    options,
    reducedPrecisionOf(precisions) === "float16",
    (result, source) => {
      overflow = { result, source };
    },
  );
  const defaults = defaultPipeline({ enabledPrecisions: precisions, fp16Overflow });
  const passes: readonly Pass[] =
    options.passes === undefined
      ? defaults
      : typeof options.passes === "function"
        ? options.passes(defaults)
        : options.passes;
  // int8 / fp8: calibrate on the fp32-lowered graph (or read the cache), then lower the quantized graph.
  const quant = quantPrecisionOf(options.enabledPrecisions);
  // On a GPU backend the calibration batches run through an fp32 engine of it (runtime/calibration.ts).
  const engine =
    options.backend === undefined || options.backend === "reference"
      ? undefined
      : (g: Graph) =>
          compile(g, {
            ...options,
            enabledPrecisions: ["fp32"],
            calibration: undefined,
            passes: [],
            verify: false,
          });
  // The mixed-precision decision reaches the report and verify; the user's own callback still runs.
  let sensitivity: SensitivityReport | undefined;
  let int8Choice: Int8SpeedReport | undefined;
  const calibration = options.calibration && {
    ...options.calibration,
    onSensitivity: (r: SensitivityReport) => {
      sensitivity = r;
      options.calibration?.onSensitivity?.(r);
    },
    onInt8Choice: (r: Int8SpeedReport) => {
      int8Choice = r;
      options.calibration?.onInt8Choice?.(r);
    },
  };
  // int8 only where it times faster than float (the cuda backend with int8 convolutions; ./calibration-speed.ts)
  const probe = quant === "int8" ? await backendInt8Probe(options) : undefined;
  const input = quant ? await quantizeForCompile(graph0, quant, calibration, engine, probe) : graph0;
  reportProgress({ phase: "passes" });
  const { graph, trace } = runPipeline(input, passes);
  const t1 = performance.now();
  const registry = options.converters?.length ? registryWith(options.converters) : defaultRegistry();
  reportProgress({ phase: "partition" });
  const partition = partitionGraph(graph, {
    registry,
    minBlockSize: options.minBlockSize,
    torchExecutedOps: options.torchExecutedOps,
    requireFullCompilation: options.requireFullCompilation,
  });
  const t2 = performance.now();
  const backend = await loadBackend(options.backend ?? "reference", options);
  const runners: SegmentRunner[] = [];
  let convertMs = 0;
  try {
    for (const segment of partition.segments) {
      const detail = `${segment.kind}, ${segment.nodes.length} nodes`;
      reportProgress({ phase: "segment", done: segment.index + 1, total: partition.segments.length, detail });
      if (segment.kind === "engine") {
        const c0 = performance.now();
        const network = convertSegment(partition.graph, segment, { registry });
        convertMs += performance.now() - c0;
        runners.push(await backend.engine(segment, network));
      } else if (segment.kind === "control") {
        runners.push(await createControlRunner(segment, partition.graph, blockCompiler(compile, options)));
      } else {
        runners.push(await backend.fallback(segment));
      }
    }
  } catch (e) {
    for (const r of runners) await r.dispose?.();
    throw e;
  }
  const t3 = performance.now();
  const timings = { lower: t1 - t0, partition: t2 - t1, convert: convertMs, build: t3 - t2 - convertMs };
  const nodesBefore = summarizeGraph(graph0).nodes;
  const nodesAfter = summarizeGraph(graph).nodes;
  const low = reducedPrecisionOf(precisions);
  const text = [
    `lowering: ${nodesBefore} → ${nodesAfter} nodes (${trace.entries.length} rewrites) in ${timings.lower.toFixed(0)} ms; precision ${low ?? "float32"}`,
    ...(overflow ? [formatKeptNodes(overflow.result, overflow.source)] : []),
    ...(sensitivity ? [formatSensitivity(sensitivity, keptPrecisionName(options.enabledPrecisions))] : []),
    ...(int8Choice ? [formatInt8Choice(int8Choice)] : []),
    formatPartitionReport(partition.report),
    `backend ${backend.name}: ${runners.map((r) => `segment ${r.segment.index}: ${r.description}`).join("; ")}`,
    `build: convert ${timings.convert.toFixed(0)} ms, backend ${timings.build.toFixed(0)} ms`,
    ...controlFlowSummary(runners),
  ].join("\n");
  const report: CompileReport = {
    nodesBefore,
    nodesAfter,
    trace: appendTrace(trace, ...runners.flatMap((r) => (r.trace ? [r.trace] : []))),
    partition: partition.report,
    ...(overflow ? { fp32Islands: overflow.result.kept } : {}),
    ...(int8Choice ? { int8Choice } : {}),
    timings,
    runners: runners.map((r) => r.description),
    text,
  };
  const source = "path" in model ? model.path : "<graph>";
  // The partitioner may rename reads of in-place results; its graph is the one the segments were cut from.
  const contexts: ExecutionContext[] = [];
  if (backend.createContext) {
    try {
      for (let i = 0; i < (options.contexts ?? 1); i++) {
        reportProgress({ phase: "warm up and capture", done: i + 1, total: options.contexts ?? 1 });
        contexts.push(backend.createContext(partition.graph, runners, i));
      }
    } catch (e) {
      for (const c of contexts) c.dispose();
      for (const r of runners) await r.dispose?.();
      throw e;
    }
  }
  const compiled = new CompiledModule(
    partition.graph,
    partition,
    runners,
    report,
    backend,
    options,
    source,
    contexts,
    registry,
  );
  if (options.verify) {
    const v = options.verify === true ? {} : options.verify;
    const inputs =
      v.inputs ?? compiled.graph.inputs.map((n, k) => randomInput(compiled.graph.values[n], 1234 + k));
    compiled.verification = await verifyCompiled(compiled, inputs, {
      tolerance: v.tolerance,
      sensitivity,
      ...(int8Choice ? { int8Choice } : {}),
    });
  }
  return compiled;
}

/**
 * Loads a package written by `CompiledModule.save`. Lowering is not repeated; saved engines are reused (no
 * heuristics, timing or NVRTC) when they were built for this GPU and these library versions, else loading fails
 * with a `package.mismatch` error naming the difference, unless `rebuild` is "if-needed" (rebuild them, with a
 * warning) or "always".
 */
export async function loadCompiled(
  path: string,
  overrides: CompileOptions & { readonly rebuild?: RebuildPolicy } = {},
): Promise<CompiledModule> {
  reportProgress({ phase: "read package" });
  const pkg = loadPackage(path);
  const { rebuild = "never", ...rest } = overrides;
  checkRebuild(rebuild);
  const artifacts =
    pkg.artifacts && rebuild !== "always" ? { ...pkg.artifacts, origin: path, rebuild } : undefined;
  // Saved engines reach the backend only from the package's own checked entries, never from its options.
  const { artifacts: _fromOptions, ...saved } = pkg.options;
  return compile(
    { path: pkg.source, format: "pt2", graph: pkg.graph },
    { ...saved, ...rest, passes: [], ...(artifacts ? { artifacts } : {}) },
  );
}

export { formatTrace };
