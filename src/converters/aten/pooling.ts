import { type AnyCandidate, allOf, type ConverterSpec, converter, refuse, SUPPORTED } from "../types.js";
import { needsFloat } from "./common.js";

interface Pool {
  readonly self: string;
  readonly kernel: readonly number[];
  readonly stride: readonly number[];
  readonly padding: readonly number[];
  readonly dilation: readonly number[];
  readonly ceilMode: boolean;
  readonly countIncludePad: boolean;
  readonly divisorOverride: number | null;
}

function pool(mode: "max" | "avg", withIndices = false): ConverterSpec<Pool> {
  return {
    name: `${mode}-pool`,
    supports: (node, a, ctx) =>
      allOf(
        () => needsFloat(ctx.typeOf(a.self).dtype),
        () =>
          withIndices && ctx.isUsed(node.outputs[1])
            ? refuse(
                "the indices output of max_pool2d_with_indices is used; the engine computes pooled values only",
              )
            : SUPPORTED,
      ),
    convert: (_node, a, net) => {
      const y = net.net.add({
        type: "pooling",
        inputs: [net.input(a.self)],
        mode,
        kernel: [...a.kernel],
        stride: a.stride.length === 0 ? [...a.kernel] : [...a.stride],
        padding: [...a.padding],
        dilation: [...a.dilation],
        ceilMode: a.ceilMode,
        countIncludePad: a.countIncludePad,
        divisorOverride: a.divisorOverride,
      });
      return withIndices ? [y, null] : [y];
    },
  };
}

const adaptive: ConverterSpec<{ readonly self: string; readonly outputSize: readonly number[] }> = {
  name: "adaptive-avg-pool",
  supports: (_node, a, ctx) => needsFloat(ctx.typeOf(a.self).dtype),
  convert: (node, a, net) => {
    const out = net.typeOf(node.outputs[0]).shape;
    const sp = a.outputSize.length;
    return [
      net.net.add({
        type: "adaptive_pooling",
        inputs: [net.input(a.self)],
        mode: "avg",
        outputSize: out.slice(out.length - sp),
      }),
    ];
  },
};

export const POOLING_CONVERTERS: readonly AnyCandidate[] = [
  converter("aten.max_pool2d.default", pool("max")),
  converter("aten.max_pool2d_with_indices.default", pool("max", true)),
  converter("aten.avg_pool2d.default", pool("avg")),
  converter("aten.adaptive_avg_pool2d.default", adaptive),
  converter("aten._adaptive_avg_pool2d.default", adaptive),
];
