/**
 * 1×1 convolutions of small problems as generated kernels (ConvStep engine "pointwise", fuse/pointwise-conv-rule.ts):
 * at batch 1 EfficientNet's expand and project convolutions are a few million multiply-adds each, where cuDNN's
 * fixed cost per call dominates (session 1 measured ~4 µs per call for the SE convolutions it replaced with gemv
 * kernels) and its launches take no part in programmatic dependent launch. These kernels also take in what would
 * be kernels of their own: squeeze-excite's scale of the input (x·s[n, c] as x is loaded), the bias, the
 * activation and the residual add (cuDNN's epilogue ops, in order).
 *
 * Each output pixel's Cout channels are split into groups of V (8 half / 4 float) and each (pixel, group) is one
 * work item: with few input channels one thread does an item (loop over Cin, V accumulators, one 16-byte weight
 * load per input channel from the [Cin][Cout] weight layout the schedule sets); with more input channels a warp
 * does it, its lanes striding over Cin, and the V sums are reduced by shuffles. Accumulation is fp32.
 */
import { DTYPE_BYTES } from "../../../ir/dtype.js";
import { numel } from "../../../ir/tensor.js";
import type { ConvStep } from "../fuse/steps.js";
import {
  type CodegenContext,
  type GeneratedKernel,
  ITEM_BLOCK,
  lanesFor,
  threadPerItemKernel,
} from "./element.js";
import { Emitter, indexType, laneCoord } from "./emitter.js";
import { activationExpr } from "./scalar-ops.js";

/** Input channels up to which one thread computes a work item (Cin·V multiply-adds). */
export const THREAD_ITEM_MAX_CIN = 64;

type Act = Parameters<typeof activationExpr>[0];

export function generatePointwiseConvKernel(
  name: string,
  step: ConvStep,
  ctx: CodegenContext,
): GeneratedKernel {
  const w = step.layer.inputs[1];
  const xName = step.scale ? step.scale.input : step.x;
  const xi = ctx.info(xName);
  const wi = ctx.info(w);
  const out = ctx.info(step.output);
  const [n, cin, h, wd] = xi.shape;
  const cout = out.shape[1];
  if (wi.layout.join() !== "1,2,3,0")
    throw new Error(`pointwise conv '${step.layer.name}': weights must be laid out [Cin][Cout]`);
  // Output channels per work item: a 16-byte slice of a weight row.
  const V = lanesFor(cout, DTYPE_BYTES[wi.storage]);
  const G = cout / V;
  const pixels = n * h * wd;
  const items = pixels * G;
  const warpItems = cin > THREAD_ITEM_MAX_CIN;
  const threads = warpItems ? items * 32 : items;
  const idx = indexType([numel(xi.shape), numel(out.shape), numel(wi.shape), threads].map((v) => v * 4));
  const e = new Emitter(ctx.info, idx);
  emitItemCoords(e, { warpItems, items, G, h, wd });
  e.line(`const int co0 = cg * ${V};`);
  const acc = Array.from({ length: V }, (_, j) => `acc${j}`);
  for (const a of acc) e.line(`float ${a} = 0.0f;`);
  const head = warpItems
    ? `for (int ci = lane; active && ci < ${cin}; ci += 32)`
    : `for (int ci = 0; ci < ${cin}; ++ci)`;
  e.block(head, () => {
    let xv = e.load(xName, ["nn", "ci", "hh", "ww"]);
    if (step.scale) xv = e.let("float", `${xv} * ${e.load(step.scale.by, ["nn", "ci", "0", "0"])}`);
    // The V weights of this input channel are contiguous ([Cin][Cout]): one wide load through the emitter.
    if (V > 1) e.vec = { base: "co0", width: V };
    for (let j = 0; j < V; j++) {
      const wv = e.load(w, [V > 1 ? laneCoord("co0", j) : "co0", "ci", "0", "0"]);
      e.line(`${acc[j]} += ${xv} * ${wv};`);
    }
    e.vec = undefined;
  });
  const epilogue = (j: number | string, value: string) => emitEpilogue(e, step, `cg * ${V} + ${j}`, value);
  if (warpItems) {
    for (const a of acc) e.line(`${a} = tc_warp_sum(${a});`);
    // Lane j finishes output channel j of the item (every lane holds every sum after the butterfly).
    e.block(`if (active && lane < ${V})`, () => {
      e.line(`float mine = ${acc[0]};`);
      for (let j = 1; j < V; j++) e.line(`if (lane == ${j}) mine = ${acc[j]};`);
      epilogue("lane", "mine");
    });
  } else {
    for (let j = 0; j < V; j++) e.block("", () => epilogue(j, acc[j]));
  }
  return threadPerItemKernel(name, e, threads);
}

/** The thread's work item: its pixel (nn, hh, ww) and channel group cg; `lane` and `active` for warp items. */
function emitItemCoords(
  e: Emitter,
  g: { warpItems: boolean; items: number; G: number; h: number; wd: number },
): void {
  const idx = e.idx;
  e.line(`const ${idx} gid = (${idx})blockIdx.x * ${ITEM_BLOCK} + threadIdx.x;`);
  if (g.warpItems) {
    e.line("const int lane = threadIdx.x & 31;");
    e.line(`const ${idx} item = gid >> 5;`);
    // No early return: every lane of the block reaches the shuffles (and the CPU emulator's barriers).
    e.line(`const bool active = item < ${g.items};`);
  } else {
    e.line(`const ${idx} item = gid;`);
    e.line(`if (item >= ${g.items}) return;`);
  }
  e.line(`const ${idx} pix = ${g.warpItems ? `active ? item / ${g.G} : 0` : `item / ${g.G}`};`);
  e.line(`const int cg = (int)(item % ${g.G});`);
  e.line(`const ${idx} nn = pix / ${g.h * g.wd};`);
  e.line(`const ${idx} hw = pix % ${g.h * g.wd};`);
  e.line(`const ${idx} hh = hw / ${g.wd};`);
  e.line(`const ${idx} ww = hw % ${g.wd};`);
}

/** Output channel `co` of the item from its sum: bias, then the step's epilogue ops in order, then the store. */
function emitEpilogue(e: Emitter, step: ConvStep, co: string, value: string): void {
  const b = step.layer.inputs[2];
  let v = b ? e.let("float", `${value} + (float)${e.load(b, [co])}`) : value;
  for (const op of step.epilogue) {
    if (op.kind === "act") v = e.let("float", activationExpr({ kind: op.fn } as Act, v, "float32"));
    else if (op.kind === "tensor") {
      const t = e.load(op.tensor, ["nn", co, "hh", "ww"]);
      v = e.let("float", op.op === "add" ? `${v} + (float)${t}` : `${v} * (float)${t}`);
    } else throw new Error(`pointwise conv '${step.layer.name}': per-channel epilogue ops are not generated`);
  }
  e.store(step.output, ["nn", co, "hh", "ww"], v, e.info(step.output).logicalDType);
}
