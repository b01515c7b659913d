import { tensorFromNumbers } from "../../ir/tensor.js";
import { broadcastTo, cast, fill, reshape } from "../impl/tensors.js";
import { type AnyCandidate, type ConverterSpec, converter, refuse, SUPPORTED } from "../types.js";

interface Dropout {
  readonly input: string;
  readonly p: number;
  readonly train: boolean;
}

/** Dropout in eval mode is the identity; native_dropout also returns an all-true mask. */
function dropout(withMask: boolean): ConverterSpec<Dropout> {
  return {
    name: "identity",
    supports: (_node, a) =>
      a.train && a.p !== 0
        ? refuse(`dropout with train=True and p=${a.p} is random; export the model in eval mode`)
        : SUPPORTED,
    convert: (node, a, net) => {
      const x = net.input(a.input);
      if (!withMask) return [x];
      const m = net.typeOf(node.outputs[1]);
      return [x, net.isUsed(node.outputs[1]) ? fill(net.net, "bool", m.shape, 1) : null];
    },
  };
}

/** A check on static metadata: the graph's types already decide it, so nothing runs. */
const assertMetadata: ConverterSpec<{
  readonly a: string;
  readonly size: readonly number[] | null;
  readonly dtype: string | null;
}> = {
  name: "static-check",
  supports: (_node, a, ctx) => {
    const t = ctx.typeOf(a.a);
    if (a.dtype !== null && a.dtype !== t.dtype)
      return refuse(`tensor is ${t.dtype}, the assertion expects ${a.dtype}`);
    if (a.size !== null && a.size.join() !== t.shape.join())
      return refuse(`tensor is [${t.shape}], the assertion expects [${a.size}]`);
    return SUPPORTED;
  },
  convert: () => [],
};

/** tril/triu: a select against a constant triangle mask, so infinities outside the triangle become 0. */
function triangle(lower: boolean): ConverterSpec<{ readonly self: string; readonly diagonal: number }> {
  return {
    name: lower ? "tril" : "triu",
    supports: (_node, a, ctx) =>
      ctx.typeOf(a.self).shape.length >= 2 ? SUPPORTED : refuse("needs at least 2 dims"),
    convert: (_node, a, net) => {
      const t = net.typeOf(a.self);
      const [r, c] = t.shape.slice(-2);
      const keep = Array.from({ length: r * c }, (_, i) => {
        const d = (i % c) - Math.floor(i / c);
        return Number(lower ? d <= a.diagonal : d >= a.diagonal);
      });
      const mask = net.net.constant(tensorFromNumbers("bool", [r, c], keep));
      const zero = fill(net.net, t.dtype, [], 0);
      return [
        net.net.add({ type: "select", inputs: [mask, net.input(a.self), zero] }, lower ? "tril" : "triu"),
      ];
    },
  };
}

/** fill / zero: a constant of the input's type (a number), or the 0-d value broadcast to it. */
const fillLike: ConverterSpec<{ readonly self: string; readonly value: number | string | null }> = {
  name: "fill",
  supports: () => SUPPORTED,
  convert: (_node, a, net) => {
    const t = net.typeOf(a.self);
    if (typeof a.value !== "string") return [fill(net.net, t.dtype, t.shape, a.value ?? 0)];
    return [
      broadcastTo(
        net.net,
        reshape(
          net.net,
          cast(net.net, net.input(a.value), t.dtype),
          t.shape.map(() => 1),
        ),
        t.shape,
      ),
    ];
  },
};

export const MISC_CONVERTERS: readonly AnyCandidate[] = [
  converter("aten.fill.Scalar", fillLike),
  converter("aten.fill.Tensor", fillLike),
  converter("aten.zero.default", fillLike),
  converter("aten.dropout.default", dropout(false)),
  converter("aten.feature_dropout.default", dropout(false)),
  converter("aten.alpha_dropout.default", dropout(false)),
  converter("aten.feature_alpha_dropout.default", dropout(false)),
  converter("aten.native_dropout.default", dropout(true)),
  converter("aten._assert_tensor_metadata.default", assertMetadata),
  converter("aten.tril.default", triangle(true)),
  converter("aten.triu.default", triangle(false)),
];
