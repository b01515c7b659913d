import { availableParallelism } from "node:os";
import { DTYPE_BYTES } from "../../ir/dtype.js";
import { type Tensor, tensorBytes, tensorFromNumbers, toFloat64Array } from "../../ir/tensor.js";
import type { Network } from "../../network/network.js";
import { transpose } from "../../network/reference/data.js";
import { checkNetwork } from "../../network/verify.js";
import { reportProgress } from "../../util/progress.js";
import type { EngineChoices } from "./artifacts.js";
import { quantizeInverse } from "./codegen/conv-int8-igemm.js";
import type { GeneratedKernel } from "./codegen/element.js";
import type { LtActivation, LtAlgo } from "./device/blaslt-plan.js";
import { CudaContext } from "./device/context.js";
import { Cudnn } from "./device/conv.js";
import { KernelCache } from "./device/kernel-cache.js";
import { KernelArgs, launch } from "./device/launch.js";
import { DeviceBuffer } from "./device/memory.js";
import {
  type BuiltKernels,
  buildKernels,
  buildKernelsAsync,
  type CudaModule,
  type Kernel,
} from "./device/module.js";
import { Stream } from "./device/stream.js";
import {
  type BuildStats,
  CudaEngine,
  type EngineIO,
  type EngineProgram,
  type InstanceBindings,
  type InstanceResources,
  ioBytes,
} from "./engine.js";
import { approximations, type ConvStep, type MatmulStep, type Step, stepReads } from "./fuse/steps.js";
import {
  chooseIgemmConvs,
  type IgemmConvKernel,
  type IgemmConvSummary,
  igemmArgs,
  igemmSetting,
  launchIgemm,
} from "./igemm-conv-select.js";
import type { QuantizeCopy } from "./igemm-quantize-copy.js";
import {
  buildCudnnConv,
  type ConvOperands,
  type CudnnConvPlan,
  cudnnConvSpec,
} from "./kernels/conv-cudnn.js";
import { splitProgram } from "./kernels/generated.js";
import {
  buildLtMatmul,
  createLtHandle,
  destroyLtHandle,
  type MatmulGeometry,
  matmulGeometry,
} from "./kernels/matmul-cublaslt.js";
import { SmallGemmMatmul } from "./kernels/matmul-small.js";
import { SparseLtMatmul } from "./kernels/matmul-sparselt.js";
import { type LtTimedChoice, ltTimedChoiceEnabled, timeLtCandidates } from "./lt-timed-choice.js";
import { keepsElementOrder, permutedBytes } from "./permute-bytes.js";
import { isIdentity } from "./plan/layout.js";
import { alignUp } from "./plan/memory.js";
import { type Precision, storageRoot, type TensorInfo } from "./plan/tensors.js";
import { type EnginePlan, planCudaEngine } from "./plan.js";
import { stepLabel } from "./profile/labels.js";
import { type Int8ConvOperands, int8ConvOperands, outputScale } from "./quant-conv-operands.js";
import { chooseQuantizedMatmuls, quantKernelsEnabled } from "./quant-select.js";
import { uploadWeightSet, type WeightBuffer, type WeightStore } from "./shared-weights.js";
import { chooseSmallGemms, type SmallGemmSummary, smallGemmSetting } from "./small-gemm-select.js";
import { chooseSparseMatmuls, type EngineMatmul } from "./sparse-select.js";
import type { SparseSummary, SparseWeightsSetting } from "./sparse-weights.js";

export interface CudaBuildOptions {
  readonly precision: Precision;
  /** fp32 only: let cuDNN and cuBLASLt use TF32 tensor cores (default false). */
  readonly tf32?: boolean;
  /** Store 4-d/5-d activations channels-last (default: true for fp16, false for fp32). */
  readonly channelsLast?: boolean;
  /** fp16: float32 tensors of the network stay float32 (fp16Overflow's islands; plan/tensors.ts). Default false. */
  readonly keepFloat32?: boolean;
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
  /** Most bytes of cuBLASLt workspace (default and most 32 MiB). */
  readonly workspaceBytes?: number;
  /** Library plans and kernels saved in a package, and the record of this build's (see ./artifacts.ts). */
  readonly choices?: EngineChoices;
  /** Uploads identical weight sets once across engines (a batch range's buckets; ./shared-weights.ts). */
  readonly weightStore?: WeightStore;
  /** Run 2:4-sparse weights through cuSPARSELt where that times faster (./sparse-select.ts); off when absent. */
  readonly sparseWeights?: SparseWeightsSetting;
}

const LT_WORKSPACE = 32 << 20;

function ltWorkspaceBytes(options: CudaBuildOptions): number {
  return Math.min(LT_WORKSPACE, options.workspaceBytes ?? LT_WORKSPACE);
}

function elapsed(t0: number): number {
  return Math.round((performance.now() - t0) * 10) / 10;
}

