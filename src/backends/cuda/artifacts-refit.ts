/**
 * Refit of one built CUDA engine: the new network (same structure, new constants) is planned again on the host
 * with every library question answered as the build answered it, the schedule, generated code and memory plan are
 * checked to be the build's, and each constant (and conv channel operand) whose value differs from the one the
 * buffer holds is converted to the storage dtype and layout the engine uses and copied over the old one at the same
 * offset of the same weight buffer (unchanged ones are neither converted nor copied). Library plans
 * and captured CUDA graphs point at that buffer, so nothing else changes. Everything is checked before the first
 * byte is copied: a refused refit leaves the engine as it was.
 */
import { TorchcError } from "../../errors.js";
import { DTYPE_BYTES } from "../../ir/dtype.js";
import { numel, type Tensor, tensorBytes, tensorFromNumbers } from "../../ir/tensor.js";
import type { Network } from "../../network/network.js";
import { constantBytes } from "./builder.js";
import { upload } from "./device/memory.js";
import type { ConvStep } from "./fuse/steps.js";
import { type CudnnConvPlan, cudnnConvSpec } from "./kernels/conv-cudnn.js";
import { matmulGeometry } from "./kernels/matmul-cublaslt.js";
import type { Precision } from "./plan/tensors.js";
import { type EnginePlan, planCudaEngine } from "./plan.js";
import { quantKernelsEnabled } from "./quant-select.js";

/** What a build leaves for a later refit. */
export interface BuiltEngine {
  readonly plan: EnginePlan;
  readonly weights: {
    readonly buffer: { readonly ptr: bigint };
    readonly bytes: number;
    readonly constOffsets: ReadonlyMap<string, number>;
    readonly channelOffsets: ReadonlyMap<ConvStep, readonly number[]>;
  };
  readonly convs: ReadonlyMap<ConvStep, CudnnConvPlan>;
  readonly options: {
    readonly precision: Precision;
    readonly channelsLast?: boolean;
    readonly tf32?: boolean;
    readonly keepFloat32?: boolean;
  };
}

/** The build's answers to the scheduler, by problem key (see artifacts.ts). */
export interface LibraryAnswers {
  conv(key: string): boolean;
  matmul(key: string): boolean;
  convKey(spec: Exclude<ReturnType<typeof cudnnConvSpec>, string>): string;
  matmulKey(
    g: Exclude<ReturnType<typeof matmulGeometry>, string>,
    epilogue: { bias: boolean; activation: "none" | "relu" | "gelu" },
  ): string;
}

function refused(segment: number, detail: string): never {
  throw new TorchcError(
    `refit: engine segment ${segment}: ${detail}; compile the new model instead`,
    "refit.mismatch",
  );
}

