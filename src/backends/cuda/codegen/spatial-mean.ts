/**
 * Sums and means over the spatial axes of a channels-last [N, C, H, W] tensor at large batch (squeeze-excite's
 * pooling at batch 128): a block per sample, each thread V consecutive channels (one 16-byte load) of every
 * TY-th pixel, then a fixed shared-memory tree over the TY pixel lanes (deterministic). The generic rows kernel
 * gives each thread one channel and one 2-byte load per pixel; on an H100 at EfficientNet-B0 batch 128 its 17
 * pooling steps took 0.48 ms against ~0.17 ms of DRAM traffic, this kernel 0.32 ms (session 14; the model 3.547 →
 * 3.452 ms with it, at 4 depthwise rows per thread in both; ResNet-50 b128 4.023 → 3.989 with this kernel and
 * its final pooling). Below SPATIAL_MEAN_MIN_SAMPLES
 * samples a block per sample leaves SMs idle, and the generic kernel stays. `TORCHC_SPATIAL_MEAN_MIN_N` moves the
 * bound (0 turns the kernel on everywhere, a large value off).
 */
import { DTYPE_BYTES } from "../../../ir/dtype.js";
import type { AdaptivePoolingLayer, ReduceLayer } from "../../../network/layers/index.js";
import { envNumber } from "../../../util/env-number.js";
import { elementStrides } from "../plan/tensors.js";
import { fromStorage, storageCType } from "./ctypes.js";
import type { CodegenContext, GeneratedKernel } from "./element.js";
import { lanesFor } from "./element.js";
import { Emitter, indexType, wideWords } from "./emitter.js";

/** A block per sample needs about this many samples to occupy an H100's 132 SMs. */
export const SPATIAL_MEAN_MIN_SAMPLES = 96;
const MAX_THREADS = 1024;

export interface SpatialMeanShape {
  readonly op: "sum" | "mean";
  /** Channels per thread. */
  readonly lanes: number;
  /** Channel groups (C / lanes) and pixel lanes per block (a power of two). */
  readonly groups: number;
  readonly pixelLanes: number;
}

/** Whether `layer` is a sum or mean over axes 2 and 3 of a channels-last 4-D tensor this kernel takes. */
export function spatialMeanShape(
  layer: ReduceLayer | AdaptivePoolingLayer,
  ctx: CodegenContext,
): SpatialMeanShape | undefined {
  const x = ctx.info(layer.inputs[0]);
  if (x.shape.length !== 4 || x.layout.join() !== "0,2,3,1") return undefined;
  const op = reduceOp(layer);
  if (op === undefined) return undefined;
  const [n, c] = x.shape;
  if (n < envNumber("TORCHC_SPATIAL_MEAN_MIN_N", SPATIAL_MEAN_MIN_SAMPLES)) return undefined;
  const floats = ["float16", "bfloat16", "float32"];
  if (!floats.includes(x.storage) || !floats.includes(ctx.info(layer.output).logicalDType)) return undefined;
  if (
    elementStrides(x).join() !==
    [x.shape[1] * x.shape[2] * x.shape[3], 1, x.shape[1] * x.shape[3], x.shape[1]].join()
  )
    return undefined;
  const bytes = DTYPE_BYTES[x.storage];
  const lanes = lanesFor(c, bytes);
  const groups = c / lanes;
  // a strided view's first element must keep the 16-byte loads aligned
  if (lanes === 1 || groups > MAX_THREADS || ((x.offset ?? 0) * bytes) % (lanes * bytes) !== 0)
    return undefined;
  let pixelLanes = 1;
  while (pixelLanes * 2 * groups <= MAX_THREADS && pixelLanes * 2 <= x.shape[2] * x.shape[3]) pixelLanes *= 2;
  return { op, lanes, groups, pixelLanes };
}

function reduceOp(layer: ReduceLayer | AdaptivePoolingLayer): "sum" | "mean" | undefined {
  if (layer.type === "adaptive_pooling")
    return layer.mode === "avg" && layer.outputSize.length === 2 && layer.outputSize.every((o) => o === 1)
      ? "mean"
      : undefined;
  if (layer.op !== "sum" && layer.op !== "mean") return undefined;
  return [...layer.axes].sort().join() === "2,3" ? layer.op : undefined;
}