/** Library handles and plans a build makes; released together. */
class LibraryPlans {
  cudnn: Cudnn | undefined;
  lt: ReturnType<typeof createLtHandle> | undefined;
  readonly convs = new Map<ConvStep, CudnnConvPlan>();
  /** The int8 weight, scale and bias of each int8 convolution step (ConvStep.int8), uploaded with the weights. */
  readonly int8Convs = new Map<ConvStep, Int8ConvOperands>();
  readonly matmuls = new Map<MatmulStep, EngineMatmul>();
  /** 1×1 convolutions run by cuSPARSELt instead of their cuDNN plan in `convs` (./sparse-conv-select.ts). */
  readonly sparseConvs = new Map<ConvStep, SparseLtMatmul>();
  /** What `sparseWeights` chose, when it was on. */
  sparse: SparseSummary | undefined;
  /** What TORCHC_SMALL_GEMM chose, when it was on and some matmul was eligible. */
  smallGemms: SmallGemmSummary | undefined;
  /** int8 convolutions the generated implicit GEMM runs instead of their cuDNN plan (./igemm-conv-select.ts). */
  readonly igemmConvs = new Map<ConvStep, IgemmConvKernel>();
  /** Generated int8 convolutions that also write their quantize's output; those quantize steps launch nothing. */
  readonly igemmCopies = new Map<ConvStep, QuantizeCopy>();
  readonly skippedSteps = new Set<Step>();
  /** What TORCHC_INT8_IGEMM chose, and the module holding the chosen kernels. */
  igemm: IgemmConvSummary | undefined;
  igemmModule: CudaModule | undefined;
  cudnnMs = 0;
  cublasMs = 0;
  /**
   * Each distinct matmul problem's timed algorithm choice (undefined: heuristic kept); timing is the default, off
   * with TORCHC_LT_TIMED=0.
   */
  readonly ltTimed = new Map<string, LtTimedChoice | undefined>();
  /** Why cuDNN or cuBLASLt refused a step the scheduler offered (it then tried a shorter fusion or a kernel). */
  readonly refusals: string[] = [];
  log: (message: string) => void = () => {};

  /**
   * The algorithm timing chose for this problem, once per distinct problem; undefined when the heuristic's
   * first choice stands (or timing failed: said in the log, the build goes on).
   */
  timedAlgo(
    g: MatmulGeometry,
    epilogue: { bias: boolean; activation: LtActivation; residual?: true },
    tf32: boolean,
    maxWorkspace: number,
  ): LtAlgo | undefined {
    const key = JSON.stringify([g, epilogue, tf32]);
    if (!this.ltTimed.has(key)) {
      try {
        this.ltTimed.set(key, timeLtCandidates(this.lt!, g, epilogue, tf32, maxWorkspace));
      } catch (e) {
        this.log(`matmul ${g.m}x${g.n}x${g.k}: timing its algorithms failed, heuristic kept: ${String(e)}`);
        this.ltTimed.set(key, undefined);
      }
    }
    const c = this.ltTimed.get(key);
    return c && c.index > 0 ? c.algo : undefined;
  }

  /** A matmul's cuBLASLt plan: restored (options.choices), timed (default), or the heuristic's (TORCHC_LT_TIMED=0). */
  matmulPlan(
    g: MatmulGeometry,
    epilogue: { bias: boolean; activation: LtActivation; residual?: true },
    tf32: boolean,
    options: CudaBuildOptions,
  ): ReturnType<typeof buildLtMatmul> {
    const ws = ltWorkspaceBytes(options);
    const timed = ltTimedChoiceEnabled() ? () => this.timedAlgo(g, epilogue, tf32, ws) : undefined;
    if (options.choices) return options.choices.matmul(this.lt!, g, epilogue, tf32, ws, timed);
    return buildLtMatmul(this.lt!, g, epilogue, tf32, ws, timed?.());
  }

  refuse(what: string, reason: string): void {
    this.refusals.push(`${what}: ${reason}`);
    this.log(`${what}: ${reason}`);
  }

  release(): void {
    for (const p of this.convs.values()) p.destroy();
    for (const p of this.matmuls.values()) p.destroy();
    for (const p of this.sparseConvs.values()) p.destroy();
    this.sparseConvs.clear();
    this.igemmConvs.clear();
    this.igemmCopies.clear();
    this.skippedSteps.clear();
    this.igemmModule?.unload();
    this.igemmModule = undefined;
    if (this.lt !== undefined) destroyLtHandle(this.lt);
    this.cudnn?.destroy();
    this.convs.clear();
    this.int8Convs.clear();
    this.matmuls.clear();
    this.lt = undefined;
    this.cudnn = undefined;
  }
}

/** A matmul step's cuBLASLt epilogue; `residual` only where it adds one (so other steps' cache keys stay put). */
function ltEpilogue(step: MatmulStep): { bias: boolean; activation: LtActivation; residual?: true } {
  const e = { bias: step.bias !== undefined, activation: step.activation };
  return step.residual ? { ...e, residual: true } : e;
}

