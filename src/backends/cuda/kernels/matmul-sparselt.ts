/**
 * An engine matmul step run by cuSPARSELt: the same bind/execute/destroy surface as LtMatmul
 * (./matmul-cublaslt.ts), so the builder's launcher runs either. The plan owns the compressed weight and its
 * copy of the bias, so bind() takes only the input, output and workspace addresses.
 */
import {
  destroySparseLtPlan,
  misalignedOperand,
  operandAddresses,
  runSparseLtPlan,
  type SparseLtHandle,
  type SparseLtOperands,
  type SparseLtPlan,
} from "../device/sparselt-plan.js";
import type { Stream } from "../device/stream.js";

/** One cuSPARSELt handle shared by an engine's sparse plans; destroyed with the last of them. */
export class SharedSparseHandle {
  private refs = 0;

  constructor(readonly handle: SparseLtHandle) {}

  acquire(): SparseLtHandle {
    this.refs++;
    return this.handle;
  }

  release(): void {
    if (--this.refs <= 0) this.handle.destroy();
  }
}

export class SparseLtMatmul {
  /** The bound operands, checked for alignment once, at bind(). */
  private operands: SparseLtOperands | undefined;
  /** cuSPARSELt takes an array of streams; one cell, rewritten before each call (read during the call only). */
  private readonly streams = new BigUint64Array(1);
  private destroyed = false;
  private readonly handle: SparseLtHandle;

  constructor(
    private readonly shared: SharedSparseHandle,
    readonly plan: SparseLtPlan,
  ) {
    this.handle = shared.acquire();
  }

  get workspaceBytes(): number {
    return this.plan.workspaceBytes;
  }

  /**
   * `weight` and `bias` are the dense step's operands; the plan has its own compressed and bias copies. A
   * `residual` (a 1×1 convolution's, cuSPARSELt's C with β = 1) is given exactly when the plan adds one.
   */
  bind(
    x: bigint,
    _weight: bigint,
    y: bigint,
    _bias: bigint | undefined,
    workspace: bigint,
    residual?: bigint,
  ): void {
    const ws = this.plan.workspaceBytes > 0 ? workspace : 0n;
    const operands = { x, y, workspace: ws, ...(residual !== undefined ? { residual } : {}) };
    const why = misalignedOperand(operandAddresses(this.plan, operands));
    if (why) throw new Error(why);
    this.operands = operands;
  }

  execute(stream: Stream): void {
    const o = this.operands;
    if (!o) throw new Error("sparse matmul executed before bind()");
    this.streams[0] = stream.handle;
    runSparseLtPlan(this.handle, this.plan, o, this.streams, true);
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    destroySparseLtPlan(this.plan);
    this.shared.release();
  }
}