export function generateSpatialMeanKernel(
  name: string,
  layer: ReduceLayer | AdaptivePoolingLayer,
  ctx: CodegenContext,
  s: SpatialMeanShape,
): GeneratedKernel {
  const input = layer.inputs[0];
  const x = ctx.info(input);
  const [, c, h, w] = x.shape;
  const hw = h * w;
  const V = s.lanes;
  const e = new Emitter(ctx.info, indexType([x.shape.reduce((a, b) => a * b, 1) * 4]));
  const p = e.param(input);
  const threads = s.groups * s.pixelLanes;
  const { type: chunk, count: words } = wideWords(V * DTYPE_BYTES[x.storage]);
  e.line(`const int cg = threadIdx.x % ${s.groups};`);
  e.line(`const int py = threadIdx.x / ${s.groups};`);
  e.line(`const ${e.idx} base = (${e.idx})blockIdx.x * ${hw * c} + (${e.idx})cg * ${V};`);
  e.line(`float acc[${V}];`);
  e.line(`#pragma unroll\n  for (int j = 0; j < ${V}; ++j) acc[j] = 0.0f;`);
  e.block(`#pragma unroll 4\n  for (int q = py; q < ${hw}; q += ${s.pixelLanes})`, () => {
    e.line(`__align__(16) ${storageCType(x.storage)} v[${V}];`);
    e.line(
      `{ const ${chunk}* src = reinterpret_cast<const ${chunk}*>(${p} + base + (${e.idx})q * ${c}); ${chunk}* dst = reinterpret_cast<${chunk}*>(v); for (int k = 0; k < ${words}; ++k) dst[k] = src[k]; }`,
    );
    e.line(
      `#pragma unroll\n    for (int j = 0; j < ${V}; ++j) acc[j] += (float)${fromStorage("v[j]", x.storage, x.logicalDType)};`,
    );
  });
  // The pixel lanes' partial sums meet in a fixed tree (same additions in the same order on every run).
  e.line(`__shared__ float red[${s.pixelLanes * s.groups * V}];`);
  e.line(
    `#pragma unroll\n  for (int j = 0; j < ${V}; ++j) red[(py * ${s.groups} + cg) * ${V} + j] = acc[j];`,
  );
  e.line("__syncthreads();");
  e.block(`for (int half = ${s.pixelLanes / 2}; half > 0; half >>= 1)`, () => {
    e.line(
      `if (py < half) for (int j = 0; j < ${V}; ++j) red[(py * ${s.groups} + cg) * ${V} + j] += red[((py + half) * ${s.groups} + cg) * ${V} + j];`,
    );
    e.line("__syncthreads();");
  });
  storeChannels(e, layer, ctx, s, hw);
  const source = `extern "C" __global__ void __launch_bounds__(${threads}) ${name}(${e.signature()}) {\n${e.body()}\n}\n`;
  return { name, source, params: e.params, grid: [x.shape[0], 1, 1], block: [threads, 1, 1], sharedBytes: 0 };
}

/** Pixel lane 0 writes its V channels: out[n, c] (or [n, c, 1, 1]), divided by H·W for a mean. */
function storeChannels(
  e: Emitter,
  layer: ReduceLayer | AdaptivePoolingLayer,
  ctx: CodegenContext,
  s: SpatialMeanShape,
  hw: number,
): void {
  const out = ctx.info(layer.output);
  const scale = s.op === "mean" ? ` / ${hw}.0f` : "";
  e.block("if (py == 0)", () => {
    for (let j = 0; j < s.lanes; j++) {
      const v = e.let("float", `red[cg * ${s.lanes} + ${j}]${scale}`, "m");
      const ch = `(${e.idx})cg * ${s.lanes} + ${j}`;
      const coords = out.shape.length === 4 ? ["blockIdx.x", ch, "0", "0"] : ["blockIdx.x", ch];
      e.store(layer.output, coords, v, out.logicalDType);
    }
  });
}