/** Phase 1: fold, place and schedule; cuDNN and cuBLASLt plans are made as the scheduler asks. */
function scheduleEngine(network: Network, options: CudaBuildOptions, libs: LibraryPlans): EnginePlan {
  const tf32 = options.tf32 === true;
  const log = options.log ?? (() => {});
  const plan = planCudaEngine(network, {
    precision: options.precision,
    // int8 convolutions are NHWC: with them on, fp32 engines are channels-last too
    channelsLast: options.channelsLast ?? (options.precision === "fp16" || quantKernelsEnabled()),
    keepFloat32: options.keepFloat32,
    // opt-in: quantized convolutions read their int8 input (fuse/int8-conv-rule.ts)
    int8Convs: quantKernelsEnabled(),
    exactGeluApart: options.sparseWeights !== undefined, // cuSPARSELt fuses no fp16/bf16 GELU
    convSupported(step, info, planned) {
      const t = performance.now();
      if (!libs.cudnn) {
        // The first handle loads cuDNN's engine libraries: a phase of its own, so a fresh process shows its cost.
        reportProgress({ phase: "cudnn handle", sub: true });
        libs.cudnn = Cudnn.create();
        reportProgress({ phase: "schedule", sub: true, detail: "with cuDNN plans" });
      }
      const int8 = step.int8 ? int8ConvOperands(step, planned) : undefined;
      if (typeof int8 === "string") {
        libs.refuse(`int8 conv '${step.layer.name}' (kept in float)`, int8);
        return false;
      }
      const spec = cudnnConvSpec(step, info, tf32);
      const built =
        typeof spec === "string"
          ? undefined
          : (options.choices?.conv(libs.cudnn, spec) ??
            buildCudnnConv(libs.cudnn, spec, { tune: options.tuneConvs === true }));
      libs.cudnnMs += performance.now() - t;
      if (!built?.ok) {
        if (built)
          libs.refuse(`conv '${step.layer.name}' (${step.epilogue.length} epilogue ops)`, built.reason);
        return false;
      }
      libs.convs.set(step, built.plan);
      if (int8) libs.int8Convs.set(step, int8);
      return true;
    },
    matmulSupported(step, info) {
      const t = performance.now();
      if (libs.lt === undefined) {
        reportProgress({ phase: "cublasLt handle", sub: true });
        libs.lt = createLtHandle();
        reportProgress({ phase: "schedule", sub: true, detail: "with cuBLASLt plans" });
      }
      const g = matmulGeometry(step, info);
      if (typeof g === "string") {
        log(`matmul '${step.layer.name}': ${g}`);
        return false;
      }
      const built = libs.matmulPlan(g, ltEpilogue(step), tf32, options);
      libs.cublasMs += performance.now() - t;
      if (!built.ok) {
        libs.refuse(`matmul '${step.layer.name}'`, built.reason);
        return false;
      }
      libs.matmuls.set(step, built.plan);
      return true;
    },
  });
  libs.sparse = chooseSparseMatmuls(
    plan,
    libs.matmuls,
    options.sparseWeights,
    ltWorkspaceBytes(options),
    log,
    { dense: libs.convs, sparse: libs.sparseConvs },
  );
  if (quantKernelsEnabled()) chooseQuantizedKernels(plan, libs, options, log);
  // after sparse and int8: only steps still on cuBLASLt are offered to the generated small-M GEMM
  libs.smallGemms = chooseSmallGemms(plan, libs.matmuls, { ...options, setting: smallGemmSetting() }, log);
  return plan;
}

/**
 * Opt-in (TORCHC_QUANT_KERNELS=1): real int8 GEMMs for quantized linear layers (./quant-select.ts), and int8
 * convolutions on the generated implicit GEMM where it beats cuDNN's int8 graph (TORCHC_INT8_IGEMM,
 * ./igemm-conv-select.ts).
 */
function chooseQuantizedKernels(
  plan: EnginePlan,
  libs: LibraryPlans,
  options: CudaBuildOptions,
  log: (message: string) => void,
): void {
  libs.lt ??= createLtHandle();
  chooseQuantizedMatmuls(plan, libs.matmuls, libs.lt, (w, r) => libs.refuse(w, r), log);
  const igemm = chooseIgemmConvs(plan, libs.convs, { ...options, setting: igemmSetting() }, log);
  if (!igemm) return;
  for (const [step, k] of igemm.chosen) libs.igemmConvs.set(step, k);
  for (const [step, copy] of igemm.copies) {
    libs.igemmCopies.set(step, copy);
    libs.skippedSteps.add(copy.step);
  }
  libs.igemm = igemm.summary;
  libs.igemmModule = igemm.module;
}

/**
 * How many NVRTC programs the engine's generated kernels are split into, compiled at once on worker threads
 * (TORCHC_NVRTC_PROGRAMS; default 1, one program). Each NVRTC instance holds a few hundred MB while it runs,
 * hence the cap.
 */
