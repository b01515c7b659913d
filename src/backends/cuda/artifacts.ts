/**
 * What the CUDA backend saves of its built engines, and how a build reuses it. One `EngineChoices` per engine
 * segment sits between the builder and the libraries: every cuDNN plan, cuBLASLt algorithm and NVRTC program
 * the build asks for goes through it, comes from the package when the package has it (no heuristics, no
 * timing, no compiling), and is remembered for the next save. Choices are keyed by the problem (the conv's spec,
 * the matmul's geometry and epilogue, the program's source and target), so a stale record can only miss,
 * never run the wrong plan. The memory plan is saved too and compared when the engine is planned again.
 */
import { createHash } from "node:crypto";
import { TorchcError } from "../../errors.js";
import type { Network } from "../../network/network.js";
import type { BuildTarget, LoadedArtifacts, SavedArtifacts } from "../../runtime/package-artifacts.js";
import { reportProgress } from "../../util/progress.js";
import { PlanCache } from "./artifacts-cache.js";
import { type ConvChoice, describeConvCandidate, restoreConv } from "./artifacts-cudnn.js";
import { PackageKernelCache, type SavedKernel } from "./artifacts-kernels.js";
import { type BuiltEngine, prepareEngineRefit } from "./artifacts-refit.js";
import { BlasLt } from "./device/blaslt.js";
import { nvrtcVersion } from "./device/compile.js";
import { CudaContext } from "./device/context.js";
import { Cudnn } from "./device/conv.js";
import {
  buildCudnnConv,
  type CudnnConvBuild,
  type CudnnConvPlan,
  type CudnnConvSpec,
} from "./kernels/conv-cudnn.js";
import {
  buildLtMatmul,
  type LtMatmul,
  type LtMatmulBuild,
  type MatmulGeometry,
} from "./kernels/matmul-cublaslt.js";
import { ltSplitKEnabled } from "./lt-timed-choice.js";
import type { EnginePlan } from "./plan.js";

export interface MatmulChoice {
  /** The 64-byte cublasLtMatmulAlgo_t, base64. */
  readonly algo: string;
  readonly workspaceBytes: number;
}

export interface KernelChoice {
  /** The blob holding the image. */
  readonly blob: string;
  readonly kind: "cubin" | "ptx";
  readonly loweredNames: Readonly<Record<string, string>>;
}

/** A conv's saved choice, its (large) cuDNN plan serialization in a blob of its own. */
export type SavedConv = Omit<ConvChoice, "plan"> & { readonly planBlob?: string };

/** One engine's saved record (JSON). */
export interface EngineRecord {
  readonly convs: Readonly<Record<string, SavedConv>>;
  readonly matmuls: Readonly<Record<string, MatmulChoice>>;
  readonly kernels: Readonly<Record<string, KernelChoice>>;
  readonly memory: { readonly arenaBytes: number; readonly offsets: Readonly<Record<string, number>> };
  readonly steps: number;
}

export interface MatmulEpilogue {
  readonly bias: boolean;
  readonly activation: "none" | "relu" | "gelu";
  /** Present (true) only when the step adds a residual as beta·C: keys of the other steps stay as they were. */
  readonly residual?: true;
}

/** What a build restored from the package and what it had to choose itself. */
export interface ChoiceStats {
  restored: number;
  chosen: number;
  /** Conv plans restored from cuDNN's serialized plan, and rebuilt from an engine index and knobs. */
  convsFromJson: number;
  convsFromEngine: number;
}

/**
 * A conv problem's key: its spec without the epilogue's constant values (they do not change the plan; refit changes
 * them) or the names of the tensors it adds or multiplies (always of y's shape, strides and dtype: the operand is a
 * pointer bound per layer), so every residual-add layer of one shape is one problem.
 */
export function convKey(spec: CudnnConvSpec): string {
  return hash(JSON.stringify(spec, (k, v) => (k === "values" || k === "tensor" ? undefined : v)));
}

