import { type Tensor, tensorBytes, tensorFromNumbers, toFloat64Array } from "../../ir/tensor.js";
import type { Network } from "../../network/network.js";
import { transpose } from "../../network/reference/data.js";
import { checkNetwork } from "../../network/verify.js";
import { CudaContext } from "./device/context.js";
import { Cudnn } from "./device/conv.js";
import { KernelCache } from "./device/kernel-cache.js";
import { KernelArgs, launch } from "./device/launch.js";
import { DeviceBuffer } from "./device/memory.js";
import { buildKernels, type Kernel } from "./device/module.js";
import { Stream } from "./device/stream.js";
import type { DeviceMemory } from "./device/validate.js";
import { CudaEngine, type EngineIO, ioBytes } from "./engine.js";
import { type ConvStep, type MatmulStep, stepReads } from "./fuse/steps.js";
import { buildCudnnConv, type CudnnConvPlan } from "./kernels/conv-cudnn.js";
import {
  buildLtMatmul,
  createLtHandle,
  destroyLtHandle,
  type LtMatmul,
  matmulGeometry,
} from "./kernels/matmul-cublaslt.js";
import { isIdentity } from "./plan/layout.js";
import { alignUp } from "./plan/memory.js";
import { type Precision, storageRoot, type TensorInfo } from "./plan/tensors.js";
import { planCudaEngine } from "./plan.js";

export interface CudaBuildOptions {
  readonly precision: Precision;
  /** fp32 only: let cuDNN and cuBLASLt use TF32 tensor cores (default false). */
  readonly tf32?: boolean;
  /** Store 4-d/5-d activations channels-last (default: true for fp16, false for fp32). */
  readonly channelsLast?: boolean;
  /** Capture the forward pass as a CUDA graph (default true). */
  readonly cudaGraph?: boolean;
  /** Device ordinal (default 0). */
  readonly device?: number;
  /** NVRTC cache: true (default) for ~/.cache/torchc/kernels, a folder, or false for memory only. */
  readonly kernelCache?: boolean | string;
  /** Called with progress messages. */
  readonly log?: (message: string) => void;
  /**
   * Time the top cuDNN engine candidates of every convolution on the first launch and keep the fastest
   * (default false: it adds seconds of compile time for a few percent; see bench/NOTES.md).
   */
  readonly tuneConvs?: boolean;
}

const LT_WORKSPACE = 32 << 20;

function elapsed(t0: number): number {
  return Math.round((performance.now() - t0) * 10) / 10;
}