export function nvrtcPrograms(env: NodeJS.ProcessEnv = process.env): number {
  const n = Number(env.TORCHC_NVRTC_PROGRAMS);
  return Number.isSafeInteger(n) && n >= 1 ? Math.min(n, 8, availableParallelism()) : 1;
}

/** NVRTC options for the engine's program: TORCHC_NVRTC_SPLIT_COMPILE=n runs NVRTC's optimizer on n threads. */
export function engineNvrtcOptions(env: NodeJS.ProcessEnv = process.env): string[] {
  const n = Number(env.TORCHC_NVRTC_SPLIT_COMPILE);
  return env.TORCHC_NVRTC_SPLIT_COMPILE !== undefined && Number.isSafeInteger(n) && n >= 0
    ? [`--split-compile=${n}`]
    : [];
}

/** Phase 2: the generated kernels, compiled by NVRTC (or read from the kernel cache). */
async function compileKernels(
  plan: EnginePlan,
  options: CudaBuildOptions,
): Promise<{
  kernels: Readonly<Record<string, Kernel>>;
  symbolOf: ReadonlyMap<string, string>;
  count: number;
  cache: string;
}> {
  const list = plan.kernels.filter((k) => k !== undefined);
  let kernels: Readonly<Record<string, Kernel>> = {};
  let cache = "none";
  if (list.length > 0) {
    const opts = {
      cache:
        options.choices?.kernelCache(options.kernelCache ?? true) ??
        new KernelCache({ disk: options.kernelCache ?? true }),
      options: engineNvrtcOptions(),
    };
    const parts = splitProgram(plan.program, nvrtcPrograms());
    if (parts.length === 1) {
      const built = buildKernels(plan.program.source, [...new Set(plan.program.symbols)], {
        ...opts,
        name: "torchc_engine.cu",
      });
      kernels = built.kernels;
      cache = built.cacheHit;
    } else {
      const settled = await Promise.allSettled(
        parts.map((p, i) =>
          buildKernelsAsync(p.source, p.symbols, { ...opts, name: `torchc_engine_${i}.cu` }),
        ),
      );
      const failed = settled.find((r) => r.status === "rejected");
      if (failed) {
        // the parts that compiled are loaded modules nothing will use
        for (const r of settled) if (r.status === "fulfilled") r.value.module.unload();
        throw failed.reason;
      }
      const built = settled.map((r) => (r as PromiseFulfilledResult<BuiltKernels<string>>).value);
      kernels = Object.assign({}, ...built.map((b) => b.kernels));
      const hits = new Map<string, number>();
      for (const b of built) hits.set(b.cacheHit, (hits.get(b.cacheHit) ?? 0) + 1);
      cache = `${parts.length} programs: ${[...hits].map(([h, c]) => `${c} ${h}`).join(", ")}`;
    }
  }
  const symbolOf = new Map(list.map((k, i) => [k.name, plan.program.symbols[i]] as const));
  return { kernels, symbolOf, count: list.length, cache };
}

interface Int8ConvOffsets {
  readonly w: number;
  readonly scale: number;
  readonly bias?: number;
}

interface UploadedWeights {
  readonly buffer: WeightBuffer;
  readonly bytes: number;
  readonly constOffsets: ReadonlyMap<string, number>;
  readonly channelOffsets: ReadonlyMap<ConvStep, readonly number[]>;
  /** int8 convolution steps: where their weight, scale and bias start in the buffer. */
  readonly int8Offsets: ReadonlyMap<ConvStep, Int8ConvOffsets>;
}

/** Phase 3: every constant a step reads, in its storage dtype and layout, and conv channel operands, in one buffer. */
function uploadWeights(plan: EnginePlan, libs: LibraryPlans, store?: WeightStore): UploadedWeights {
  const { network: net, infos, steps } = plan;
  const used = new Set(steps.flatMap((s) => stepReads(s)).map((t) => storageRoot(infos, t)));
  const constOffsets = new Map<string, number>();
  const blobs: { offset: number; bytes: Uint8Array }[] = [];
  let bytes = 0;
  const place = (b: Uint8Array): number => {
    const off = bytes;
    blobs.push({ offset: off, bytes: b });
    bytes = alignUp(off + Math.max(1, b.byteLength));
    return off;
  };
  for (const l of net.layers) {
    if (l.type !== "constant" || !used.has(l.output)) continue;
    constOffsets.set(l.output, place(constantBytes(net.constants[l.weight], infos.get(l.output)!)));
  }
  const channelOffsets = new Map<ConvStep, number[]>();
  for (const [step, p] of libs.convs) {
    const offs: number[] = [];
    // an int8-out step's channel operands are float32, its additions divided by the output's scale
    const sY = p.spec.int8Output ? (outputScale(step) as number) : 1;
    const dtype = p.spec.int8Output ? "float32" : p.spec.dtype;
    for (const op of step.epilogue) {
      if (op.kind !== "channel") continue;
      const values = op.op === "add" && sY !== 1 ? op.values.map((v) => v / sY) : op.values;
      offs.push(place(tensorBytes(tensorFromNumbers(dtype, [values.length], values))));
    }
    channelOffsets.set(step, offs);
  }
  const int8Offsets = new Map<ConvStep, Int8ConvOffsets>();
  const bytesOf = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  for (const [step, ops] of libs.int8Convs)
    int8Offsets.set(step, {
      w: place(bytesOf(ops.weight)),
      scale: place(bytesOf(ops.scale)),
      bias: ops.bias ? place(bytesOf(ops.bias)) : undefined,
    });
  reportProgress({ phase: "copy weights", sub: true, detail: `${blobs.length} blobs, ${bytes} bytes` });
  const offsets = { constOffsets, channelOffsets, int8Offsets };
  if (store) return { buffer: store.acquire(blobs, bytes), bytes, ...offsets };
  return { buffer: uploadWeightSet(blobs, bytes), bytes, ...offsets };
}