/** Checks `network` against the built engine; returns the copy that swaps its constants in. */
export function prepareEngineRefit(
  built: BuiltEngine,
  network: Network,
  answers: LibraryAnswers,
  segment: number,
  /** The plan whose constants the weight buffer holds now (the last refit's; the build's at first). */
  current: EnginePlan = built.plan,
): { apply: () => void; plan: EnginePlan } {
  const old = built.plan;
  if (old.steps.some((s) => s.kind === "conv" && s.int8))
    refused(
      segment,
      "it runs int8 convolutions (TORCHC_QUANT_KERNELS=1), whose int8 weights refit does not rewrite",
    );
  const tf32 = built.options.tf32 === true;
  const plan = planCudaEngine(network, {
    precision: built.options.precision,
    channelsLast: built.options.channelsLast ?? (built.options.precision === "fp16" || quantKernelsEnabled()),
    // An fp16 engine with float32 islands (fp16Overflow: keep-fp32) re-plans with them, or its storage differs.
    keepFloat32: built.options.keepFloat32,
    convSupported(step, info) {
      const spec = cudnnConvSpec(step, info, tf32);
      return typeof spec !== "string" && answers.conv(answers.convKey(spec));
    },
    matmulSupported(step, info) {
      const g = matmulGeometry(step, info);
      const epilogue = { bias: step.bias !== undefined, activation: step.activation };
      return typeof g !== "string" && answers.matmul(answers.matmulKey(g, epilogue));
    },
  });
  const kinds = (p: EnginePlan) => p.steps.map((s) => s.kind).join(",");
  if (kinds(plan) !== kinds(old)) refused(segment, "its schedule differs after folding the new constants");
  if (plan.program.source !== old.program.source)
    refused(segment, "its generated kernels differ (a scalar constant folded into kernel code changed)");
  if (plan.memory.arenaBytes !== old.memory.arenaBytes) refused(segment, "its memory plan differs");
  const constants = (p: EnginePlan) => p.network.layers.filter((l) => l.type === "constant");
  const [was, now, holds] = [constants(old), constants(plan), constants(current)];
  if (was.length !== now.length)
    refused(
      segment,
      `it folds to ${now.length} constants, the built engine to ${was.length} (identical weights were merged in one of them)`,
    );
  const copies: { offset: number; bytes: Uint8Array }[] = [];
  for (const [i, l] of now.entries()) {
    const w = was[i];
    if (l.type !== "constant" || w.type !== "constant") continue;
    const offset = built.weights.constOffsets.get(w.output);
    if (offset === undefined) continue;
    const [infoWas, infoNow] = [old.infos.get(w.output)!, plan.infos.get(l.output)!];
    const expected = numel(infoWas.shape) * DTYPE_BYTES[infoWas.storage];
    // Folding makes new constants (batch norm into conv weights): they live in the folded network.
    const held = holds[i];
    const tensorWas = held?.type === "constant" ? current.network.constants[held.weight] : undefined;
    const tensorNow = plan.network.constants[l.weight];
    const same = infoNow.storage === infoWas.storage && infoNow.layout.join() === infoWas.layout.join();
    // Only what changed is converted and copied: a refit costs what its new bytes cost.
    if (same && tensorWas !== undefined && sameTensor(tensorWas, tensorNow)) continue;
    const bytes = constantBytes(tensorNow, infoNow);
    if (!same || bytes.byteLength !== expected)
      refused(
        segment,
        `constant '${l.output}' is stored as ${infoNow.storage} (${bytes.byteLength} bytes), the built one as ${infoWas.storage} (${expected} bytes)`,
      );
    copies.push({ offset, bytes });
  }
  copies.push(...channelCopies(built, plan, current, segment));
  const target = { ptr: built.weights.buffer.ptr, bytes: built.weights.bytes, alive: true };
  return {
    apply: () => {
      for (const c of copies) if (c.bytes.byteLength > 0) upload(target, c.bytes, c.offset);
    },
    plan,
  };
}

/** The conv channel operands (per-channel epilogue vectors) whose values differ from those the buffer holds. */
function channelCopies(
  built: BuiltEngine,
  plan: EnginePlan,
  current: EnginePlan,
  segment: number,
): { offset: number; bytes: Uint8Array }[] {
  const old = built.plan;
  const copies: { offset: number; bytes: Uint8Array }[] = [];
  for (const [i, s] of plan.steps.entries()) {
    const o = old.steps[i];
    // Convs that run as generated kernels carry their constants in the (already compared) kernel code.
    if (s.kind !== "conv" || o.kind !== "conv" || !built.convs.has(o)) continue;
    const offsets = built.weights.channelOffsets.get(o) ?? [];
    const dtype = built.convs.get(o)?.spec.dtype;
    const channels = s.epilogue.filter((op) => op.kind === "channel");
    if (channels.length !== offsets.length || (channels.length > 0 && dtype === undefined))
      refused(
        segment,
        `conv step ${i} has ${channels.length} channel operands, the built one ${offsets.length}`,
      );
    const h = current.steps[i];
    const channelsWas = h?.kind === "conv" ? h.epilogue.filter((op) => op.kind === "channel") : [];
    for (const [j, op] of channels.entries())
      if (op.kind === "channel" && !sameValues(op.values, channelsWas[j]))
        copies.push({
          offset: offsets[j],
          bytes: tensorBytes(tensorFromNumbers(dtype!, [op.values.length], op.values)),
        });
  }
  return copies;
}

/** Whether two constants hold the same dtype, shape and bytes (memcmp). */
export function sameTensor(a: Tensor, b: Tensor): boolean {
  if (a === b) return true;
  if (a.dtype !== b.dtype || a.shape.join() !== b.shape.join()) return false;
  const [x, y] = [tensorBytes(a), tensorBytes(b)];
  return Buffer.from(x.buffer, x.byteOffset, x.byteLength).equals(
    Buffer.from(y.buffer, y.byteOffset, y.byteLength),
  );
}

/** Whether a channel operand's values are those of the built step's operand. */
function sameValues(values: Float64Array, was: ConvStep["epilogue"][number] | undefined): boolean {
  if (was?.kind !== "channel" || was.values.length !== values.length) return false;
  for (let i = 0; i < values.length; i++) if (!Object.is(was.values[i], values[i])) return false;
  return true;
}
