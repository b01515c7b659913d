import { DTYPE_BYTES } from "../ir/dtype.js";
import type { Graph } from "../ir/graph.js";
import { numel, type Tensor, tensorBytes, tensorFromBytes } from "../ir/tensor.js";
import type { Network } from "../network/network.js";
import type { Segment } from "../partition/segment.js";
import { reducedPrecisionOf } from "../passes/assign-precision.js";
import { type CompileOptions, normalizePrecisions } from "../runtime/options.js";
import type { Backend, SegmentRunner } from "../runtime/segment-runner.js";
import { buildCudaEngine } from "./cuda/builder.js";
import { CudaContext } from "./cuda/device/context.js";
import { timeOnStream } from "./cuda/device/event.js";
import { DeviceBuffer, download, upload } from "./cuda/device/memory.js";
import type { DeviceMemory } from "./cuda/device/validate.js";
import type { CudaEngine } from "./cuda/engine.js";

/** A segment runner that also runs on device memory, so segments hand buffers to each other without copies. */
export interface DeviceSegmentRunner extends SegmentRunner {
  /** Reads inputs from device memory by value name, returns outputs' device memory; work is complete on return. */
  runDevice(values: ReadonlyMap<string, DeviceMemory>): Map<string, DeviceMemory>;
  readonly engine?: CudaEngine;
}

class EngineRunner implements DeviceSegmentRunner {
  readonly description: string;
  constructor(
    readonly segment: Segment,
    readonly engine: CudaEngine,
    private readonly network: Network,
  ) {
    const s = engine.stats;
    this.description = `cuda engine (${s.layers} layers → ${s.kernels} kernels and library calls, ${s.fusedGroups} fused groups)`;
  }

  async run(values: ReadonlyMap<string, Tensor>): Promise<Map<string, Tensor>> {
    const outs = this.engine.run(this.network.inputs.map((n) => values.get(n)!));
    return new Map(this.network.outputs.map((n, i) => [n, outs[i]] as [string, Tensor]));
  }

  launchDevice(values: ReadonlyMap<string, DeviceMemory>): Map<string, DeviceMemory> {
    const outs = this.engine.run(this.network.inputs.map((n) => values.get(n)!));
    return new Map(this.network.outputs.map((n, i) => [n, outs[i]] as [string, DeviceMemory]));
  }

  runDevice(values: ReadonlyMap<string, DeviceMemory>): Map<string, DeviceMemory> {
    const out = this.launchDevice(values);
    this.engine.synchronize();
    return out;
  }

  dispose(): void {
    this.engine.dispose();
  }
}

/**
 * The CUDA backend: engine segments become CudaEngines (cuDNN, cuBLASLt, NVRTC kernels, one CUDA graph);
 * fallback segments run through LibTorch on the same device buffers. Values stay on the GPU between segments.
 */
export async function createCudaBackend(options: CompileOptions): Promise<
  Backend & {
    execute(graph: Graph, runners: readonly SegmentRunner[], inputs: readonly Tensor[]): Promise<Tensor[]>;
    time(graph: Graph, runners: readonly SegmentRunner[], inputs: readonly Tensor[], reps?: number): number[];
  }
> {
  const ctx = CudaContext.get(0);
  const precision =
    reducedPrecisionOf(normalizePrecisions(options.enabledPrecisions)) === "float16" ? "fp16" : "fp32";
  const inputBuffers = new Map<string, DeviceBuffer>();
  let torchEnv: unknown;

  const deviceInputs = (graph: Graph, inputs: readonly Tensor[]): Map<string, DeviceMemory> => {
    const values = new Map<string, DeviceMemory>();
    graph.inputs.forEach((name, i) => {
      const t = inputs[i];
      const bytes = numel(t.shape) * DTYPE_BYTES[t.dtype];
      let buf = inputBuffers.get(name);
      if (!buf || buf.bytes < bytes) {
        buf?.free();
        buf = DeviceBuffer.alloc(Math.max(bytes, 256));
        inputBuffers.set(name, buf);
      }
      if (bytes > 0) upload(buf, tensorBytes(t));
      values.set(name, buf);
    });
    return values;
  };

  // Each segment finishes before the next starts (runners use their own streams).
  const runAll = (runners: readonly SegmentRunner[], values: Map<string, DeviceMemory>) => {
    for (const r of runners) {
      for (const [k, v] of (r as DeviceSegmentRunner).runDevice(values)) values.set(k, v);
    }
    return values;
  };

  return {
    name: `cuda (${ctx.info.name}, ${precision})`,
    async engine(segment: Segment, network: Network): Promise<SegmentRunner> {
      const engine = await buildCudaEngine(network, {
        precision,
        tf32: options.tf32 === true,
        tuneConvs: options.tune === true,
      });
      return new EngineRunner(segment, engine, network);
    },
    async fallback(segment: Segment): Promise<SegmentRunner> {
      const torch = await import("./torch/index.js");
      torchEnv ??= await torch.createTorchEnv();
      return torch.createTorchFallbackRunner(segment, torchEnv as never);
    },
    async execute(graph, runners, inputs) {
      // One engine for the whole graph (the common case): it uploads straight into its own input buffers.
      const only = runners.length === 1 ? (runners[0] as DeviceSegmentRunner) : undefined;
      if (
        only?.engine &&
        only.segment.inputs.join() === graph.inputs.join() &&
        graph.outputs.every((o) => only.segment.outputs.includes(o))
      ) {
        const outs = await only.run(new Map(graph.inputs.map((n, i) => [n, inputs[i]] as [string, Tensor])));
        return graph.outputs.map((n) => {
          const t = outs.get(n);
          if (!t) throw new Error(`output '${n}' was not produced by the engine`);
          return t;
        });
      }
      const values = runAll(runners, deviceInputs(graph, inputs));
      return graph.outputs.map((name) => {
        const mem = values.get(name);
        const type = graph.values[name];
        const bytes = new Uint8Array(numel(type.shape) * DTYPE_BYTES[type.dtype]);
        if (!mem) throw new Error(`output '${name}' was not produced on the device`);
        if (bytes.length > 0) download(mem, bytes);
        return tensorFromBytes(type.dtype, type.shape, bytes);
      });
    },
    /** GPU time of whole forward passes (ms each), inputs already on the device; CUDA events, after warm-up. */
    time(graph, runners, inputs, reps = 100) {
      const values = deviceInputs(graph, inputs);
      const engines = runners.map((r) => (r as DeviceSegmentRunner).engine);
      if (engines.length === 1 && engines[0]) {
        const engine = engines[0];
        engine.run(engine.inputs.map((io) => values.get(io.name)!));
        engine.synchronize();
        const out: number[] = [];
        for (let i = 0; i < reps; i++)
          out.push(timeOnStream(engine.stream, () => engine.launch(), { warmup: i === 0 ? 20 : 0, reps: 1 }));
        return out;
      }
      const out: number[] = [];
      for (let i = 0; i < reps + 10; i++) {
        const t0 = performance.now();
        runAll(runners, new Map(values));
        if (i >= 10) out.push(performance.now() - t0);
      }
      return out;
    },
    dispose() {
      for (const b of inputBuffers.values()) b.free();
      inputBuffers.clear();
    },
  };
}