/** Where each tensor of one instance lives: its address, resolved through views to the storage root. */
function pointerResolver(
  plan: EnginePlan,
  weights: UploadedWeights,
  b: InstanceBindings,
): (tensor: string) => bigint {
  const { network: net, infos } = plan;
  const inputIndex = new Map(net.inputs.map((n, i) => [n, i] as const));
  const outputIndex = new Map(net.outputs.map((n, i) => [n, i] as const));
  return (t) => {
    const info = infos.get(t);
    // a strided view starts `offset` elements into its root (plan/strided-views.ts)
    const skip = BigInt((info?.offset ?? 0) * (info ? DTYPE_BYTES[info.storage] : 0));
    return rootPointer(t) + skip;
  };
  function rootPointer(t: string): bigint {
    const root = storageRoot(infos, t);
    switch (infos.get(root)!.role) {
      case "input":
        return b.inputs[inputIndex.get(root)!].ptr;
      case "output":
        return b.outputs[outputIndex.get(root)!].ptr;
      case "constant": {
        const off = weights.constOffsets.get(root);
        if (off === undefined) throw new Error(`constant '${root}' was not uploaded`);
        return weights.buffer.ptr + BigInt(off);
      }
      default: {
        const off = plan.memory.offsets.get(root);
        if (off === undefined) throw new Error(`tensor '${root}' has no arena slot`);
        return b.resources.arena.ptr + BigInt(off);
      }
    }
  }
}

/** The cuDNN operands of a conv step: x, w, bias, y, then epilogue tensors and channel vectors in order. */
function convOperands(s: ConvStep, ptr: (t: string) => bigint, weights: UploadedWeights) {
  const chan = weights.channelOffsets.get(s) ?? [];
  let ci = 0;
  const extra = s.epilogue.flatMap((op) => {
    if (op.kind === "tensor") return [ptr(op.tensor)];
    if (op.kind === "channel") return [weights.buffer.ptr + BigInt(chan[ci++])];
    return [];
  });
  const bias = s.layer.inputs[2];
  const int8 = weights.int8Offsets.get(s);
  if (int8) {
    const at = (off: number) => weights.buffer.ptr + BigInt(off);
    const b = int8.bias === undefined ? undefined : at(int8.bias);
    return { x: ptr(s.x), w: at(int8.w), scale: at(int8.scale), bias: b, y: ptr(s.output), extra };
  }
  return {
    x: ptr(s.x),
    w: ptr(s.layer.inputs[1]),
    bias: bias ? ptr(bias) : undefined,
    y: ptr(s.output),
    extra,
  };
}

/** A 1×1 convolution run by cuSPARSELt: the plan holds its weight and summed bias; the one tensor addition is C. */
function bindSparseConv(s: ConvStep, sparse: SparseLtMatmul, ptr: (t: string) => bigint, workspace: bigint) {
  const added = s.epilogue.find((op) => op.kind === "tensor");
  return () =>
    sparse.bind(ptr(s.x), 0n, ptr(s.output), undefined, workspace, added ? ptr(added.tensor) : undefined);
}

/** A step's generated kernel: its arguments for this instance's memory. */
function generatedLaunch(
  gk: GeneratedKernel,
  compiled: Awaited<ReturnType<typeof compileKernels>>,
  b: InstanceBindings,
  ptr: (t: string) => bigint,
): () => void {
  const kernel = compiled.kernels[compiled.symbolOf.get(gk.name)!];
  // Above 48 KiB a kernel must opt in to dynamic shared memory (sm_90 allows up to 227 KiB).
  if (gk.sharedBytes > 48 * 1024) kernel.setMaxDynamicSharedBytes(gk.sharedBytes);
  const args = new KernelArgs(gk.params.map(() => "ptr" as const));
  b.args.push(args);
  for (const [j, p] of gk.params.entries()) args.set(j, ptr(p.tensor));
  const cfg = { grid: gk.grid, block: gk.block, sharedBytes: gk.sharedBytes, stream: b.resources.stream };
  return () => launch(kernel, cfg, args);
}

