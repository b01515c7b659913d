/**
 * The LibTorch fallback runner: a segment's aten ops run through `aoti_torch_call_dispatcher` on CUDA tensors
 * that wrap the engine's own device buffers (`aoti_torch_create_tensor_from_blob_v2`), on the runner's stream.
 *
 * - Built once: the segment is planned (every refusal reported before any native call), then its weights and
 *   the rewrite constants are uploaded and wrapped.
 * - `launchDevice(inputs)`: inputs are caller-owned device memory, wrapped without a copy; ATen's work is
 *   queued on the runner's stream (torch's current stream is set to it at each run) and not waited for.
 *   Each segment output is written with `aten::copy_` into device memory: the caller's, when `outputs` names
 *   a buffer for it, else a runner-owned buffer that stays valid until the next run or dispose. Every
 *   intermediate torch tensor is released before the call returns (its memory goes back to torch's caching
 *   allocator, stream-ordered), so nothing torch owns outlives a run.
 * - `runDevice(inputs)`: launchDevice, then waits for the stream (the outputs are complete on return).
 * - `run(values)` (SegmentRunner): host tensors in, host tensors out (uploads, launch, sync, downloads).
 *
 * Inputs may be given as `{ mem, type }` (the type is checked against the segment's) or as bare device memory
 * (the segment's type is assumed; the size is checked). Outputs are DeviceValues, which are also DeviceMemory.
 */
import { InputError, TorchcError } from "../../errors.js";
import { DTYPE_BYTES } from "../../ir/dtype.js";
import type { TensorType } from "../../ir/graph.js";
import { allocData, formatShape, numel, type Tensor, tensorBytes } from "../../ir/tensor.js";
import type { Segment } from "../../partition/segment.js";
import type { Trace } from "../../passes/rewrite/trace.js";
import { gather } from "../../runtime/segment-runner.js";
import { CudaContext } from "../cuda/device/context.js";
import { LibTorch, NativeCallError } from "../cuda/device/libtorch.js";
import { DeviceBuffer, download, upload } from "../cuda/device/memory.js";
import { Stream } from "../cuda/device/stream.js";
import { TorchTensor } from "../cuda/device/torch-tensor.js";
import type { DeviceMemory } from "../cuda/device/validate.js";
import type { DeviceFallbackRunner } from "../cuda/device-fallback.js";
import { argValues, type DispatchPlan, formatPlan } from "./encoded-arg.js";
import { TorchFallbackError } from "./errors.js";
import { type DeviceTensor, releaseTensor, uploadTensor } from "./persistent.js";
import {
  type FallbackPlan,
  type FallbackPlanOptions,
  type PlanStep,
  planFallbackOrThrow,
} from "./plan-segment.js";
import { checkTensors, encodeStack, type HandleRef, resultHandles } from "./stack.js";

export interface TorchFallbackEnv extends FallbackPlanOptions {
  readonly lib: LibTorch;
  /** Where ATen queues the segment's work (torch's current stream is set to it at every run). */
  readonly stream: Stream;
  /** CUDA device ordinal (default 0). */
  readonly deviceIndex?: number;
}

/**
 * A tensor in device memory: `mem` holds `type` contiguously (row-major). It is device memory itself too
 * (`ptr`, `bytes`, `alive` are `mem`'s), so it can be handed on wherever DeviceMemory is expected.
 */
export interface DeviceValue extends DeviceMemory {
  readonly mem: DeviceMemory;
  readonly type: TensorType;
}

/** `mem` as a DeviceValue of `type`. */
export function deviceValue(mem: DeviceMemory, type: TensorType): DeviceValue {
  return {
    mem,
    type,
    get ptr() {
      return mem.ptr;
    },
    get bytes() {
      return mem.bytes;
    },
    get alive() {
      return mem.alive;
    },
  };
}

function isDeviceValue(v: DeviceValue | DeviceMemory): v is DeviceValue {
  return "type" in v && "mem" in v;
}

export interface TensorEvent {
  /** "input": an input wrapped over caller memory; "output": the output buffer about to be written. */
  readonly role: "input" | "output";
  readonly name: string;
  readonly tensor: TorchTensor;
}

export interface RunDeviceOptions {
  /** Caller memory to write outputs into, by output name (others go to runner-owned buffers). */
  readonly outputs?: ReadonlyMap<string, DeviceMemory>;
  /** Sees each input/output tensor while it is alive (zero-copy checks, tracing). */
  readonly onTensor?: (e: TensorEvent) => void;
  /**
   * The stream ATen queues this run on (default: the runner's own). An execution context passes its stream,
   * so the segment is ordered after whatever the context queued before it, with no host wait.
   */
  readonly stream?: Stream;
}

