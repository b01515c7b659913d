import type { PaddingMode } from "../../network/layers/padding.js";
import type { Support } from "../types.js";
import {
  type AnyCandidate,
  type ConversionNet,
  type ConverterSpec,
  converter,
  refuse,
  SUPPORTED,
} from "../types.js";

/** PyTorch's pad list runs from the last dim backwards, (lo, hi) per dim. */
function padLayer(
  net: ConversionNet,
  self: string,
  pad: readonly number[],
  mode: PaddingMode,
  value: number,
): string {
  const rank = net.typeOf(self).shape.length;
  const pre = new Array<number>(rank).fill(0);
  const post = new Array<number>(rank).fill(0);
  for (let i = 0; i < pad.length / 2; i++) {
    pre[rank - 1 - i] = pad[2 * i];
    post[rank - 1 - i] = pad[2 * i + 1];
  }
  return net.net.add({ type: "padding", inputs: [net.input(self)], pre, post, mode, value }, `pad_${mode}`);
}

function checkPad(pad: readonly number[], mode: PaddingMode): Support {
  if (mode !== "constant" && pad.some((p) => p < 0)) return refuse(`negative padding in ${mode} mode`);
  return SUPPORTED;
}

const constantPad: ConverterSpec<{
  readonly self: string;
  readonly pad: readonly number[];
  readonly value: number;
}> = {
  name: "padding",
  supports: () => SUPPORTED,
  convert: (_node, a, net) => [padLayer(net, a.self, a.pad, "constant", a.value)],
};

const pad: ConverterSpec<{
  readonly self: string;
  readonly pad: readonly number[];
  readonly mode: PaddingMode;
  readonly value: number;
}> = {
  name: "padding",
  supports: (_node, a) => checkPad(a.pad, a.mode),
  convert: (_node, a, net) => [padLayer(net, a.self, a.pad, a.mode, a.value)],
};

function fixed(
  mode: PaddingMode,
): ConverterSpec<{ readonly self: string; readonly padding: readonly number[] }> {
  return {
    name: "padding",
    supports: (_node, a) => checkPad(a.padding, mode),
    convert: (_node, a, net) => [padLayer(net, a.self, a.padding, mode, 0)],
  };
}

export const PADDING_CONVERTERS: readonly AnyCandidate[] = [
  converter("aten.constant_pad_nd.default", constantPad),
  converter("aten.pad.default", pad),
  converter("aten.reflection_pad1d.default", fixed("reflect")),
  converter("aten.reflection_pad2d.default", fixed("reflect")),
  converter("aten.reflection_pad3d.default", fixed("reflect")),
  converter("aten.replication_pad1d.default", fixed("replicate")),
  converter("aten.replication_pad2d.default", fixed("replicate")),
  converter("aten.replication_pad3d.default", fixed("replicate")),
];