/** An int8 convolution on the generated implicit GEMM: its own arguments per instance, like a generated kernel. */
function igemmLaunch(
  k: IgemmConvKernel,
  ops: ConvOperands,
  b: InstanceBindings,
  copy: QuantizeCopy | undefined,
  ptr: (t: string) => bigint,
): () => void {
  const inv = copy ? quantizeInverse(copy.layer.scale[0]) : undefined;
  const args = igemmArgs(k, ops, copy && inv !== undefined ? { q: ptr(copy.q), inv } : undefined);
  b.args.push(args);
  const { stream } = b.resources;
  return () => launchIgemm(k, args, stream);
}

/** Phase 4: the launch list of one instance, every pointer resolved against that instance's memory. */
function makeLauncher(
  plan: EnginePlan,
  compiled: Awaited<ReturnType<typeof compileKernels>>,
  weights: UploadedWeights,
  libs: LibraryPlans,
  options: CudaBuildOptions,
): (b: InstanceBindings) => (() => void)[] {
  // Library plans hold their pointers: an instance rebinds before executing when another bound last.
  const boundBy = new Map<object, InstanceBindings>();
  const library = (b: InstanceBindings, p: object, bind: () => void, execute: () => void) => {
    const rebind = () => {
      bind();
      boundBy.set(p, b);
    };
    rebind();
    return () => {
      if (boundBy.get(p) !== b) rebind();
      execute();
    };
  };
  // int8 plans keep several candidates even without tuneConvs (conv-cudnn.ts): they are always timed. The int8
  // implicit GEMM's choice timed them already; the pass still runs so that the plan cache records the choices.
  let convsTuned =
    options.tuneConvs !== true &&
    libs.igemm === undefined &&
    ![...tunableConvs(libs)].some((p) => p.candidateCount > 1);
  return (b) => {
    const { workspace, stream } = b.resources;
    const ptr = pointerResolver(plan, weights, b);
    const launches = plan.steps.map((s, i): (() => void) => {
      // a quantize whose output the int8 convolution before it writes (igemm-quantize-copy.ts)
      if (libs.skippedSteps.has(s)) return () => {};
      const gk = plan.kernels[i];
      if (gk) return generatedLaunch(gk, compiled, b, ptr);
      if (s.kind === "conv") {
        const sparse = libs.sparseConvs.get(s);
        if (sparse)
          return library(b, sparse, bindSparseConv(s, sparse, ptr, workspace.ptr), () =>
            sparse.execute(stream),
          );
        const ops = convOperands(s, ptr, weights);
        const igemm = libs.igemmConvs.get(s);
        if (igemm) return igemmLaunch(igemm, ops, b, libs.igemmCopies.get(s), ptr);
        const p = libs.convs.get(s)!;
        return library(
          b,
          p,
          () => p.bind(ops, workspace.ptr),
          () => p.execute(stream),
        );
      }
      if (s.kind === "matmul") {
        const p = libs.matmuls.get(s)!;
        const bias = s.bias ? ptr(s.bias) : undefined;
        const residual = s.residual ? ptr(s.residual) : undefined;
        const [a, m, out] = [ptr(s.a), ptr(s.b), ptr(s.output)];
        return library(
          b,
          p,
          () => p.bind(a, m, out, bias, workspace.ptr, residual),
          () => p.execute(stream),
        );
      }
      throw new Error(`no launcher for step ${s.kind}`);
    });
    if (!convsTuned) {
      convsTuned = true;
      tuneConvs(libs, b.resources.arena, stream, options.log ?? (() => {}));
      options.choices?.noteTuned(options.tuneConvs === true);
    }
    return launches;
  };
}

/**
 * Before the first forward pass: nothing in the arena matters yet, and the conv outputs written here are all
 * rewritten by the pass. Non-zero activations, so timing does not run on zeros.
 */
function tuneConvs(libs: LibraryPlans, arena: DeviceBuffer, stream: Stream, log: (m: string) => void): void {
  const t = performance.now();
  arena.fill(0x3c, { stream });
  let timed = 0;
  let switched = 0;
  let firstMs = 0;
  let bestMs = 0;
  let tried = 0;
  const plans = [...tunableConvs(libs)];
  for (const p of plans) {
    reportProgress({ phase: "tune convs", sub: true, done: ++tried, total: plans.length });
    const r = p.tune(stream);
    for (const f of r.failures) log(`cuDNN tuning dropped a candidate: ${f}`);
    if (r.timed === 0) continue;
    timed++;
    if (r.switched) switched++;
    firstMs += r.firstMs;
    bestMs += r.bestMs;
  }
  stream.synchronize();
  log(
    `cuDNN tuning: ${timed} conv problems timed (${plans.length} convs; layers of one problem share its plans), ${switched} switched, sum ${firstMs.toFixed(3)} → ${bestMs.toFixed(3)} ms (${elapsed(t)} ms)`,
  );
}