export interface TorchFallbackRunner extends DeviceFallbackRunner {
  readonly plan: FallbackPlan;
  readonly stream: Stream;
  /** Device bytes of the weights and constants the runner uploaded. */
  readonly weightBytes: number;
  /** Queues the segment on the runner's stream; see the module comment for who owns the outputs. */
  launchDevice(
    inputs: ReadonlyMap<string, DeviceValue | DeviceMemory>,
    opts?: RunDeviceOptions,
  ): Map<string, DeviceValue>;
  /** launchDevice, then waits for the runner's stream. */
  runDevice(
    inputs: ReadonlyMap<string, DeviceValue | DeviceMemory>,
    opts?: RunDeviceOptions,
  ): Map<string, DeviceValue>;
  run(values: ReadonlyMap<string, Tensor>): Promise<Map<string, Tensor>>;
  dispose(): void;
}

function bytesOf(type: TensorType): number {
  return numel(type.shape) * DTYPE_BYTES[type.dtype];
}

function sameType(a: TensorType, b: TensorType): boolean {
  return (
    a.dtype === b.dtype && a.shape.length === b.shape.length && a.shape.every((d, i) => d === b.shape[i])
  );
}

function formatType(t: TensorType): string {
  return `${t.dtype}${formatShape(t.shape)}`;
}

const COPY_INTO: DispatchPlan = {
  op: "aten::copy_",
  overload: "",
  via: "dispatcher",
  args: [
    { kind: "tensor", value: "dst" },
    { kind: "tensor", value: "src" },
    { kind: "bool", value: false },
  ],
  names: ["self", "src", "non_blocking"],
  returns: 1,
};

class Runner implements TorchFallbackRunner {
  readonly description: string;
  private readonly persistent = new Map<string, DeviceTensor>();
  private readonly outputBuffers: DeviceBuffer[] = [];
  private readonly staging = new Map<string, DeviceBuffer>();
  /** For each step, the values whose last reader it is. */
  private readonly releaseAfter: string[][];
  private readonly deviceIndex: number;
  private disposed = false;

  /** The rules that lowered the segment for LibTorch (appended to the compile report's trace). */
  get trace(): Trace {
    return this.plan.trace;
  }

  constructor(
    readonly segment: Segment,
    readonly plan: FallbackPlan,
    private readonly lib: LibTorch,
    readonly stream: Stream,
    deviceIndex: number,
  ) {
    this.deviceIndex = deviceIndex;
    this.description = `LibTorch (${plan.steps.length} aten calls through the stable C shim)`;
    const pinned = new Set([...plan.outputs.map((o) => o.value)]);
    const last = new Map<string, number>();
    plan.steps.forEach((s, i) => {
      for (const a of s.call.args) for (const v of argValues(a)) last.set(v, i);
    });
    this.releaseAfter = plan.steps.map(() => []);
    plan.steps.forEach((s, i) => {
      // Results nobody reads are released right after the step that made them.
      for (const o of s.node.outputs) if (o && !last.has(o) && !pinned.has(o)) this.releaseAfter[i].push(o);
    });
    for (const [v, i] of last) if (!pinned.has(v)) this.releaseAfter[i].push(v);
  }

  get weightBytes(): number {
    let n = 0;
    for (const d of this.persistent.values()) n += d.buffer.bytes;
    return n;
  }

  /** Uploads weights and constants; frees what it made if anything fails. */
  upload(): void {
    const g = this.segment.graph;
    try {
      for (const name of this.plan.weights) {
        const w = g.weights[name];
        if (!w)
          throw new TorchcError(
            `LibTorch fallback: weight '${name}' is missing from the segment graph`,
            "graph.undefined-value",
          );
        this.persistent.set(name, uploadTensor(this.lib, w.tensor, this.deviceIndex));
      }
      for (const [name, t] of Object.entries(this.plan.constants))
        this.persistent.set(name, uploadTensor(this.lib, t, this.deviceIndex));
      for (const o of this.plan.outputs)
        this.outputBuffers.push(DeviceBuffer.alloc(Math.max(1, bytesOf(o.type))));
      // Pageable uploads may still be in flight on the legacy stream; the runner's stream does not wait for it.
      CudaContext.current().synchronize();
    } catch (e) {
      this.dispose();
      throw e;
    }
  }

  runDevice(
    inputs: ReadonlyMap<string, DeviceValue | DeviceMemory>,
    opts: RunDeviceOptions = {},
  ): Map<string, DeviceValue> {
    const out = this.launchDevice(inputs, opts);
    (opts.stream ?? this.stream).synchronize();
    return out;
  }

