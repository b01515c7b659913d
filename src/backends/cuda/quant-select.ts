/**
 * The build step of real int8 GEMMs (opt-in, TORCHC_QUANT_KERNELS=1, not yet run on a GPU in the engine):
 * after the schedule is made, each matmul step that is a quantized linear layer (quant-sites.ts) gets a
 * QuantizedLinear (int8 cuBLASLt IMMA, kernels/quantized-linear.ts) in place of its float cuBLASLt plan,
 * which is destroyed. It reads the step's input (the dequantized activation the fused element kernel writes;
 * requantizing it gives back the same integers) and writes the step's output; its weight, scales and bias are
 * its own buffers. Steps that cannot run int8 keep the simulated float GEMM, with the reason.
 * Not covered yet: saved packages rebuild the float plan, and refit does not update the int8 weights.
 */
import type { LtHandle } from "./device/blaslt-plan.js";
import type { Stream } from "./device/stream.js";
import { type DeviceMemory, deviceMemory } from "./device/validate.js";
import type { MatmulStep } from "./fuse/steps.js";
import type { MatmulGeometry } from "./kernels/matmul-cublaslt.js";
import { QuantizedLinear } from "./kernels/quantized-linear.js";
import type { EnginePlan } from "./plan.js";
import { quantizedMatmulSite } from "./quant-sites.js";

/** Whether the engine should try int8 GEMMs for quantized linear layers. */
export function quantKernelsEnabled(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.TORCHC_QUANT_KERNELS === "1";
}

const BYTES = { float16: 2, float32: 4 } as const;

/**
 * An engine matmul step run as a QuantizedLinear; the same bind/execute/destroy surface as LtMatmul. Each
 * stream (engine instance) gets its own layer, so concurrent instances never share the quantized-input and
 * int32 scratch buffers: the first at the build, the others at their first (eager, warm-up) execution.
 */
export class QuantizedEngineMatmul {
  /** The layer adds its own float32 bias: the engine's bias pointer is not read. */
  readonly hasBias = false;
  private ptrs: { a: bigint; d: bigint } | undefined;
  /** The bound input and output as device memory, made at the first execute() after bind(). */
  private operands: { x: DeviceMemory; y: DeviceMemory } | undefined;
  private spare: QuantizedLinear | undefined;
  private readonly byStream = new Map<Stream, QuantizedLinear>();

  constructor(
    private readonly handle: LtHandle,
    first: QuantizedLinear,
    readonly geometry: MatmulGeometry,
  ) {
    this.spare = first;
  }

  /** The layer built first (its variant and refusals are the ones every stream's layer gets). */
  get layer(): QuantizedLinear {
    return this.spare ?? [...this.byStream.values()][0];
  }

  get workspaceBytes(): number {
    return this.layer.plan.workspaceBytes;
  }

  get algo(): Uint8Array {
    return this.layer.plan.algo;
  }

  bind(a: bigint, _b: bigint, d: bigint, _bias: bigint | undefined, _workspace: bigint): void {
    this.ptrs = { a, d };
    this.operands = undefined;
  }

  execute(stream: Stream): void {
    const p = this.ptrs;
    if (!p) throw new Error("quantized matmul executed before bind()");
    const layer = this.layerFor(stream);
    // Every stream's layer has the same spec, so the bound operands are made once per bind(), not per run.
    if (!this.operands) {
      const s = layer.spec;
      const es = BYTES[s.dtype];
      this.operands = {
        x: deviceMemory(p.a, s.m * s.inFeatures * es),
        y: deviceMemory(p.d, s.m * s.outFeatures * es),
      };
    }
    layer.run(this.operands.x, this.operands.y, stream);
  }

  private layerFor(stream: Stream): QuantizedLinear {
    let layer = this.byStream.get(stream);
    if (layer) return layer;
    if (this.spare) {
      layer = this.spare;
      this.spare = undefined;
    } else {
      const built = QuantizedLinear.create(this.handle, this.layer.spec, null);
      if (!built.ok) throw new Error(`int8 GEMM for a second engine instance: ${built.reason}`);
      layer = built.layer;
    }
    this.byStream.set(stream, layer);
    return layer;
  }

  destroy(): void {
    this.spare?.destroy();
    for (const l of this.byStream.values()) l.destroy();
    this.byStream.clear();
  }
}

/** What each quantized candidate ran as. */
export interface QuantMatmulReport {
  readonly layer: string;
  readonly ran: "int8" | "simulated";
  /** The cuBLASLt variant (int8), or why the step stayed a float GEMM. */
  readonly detail: string;
}

/**
 * Replaces, in `matmuls`, every plan of a quantized linear step that runs as an int8 GEMM (the float plan is
 * destroyed), and reports each quantized step: int8 with its cuBLASLt variant, or simulated with the reason.
 */
export function chooseQuantizedMatmuls<M extends { destroy(): void }>(
  plan: EnginePlan,
  matmuls: Map<MatmulStep, M | QuantizedEngineMatmul>,
  handle: LtHandle,
  refuse: (what: string, reason: string) => void,
  log: (message: string) => void,
): QuantMatmulReport[] {
  const reports: QuantMatmulReport[] = [];
  for (const [step, dense] of matmuls) {
    // a fused residual (schedule.ts) is not part of the int8 GEMM; the scheduler fuses none into these steps
    if (step.residual) continue;
    const name = step.layer.name;
    const site = quantizedMatmulSite(step, plan);
    if (site.kind === "float") continue;
    if (site.kind === "refused") {
      reports.push({ layer: name, ran: "simulated", detail: site.reason });
      continue;
    }
    const spec = site.spec;
    // no workspace: the engine's is sized for the float plans and bound per call
    const built = QuantizedLinear.create(handle, spec, null);
    if (!built.ok) {
      reports.push({ layer: name, ran: "simulated", detail: built.reason });
      continue;
    }
    const g = { m: spec.m, n: spec.outFeatures, k: spec.inFeatures, aT: false, bT: true, batch: 1 };
    const geometry = { ...g, strideA: 0, strideB: 0, strideD: 0, dtype: spec.dtype };
    matmuls.set(step, new QuantizedEngineMatmul(handle, built.layer, geometry));
    dense.destroy();
    reports.push({ layer: name, ran: "int8", detail: built.layer.variant });
  }
  for (const r of reports) {
    log(`int8 GEMM: ${r.layer} → ${r.ran} (${r.detail})`);
    if (r.ran === "simulated")
      refuse(`int8 GEMM for matmul '${r.layer}' (kept simulated in float)`, r.detail);
  }
  return reports;
}