/**
 * The cuDNN plans the engine runs: not those of convolutions cuSPARSELt or the generated int8 kernel runs (still
 * bound to their timing's freed scratch).
 */
function* tunableConvs(libs: LibraryPlans): Iterable<CudnnConvPlan> {
  for (const [step, p] of libs.convs) if (!libs.sparseConvs.has(step) && !libs.igemmConvs.has(step)) yield p;
}

function buildStats(
  network: Network,
  plan: EnginePlan,
  compiled: Awaited<ReturnType<typeof compileKernels>>,
  weights: UploadedWeights,
  workspaceBytes: number,
  ms: BuildStats["ms"],
  libs: {
    readonly refusals: readonly string[];
    readonly sparse?: SparseSummary;
    readonly ltTimed?: ReadonlyMap<string, LtTimedChoice | undefined>;
    readonly smallGemms?: SmallGemmSummary;
    readonly igemm?: IgemmConvSummary;
    readonly matmuls: ReadonlyMap<MatmulStep, EngineMatmul>;
  },
  choices?: { readonly convsFromJson: number; readonly convsFromEngine: number },
): Omit<BuildStats, "graphNodes"> {
  const { steps } = plan;
  const { refusals: libraryRefusals, sparse } = libs;
  const kinds: Record<string, number> = {};
  for (const s of steps) kinds[s.kind] = (kinds[s.kind] ?? 0) + 1;
  // int8 convolutions (ConvStep.int8) are also counted on their own
  const int8 = steps.filter((s) => s.kind === "conv" && s.int8).length;
  if (int8 > 0) kinds["conv(int8)"] = int8;
  const groups = steps.map((s) => (s.kind === "element" ? s.group.layers.length : 0));
  const approximated = approximations(steps, (s) => libs.matmuls.get(s) instanceof SmallGemmMatmul);
  return {
    layers: network.layers.length,
    layersAfterFolding: plan.network.layers.length,
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
    generatedKernels: compiled.count,
    uniqueGeneratedKernels: plan.program.uniqueKernels,
    activationBytes: plan.memory.arenaBytes,
    activationBytesWithoutReuse: plan.memory.naiveBytes,
    weightBytes: weights.bytes,
    workspaceBytes,
    ms,
    nvrtcCache: compiled.cache,
    libraryRefusals,
    ...(sparse ? { sparse } : {}),
    ...(libs.smallGemms ? { smallGemms: libs.smallGemms } : {}),
    ...(libs.igemm ? { igemmConvs: libs.igemm } : {}),
    ...(approximated.length ? { approximations: approximated } : {}),
    ...(libs.ltTimed?.size ? { timedMatmuls: timedMatmulStats(libs.ltTimed) } : {}),
    ...(choices && choices.convsFromJson + choices.convsFromEngine > 0
      ? { restoredConvs: { fromJson: choices.convsFromJson, fromEngine: choices.convsFromEngine } }
      : {}),
  };
}

/** How many distinct matmul problems were timed and how many took another algorithm than the heuristic's first. */
function timedMatmulStats(
  timed: ReadonlyMap<string, LtTimedChoice | undefined>,
): NonNullable<BuildStats["timedMatmuls"]> {
  const changed = [...timed.values()].filter((c) => c !== undefined && c.index > 0) as LtTimedChoice[];
  return {
    problems: timed.size,
    changed: changed.length,
    // per call of each changed problem (a problem may run several times a pass)
    // (timings from different rounds: clamped at 0)
    savedUs: Math.max(
      0,
      Math.round(changed.reduce((a, c) => a + (c.firstMs - c.chosenMs) * 1000, 0) * 10) / 10,
    ),
  };
}

/** Each step's profile label; matmuls the generated small GEMM runs are labelled as such. */
function engineLabels(plan: EnginePlan, libs: LibraryPlans) {
  return plan.steps.map((s) =>
    stepLabel(
      s,
      (s.kind === "matmul" && libs.matmuls.get(s) instanceof SmallGemmMatmul) ||
        (s.kind === "conv" && libs.igemmConvs.has(s)),
      s.kind === "conv"
        ? libs.sparseConvs.has(s)
        : s.kind === "matmul" && libs.matmuls.get(s) instanceof SparseLtMatmul,
    ),
  );
}