  launchDevice(
    inputs: ReadonlyMap<string, DeviceValue | DeviceMemory>,
    opts: RunDeviceOptions = {},
  ): Map<string, DeviceValue> {
    if (this.disposed)
      throw new TorchcError("LibTorch fallback: the runner has been disposed", "runtime.disposed");
    const where = `fallback segment ${this.segment.index}`;
    this.checkLaunch(where, inputs, opts);
    // Torch's current device follows the current context: this segment's device, whoever ran before.
    CudaContext.get(this.deviceIndex);
    this.lib.setCurrentStream(opts.stream ?? this.stream, this.deviceIndex);
    const live = new Map<string, TorchTensor>();
    const resolve = (n: string): TorchTensor | undefined => live.get(n) ?? this.persistent.get(n)?.tensor;
    const result = new Map<string, DeviceValue>();
    try {
      for (const { name, type } of this.plan.inputs) {
        const v = inputs.get(name) as DeviceValue | DeviceMemory;
        const t = this.lib.wrap(isDeviceValue(v) ? v.mem : v, {
          sizes: type.shape,
          dtype: type.dtype,
          deviceIndex: this.deviceIndex,
        });
        live.set(name, t);
        opts.onTensor?.({ role: "input", name, tensor: t });
      }
      this.plan.steps.forEach((step, i) => {
        const results = this.call(step, resolve);
        step.node.outputs.forEach((o, k) => {
          const r = results[k];
          if (!o) return;
          if (!r) throw new TorchFallbackError(step.source, step.call.op, `result ${k} ('${o}') is missing`);
          live.get(o)?.delete();
          live.set(o, r);
          results[k] = undefined;
        });
        for (const extra of results) extra?.delete();
        for (const v of this.releaseAfter[i]) {
          live.get(v)?.delete();
          live.delete(v);
        }
      });
      this.plan.outputs.forEach((o, k) => {
        const mem = opts.outputs?.get(o.name) ?? this.outputBuffers[k];
        this.copyOutput(where, o, resolve(o.value), mem, opts);
        result.set(o.name, deviceValue(mem, o.type));
      });
    } finally {
      for (const t of live.values()) t.delete();
    }
    return result;
  }

  /** Inputs present and of the segment's types, output buffers large enough, the stream alive: before any C call. */
  private checkLaunch(
    where: string,
    inputs: ReadonlyMap<string, DeviceValue | DeviceMemory>,
    opts: RunDeviceOptions,
  ): void {
    for (const { name, type } of this.plan.inputs) {
      const v = inputs.get(name);
      if (!v) throw new InputError(`${where}: input '${name}' is missing`, "input.missing");
      if (isDeviceValue(v) && !sameType(v.type, type))
        throw new InputError(
          `${where}: input '${name}' is ${formatType(v.type)}, expected ${formatType(type)}`,
          "input.type",
        );
    }
    for (const [name, mem] of opts.outputs ?? []) {
      const o = this.plan.outputs.find((x) => x.name === name);
      if (!o) throw new InputError(`${where}: '${name}' is not an output of this segment`, "input.invalid");
      if (mem.bytes < bytesOf(o.type))
        throw new InputError(
          `${where}: output buffer for '${name}' holds ${mem.bytes} bytes, ${bytesOf(o.type)} needed`,
          "input.invalid",
        );
    }
    const stream = opts.stream ?? this.stream;
    if (!(stream instanceof Stream) || !stream.alive)
      throw new TorchcError(`${where}: the stream to run on must be a live Stream`, "runtime.stream");
  }

  /** `aten::copy_` of a segment output into its device memory (on the current stream), type checked first. */
  private copyOutput(
    where: string,
    o: FallbackPlan["outputs"][number],
    src: TorchTensor | undefined,
    mem: DeviceMemory,
    opts: RunDeviceOptions,
  ): void {
    if (!src) throw new TorchcError(`${where}: output '${o.name}' was not computed`, "graph.undefined-value");
    const got: TensorType = { dtype: src.dtype(), shape: src.sizes() };
    if (!sameType(got, o.type))
      throw new TorchcError(
        `${where}: output '${o.name}' came out ${formatType(got)}, expected ${formatType(o.type)}`,
        "torch.output-type",
      );
    const dst = this.lib.wrap(mem, {
      sizes: o.type.shape,
      dtype: o.type.dtype,
      deviceIndex: this.deviceIndex,
    });
    try {
      opts.onTensor?.({ role: "output", name: o.name, tensor: dst });
      const io = new Map<string, HandleRef>([
        ["dst", dst],
        ["src", src],
      ]);
      const stack = encodeStack(COPY_INTO, (n) => io.get(n) as HandleRef, this.lib);
      this.lib.dispatch("aten::copy_", "", stack);
      if (stack[0] !== 0n) new TorchTensor(stack[0], this.lib).delete();
    } finally {
      dst.delete();
    }
  }