export function matmulKey(
  g: MatmulGeometry,
  epilogue: MatmulEpilogue,
  tf32: boolean,
  maxWorkspace: number,
): string {
  return hash(JSON.stringify([g, epilogue, tf32, maxWorkspace]));
}

/**
 * The plan cache's key for a matmul choice: timings with split-K variants (TORCHC_LT_SPLITK=1) are kept apart,
 * else an earlier choice timed without them would be reused and split-K never weighed. Packages and refit use
 * matmulKey alone: a saved algorithm is a complete choice however it was picked.
 */
function matmulCacheKey(key: string): string {
  return ltSplitKEnabled() ? `${key}:splitk` : key;
}

function hash(text: string): string {
  return createHash("sha256").update(text).digest("hex").slice(0, 32);
}

const b64 = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("base64");
const fromB64 = (s: string) => new Uint8Array(Buffer.from(s, "base64"));

export class EngineChoices {
  private readonly convs = new Map<string, CudnnConvPlan>();
  /** Problems cuDNN refused in this build, with its reason. */
  private readonly refusedConvs = new Map<string, string>();
  private readonly matmuls = new Map<string, LtMatmul>();
  /** Matmul problems this build chose by timing (cached as timed). */
  private readonly timedMatmuls = new Set<string>();
  private kernels: PackageKernelCache | undefined;
  /** The build's answers to the scheduler by problem key, and the matmul workspace bound it asked with (for refit). */
  private readonly answers = { conv: new Map<string, boolean>(), matmul: new Map<string, boolean>() };
  private maxWorkspace = 0;
  private built: BuiltEngine | undefined;
  /** The plan whose constants the engine's weight buffer holds (set by each refit). */
  private held: EnginePlan | undefined;
  private memory: EngineRecord["memory"] | undefined;
  private steps = 0;
  readonly stats: ChoiceStats = { restored: 0, chosen: 0, convsFromJson: 0, convsFromEngine: 0 };
  /** Conv problems whose plan was restored from cuDNN's serialized form. */
  private readonly fromJson = new Set<string>();
  /** Why the saved memory plan was not the one planned now, if it was not. */
  memoryMismatch: string | undefined;

  constructor(
    private readonly saved: EngineRecord | undefined,
    private readonly blobs: Readonly<Record<string, Uint8Array>> = {},
    /** Choices of earlier compiles by problem (artifacts-cache.ts); `tune` uses only timed ones. */
    private readonly cache: PlanCache = new PlanCache(undefined),
    private readonly tune = false,
  ) {}

  /**
   * The cuDNN plan for `spec`: the saved one when there is one (falling back to heuristics if cuDNN refuses it).
   * Within a build, a problem cuDNN refused once is refused again without asking (the scheduler offers each
   * convolution's longest epilogue first, and a ResNet-50 repeats most of its problems; an int8 graph refused
   * costs a runtime compile). A problem planned once is shared by its later layers (CudnnConvPlan.share: the same
   * cuDNN plans, tuned once, each layer binding its own pointers): cuDNN's heuristics and finalization run once per
   * distinct problem. Finalizing or restoring an int8 runtime-fusion plan compiles kernels (~350 ms each, H100,
   * session 16: a warm int8 ResNet-50 build spent 18.2 s restoring 51 plans); before session 17 only float problems
   * were shared (restored again from the first plan's JSON, EfficientNet-B0 b128: cuDNN plans 1.43 s of a 2.25 s
   * cold build, session 15). TORCHC_REUSE_CONV_PLANS=0 asks cuDNN for every layer.
   */
  conv(cudnn: Cudnn, spec: CudnnConvSpec): CudnnConvBuild {
    const key = convKey(spec);
    const reuse = process.env.TORCHC_REUSE_CONV_PLANS !== "0";
    const again = reuse ? this.refusedConvs.get(key) : undefined;
    if (again !== undefined) return { ok: false, reason: again };
    const first = reuse ? this.convs.get(key) : undefined;
    if (first?.chosen) {
      this.answers.conv.set(key, true);
      return { ok: true, plan: first.share(spec) };
    }
    const saved = this.savedConv(key);
    let built: CudnnConvBuild | undefined;
    const known = saved ?? this.cache.conv(key, this.tune);
    if (known) {
      built = restoreConv(cudnn, spec, known);
      if (built.ok) {
        this.stats.restored++;
        if (built.restoredFrom === "json") {
          this.stats.convsFromJson++;
          this.fromJson.add(key);
        } else this.stats.convsFromEngine++;
      }
    }
    if (!built?.ok) {
      built = buildCudnnConv(cudnn, spec, { tune: this.tune });
      this.stats.chosen++;
    }
    if (built.ok) this.convs.set(key, built.plan);
    else this.refusedConvs.set(key, built.reason);
    this.answers.conv.set(key, built.ok);
    return built;
  }

