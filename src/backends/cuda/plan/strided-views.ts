/**
 * Attention's query, key and value as strided views of the projection that makes them. A transformer block
 * computes one qkv linear, reshapes it to [B, tokens, 3, heads, dim], permutes it to [3, B, heads, tokens, dim]
 * and takes q, k and v as slices along the first axis (timm); nn.MultiheadAttention slices a sequence-first
 * [3, tokens, B, E] and reshapes and transposes each slice through [tokens, B·heads, dim] to [B, heads, tokens,
 * dim]. Those slices are not whole-memory permutations, so they used to be copied by an element kernel per block
 * (DeiT: 12 of 114 kernels). Both attention kernels address their operands through element strides
 * (codegen/emitter.ts offset, codegen/flash-attention.ts rowColStrides), so here each slice and the reshapes and
 * transposes from it to attention become views with explicit strides and an element offset into the
 * projection's memory, and the attention kernel reads the projection in place. Strides are followed through the
 * chain as factors (size, stride) per axis, so an intermediate reshape may merge axes no single stride describes
 * (nn.MultiheadAttention's batch·heads) as long as the operand attention reads splits them again; such an
 * intermediate is marked `unaddressable` (only views read it, no kernel).
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
    for (const [slot, t] of l.inputs.entries())
      readers.set(t, [...(readers.get(t) ?? []), { layer: l, slot }]);
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
      // Back from the operand through shuffles, each read only by the next, to the slice.
      const chain: ShuffleLayer[] = [];
      let p = producer.get(t);
      while (p?.type === "shuffle" && chain.length < MAX_CHAIN) {
        chain.unshift(p);
        const up = producer.get(p.inputs[0]);
        if (!onlyReadBy(p.inputs[0], p)) break;
        p = up;
      }
      if (p?.type !== "slice" || (chain.length > 0 && chain[0].inputs[0] !== p.output)) continue;
      if (chain.length > 0 && !onlyReadBy(p.output, chain[0])) continue;
      if (sliceView(p, chain, infos)) done.add(t);
    }
  }
}

/** Longest run of reshapes and transposes followed from a slice to attention. */
const MAX_CHAIN = 6;

/** One factor of an axis: `size` elements `stride` apart. */
interface Factor {
  readonly size: number;
  readonly stride: number;
}
/** Per logical axis, its factors from outer to inner (none for a unit axis). */
type Axes = readonly (readonly Factor[])[];

/** A shuffle (transpose, reshape, transpose) applied to factored axes; undefined when a reshape cuts a factor unevenly. */
function shuffleAxes(l: ShuffleLayer, axes: Axes): Axes | undefined {
  let out: Axes | undefined = l.firstTranspose ? l.firstTranspose.map((a) => axes[a]) : axes;
  if (l.reshape) out = reshapeAxes(out, l.reshape);
  if (out && l.secondTranspose) {
    const t = out;
    out = l.secondTranspose.map((a) => t[a]);
  }
  return out;
}

function reshapeAxes(axes: Axes, to: readonly number[]): Axes | undefined {
  const stream = axes.flat().map((f) => ({ ...f }));
  const out: Factor[][] = [];
  let i = 0;
  for (const d of to) {
    const fs: Factor[] = [];
    let need = d;
    while (need > 1) {
      const f = stream[i];
      if (!f) return undefined;
      if (f.size <= need) {
        if (need % f.size !== 0) return undefined;
        fs.push(f);
        need /= f.size;
        i++;
      } else {
        // the outer `need` of this factor; its inner rest stays for the next axis
        if (f.size % need !== 0) return undefined;
        fs.push({ size: need, stride: f.stride * (f.size / need) });
        stream[i] = { size: f.size / need, stride: f.stride };
        need = 1;
      }
    }
    out.push(fs);
  }
  return i === stream.length ? out : undefined;
}

/** One stride per axis (0 for unit axes), or undefined where an axis' factors are not evenly spaced. */
function singleStrides(axes: Axes): number[] | undefined {
  const strides: number[] = [];
  for (const fs of axes) {
    let inner = fs.at(-1);
    for (let k = fs.length - 2; k >= 0 && inner; k--) {
      const outer = fs[k];
      inner =
        outer.stride === inner.stride * inner.size
          ? { size: outer.size * inner.size, stride: inner.stride }
          : undefined;
    }
    if (fs.length > 0 && !inner) return undefined;
    strides.push(inner?.stride ?? 0);
  }
  return strides;
}

/** Makes the slice and the chain after it strided views when the operand is addressable; returns whether it did. */
function sliceView(
  slice: SliceLayer,
  chain: readonly ShuffleLayer[],
  infos: Map<string, TensorInfo>,
): boolean {
  const src = infos.get(slice.inputs[0])!;
  const out = infos.get(slice.output)!;
  if (src.strides || src.unaddressable || src.role !== "activation" || out.role !== "activation")
    return false;
  if (src.storage !== out.storage || slice.steps.some((s) => s <= 0)) return false;
  // A view's layout maps its axes onto its root's memory from the root's start.
  const base = layoutStrides(src.shape, src.layout);
  const offset = slice.starts.reduce((o, s, a) => o + s * base[a], 0);
  let axes: Axes = out.shape.map((d, a) => (d === 1 ? [] : [{ size: d, stride: base[a] * slice.steps[a] }]));
  const made: { tensor: string; input: string; strides: number[] | undefined }[] = [
    { tensor: slice.output, input: slice.inputs[0], strides: singleStrides(axes) },
  ];
  for (const l of chain) {
    const next = shuffleAxes(l, axes);
    if (!next || infos.get(l.output)!.storage !== out.storage) return false;
    axes = next;
    made.push({ tensor: l.output, input: l.inputs[0], strides: singleStrides(axes) });
  }
  const operand = infos.get(made[made.length - 1].tensor)!;
  const strides = made[made.length - 1].strides;
  const rank = operand.shape.length;
  if (strides?.[rank - 1] !== 1 || offset % ALIGN !== 0) return false;
  if (!strides.every((st, a) => a === rank - 1 || operand.shape[a] === 1 || st % ALIGN === 0)) return false;
  for (const m of made) {
    const info = infos.get(m.tensor)!;
    Object.assign(info, {
      viewOf: m.input,
      strides: m.strides,
      offset,
      layout: identityLayout(info.shape.length),
      unaddressable: m.strides === undefined ? true : undefined,
    });
  }
  return true;
}