  /** One step: the dispatcher (or the add shim); returns the result tensors (owned by the caller). */
  private call(step: PlanStep, resolve: (n: string) => TorchTensor | undefined): (TorchTensor | undefined)[] {
    const c = step.call;
    try {
      checkTensors(c, resolve);
      const get = (n: string) => resolve(n) as TorchTensor;
      if (c.via === "aoti_torch_cuda_add_Tensor") {
        const [self, other, alpha] = c.args;
        if (self.kind !== "tensor" || other.kind !== "tensor" || alpha.kind !== "double")
          throw new TorchcError(
            `${c.via} needs (tensor, tensor, double), got ${formatPlan(c)}`,
            "torch.plan",
          );
        return [this.lib.addTensor(get(self.value), get(other.value), alpha.value)];
      }
      const stack = encodeStack(c, get, this.lib);
      this.lib.dispatch(c.op, c.overload, stack);
      return resultHandles(c, stack, (l) => this.lib.takeIntList(l)).map((h) =>
        h === 0n ? undefined : new TorchTensor(h, this.lib),
      );
    } catch (e) {
      if (e instanceof TorchFallbackError) throw e;
      const detail =
        e instanceof NativeCallError
          ? `${e.message} (see stderr for PyTorch's exception)`
          : (e as Error).message;
      throw new TorchFallbackError(step.source, formatPlan(c), detail);
    }
  }

  async run(values: ReadonlyMap<string, Tensor>): Promise<Map<string, Tensor>> {
    const where = `fallback segment ${this.segment.index}`;
    const names = this.plan.inputs.map((i) => i.name);
    const hostInputs = gather(values, names, where);
    CudaContext.get(this.deviceIndex);
    const device = new Map<string, DeviceValue>();
    hostInputs.forEach((t, i) => {
      const { name, type } = this.plan.inputs[i];
      if (!sameType(t, type))
        throw new InputError(
          `${where}: input '${name}' is ${formatType(t)}, expected ${formatType(type)}`,
          "input.type",
        );
      let buf = this.staging.get(name);
      if (!buf) {
        buf = DeviceBuffer.alloc(Math.max(1, bytesOf(type)));
        this.staging.set(name, buf);
      }
      if (bytesOf(type) > 0) upload(buf, tensorBytes(t));
      device.set(name, deviceValue(buf, type));
    });
    CudaContext.current().synchronize();
    const outs = this.launchDevice(device);
    await this.stream.synchronizeAsync();
    CudaContext.get(this.deviceIndex);
    const host = new Map<string, Tensor>();
    for (const [name, { mem, type }] of outs) {
      const data = allocData(type.dtype, numel(type.shape));
      if (data.byteLength > 0) download(mem, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      host.set(name, { dtype: type.dtype, shape: [...type.shape], data });
    }
    return host;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    CudaContext.get(this.deviceIndex);
    if (this.stream.alive) this.stream.synchronize();
    for (const d of this.persistent.values()) releaseTensor(d);
    this.persistent.clear();
    for (const b of [...this.outputBuffers, ...this.staging.values()]) b.free();
    this.outputBuffers.length = 0;
    this.staging.clear();
  }
}

/**
 * What fallback runners share: LibTorch (loaded once per process) and a stream of their own. TF32 stays off
 * for convolutions unless asked for.
 */
export async function createTorchEnv(
  opts: { allowTf32?: boolean; deviceIndex?: number; stream?: Stream } = {},
): Promise<TorchFallbackEnv> {
  const deviceIndex = opts.deviceIndex ?? 0;
  CudaContext.get(deviceIndex);
  const lib = LibTorch.load();
  return { lib, stream: opts.stream ?? Stream.create(), deviceIndex, allowTf32: opts.allowTf32 === true };
}

/**
 * A LibTorch runner for a fallback segment. Planning happens first and throws an UnsupportedOpError naming
 * every node that cannot run, before anything native is touched.
 */
export function createTorchFallbackRunner(segment: Segment, env: TorchFallbackEnv): TorchFallbackRunner {
  const plan = planFallbackOrThrow(segment.graph, env, `fallback segment ${segment.index}`);
  if (!(env.lib instanceof LibTorch) || !env.lib.cuda)
    throw new TorchcError("LibTorch fallback: env.lib must be LibTorch.load() with CUDA", "torch.env");
  if (!(env.stream instanceof Stream) || !env.stream.alive)
    throw new TorchcError("LibTorch fallback: env.stream must be a live Stream", "torch.env");
  const deviceIndex = env.deviceIndex ?? 0;
  if (!Number.isInteger(deviceIndex) || deviceIndex < 0)
    throw new TorchcError(
      `LibTorch fallback: deviceIndex must be a non-negative integer, got ${deviceIndex}`,
      "torch.env",
    );
  const runner = new Runner(segment, plan, env.lib, env.stream, deviceIndex);
  CudaContext.get(deviceIndex);
  runner.upload();
  return runner;
}
