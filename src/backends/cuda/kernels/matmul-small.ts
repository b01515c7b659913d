/**
 * An engine matmul step run by the generated small-M tensor-core GEMM (codegen/gemm-small.ts) in place of its
 * cuBLASLt plan, once timing chose it (../small-gemm-select.ts): the same bind/execute/destroy surface as
 * LtMatmul, so the builder's launcher runs either. Unlike cuBLASLt's kernels it rides programmatic dependent
 * launch, so its launch overlaps the kernel before it.
 *
 * The kernel reads X and W with 16-byte cp.async and needs 16-byte aligned operands: engine tensors are 256-byte
 * aligned and bound I/O is checked to be (as cuBLASLt's plans assume too), so bind() only asserts it. The step's
 * cuBLASLt plan is kept for what a saved package records.
 */
import type { GeneratedKernel } from "../codegen/element.js";
import type { SmallGemmConfig, SmallGemmProblem } from "../codegen/gemm-small.js";
import { smallGemmWorkspaceBytes } from "../codegen/gemm-small.js";
import { CudaContext } from "../device/context.js";
import { KernelArgs, launch } from "../device/launch.js";
import { DeviceBuffer } from "../device/memory.js";
import type { CudaModule, Kernel } from "../device/module.js";
import type { Stream } from "../device/stream.js";
import type { LtMatmul } from "./matmul-cublaslt.js";

/** One loaded module of small-GEMM kernels shared by a build's steps; unloaded with the last of them. */
export class SharedSmallGemmModule {
  private refs = 0;

  constructor(readonly module: CudaModule) {}

  acquire(): this {
    this.refs++;
    return this;
  }

  release(): void {
    if (--this.refs <= 0) this.module.unload();
  }
}

/** A chosen kernel: its generated source record (params, grid, block), the loaded symbol and the configuration. */
export interface SmallGemmKernel {
  readonly generated: GeneratedKernel;
  readonly kernel: Kernel;
  readonly problem: SmallGemmProblem;
  readonly config: SmallGemmConfig;
}

const ALIGN = 16n;

export class SmallGemmMatmul {
  readonly hasBias: boolean;
  private readonly args: KernelArgs;
  /** Split-K counters and partials: one zeroed buffer per engine instance, keyed by its library workspace. */
  private readonly splitWorkspaces = new Map<bigint, DeviceBuffer>();
  private bound = false;
  private destroyed = false;
  private readonly module: SharedSmallGemmModule;

  constructor(
    readonly chosen: SmallGemmKernel,
    shared: SharedSmallGemmModule,
    /** The step's cuBLASLt plan: what a saved package records. */
    readonly fallback: LtMatmul,
  ) {
    this.hasBias = chosen.problem.bias;
    this.module = shared.acquire();
    this.args = new KernelArgs(chosen.generated.params.map(() => "ptr" as const));
  }

  get workspaceBytes(): number {
    return this.fallback.workspaceBytes;
  }

  get algo(): Uint8Array {
    return this.fallback.algo;
  }

  /** Bytes of split-K workspace each engine instance gets (0 without split-K). */
  get splitWorkspaceBytes(): number {
    return smallGemmWorkspaceBytes(this.chosen.problem, this.chosen.config);
  }

  bind(
    a: bigint,
    b: bigint,
    d: bigint,
    bias: bigint | undefined,
    workspace: bigint,
    residual?: bigint,
  ): void {
    if (this.destroyed) throw new Error("small GEMM bound after destroy()");
    if (this.chosen.problem.residual !== (residual !== undefined))
      throw new Error("small GEMM bound with a residual its kernel was not made for (or without one)");
    const operands = [
      a,
      b,
      d,
      ...(this.hasBias ? [bias ?? 0n] : []),
      ...(residual === undefined ? [] : [residual]),
    ];
    if (operands.some((p) => p === 0n || p % ALIGN !== 0n))
      throw new Error(
        "small GEMM operands must be non-null and 16-byte aligned (engine tensors are 256-byte aligned)",
      );
    this.bound = true;
    const values: Record<string, bigint> = {
      x: a,
      w: b,
      y: d,
      ...(this.hasBias ? { bias: bias! } : {}),
      ...(residual === undefined ? {} : { residual }),
    };
    const split = this.splitWorkspaceBytes;
    if (split > 0) values.workspace = this.splitWorkspace(workspace, split).ptr;
    this.chosen.generated.params.forEach((p, j) => {
      const v = values[p.tensor];
      if (v === undefined) throw new Error(`small GEMM parameter '${p.tensor}' has no operand`);
      this.args.set(j, v);
    });
  }

  execute(stream: Stream): void {
    if (!this.bound) throw new Error("matmul executed before bind()");
    const k = this.chosen.generated;
    launch(
      this.chosen.kernel,
      { grid: k.grid, block: k.block, sharedBytes: k.sharedBytes, stream },
      this.args,
    );
  }

  /**
   * The instance's zeroed split-K buffer, made at its first bind (before any capture: the launcher binds every
   * library step when it prepares an instance). The memset is synchronous on the legacy stream, which the
   * engine's non-blocking streams do not wait for: the context is synchronized before the buffer is used.
   */
  private splitWorkspace(key: bigint, bytes: number): DeviceBuffer {
    let buf = this.splitWorkspaces.get(key);
    if (!buf) {
      buf = DeviceBuffer.alloc(bytes).fill(0);
      CudaContext.current().synchronize();
      this.splitWorkspaces.set(key, buf);
    }
    return buf;
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    try {
      for (const b of this.splitWorkspaces.values()) b.free();
      this.splitWorkspaces.clear();
      this.args.free();
      this.fallback.destroy();
    } finally {
      this.module.release();
    }
  }
}