export async function buildCudaEngine(network: Network, options: CudaBuildOptions): Promise<CudaEngine> {
  const tStart = performance.now();
  const precision = options.precision;
  if (precision !== "fp32" && precision !== "fp16")
    throw new Error(`precision must be "fp32" or "fp16", got ${String(precision)}`);
  const problems = checkNetwork(network);
  if (problems.length)
    throw new Error(`buildCudaEngine: network is not well formed:\n  ${problems.join("\n  ")}`);
  const log = options.log ?? (() => {});
  const tf32 = options.tf32 === true;

  CudaContext.get(options.device ?? 0);
  const stream = Stream.create();
  let cudnn: Cudnn | undefined;
  let lt: ReturnType<typeof createLtHandle> | undefined;
  const convPlans = new Map<ConvStep, CudnnConvPlan>();
  const ltPlans = new Map<MatmulStep, LtMatmul>();
  let cudnnMs = 0;
  let cublasMs = 0;
  const buffers: DeviceBuffer[] = [];
  const release = () => {
    for (const p of convPlans.values()) p.destroy();
    for (const p of ltPlans.values()) p.destroy();
    if (lt !== undefined) destroyLtHandle(lt);
    cudnn?.destroy();
    for (const b of buffers) b.free();
    stream.destroy();
  };

  try {
    // ---- schedule (library plans are made as the scheduler asks)
    let t0 = performance.now();
    const plan = planCudaEngine(network, {
      precision,
      channelsLast: options.channelsLast ?? precision === "fp16",
      convSupported(step, info) {
        const t = performance.now();
        cudnn ??= Cudnn.create();
        const [x, w] = [info(step.x), info(step.layer.inputs[1])];
        const y = info(step.output);
        const dtype = x.storage;
        if (dtype !== "float16" && dtype !== "float32") return false;
        if (w.storage !== dtype || y.storage !== dtype) return false;
        const l = step.layer;
        const plan = buildCudnnConv(cudnn, {
          layout: step.layout,
          dtype,
          x: x.shape as [number, number, number, number],
          w: w.shape as [number, number, number, number],
          y: y.shape as [number, number, number, number],
          stride: [l.stride[0], l.stride[1]],
          padding: [l.padding[0], l.padding[1]],
          dilation: [l.dilation[0], l.dilation[1]],
          bias: l.inputs[2] !== undefined,
          epilogue: step.epilogue,
          allowTf32: tf32,
        });
        cudnnMs += performance.now() - t;
        if (!plan) return false;
        convPlans.set(step, plan);
        return true;
      },
      matmulSupported(step, info) {
        const t = performance.now();
        lt ??= createLtHandle();
        const g = matmulGeometry(step, info);
        if (typeof g === "string") {
          log(`matmul '${step.layer.name}': ${g}`);
          return false;
        }
        const plan = buildLtMatmul(
          lt,
          g,
          { bias: step.bias !== undefined, activation: step.activation },
          tf32,
          LT_WORKSPACE,
        );
        cublasMs += performance.now() - t;
        if (!plan) return false;
        ltPlans.set(step, plan);
        return true;
      },
    });
    const { network: net, infos, steps, kernels: generated, program } = plan;
    const info = (t: string): TensorInfo => infos.get(t)!;
    const planMs = elapsed(t0) - Math.round(cudnnMs + cublasMs);
    log(`plan: ${steps.length} steps, ${program.uniqueKernels} unique generated kernels`);

    // ---- generated kernels
    t0 = performance.now();
    const kernelList = generated.filter((k) => k !== undefined);
    const cache = new KernelCache({ disk: options.kernelCache ?? true });
    let kernels: Readonly<Record<string, Kernel>> = {};
    let nvrtcCache = "none";
    if (kernelList.length > 0) {
      const symbols = [...new Set(program.symbols)];
      const built = buildKernels(program.source, symbols, { cache, name: "torchc_engine.cu" });
      kernels = built.kernels;
      nvrtcCache = built.cacheHit;
    }
    const symbolOf = new Map(kernelList.map((k, i) => [k.name, program.symbols[i]] as const));
    const nvrtcMs = elapsed(t0);
    log(
      `nvrtc: ${kernelList.length} kernels (${program.uniqueKernels} unique) in ${nvrtcMs} ms (${nvrtcCache})`,
    );

    // ---- memory
    t0 = performance.now();
    const mem = plan.memory;
    const arena = DeviceBuffer.alloc(Math.max(256, mem.arenaBytes));
    buffers.push(arena);
    const ioOf = (name: string): EngineIO => {
      const t = network.tensors[name];
      return { name, type: t, bytes: ioBytes(t) };
    };
    const inputs = net.inputs.map(ioOf);
    const outputs = net.outputs.map(ioOf);
    const inputBuffers = inputs.map((io) => DeviceBuffer.alloc(Math.max(256, io.bytes)));
    const outputBuffers = outputs.map((io) => DeviceBuffer.alloc(Math.max(256, io.bytes)));
    buffers.push(...inputBuffers, ...outputBuffers);

    // Weights: every constant a step reads, converted to its storage dtype and layout; conv channel operands.
    const used = new Set(steps.flatMap((s) => stepReads(s)).map((t) => storageRoot(infos, t)));
    const constOffsets = new Map<string, number>();
    const blobs: { offset: number; bytes: Uint8Array }[] = [];
    let weightBytes = 0;
    const place = (bytes: Uint8Array): number => {
      const off = weightBytes;
      blobs.push({ offset: off, bytes });
      weightBytes = alignUp(off + Math.max(1, bytes.byteLength));
      return off;
    };
    for (const l of net.layers) {
      if (l.type !== "constant" || !used.has(l.output)) continue;
      constOffsets.set(l.output, place(constantBytes(net.constants[l.weight], info(l.output))));
    }
    const channelOffsets = new Map<ConvStep, number[]>();
    for (const [step, plan] of convPlans) {
      const offs: number[] = [];
      for (const op of step.epilogue) {
        if (op.kind !== "channel") continue;
        offs.push(place(tensorBytes(tensorFromNumbers(plan.spec.dtype, [op.values.length], op.values))));
      }
      channelOffsets.set(step, offs);
    }
    const weights = DeviceBuffer.alloc(Math.max(256, weightBytes));
    buffers.push(weights);
    for (const b of blobs) if (b.bytes.byteLength > 0) weights.upload(b.bytes, b.offset);
    const workspaceBytes = Math.max(
      LT_WORKSPACE * (ltPlans.size > 0 ? 1 : 0),
      ...[...convPlans.values()].map((p) => p.workspaceBytes),
      256,
    );
    const workspace = DeviceBuffer.alloc(workspaceBytes);
    buffers.push(workspace);
    const uploadMs = elapsed(t0);

    // ---- launch list
    const inputIndex = new Map(net.inputs.map((n, i) => [n, i] as const));
    const outputIndex = new Map(net.outputs.map((n, i) => [n, i] as const));
    const argsToFree: KernelArgs[] = [];
    let convsTuned = options.tuneConvs !== true;
    const prepare = (ins: readonly DeviceMemory[], outs: readonly DeviceMemory[]): (() => void)[] => {
      for (const a of argsToFree.splice(0)) a.free();
      const ptr = (t: string): bigint => {
        const root = storageRoot(infos, t);
        const r = info(root);
        switch (r.role) {
          case "input":
            return ins[inputIndex.get(root)!].ptr;
          case "output":
            return outs[outputIndex.get(root)!].ptr;
          case "constant": {
            const off = constOffsets.get(root);
            if (off === undefined) throw new Error(`constant '${root}' was not uploaded`);
            return weights.ptr + BigInt(off);
          }
          default: {
            const off = mem.offsets.get(root);
            if (off === undefined) throw new Error(`tensor '${root}' has no arena slot`);
            return arena.ptr + BigInt(off);
          }
        }
      };
      const launches = steps.map((s, i) => {
        const gk = generated[i];
        if (gk) {
          const kernel = kernels[symbolOf.get(gk.name)!];
          const args = new KernelArgs(gk.params.map(() => "ptr" as const));
          argsToFree.push(args);
          for (const [j, p] of gk.params.entries()) args.set(j, ptr(p.tensor));
          const cfg = { grid: gk.grid, block: gk.block, sharedBytes: gk.sharedBytes, stream };
          return () => launch(kernel, cfg, args);
        }
        if (s.kind === "conv") {
          const plan = convPlans.get(s)!;
          const chan = channelOffsets.get(s) ?? [];
          let ci = 0;
          const extra = s.epilogue.flatMap((op) => {
            if (op.kind === "tensor") return [ptr(op.tensor)];
            if (op.kind === "channel") return [weights.ptr + BigInt(chan[ci++])];
            return [];
          });
          const bias = s.layer.inputs[2];
          plan.bind(
            {
              x: ptr(s.x),
              w: ptr(s.layer.inputs[1]),
              bias: bias ? ptr(bias) : undefined,
              y: ptr(s.output),
              extra,
            },
            workspace.ptr,
          );
          return () => plan.execute(stream);
        }
        if (s.kind === "matmul") {
          const plan = ltPlans.get(s)!;
          plan.bind(ptr(s.a), ptr(s.b), ptr(s.output), s.bias ? ptr(s.bias) : undefined, workspace.ptr);
          return () => plan.execute(stream);
        }
        throw new Error(`no launcher for step ${s.kind}`);
      });
      if (!convsTuned) {
        // Before the first forward pass: nothing in the arena matters yet, and the conv outputs written
        // here are all rewritten by the pass. Non-zero activations, so timing does not run on zeros.
        convsTuned = true;
        const t = performance.now();
        arena.fill(0x3c, { stream });
        let timed = 0;
        let switched = 0;
        let firstMs = 0;
        let bestMs = 0;
        for (const p of convPlans.values()) {
          const r = p.tune(stream);
          if (r.timed === 0) continue;
          timed++;
          if (r.switched) switched++;
          firstMs += r.firstMs;
          bestMs += r.bestMs;
        }
        stream.synchronize();
        log(
          `cuDNN tuning: ${timed}/${convPlans.size} convs timed, ${switched} switched, sum ${firstMs.toFixed(3)} → ${bestMs.toFixed(3)} ms (${elapsed(t)} ms)`,
        );
      }
      return launches;
    };

    const kinds: Record<string, number> = {};
    for (const s of steps) kinds[s.kind] = (kinds[s.kind] ?? 0) + 1;
    const groups = steps
      .filter((s) => s.kind === "element")
      .map((s) => (s.kind === "element" ? s.group.layers.length : 0));
    const engine = new CudaEngine({
      inputs,
      outputs,
      inputBuffers,
      outputBuffers,
      stream,
      prepare,
      release: () => {
        for (const a of argsToFree) a.free();
        release();
      },
      useGraph: options.cudaGraph !== false,
      steps: plan.summary,
      stats: {
        layers: network.layers.length,
        layersAfterFolding: net.layers.length,
        folded: plan.foldStats,
        steps: steps.length,
        kernels: steps.length,
        stepKinds: kinds,
        fusedGroups: groups.filter((n) => n > 1).length,
        fusedLayers: groups.filter((n) => n > 1).reduce((a, b) => a + b, 0),
        convEpilogueLayers: steps.reduce(
          (a, s) => a + (s.kind === "conv" || s.kind === "matmul" ? s.fused.length : 0),
          0,
        ),
        generatedKernels: kernelList.length,
        uniqueGeneratedKernels: program.uniqueKernels,
        activationBytes: mem.arenaBytes,
        activationBytesWithoutReuse: mem.naiveBytes,
        weightBytes,
        workspaceBytes,
        ms: {
          plan: planMs,
          cudnn: Math.round(cudnnMs),
          cublas: Math.round(cublasMs),
          nvrtc: nvrtcMs,
          upload: uploadMs,
          capture: 0,
          total: elapsed(tStart),
        },
        nvrtcCache,
      },
    });
    return engine;
  } catch (e) {
    release();
    throw e;
  }
}

/** A constant's bytes in its planned storage dtype and layout. */
export function constantBytes(t: Tensor, info: TensorInfo): Uint8Array {
  if (t.dtype === info.storage && isIdentity(info.layout)) return tensorBytes(t);
  let values = toFloat64Array(t);
  let shape: readonly number[] = t.shape;
  if (!isIdentity(info.layout)) {
    values = transpose(values, t.shape, info.layout);
    shape = info.layout.map((a) => t.shape[a]);
  }
  const out = tensorFromNumbers(info.storage, shape, values);
  return tensorBytes(out);
}
