/**
 * Attention's query, key and value as strided views of the projection that makes them. A transformer block
 * computes one qkv linear, reshapes it to [B, tokens, 3, heads, dim], permutes it to [3, B, heads, tokens, dim]
 * and takes q, k and v as slices along the first axis. Those slices are not whole-memory permutations, so they
 * used to be copied by an element kernel per block (DeiT: 12 of 114 kernels). Both attention kernels address
 * their operands through element strides (codegen/emitter.ts offset, codegen/flash-attention.ts rowColStrides),
 * so here each slice, and the reshape that drops its unit axis, becomes a view with explicit strides and an
 * element offset into the projection's memory, and the attention kernel reads the projection in place.
 *
 * Only where every reader is an attention kernel's q/k/v operand (the other kernels and libraries address
 * tensors through their layout alone), the head dimension stays contiguous, and every other stride and the
 * offset are multiples of 8 elements (16 bytes of fp16: the flash kernel's cp.async loads).
 * TORCHC_STRIDED_QKV=0 keeps the copies (for A/B timing).
 */
import type { Layer, ShuffleLayer, SliceLayer } from "../../../network/layers/index.js";
import type { Network } from "../../../network/network.js";
import { identityLayout, layoutStrides } from "./layout.js";
import type { TensorInfo } from "./tensors.js";

/** Alignment of every non-unit stride and of the offset, in elements. */
const ALIGN = 8;

export function assignStridedAttentionOperands(net: Network, infos: Map<string, TensorInfo>): void {
  if (process.env.TORCHC_STRIDED_QKV === "0") return;
  const producer = new Map(net.layers.map((l) => [l.output, l] as const));
  const readers = new Map<string, { layer: Layer; slot: number }[]>();
  for (const l of net.layers) {
    for (const [slot, t] of l.inputs.entries()) readers.set(t, [...(readers.get(t) ?? []), { layer: l, slot }]);
  }
  const outputs = new Set(net.outputs);
  const onlyOperand = (t: string) =>
    !outputs.has(t) && (readers.get(t) ?? []).every((r) => r.layer.type === "attention" && r.slot < 3);
  const onlyReadBy = (t: string, layer: Layer) =>
    !outputs.has(t) && (readers.get(t) ?? []).every((r) => r.layer === layer);
  const done = new Set<string>();
  for (const l of net.layers) {
    if (l.type !== "attention") continue;
    for (const t of l.inputs.slice(0, 3)) {
      if (done.has(t) || !onlyOperand(t)) continue;
      const p = producer.get(t);
      const squeeze = p?.type === "shuffle" && isSqueeze(p, infos) ? p : undefined;
      const slice = squeeze ? producer.get(squeeze.inputs[0]) : p;
      if (slice?.type !== "slice" || (squeeze && !onlyReadBy(slice.output, squeeze))) continue;
      if (sliceView(slice, squeeze, infos)) done.add(t);
    }
  }
}

/** A reshape that only drops or inserts unit axes. */
function isSqueeze(l: ShuffleLayer, infos: ReadonlyMap<string, TensorInfo>): boolean {
  if (l.firstTranspose || l.secondTranspose || !l.reshape) return false;
  const from = infos.get(l.inputs[0])!.shape.filter((d) => d !== 1);
  const to = l.reshape.filter((d) => d !== 1);
  return from.length === to.length && from.every((d, i) => d === to[i]);
}

/** Makes the slice (and its squeeze) strided views when the result is addressable; returns whether it did. */
function sliceView(
  slice: SliceLayer,
  squeeze: ShuffleLayer | undefined,
  infos: Map<string, TensorInfo>,
): boolean {
  const src = infos.get(slice.inputs[0])!;
  const out = infos.get(slice.output)!;
  if (src.strides || src.role !== "activation" || out.role !== "activation" || src.storage !== out.storage)
    return false;
  if (slice.steps.some((s) => s <= 0)) return false;
  // A view's layout maps its axes onto its root's memory from the root's start.
  const base = layoutStrides(src.shape, src.layout);
  const strides = base.map((s, a) => s * slice.steps[a]);
  const offset = slice.starts.reduce((o, s, a) => o + s * base[a], 0);
  const operand = squeeze ? infos.get(squeeze.output)! : out;
  const operandStrides = squeeze ? unitAxesMapped(out.shape, strides, operand.shape) : strides;
  const rank = operand.shape.length;
  const aligned = operandStrides.every((s, a) => a === rank - 1 || operand.shape[a] === 1 || s % ALIGN === 0);
  if (operandStrides[rank - 1] !== 1 || !aligned || offset % ALIGN !== 0) return false;
  Object.assign(out, { viewOf: slice.inputs[0], strides, offset, layout: identityLayout(out.shape.length) });
  if (squeeze) {
    Object.assign(operand, {
      viewOf: slice.output,
      strides: operandStrides,
      offset,
      layout: identityLayout(rank),
    });
  }
  return true;
}

/** The strides of `shape`'s non-unit axes carried over to `to` (same non-unit axes, other unit axes). */
function unitAxesMapped(
  shape: readonly number[],
  strides: readonly number[],
  to: readonly number[],
): number[] {
  const kept = shape.flatMap((d, a) => (d === 1 ? [] : [strides[a]]));
  let i = 0;
  return to.map((d) => (d === 1 ? 0 : kept[i++]));
}