  private savedConv(key: string): ConvChoice | undefined {
    const c = this.saved?.convs[key];
    if (!c) return undefined;
    const { planBlob, ...rest } = c;
    const bytes = planBlob !== undefined ? this.blobs[planBlob] : undefined;
    return bytes ? { ...rest, plan: new TextDecoder().decode(bytes) } : rest;
  }

  /**
   * The cuBLASLt plan for a matmul: the saved algorithm when there is one; else, with `timed` (the default; not with
   * TORCHC_LT_TIMED=0), a cached timed choice or the algorithm `timed` picks by timing; else a cached choice or
   * cuBLASLt's heuristic.
   */
  matmul(
    handle: Parameters<typeof buildLtMatmul>[0],
    g: MatmulGeometry,
    epilogue: MatmulEpilogue,
    tf32: boolean,
    maxWorkspace: number,
    timed?: () => { readonly algo: Uint8Array; readonly workspaceBytes: number } | undefined,
  ): LtMatmulBuild {
    const key = matmulKey(g, epilogue, tf32, maxWorkspace);
    const choice = this.saved?.matmuls[key] ?? this.cache.matmul(matmulCacheKey(key), timed !== undefined);
    let built = choice
      ? buildLtMatmul(handle, g, epilogue, tf32, maxWorkspace, {
          algo: fromB64(choice.algo),
          workspaceBytes: choice.workspaceBytes,
        })
      : undefined;
    if (built?.ok) this.stats.restored++;
    else {
      // A timing run that keeps the heuristic's first choice still counts as timed (cached as such).
      if (timed) this.timedMatmuls.add(key);
      built = buildLtMatmul(handle, g, epilogue, tf32, maxWorkspace, timed?.());
      this.stats.chosen++;
    }
    if (built.ok) this.matmuls.set(key, built.plan);
    this.answers.matmul.set(key, built.ok);
    this.maxWorkspace = maxWorkspace;
    return built;
  }

  /** The NVRTC cache for the build's program, holding the package's images. */
  kernelCache(disk: boolean | string): PackageKernelCache {
    const saved = new Map<string, SavedKernel>();
    for (const [id, k] of Object.entries(this.saved?.kernels ?? {})) {
      const image = this.blobs[k.blob];
      if (image) saved.set(id, { kind: k.kind, image, loweredNames: k.loweredNames });
    }
    this.kernels = new PackageKernelCache(disk, saved);
    return this.kernels;
  }

  /** Records the planned engine's memory plan, and whether it is the saved one. */
  notePlan(plan: EnginePlan): void {
    const offsets: Record<string, number> = {};
    for (const [t, o] of plan.memory.offsets) offsets[t] = o;
    this.memory = { arenaBytes: plan.memory.arenaBytes, offsets };
    this.steps = plan.steps.length;
    const s = this.saved?.memory;
    if (!s) return;
    const same =
      s.arenaBytes === plan.memory.arenaBytes &&
      Object.keys(s.offsets).length === plan.memory.offsets.size &&
      [...plan.memory.offsets].every(([t, o]) => s.offsets[t] === o);
    if (!same)
      this.memoryMismatch = `memory plan differs from the package's (${s.arenaBytes} → ${plan.memory.arenaBytes} arena bytes)`;
  }

