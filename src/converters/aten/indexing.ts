import type { NetworkBuilder } from "../../network/builder.js";
import { broadcastShapes } from "../../network/shape.js";
import { binary } from "../impl/elementwise.js";
import { broadcastTo, cast, normalizeDim, permute, reshape, scalar } from "../impl/tensors.js";
import type { ConvertContext, Support } from "../types.js";
import { type AnyCandidate, allOf, type ConverterSpec, converter, refuse, SUPPORTED } from "../types.js";
import { outType } from "./common.js";

function integerIndex(ctx: ConvertContext, v: string, what = "indices"): Support {
  const d = ctx.typeOf(v).dtype;
  if (d === "bool" || d === "uint8") return refuse(`boolean mask ${what} give data-dependent shapes`);
  return d === "int64" || d === "int32" ? SUPPORTED : refuse(`${what} of dtype ${d} are not integers`);
}

const embedding: ConverterSpec<{ readonly weight: string; readonly indices: string }> = {
  name: "gather",
  supports: (_node, a, ctx) => integerIndex(ctx, a.indices),
  convert: (_node, a, net) => [
    net.net.add(
      { type: "gather", inputs: [net.input(a.weight), net.input(a.indices)], axis: 0, mode: "default" },
      "embedding",
    ),
  ],
};

const indexSelect: ConverterSpec<{ readonly self: string; readonly dim: number; readonly index: string }> = {
  name: "gather",
  supports: (_node, a, ctx) => integerIndex(ctx, a.index, "index"),
  convert: (node, a, net) => {
    const rank = net.typeOf(a.self).shape.length;
    const x = rank === 0 ? reshape(net.net, net.input(a.self), [1]) : net.input(a.self);
    const axis = normalizeDim(a.dim, rank);
    const y = net.net.add(
      { type: "gather", inputs: [x, net.input(a.index)], axis, mode: "default" },
      "index_select",
    );
    return [reshape(net.net, y, outType(node, net).shape)];
  },
};

const gatherElements: ConverterSpec<{ readonly self: string; readonly dim: number; readonly index: string }> =
  {
    name: "gather-elements",
    supports: (_node, a, ctx) =>
      allOf(
        () => integerIndex(ctx, a.index, "index"),
        () => (ctx.typeOf(a.self).shape.length > 0 ? SUPPORTED : refuse("gather from a 0-d tensor")),
      ),
    convert: (_node, a, net) => {
      const axis = normalizeDim(a.dim, net.typeOf(a.self).shape.length);
      return [
        net.net.add({
          type: "gather",
          inputs: [net.input(a.self), net.input(a.index)],
          axis,
          mode: "elements",
        }),
      ];
    },
  };

/** Python's negative indices: idx < 0 reads idx + size. */
function wrapNegative(net: NetworkBuilder, idx: string, size: number): string {
  const d = net.typeOf(idx).dtype;
  const neg = binary(net, "lt", idx, scalar(net, d, 0));
  return net.add(
    { type: "select", inputs: [neg, binary(net, "add", idx, scalar(net, d, size)), idx] },
    "wrap_index",
  );
}

/**
 * x[i0, i1, …] with integer index tensors: the indexed dims move to the front, merge into one, and a single
 * gather reads them with the flattened index Σ iₖ·strideₖ. NumPy's placement rule then holds by construction:
 * adjacent indexed dims are moved back into place by the final reshape, separated ones stay in front.
 */
const advancedIndex: ConverterSpec<{ readonly self: string; readonly indices: readonly (string | null)[] }> =
  {
    name: "index-gather",
    supports: (_node, a, ctx) => {
      for (const i of a.indices) {
        if (i === null) continue;
        const s = integerIndex(ctx, i);
        if (!s.ok) return s;
      }
      return a.indices.some((i) => i !== null) ? SUPPORTED : refuse("no index tensors");
    },
    convert: (node, a, net) => {
      const shape = net.typeOf(a.self).shape;
      const dims = a.indices.flatMap((v, i) => (v === null ? [] : [i]));
      const adjacent = dims.every((d, i) => i === 0 || d === dims[i - 1] + 1);
      const rest = shape.map((_, i) => i).filter((i) => !dims.includes(i));
      const b = dims.reduce<number[]>(
        (acc, d) => broadcastShapes("index", acc, net.typeOf(a.indices[d]!).shape),
        [],
      );
      let flat: string | null = null;
      let stride = 1;
      for (let k = dims.length - 1; k >= 0; k--) {
        const d = dims[k];
        const idx = broadcastTo(
          net.net,
          wrapNegative(net.net, cast(net.net, net.input(a.indices[d]!), "int64"), shape[d]),
          b,
        );
        const dtype = net.net.typeOf(idx).dtype;
        const term = stride === 1 ? idx : binary(net.net, "mul", idx, scalar(net.net, dtype, stride));
        flat = flat === null ? term : binary(net.net, "add", flat, term);
        stride *= shape[d];
      }
      const x = permute(net.net, net.input(a.self), [...dims, ...rest]);
      const merged = reshape(net.net, x, [stride, ...rest.map((i) => shape[i])]);
      let y = net.net.add({ type: "gather", inputs: [merged, flat!], axis: 0, mode: "default" }, "index");
      if (adjacent && dims[0] > 0) {
        // Result is [b…, rest…]; move the leading rest dims (those before the indexed block) in front of b.
        const nb = b.length;
        const lead = dims[0];
        const rank = nb + rest.length;
        const perm = [...Array(lead).keys()]
          .map((i) => nb + i)
          .concat(
            [...Array(nb).keys()],
            [...Array(rank - nb - lead).keys()].map((i) => nb + lead + i),
          );
        y = permute(net.net, y, perm);
      }
      return [reshape(net.net, y, outType(node, net).shape)];
    },
  };

export const INDEXING_CONVERTERS: readonly AnyCandidate[] = [
  converter("aten.embedding.default", embedding),
  converter("aten.index_select.default", indexSelect),
  converter("aten.gather.default", gatherElements),
  converter("aten.index.Tensor", advancedIndex),
];
