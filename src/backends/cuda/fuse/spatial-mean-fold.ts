/**
 * Squeeze-excite's pooling without a kernel of its own: when a spatial mean's input is the root of an element group
 * (the depthwise convolution and its activation) and the mean's only reader is a 1×1 convolution the schedule runs
 * as a generated gemv, that group's kernel also writes per-tile channel sums (codegen/channel-sums.ts) and the gemv
 * reads the mean from them (ConvStep.xMean). One launch and one read of the pooled tensor fewer per block.
 * Opt-in (TORCHC_FOLD_SPATIAL_MEAN=1): the H100 run of session 9 found EfficientNet-B0 slower with it (bench/NOTES.md).
 */
import { DTYPE_BYTES } from "../../../ir/dtype.js";
import type { Layer, LayerOf } from "../../../network/layers/index.js";
import { channelSumTiles, MAX_CHANNEL_GROUPS } from "../codegen/channel-sums.js";
import { isFloatDType } from "../codegen/ctypes.js";
import { isPointwiseLayer, lanesFor } from "../codegen/element.js";
import { channelsLast, layoutKey } from "../plan/layout.js";
import type { TensorInfo } from "../plan/tensors.js";
import type { RowsScheduleView } from "./rows-fusion.js";
import type { SpatialMeanSource } from "./steps.js";

/** The excite kernel keeps the pooled vector of one sample in shared memory (fp32) beside its hidden vector. */
export const MAX_FOLDED_CHANNELS = 4096;

export interface SpatialMeanFold {
  /** The element group's root whose kernel writes the sums. */
  readonly root: string;
  /** The partials tensor to declare (fp32 [N, tiles, C]). */
  readonly partials: TensorInfo;
  readonly source: SpatialMeanSource;
}

/** A member the element kernel computes V channels at a time: same-shape pointwise math, or a depthwise conv. */
function laneAware(v: RowsScheduleView, l: Layer, shape: readonly number[]): boolean {
  if (v.info(l.output).shape.join() !== shape.join()) return false;
  if (isPointwiseLayer(l)) return true;
  if (l.type !== "convolution") return false;
  return v.info(l.inputs[1]).shape[1] === 1 && l.groups === shape[1];
}

function isSpatialMean(layer: LayerOf<"reduce"> | LayerOf<"adaptive_pooling">): boolean {
  if (layer.type === "reduce") return layer.op === "mean" && layer.keepDims && layer.axes.join() === "2,3";
  return layer.mode === "avg" && layer.outputSize.length === 2 && layer.outputSize.every((o) => o === 1);
}

/** Whether the schedule will run `conv` as a gemv that can read the mean from tile sums. */
function gemvReader(v: RowsScheduleView, conv: Layer, mean: string): boolean {
  if (conv.type !== "convolution" || conv.inputs[0] !== mean || conv.groups !== 1) return false;
  const [, w, b] = conv.inputs;
  if (v.producer(w)?.type !== "constant") return false;
  if (b !== undefined && v.producer(b)?.type !== "constant") return false;
  const ws = v.info(w).shape;
  const out = v.info(conv.output).shape;
  return (
    ws.length === 4 &&
    ws[2] === 1 &&
    ws[3] === 1 &&
    out[2] === 1 &&
    out[3] === 1 &&
    conv.padding.every((p) => p === 0)
  );
}

export function spatialMeanFold(
  v: RowsScheduleView,
  layer: LayerOf<"reduce"> | LayerOf<"adaptive_pooling">,
): SpatialMeanFold | undefined {
  if (process.env.TORCHC_FOLD_SPATIAL_MEAN !== "1" || !isSpatialMean(layer)) return undefined;
  const x = layer.inputs[0];
  const xi = v.info(x);
  if (xi.shape.length !== 4 || xi.viewOf !== undefined || xi.strides !== undefined) return undefined;
  if (layoutKey(xi.shape, xi.layout) !== layoutKey(xi.shape, channelsLast(4))) return undefined;
  if (!isFloatDType(xi.logicalDType) || xi.storage === "bfloat16") return undefined;
  const group = v.group(x);
  if (!group || group.root !== x) return undefined;
  const [n, c, h, w] = xi.shape;
  const lanes = lanesFor(c, DTYPE_BYTES[xi.storage]);
  if (c < 8 || c > MAX_FOLDED_CHANNELS || c / lanes > MAX_CHANNEL_GROUPS || h * w <= 1) return undefined;
  // The kernel runs one channel per thread when a member cannot run lane by lane (codegen/element.ts vectorWidth):
  // then a block's row is all C channels.
  if (c > MAX_CHANNEL_GROUPS && !group.layers.every((l) => laneAware(v, l, xi.shape))) return undefined;
  const mean = layer.output;
  if (v.isOutputish(mean) || v.info(mean).shape.join() !== [n, c, 1, 1].join()) return undefined;
  const readers = v.readers(mean);
  if (readers.length !== 1 || v.consumers(mean).length !== 1 || !gemvReader(v, readers[0], mean))
    return undefined;
  const tiles = channelSumTiles(n, c, h * w, DTYPE_BYTES[xi.storage]);
  const name = `${mean}#tile-sums`;
  return {
    root: x,
    partials: {
      name,
      shape: [n, tiles, c],
      logicalDType: "float32",
      storage: "float32",
      layout: [0, 1, 2],
      role: "activation",
    },
    source: { partials: name, tiles, count: h * w, layer },
  };
}