  /** Keeps what a later refit needs of the finished build. */
  noteBuilt(built: BuiltEngine): void {
    reportProgress({ phase: "record choices", sub: true });
    this.built = built;
    // A saved engine that could not be used whole is still correct (choices made again), only slower: say so.
    const missed = [
      ...(this.saved && this.stats.chosen > 0
        ? [`${this.stats.chosen} library plans chosen again (${this.stats.restored} restored)`]
        : []),
      ...(this.saved && this.kernelStats.used > this.kernelStats.restored
        ? [`${this.kernelStats.used - this.kernelStats.restored} kernel programs compiled again`]
        : []),
      ...(this.memoryMismatch ? [this.memoryMismatch] : []),
    ];
    if (missed.length > 0)
      process.emitWarning(`saved engine not fully reused: ${missed.join("; ")}`, {
        code: "TORCHC_PACKAGE_PARTIAL",
      });
    // An engine restored whole from its package chose nothing new: no cache entries to read back or file to write.
    if (this.saved && this.stats.chosen === 0) return;
    for (const [k, p] of this.matmuls)
      this.cache.putMatmul(matmulCacheKey(k), {
        algo: b64(p.algo),
        workspaceBytes: p.workspaceBytes,
        ...(this.timedMatmuls.has(k) ? { timed: true } : {}),
      });
    // With tune, conv choices are cached once timed (noteTuned).
    if (!this.tune) this.cacheConvs(false);
    this.cache.flush();
  }

  /**
   * After the build's conv timing: the winners go to the plan cache, as tuned choices when every convolution was
   * timed (`tune`), else as plain ones (only int8 plans were timed; the others are the heuristic's first).
   */
  noteTuned(all = true): void {
    this.cacheConvs(all);
    this.cache.flush();
  }

  private cacheConvs(tuned: boolean): void {
    for (const [k, p] of this.convs) {
      const c = p.chosen;
      // a plan restored from its serialized form is already in the cache as it runs: no re-read, no rewrite
      if (!c || (this.fromJson.has(k) && !tuned)) continue;
      const { plan, ...choice } = describeConvCandidate(c, true);
      this.cache.putConv(k, { ...choice, tuned }, plan);
    }
  }

  /** Checks the new constants of `network` fit the built engine; returns the upload that swaps them in. */
  prepareRefit(network: Network, segment: number): () => void {
    if (!this.built)
      throw new TorchcError(`refit: engine segment ${segment} was not built`, "refit.unsupported");
    const { conv, matmul } = this.answers;
    const tf32 = this.built.options.tf32 === true;
    const { apply, plan } = prepareEngineRefit(
      this.built,
      network,
      {
        conv: (k) => conv.get(k) === true,
        matmul: (k) => matmul.get(k) === true,
        convKey,
        matmulKey: (g, e) => matmulKey(g, e, tf32, this.maxWorkspace),
      },
      segment,
      this.held,
    );
    return () => {
      apply();
      // The next refit compares against what the buffer holds now.
      this.held = plan;
    };
  }

