/**
 * cuDNN convolutions in PyTorch run on TF32 tensor cores by default (`torch.backends.cudnn.allow_tf32`), which
 * costs about three decimal digits of fp32 accuracy. The stable shim offers no way to flip that global, but
 * `aten::_convolution` takes `allow_tf32` as an argument, so with `allowTf32: false` (the default) every
 * convolution is called as `_convolution(…, benchmark=False, deterministic=False, cudnn_enabled=True,
 * allow_tf32=False)` — exactly what `aten::convolution` calls, with that one flag changed. (Matmuls already
 * default to full fp32 in PyTorch.)
 */
import type { Arg, Node } from "../../ir/graph.js";
import { getOp, withDefaults } from "../../ops/index.js";

const CONV_OPS: Readonly<Record<string, { transposed: boolean; spatial: number }>> = {
  "aten.conv1d.default": { transposed: false, spatial: 1 },
  "aten.conv2d.default": { transposed: false, spatial: 2 },
  "aten.conv1d.padding": { transposed: false, spatial: 1 },
  "aten.conv2d.padding": { transposed: false, spatial: 2 },
  "aten.conv_transpose1d.default": { transposed: true, spatial: 1 },
  "aten.conv_transpose2d.input": { transposed: true, spatial: 2 },
  "aten.convolution.default": { transposed: false, spatial: 0 },
  "aten._convolution.default": { transposed: false, spatial: 0 },
  "aten._convolution.deprecated": { transposed: false, spatial: 0 },
};

function ints(a: Arg | undefined, n: number): number[] | undefined {
  if (!a) return undefined;
  if (a.kind === "ints") return a.value.length === 1 && n > 1 ? Array(n).fill(a.value[0]) : [...a.value];
  if (a.kind === "int") return Array(n).fill(a.value);
  return undefined;
}

const bool = (value: boolean): Arg => ({ kind: "bool", value });
const list = (value: number[]): Arg => ({ kind: "ints", value });

/** `padding="same"|"valid"` as numbers, when symmetric padding exists (else undefined: keep the op). */
function stringPadding(
  mode: string,
  weightShape: readonly number[],
  dilation: number[],
  stride: number[],
  n: number,
): number[] | undefined {
  if (mode === "valid") return Array(n).fill(0);
  if (mode !== "same" || stride.some((s) => s !== 1)) return undefined;
  const pads: number[] = [];
  for (let i = 0; i < n; i++) {
    const total = dilation[i] * (weightShape[2 + i] - 1);
    if (total % 2 !== 0) return undefined;
    pads.push(total / 2);
  }
  return pads;
}

/**
 * The convolution `node` as `aten._convolution` with `allow_tf32`, or undefined when it is not a convolution
 * or cannot be expressed that way (unbatched input, asymmetric "same" padding).
 */
export function convolutionWithTf32(
  node: Node,
  allowTf32: boolean,
  typeOf: (name: string) => { shape: readonly number[] },
): Node | undefined {
  const kind = CONV_OPS[node.op];
  if (!kind) return undefined;
  // With TF32 allowed, PyTorch's own defaults apply: leave the op as exported.
  if (allowTf32 && node.op !== "aten._convolution.default") return undefined;
  const a = withDefaults(node.op, node.args);
  if (node.op === "aten._convolution.default") {
    if (a.allow_tf32?.kind === "bool" && a.allow_tf32.value === allowTf32) return undefined;
    return { ...node, args: { ...node.args, allow_tf32: bool(allowTf32) } };
  }
  if (node.op === "aten._convolution.deprecated") {
    return { ...node, op: "aten._convolution.default", args: { ...a, allow_tf32: bool(allowTf32) } };
  }
  if (node.op === "aten.convolution.default") {
    return {
      ...node,
      op: "aten._convolution.default",
      args: {
        ...a,
        benchmark: bool(false),
        deterministic: bool(false),
        cudnn_enabled: bool(true),
        allow_tf32: bool(allowTf32),
      },
    };
  }
  const input = a.input;
  const weight = a.weight;
  if (input?.kind !== "tensor" || weight?.kind !== "tensor") return undefined;
  const wShape = typeOf(weight.name).shape;
  // conv1d/conv2d also accept unbatched input (they add and drop the batch dimension); _convolution does not.
  if (typeOf(input.name).shape.length !== wShape.length) return undefined;
  const n = kind.spatial;
  const stride = ints(a.stride, n);
  const dilation = ints(a.dilation, n);
  if (!stride || !dilation) return undefined;
  let padding: number[] | undefined;
  if (a.padding?.kind === "string") padding = stringPadding(a.padding.value, wShape, dilation, stride, n);
  else padding = ints(a.padding, n);
  const outputPadding = kind.transposed ? ints(a.output_padding, n) : Array(n).fill(0);
  if (!padding || !outputPadding) return undefined;
  if (!getOp("aten._convolution.default")) return undefined;
  return {
    ...node,
    op: "aten._convolution.default",
    args: {
      input,
      weight,
      bias: a.bias ?? { kind: "none" },
      stride: list(stride),
      padding: list(padding),
      dilation: list(dilation),
      transposed: bool(kind.transposed),
      output_padding: list(outputPadding),
      groups: a.groups ?? { kind: "int", value: 1 },
      benchmark: bool(false),
      deterministic: bool(false),
      cudnn_enabled: bool(true),
      allow_tf32: bool(allowTf32),
    },
  };
}
