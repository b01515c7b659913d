import fc from "fast-check";
import type { Arg } from "../../../src/ir/graph.js";
import type { OpName } from "../../../src/ops/index.js";
import { B, I, Is, NONE, opCase, S, T, tensor } from "../arbitraries.js";
import type { OpCase, TensorSpec } from "../harness.js";
import { type CaseSpec, spec } from "./types.js";

interface Geometry {
  readonly sp: number;
  readonly batch: number | null;
  readonly groups: number;
  readonly cinG: number;
  readonly coutG: number;
  readonly k: number[];
  readonly stride: number[];
  readonly padding: number[];
  readonly dilation: number[];
  readonly outputPadding: number[];
  readonly inSize: number[];
  readonly bias: boolean;
  readonly weightIsConstant: boolean;
}

const small = (min: number, max: number) => fc.integer({ min, max });

/** A convolution geometry whose output is non-empty (for transposed: output padding below stride or dilation). */
function geometry(sp: number, transposed: boolean, unpadded = false): fc.Arbitrary<Geometry> {
  const axes = (a: fc.Arbitrary<number>) => fc.array(a, { minLength: sp, maxLength: sp });
  return fc
    .record({
      batch: fc.option(small(1, 2), { nil: null }),
      groups: small(1, 2),
      cinG: small(1, 2),
      coutG: small(1, 2),
      k: axes(small(1, 3)),
      stride: axes(small(1, 2)),
      padding: axes(small(0, 1)),
      dilation: axes(small(1, 2)),
      opad: axes(small(0, 1)),
      extra: axes(small(0, 3)),
      bias: fc.boolean(),
      weightIsConstant: fc.boolean(),
    })
    .map((g) => {
      const span = g.k.map((k, i) => g.dilation[i] * (k - 1) + 1);
      const outputPadding = g.opad.map((p, i) =>
        transposed && p < Math.max(g.stride[i], g.dilation[i]) ? p : 0,
      );
      // Input big enough that the (padded) kernel fits, and for transposed convs that 2·padding stays inside.
      const inSize = span.map((s, i) => (unpadded ? s : Math.max(1, s - 2 * g.padding[i])) + g.extra[i]);
      return {
        sp,
        batch: g.batch,
        groups: g.groups,
        cinG: g.cinG,
        coutG: g.coutG,
        k: g.k,
        stride: g.stride,
        padding: g.padding,
        dilation: g.dilation,
        outputPadding,
        inSize,
        bias: g.bias,
        weightIsConstant: g.weightIsConstant,
      };
    })
    .filter(
      (g) =>
        !transposed ||
        g.inSize.every(
          (n, i) =>
            (n - 1) * g.stride[i] -
              2 * g.padding[i] +
              g.dilation[i] * (g.k[i] - 1) +
              g.outputPadding[i] +
              1 >=
            1,
        ),
    );
}

function tensorsFor(g: Geometry, transposed: boolean): fc.Arbitrary<Record<string, TensorSpec>> {
  const cin = g.cinG * g.groups;
  const cout = g.coutG * g.groups;
  const xShape = [...(g.batch === null ? [] : [g.batch]), cin, ...g.inSize];
  const wShape = transposed ? [cin, g.coutG, ...g.k] : [cout, g.cinG, ...g.k];
  return fc
    .tuple(
      tensor(xShape),
      tensor(wShape, "float32", {}, g.weightIsConstant),
      tensor([cout], "float32", {}, g.weightIsConstant),
    )
    .map(([x, w, b]) => ({
      x,
      w,
      ...(g.bias ? { b } : {}),
    }));
}

function convCase(
  op: OpName,
  sp: number,
  transposed: boolean,
  args: (g: Geometry) => Record<string, Arg>,
  unpadded = false,
): fc.Arbitrary<OpCase> {
  return geometry(sp, transposed, unpadded).chain((g) =>
    tensorsFor(g, transposed).map((tensors) =>
      opCase(op, { input: T("x"), weight: T("w"), bias: g.bias ? T("b") : NONE, ...args(g) }, tensors),
    ),
  );
}

const generic = (transposed: boolean) => (g: Geometry) => ({
  stride: Is(...g.stride),
  padding: Is(...g.padding),
  dilation: Is(...g.dilation),
  transposed: B(transposed),
  output_padding: Is(...g.outputPadding),
  groups: I(g.groups),
});

const underscore = (transposed: boolean, allowTf32: boolean) => (g: Geometry) => ({
  ...generic(transposed)(g),
  benchmark: B(false),
  deterministic: B(false),
  cudnn_enabled: B(true),
  ...(allowTf32 ? { allow_tf32: B(true) } : {}),
});

const direct = (g: Geometry) => ({
  stride: Is(...g.stride),
  padding: Is(...g.padding),
  dilation: Is(...g.dilation),
  groups: I(g.groups),
});

/** "same" needs stride 1; odd total padding exercises the explicit padding layer. */
const stringPadding = (mode: "same" | "valid") => (g: Geometry) => ({
  stride: Is(...g.stride.map((s) => (mode === "same" ? 1 : s))),
  padding: S(mode),
  dilation: Is(...g.dilation),
  groups: I(g.groups),
});

const transposedDirect = (g: Geometry) => ({
  stride: Is(...g.stride),
  padding: Is(...g.padding),
  output_padding: Is(...g.outputPadding),
  groups: I(g.groups),
  dilation: Is(...g.dilation),
});

const either = (a: fc.Arbitrary<OpCase>, b: fc.Arbitrary<OpCase>) => fc.oneof(a, b);

export const CONVOLUTION_CASES: CaseSpec[] = [
  spec(
    "aten.convolution.default",
    "convolution",
    fc.oneof(
      convCase("aten.convolution.default", 1, false, generic(false)),
      convCase("aten.convolution.default", 2, false, generic(false)),
      convCase("aten.convolution.default", 2, true, generic(true)),
      convCase("aten.convolution.default", 1, true, generic(true)),
    ),
  ),
  spec(
    "aten._convolution.default",
    "convolution",
    either(
      convCase("aten._convolution.default", 2, false, underscore(false, true)),
      convCase("aten._convolution.default", 2, true, underscore(true, true)),
    ),
  ),
  spec(
    "aten._convolution.deprecated",
    "convolution",
    either(
      convCase("aten._convolution.deprecated", 1, false, underscore(false, false)),
      convCase("aten._convolution.deprecated", 2, true, underscore(true, false)),
    ),
  ),
  spec("aten.conv1d.default", "convolution", convCase("aten.conv1d.default", 1, false, direct)),
  spec("aten.conv2d.default", "convolution", convCase("aten.conv2d.default", 2, false, direct)),
  spec(
    "aten.conv1d.padding",
    "convolution",
    either(
      convCase("aten.conv1d.padding", 1, false, stringPadding("same")),
      convCase("aten.conv1d.padding", 1, false, stringPadding("valid"), true),
    ),
  ),
  spec(
    "aten.conv2d.padding",
    "convolution",
    either(
      convCase("aten.conv2d.padding", 2, false, stringPadding("same")),
      convCase("aten.conv2d.padding", 2, false, stringPadding("valid"), true),
    ),
  ),
  spec(
    "aten.conv_transpose1d.default",
    "convolution",
    convCase("aten.conv_transpose1d.default", 1, true, transposedDirect),
  ),
  spec(
    "aten.conv_transpose2d.input",
    "convolution",
    convCase("aten.conv_transpose2d.input", 2, true, transposedDirect),
  ),
];
