import type { NetworkBuilder } from "../../network/builder.js";
import { broadcastTo, cast, reshape } from "../impl/tensors.js";
import { type AnyCandidate, allOf, type ConverterSpec, converter, refuse, SUPPORTED } from "../types.js";
import { needsFloat } from "./common.js";

interface Sdpa {
  readonly query: string;
  readonly key: string;
  readonly value: string;
  readonly attnMask: string | null;
  readonly dropoutP: number;
  readonly isCausal: boolean;
  readonly scale: number | null;
  readonly enableGqa: boolean;
}

/** repeat_interleave of the head axis (−3): each key/value head serves `group` query heads. */
function repeatHeads(net: NetworkBuilder, x: string, group: number): string {
  if (group === 1) return x;
  const s = net.typeOf(x).shape;
  const lead = s.slice(0, -3);
  const [h, n, e] = s.slice(-3);
  const v = reshape(net, x, [...lead, h, 1, n, e]);
  return reshape(net, broadcastTo(net, v, [...lead, h, group, n, e]), [...lead, h * group, n, e]);
}

/** One attention layer, so a backend can run a fused kernel; grouped-query heads are expanded in front. */
function sdpa(withLse: boolean): ConverterSpec<Sdpa> {
  return {
    name: "attention",
    supports: (node, a, ctx) =>
      allOf(
        () => needsFloat(ctx.typeOf(a.query).dtype, "query"),
        () =>
          a.dropoutP === 0
            ? SUPPORTED
            : refuse(`dropout_p ${a.dropoutP} is random; only inference (0.0) is converted`),
        () =>
          !withLse || !ctx.isUsed(node.outputs[1])
            ? SUPPORTED
            : refuse("the logsumexp output is used; the attention layer does not produce it"),
      ),
    convert: (_node, a, net) => {
      const q = net.typeOf(a.query).shape;
      const k = net.typeOf(a.key).shape;
      const group = a.enableGqa && q.length >= 3 ? q[q.length - 3] / k[k.length - 3] : 1;
      const dtype = net.typeOf(a.query).dtype;
      const inputs: [string, string, string] = [
        net.input(a.query),
        repeatHeads(net.net, net.input(a.key), group),
        repeatHeads(net.net, net.input(a.value), group),
      ];
      const scale = a.scale ?? 1 / Math.sqrt(q[q.length - 1]);
      let y: string;
      if (a.attnMask !== null) {
        const m = net.input(a.attnMask);
        const mask = net.typeOf(a.attnMask).dtype === "bool" ? m : cast(net.net, m, dtype);
        y = net.net.add({ type: "attention", inputs: [...inputs, mask], scale, causal: a.isCausal });
      } else {
        y = net.net.add({ type: "attention", inputs, scale, causal: a.isCausal });
      }
      return withLse ? [y, null] : [y];
    },
  };
}

export const ATTENTION_CONVERTERS: readonly AnyCandidate[] = [
  converter("aten.scaled_dot_product_attention.default", sdpa(false)),
  converter("aten._scaled_dot_product_flash_attention_for_cpu.default", sdpa(true)),
];