  /** The record and blobs to save (plans as they are now: after tuning, the kept one). */
  record(): { record: EngineRecord; blobs: Record<string, Uint8Array> } {
    const convs: Record<string, SavedConv> = {};
    const blobs: Record<string, Uint8Array> = {};
    for (const [k, p] of this.convs) {
      const c = p.chosen;
      if (!c) continue;
      const { plan, ...rest } = describeConvCandidate(c);
      if (plan === undefined) convs[k] = rest;
      else {
        const planBlob = `cudnn/${hash(plan)}.json`;
        blobs[planBlob] = new TextEncoder().encode(plan);
        convs[k] = { ...rest, planBlob };
      }
    }
    const matmuls: Record<string, MatmulChoice> = {};
    for (const [k, p] of this.matmuls) matmuls[k] = { algo: b64(p.algo), workspaceBytes: p.workspaceBytes };
    const kernels: Record<string, KernelChoice> = {};
    for (const [id, k] of this.kernels?.used ?? []) {
      const blob = `kernels/${id}.${k.kind}`;
      blobs[blob] = k.image;
      kernels[id] = { blob, kind: k.kind, loweredNames: k.loweredNames };
    }
    return {
      record: {
        convs,
        matmuls,
        kernels,
        memory: this.memory ?? { arenaBytes: 0, offsets: {} },
        steps: this.steps,
      },
      blobs,
    };
  }

  /** Restored and compiled NVRTC programs. */
  get kernelStats(): { restored: number; used: number } {
    return { restored: this.kernels?.restored ?? 0, used: this.kernels?.used.size ?? 0 };
  }
}

/** The GPU and library versions engines built now are for. */
export function currentTarget(device: number): BuildTarget {
  const info = CudaContext.get(device).info;
  const [major, minor] = nvrtcVersion();
  return {
    backend: "cuda",
    arch: `sm_${info.computeCapability[0]}${info.computeCapability[1]}`,
    device: info.name,
    driver: info.driverVersion,
    cuda: `${major}.${minor}`,
    cudnn: Cudnn.version(),
    cublasLt: BlasLt.version(),
  };
}

/** The persistent plan cache of this GPU's architecture and these libraries. */
export function devicePlanCache(
  device: number,
  env: Readonly<Record<string, string | undefined>> = process.env,
): PlanCache {
  const info = CudaContext.get(device).info;
  return PlanCache.forTarget(
    {
      arch: `sm_${info.computeCapability[0]}${info.computeCapability[1]}`,
      cudnn: Cudnn.version(),
      cublasLt: BlasLt.version(),
    },
    env,
  );
}

/** One module's engine choices: hands each engine build its saved record, and gathers them all for a save. */
export class ArtifactRecorder {
  private readonly engines = new Map<number, EngineChoices>();
  private readonly saved: LoadedArtifacts | undefined;

  private cache: PlanCache | undefined;

  constructor(
    loaded: LoadedArtifacts | undefined,
    private readonly device: number,
    accept: (saved: LoadedArtifacts, current: BuildTarget) => boolean,
    private readonly opts: { readonly tune?: boolean } = {},
  ) {
    this.saved = loaded && accept(loaded, currentTarget(device)) ? loaded : undefined;
  }

  /** The persistent plan cache of this GPU and these libraries (opened at the first engine). */
  private planCache(): PlanCache {
    this.cache ??= devicePlanCache(this.device);
    return this.cache;
  }

  /** Whether saved engines are being reused. */
  get restoring(): boolean {
    return this.saved !== undefined;
  }

  forSegment(index: number): EngineChoices {
    const record = this.saved?.engines[String(index)] as EngineRecord | undefined;
    if (this.saved && !record)
      throw new TorchcError(
        `${this.saved.origin}: the package has no saved engine for segment ${index} (saved by a different partition?)`,
        "package.mismatch",
      );
    const c = new EngineChoices(record, this.saved?.blobs, this.planCache(), this.opts.tune === true);
    this.engines.set(index, c);
    return c;
  }

  choicesOf(index: number): EngineChoices | undefined {
    return this.engines.get(index);
  }

  save(): SavedArtifacts {
    const engines: Record<string, EngineRecord> = {};
    const blobs: Record<string, Uint8Array> = {};
    for (const [i, c] of this.engines) {
      const r = c.record();
      engines[String(i)] = r.record;
      Object.assign(blobs, r.blobs);
    }
    return { builtFor: currentTarget(this.device), engines, blobs };
  }
}
