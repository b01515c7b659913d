/**
 * A pool of replicas of one model across GPUs (Torch-TensorRT has no such thing; onnxruntime users run one
 * session per `deviceId`): `createPool(model, { devices: [0, 1], ...compileOptions })` compiles one module per
 * device (`device: n`, each with its own weights, engines and execution contexts there) and spreads run()
 * calls over them: the least busy replica first, one FIFO queue beyond (pool-scheduler.ts). The replicas
 * share this JS thread; each makes its own device current before it touches the driver (backends/cuda).
 * Which module a device gets is injectable (`buildPool`), so the scheduling is tested on the CPU.
 */
import { InputError, TorchcError } from "../errors.js";
import type { LoadedModel } from "../frontends/load-model.js";
import type { Graph } from "../ir/graph.js";
import type { Tensor } from "../ir/tensor.js";
import { type CompiledModule, compile } from "./compile.js";
import type { PoolStats } from "./context-pool.js";
import { type DeviceTensor, isDeviceTensor } from "./device-tensor.js";
import type { ModuleMemory, RunOptions } from "./execution.js";
import type { CompileOptions } from "./options.js";
import { type ReplicaLoad, ReplicaScheduler } from "./pool-scheduler.js";
import type { BatchRange } from "./shape-range.js";
import { checkCompileOptions } from "./validate-options.js";

export interface PoolOptions extends CompileOptions {
  /** CUDA device ordinals, one replica each (distinct). `contexts` applies to each replica. */
  readonly devices: readonly number[];
}

/** One replica: the device it lives on and the module compiled for it. */
export interface PoolReplica {
  readonly device: number;
  readonly module: CompiledModule;
}

/** A replica's load, by device. */
export interface DeviceLoad extends ReplicaLoad {
  readonly device: number;
}

/** pool.memory(): each device's module memory, and the device bytes over all of them. */
export interface PoolMemory {
  readonly devices: readonly { readonly device: number; readonly memory: ModuleMemory }[];
  readonly deviceTotal: number;
}

type Inputs = readonly (Tensor | DeviceTensor)[] | Readonly<Record<string, Tensor | DeviceTensor>>;

export class ModulePool {
  private readonly scheduler: ReplicaScheduler;
  private disposed = false;

  constructor(readonly replicas: readonly PoolReplica[]) {
    // A replica runs as many calls at once as it has execution contexts (1 without any, e.g. the reference backend).
    this.scheduler = new ReplicaScheduler(replicas.map((r) => r.module.queue?.contexts ?? 1));
  }

  /** The model's graph (every replica compiled the same one). */
  get graph(): Graph {
    return this.replicas[0].module.graph;
  }

  /** Runs on the least busy replica; the same inputs, options and results as CompiledModule.run(). */
  async run(inputs: readonly Tensor[]): Promise<Tensor[]>;
  async run(
    inputs: readonly (Tensor | DeviceTensor)[],
    opts: RunOptions & { outputs: "device" },
  ): Promise<DeviceTensor[]>;
  async run(
    inputs: readonly (Tensor | DeviceTensor)[],
    opts?: RunOptions,
  ): Promise<(Tensor | DeviceTensor)[]>;
  async run(
    inputs: Readonly<Record<string, Tensor | DeviceTensor>>,
    opts?: RunOptions,
  ): Promise<Record<string, Tensor | DeviceTensor>>;
  async run(
    inputs: Inputs,
    opts: RunOptions = {},
  ): Promise<(Tensor | DeviceTensor)[] | Record<string, Tensor | DeviceTensor>> {
    if (this.disposed) throw new TorchcError("the pool has been disposed", "runtime.disposed");
    const device = deviceOf(inputs, opts);
    if (device !== undefined && !this.replicas.some((r) => r.device === device))
      throw new InputError(
        `the device tensors passed are on device ${device}; the pool's devices are ${this.devices.join(", ")}`,
        "input.device",
      );
    const eligible = device === undefined ? undefined : (i: number) => this.replicas[i].device === device;
    return this.scheduler.use(async (i) => {
      const r = this.replicas[i];
      try {
        return await r.module.run(inputs as never, opts);
      } catch (e) {
        throw onDevice(e, r.device);
      }
    }, eligible);
  }

  /** A batch range's min/opt/max and buckets, when the replicas were compiled with one (runtime/dynamic-module.ts). */
  get range(): BatchRange | undefined {
    return (this.replicas[0].module as { range?: BatchRange }).range;
  }

  /** The pool's devices, in replica order. */
  get devices(): number[] {
    return this.replicas.map((r) => r.device);
  }

  /** Each replica's load: calls it may run at once, running now, finished and failed. */
  load(): DeviceLoad[] {
    return this.scheduler.stats.replicas.map((l, i) => ({ device: this.replicas[i].device, ...l }));
  }

