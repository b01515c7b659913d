/**
 * Attention outputs stored tokens-major. A transformer block transposes attention's [B, heads, tokens, dim] result
 * to [B, tokens, heads, dim] and merges the heads for the output projection; stored as [B, tokens, heads, dim] in
 * the first place (layout [0, 2, 1, 3]), that transpose and the reshape after it are free views and the projection
 * reads the attention kernel's output in place: one element kernel less per block. Both attention kernels write
 * through the output's layout strides (codegen/attention.ts, codegen/flash-attention.ts). TORCHC_ATTENTION_LAYOUT=0
 * keeps outputs row-major (for A/B timing).
 */
import type { Network } from "../../../network/network.js";
import type { TensorInfo } from "./tensors.js";

export function assignAttentionOutputLayouts(net: Network, infos: Map<string, TensorInfo>): void {
  if (process.env.TORCHC_ATTENTION_LAYOUT === "0") return;
  const readers = new Map<string, number>();
  for (const l of net.layers) for (const t of new Set(l.inputs)) readers.set(t, (readers.get(t) ?? 0) + 1);
  for (const l of net.layers) {
    // Any transpose that keeps the feature axis innermost: [0, 2, 1, 3] (batch, tokens, heads: timm, HF) or
    // [2, 0, 1, 3] (tokens, batch, heads: nn.MultiheadAttention's sequence-first layout).
    const perm = l.type === "shuffle" ? l.firstTranspose : null;
    if (l.type !== "shuffle" || !perm || perm.length !== 4 || perm[3] !== 3) continue;
    if (l.reshape || l.secondTranspose) continue;
    const src = net.layers.find((p) => p.output === l.inputs[0]);
    const out = infos.get(l.inputs[0]);
    if (src?.type !== "attention" || !out || out.role !== "activation" || out.shape.length !== 4) continue;
    if (readers.get(src.output) !== 1) continue;
    out.layout = [...perm];
  }
}