/** Builds an engine: schedule, compile kernels, upload weights; each instance prepares its launches and graph. */
export async function buildCudaEngine(network: Network, options: CudaBuildOptions): Promise<CudaEngine> {
  const tStart = performance.now();
  if (options.precision !== "fp32" && options.precision !== "fp16")
    throw new Error(`precision must be "fp32" or "fp16", got ${String(options.precision)}`);
  const problems = checkNetwork(network);
  if (problems.length)
    throw new Error(`buildCudaEngine: network is not well formed:\n  ${problems.join("\n  ")}`);
  const log = options.log ?? (() => {});
  CudaContext.get(options.device ?? 0);
  const libs = Object.assign(new LibraryPlans(), { log });
  let weights: UploadedWeights | undefined;
  const release = () => {
    libs.release();
    weights?.buffer.free();
  };
  try {
    let t0 = performance.now();
    reportProgress({ phase: "schedule", sub: true, detail: `${network.layers.length} layers` });
    const plan = scheduleEngine(network, options, libs);
    options.choices?.notePlan(plan);
    const planMs = elapsed(t0) - Math.round(libs.cudnnMs + libs.cublasMs);
    log(`plan: ${plan.steps.length} steps, ${plan.program.uniqueKernels} unique generated kernels`);
    t0 = performance.now();
    reportProgress({ phase: "compile kernels", sub: true, detail: `${plan.program.uniqueKernels} kernels` });
    const compiled = await compileKernels(plan, options);
    CudaContext.get(options.device ?? 0); // another device's build may have made its context current meanwhile
    const nvrtcMs = elapsed(t0);
    log(
      `nvrtc: ${compiled.count} kernels (${plan.program.uniqueKernels} unique) in ${nvrtcMs} ms (${compiled.cache})`,
    );
    t0 = performance.now();
    reportProgress({ phase: "upload weights", sub: true });
    weights = uploadWeights(plan, libs, options.weightStore);
    options.choices?.noteBuilt({ plan, weights, convs: libs.convs, options });
    const uploadMs = elapsed(t0);
    const workspaceBytes = Math.max(
      ltWorkspaceBytes(options) * (libs.matmuls.size > 0 ? 1 : 0),
      ...[...libs.convs.values(), ...libs.sparseConvs.values()].map((p) => p.workspaceBytes),
      256,
    );
    const ioOf = (name: string): EngineIO => {
      const t = network.tensors[name];
      return { name, type: t, bytes: ioBytes(t) };
    };
    const inputs = plan.network.inputs.map(ioOf);
    const outputs = plan.network.outputs.map(ioOf);
    const program: EngineProgram = {
      inputs,
      outputs,
      useGraph: options.cudaGraph !== false,
      steps: plan.summary,
      labels: engineLabels(plan, libs),
      stats: buildStats(
        network,
        plan,
        compiled,
        weights,
        workspaceBytes,
        {
          plan: planMs,
          cudnn: Math.round(libs.cudnnMs),
          cublas: Math.round(libs.cublasMs),
          nvrtc: nvrtcMs,
          upload: uploadMs,
          capture: 0,
          total: elapsed(tStart),
        },
        libs,
        options.choices?.stats,
      ),
      allocate: (stream) => allocateInstance(plan.memory.arenaBytes, workspaceBytes, inputs, outputs, stream),
      prepare: makeLauncher(plan, compiled, weights, libs, options),
      release,
    };
    return new CudaEngine(program, program.allocate());
  } catch (e) {
    release();
    throw e;
  }
}

/** One instance's memory; everything made so far is freed if an allocation fails. */
function allocateInstance(
  arenaBytes: number,
  workspaceBytes: number,
  inputs: readonly EngineIO[],
  outputs: readonly EngineIO[],
  stream?: Stream,
): InstanceResources {
  reportProgress({ phase: "allocate", sub: true });
  const made: DeviceBuffer[] = [];
  const alloc = (bytes: number) => {
    const b = DeviceBuffer.alloc(Math.max(256, bytes));
    made.push(b);
    return b;
  };
  const own = stream === undefined;
  const s = stream ?? Stream.create();
  try {
    return {
      stream: s,
      ownsStream: own,
      arena: alloc(arenaBytes),
      workspace: alloc(workspaceBytes),
      inputBuffers: inputs.map((io) => alloc(io.bytes)),
      outputBuffers: outputs.map((io) => alloc(io.bytes)),
    };
  } catch (e) {
    for (const b of made) b.free();
    if (own) s.destroy();
    throw e;
  }
}

/** A constant's bytes in its planned storage dtype and layout. */
export function constantBytes(t: Tensor, info: TensorInfo): Uint8Array {
  // A layout that only moves axes of size 1 (1×1 conv weights stored channels-last) keeps the element order: the
  // tensor's own bytes, with no copy, for builds and refits alike.
  if (t.dtype === info.storage && keepsElementOrder(t.shape, info.layout)) return tensorBytes(t);
  // Same dtype in another layout: the stored elements move bit for bit (no float round trip).
  if (t.dtype === info.storage) return permutedBytes(t, info.layout);
  let values = toFloat64Array(t);
  let shape: readonly number[] = t.shape;
  if (!isIdentity(info.layout)) {
    values = transpose(values, t.shape, info.layout);
    shape = info.layout.map((a) => t.shape[a]);
  }
  const out = tensorFromNumbers(info.storage, shape, values);
  return tensorBytes(out);
}
