/**
 * Where an int8 convolution on the generated implicit GEMM can also write the next layer's int8 input (issue 14).
 * A ResNet block's last convolution writes the block output in fp16 (the next block's shortcut reads it) and a
 * quantize kernel then reads it back to write the int8 copy the next block's convolutions read: at batch 128 that
 * pass reads 205 MB and writes 103 MB at 56×56×256, about 0.7 ms over ResNet-50's 16 blocks. The generated kernel
 * can write that copy from its epilogue (IgemmConvProblem.quantizedCopy) and the quantize step then has nothing
 * left to do.
 *
 * The copy is written one or more steps before the quantize step would have, so its bytes must be free then: the
 * memory plan gave them to q from the quantize step on, and a tensor alive between the two steps may share them.
 * The step is taken only when no such tensor overlaps q.
 */
import type { LayerOf } from "../../network/layers/index.js";
import type { ConvStep, Step } from "./fuse/steps.js";
import { alignUp, tensorBytes } from "./plan/memory.js";
import { storageRoot } from "./plan/tensors.js";
import type { EnginePlan } from "./plan.js";

export interface QuantizeCopy {
  /** The element step that quantized the convolution's output: skipped when the copy is written. */
  readonly step: Step;
  readonly layer: LayerOf<"quantize">;
  /** The int8 tensor the convolution writes beside its output. */
  readonly q: string;
}

/** TORCHC_INT8_IGEMM_COPY=0 turns the copy off (on with the generated kernel otherwise). */
export function quantizeCopiesEnabled(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.TORCHC_INT8_IGEMM_COPY !== "0";
}

/**
 * The quantize step the convolution at `at` can take over, or why not: an element step whose whole work is one
 * per-tensor int8 quantize (zero point 0, [-128, 127]) of the convolution's float output, into a plain int8
 * activation of the same shape and layout, whose bytes no tensor alive in between uses.
 */
export function quantizeCopyAfter(plan: EnginePlan, at: number): QuantizeCopy | string {
  const conv = plan.steps[at] as ConvStep;
  const y = conv.output;
  const info = (t: string) => plan.infos.get(t)!;
  for (let j = at + 1; j < plan.steps.length; j++) {
    const s = plan.steps[j];
    if (s.kind !== "element" || !s.group.layers.some((l) => (l.inputs as readonly string[]).includes(y)))
      continue;
    const [l] = s.group.layers;
    if (s.group.layers.length !== 1 || l.type !== "quantize")
      return `'${y}' is read by an element kernel that is not a lone quantize`;
    if (s.group.channelSums || s.group.outputs.length !== 1) return "the quantize kernel writes more than q";
    if (l.axis !== null || l.dtype !== "int8" || l.zeroPoint[0] !== 0 || l.qmin !== -128 || l.qmax !== 127)
      return `quantize '${l.name}' is not per-tensor int8 [-128, 127] with zero point 0`;
    const [qi, yi] = [info(l.output), info(y)];
    const plain = (i: typeof qi) =>
      i.role === "activation" && i.viewOf === undefined && !i.strides && !i.offset;
    if (!plain(qi) || !plain(yi)) return "q or y is not a plain activation";
    if (qi.storage !== "int8" || qi.shape.join() !== yi.shape.join() || qi.layout.join() !== yi.layout.join())
      return `q is not y's shape and layout in int8`;
    const clash = earlyWriteClash(plan, l.output, at, j);
    if (clash) return `'${clash}' holds q's bytes between the convolution and the quantize`;
    return { step: s, layer: l, q: l.output };
  }
  return `no element step quantizes '${y}'`;
}

/** A tensor alive in steps [from, to) whose arena bytes overlap `q`'s, or undefined. */
function earlyWriteClash(plan: EnginePlan, q: string, from: number, to: number): string | undefined {
  const root = storageRoot(plan.infos, q);
  const off = plan.memory.offsets.get(root);
  if (off === undefined) return `${root} (not in the arena)`;
  const end = off + alignUp(tensorBytes(plan.infos.get(root)!));
  for (const l of plan.memory.lifetimes) {
    if (l.tensor === root || l.last < from || l.first >= to) continue;
    const o = plan.memory.offsets.get(l.tensor);
    if (o !== undefined && o < end && off < o + l.bytes) return l.tensor;
  }
  return undefined;
}