  /** The pool as one queue: every replica's slots together (what `serve` sizes its batches in flight by). */
  get queue(): PoolStats {
    const s = this.scheduler.stats;
    const sum = (k: keyof ReplicaLoad) => s.replicas.reduce((a, r) => a + r[k], 0);
    return {
      contexts: sum("capacity"),
      busy: sum("busy"),
      queued: s.queued,
      maxQueued: s.maxQueued,
      completed: sum("completed"),
    };
  }

  memory(): PoolMemory {
    const devices = this.replicas.map((r) => ({ device: r.device, memory: r.module.memory() }));
    return { devices, deviceTotal: devices.reduce((a, d) => a + d.memory.deviceTotal, 0) };
  }

  /** Lets running and queued calls finish, refuses new ones, then disposes every replica. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await this.scheduler.close();
    const failures: string[] = [];
    for (const r of this.replicas) {
      try {
        await r.module.dispose();
      } catch (e) {
        failures.push(`device ${r.device}: ${(e as Error).message}`);
      }
    }
    if (failures.length)
      throw new TorchcError(`disposing the pool: ${failures.join("; ")}`, "runtime.dispose");
  }
}

/** The device every DeviceTensor among the inputs and output buffers is on (they must agree), if any. */
function deviceOf(inputs: Inputs, opts: RunOptions): number | undefined {
  const given = Array.isArray(opts.outputs) ? (opts.outputs as readonly unknown[]) : [];
  const all = [...(Array.isArray(inputs) ? inputs : Object.values(inputs)), ...given];
  const devices = new Set(all.filter(isDeviceTensor).map((t) => t.device));
  if (devices.size > 1)
    throw new InputError(
      `device tensors on devices ${[...devices].join(" and ")} in one call: a replica runs on one device`,
      "input.device",
    );
  return devices.values().next().value;
}

/**
 * A replica's error, with the device it came from at the front of its message (class, code and stack kept).
 * Input errors are left as they are: they say what is wrong with the call, on any device.
 */
function onDevice(e: unknown, device: number): unknown {
  if (!(e instanceof Error) || e instanceof InputError) return e;
  const tag = `device ${device}: `;
  if (!e.message.startsWith(tag)) e.message = tag + e.message;
  return e;
}

/** Checks `devices`: a non-empty list of distinct ordinals, and no `device` beside it. */
export function checkDevices(devices: unknown, options: CompileOptions = {}): asserts devices is number[] {
  const bad = (detail: string): never => {
    throw new TorchcError(`devices ${detail}`, "options.devices");
  };
  if (!Array.isArray(devices) || devices.length === 0)
    bad("must be a non-empty list of CUDA device ordinals");
  for (const d of devices as unknown[])
    if (!Number.isInteger(d) || (d as number) < 0 || (d as number) > 1023)
      bad(`must hold integers from 0 to 1023, got ${String(d)}`);
  const seen = new Set(devices as number[]);
  if (seen.size !== (devices as number[]).length)
    bad(
      `lists a device twice (${(devices as number[]).join(", ")}); for more runs at once on one device, use contexts`,
    );
  if (options.device !== undefined)
    bad("and device cannot both be given: a pool places one replica per device");
}

/**
 * One replica per device, built by `build` (concurrently: the awaits of one build let the others go on); if any
 * fails, the ones built are disposed and the error names the device.
 */
export async function buildPool(
  devices: readonly number[],
  build: (device: number) => Promise<CompiledModule>,
): Promise<ModulePool> {
  checkDevices(devices);
  const settled = await Promise.allSettled(devices.map((d) => build(d)));
  const failed = settled.flatMap((s, i) =>
    s.status === "rejected" ? [{ device: devices[i], error: s.reason }] : [],
  );
  if (failed.length === 0)
    return new ModulePool(
      settled.map((s, i) => ({
        device: devices[i],
        module: (s as PromiseFulfilledResult<CompiledModule>).value,
      })),
    );
  for (const s of settled) if (s.status === "fulfilled") await s.value.dispose().catch(() => {});
  const [first, ...others] = failed;
  const error = onDevice(first.error, first.device);
  if (others.length && error instanceof Error)
    error.message += ` (also failed: ${others.map((o) => `device ${o.device}: ${String((o.error as Error)?.message ?? o.error).split("\n")[0]}`).join("; ")})`;
  throw error;
}

/**
 * Compiles `model` once per device in `options.devices` (the other options as compile() takes them, `contexts`
 * per replica) and returns the pool. The options are checked once, before any device is touched.
 */
export async function createPool(model: LoadedModel | Graph, options: PoolOptions): Promise<ModulePool> {
  if (typeof options !== "object" || options === null)
    throw new TorchcError(
      "createPool needs options with devices, e.g. { devices: [0, 1] }",
      "options.devices",
    );
  const { devices, ...compileOptions } = options;
  checkDevices(devices, compileOptions);
  checkCompileOptions(compileOptions, "graph" in model ? model.graph : model);
  return buildPool(devices, (device) => compile(model, { ...compileOptions, device }));
}
