/**
 * Squeeze-excite's two 1×1 convolutions on 1×1 maps in one kernel (a gemv step with `next`, fuse/schedule.ts):
 * each block computes one sample's whole hidden vector into shared memory (warp per hidden unit, lanes over the
 * input channels), then a slice of the expand convolution's outputs from it (warp per output). With several
 * slices per sample the hidden vector is recomputed per block: it is small (≤ a few hundred dot products), and a
 * second launch costs more at small batch than the repeated arithmetic.
 */
import { numel } from "../../../ir/tensor.js";
import type { ConvStep } from "../fuse/steps.js";
import type { CodegenContext, GeneratedKernel } from "./element.js";
import { Emitter, indexType } from "./emitter.js";
import { spatialMean } from "./gemv.js";
import { activationExpr } from "./scalar-ops.js";

const WARPS = 16;
/** Blocks to aim for across the batch: about two per SM on an H100, fewer slices as the batch grows. */
const TARGET_BLOCKS = 264;
const MIN_OUTPUTS_PER_SLICE = 64;

type Act = Parameters<typeof activationExpr>[0];

function epilogue(e: Emitter, step: ConvStep, acc: string, co: string): string {
  const b = step.layer.inputs[2];
  let v = b ? e.let("float", `${acc} + (float)${e.load(b, [co])}`) : acc;
  for (const op of step.epilogue) {
    if (op.kind !== "act") throw new Error("gemv epilogues hold activations only");
    v = e.let("float", activationExpr({ kind: op.fn } as Act, v, "float32"));
  }
  return v;
}

export function generateExciteKernel(name: string, first: ConvStep, ctx: CodegenContext): GeneratedKernel {
  const second = first.next;
  if (!second) throw new Error("generateExciteKernel needs a gemv step with a next step");
  const xi = ctx.info(first.x);
  const out = ctx.info(second.output);
  const [n, cin] = xi.shape;
  const hidden = ctx.info(first.output).shape[1];
  const cout = out.shape[1];
  const slices = Math.max(
    1,
    Math.min(Math.ceil(cout / MIN_OUTPUTS_PER_SLICE), Math.floor(TARGET_BLOCKS / n)),
  );
  const perSlice = Math.ceil(cout / slices);
  const w1 = first.layer.inputs[1];
  const w2 = second.layer.inputs[1];
  const idx = indexType(
    [
      numel(xi.shape) * (first.xMean?.tiles ?? 1),
      numel(ctx.info(w1).shape),
      numel(ctx.info(w2).shape),
      n * cout,
    ].map((v) => v * 4),
  );
  const e = new Emitter(ctx.info, idx);
  e.line(`__shared__ float hid[${hidden}];`);
  const mean = first.xMean;
  e.line("const int lane = threadIdx.x & 31;");
  e.line("const int warp = threadIdx.x >> 5;");
  e.line(`const ${idx} nn = (${idx})blockIdx.x / ${slices};`);
  e.line(`const int slice = blockIdx.x % ${slices};`);
  if (mean) {
    // The pooled input from its producer's tile sums, once per block, before any warp reads it.
    e.line(`__shared__ float xin[${cin}];`);
    e.block(`for (int ci = threadIdx.x; ci < ${cin}; ci += ${32 * WARPS})`, () =>
      e.line(`xin[ci] = ${spatialMean(e, mean, "nn", "ci", cin)};`),
    );
    e.line("__syncthreads();");
  }
  e.block(`for (int j = warp; j < ${hidden}; j += ${WARPS})`, () => {
    e.line("float acc = 0.0f;");
    e.block(`for (int ci = lane; ci < ${cin}; ci += 32)`, () => {
      const xv = mean ? "xin[ci]" : e.load(first.x, ["nn", "ci", "0", "0"]);
      const wv = e.load(w1, ["j", "ci", "0", "0"]);
      e.line(`acc += (float)${xv} * (float)${wv};`);
    });
    e.line("acc = tc_warp_sum(acc);");
    e.block("if (lane == 0)", () => e.line(`hid[j] = ${epilogue(e, first, "acc", "j")};`));
  });
  e.line("__syncthreads();");
  e.line(`const int end = min(${cout}, (slice + 1) * ${perSlice});`);
  e.block(`for (int co = slice * ${perSlice} + warp; co < end; co += ${WARPS})`, () => {
    e.line("float acc = 0.0f;");
    e.block(`for (int j = lane; j < ${hidden}; j += 32)`, () => {
      const wv = e.load(w2, ["co", "j", "0", "0"]);
      e.line(`acc += hid[j] * (float)${wv};`);
    });
    e.line("acc = tc_warp_sum(acc);");
    e.block("if (lane == 0)", () =>
      e.store(second.output, ["nn", "co", "0", "0"], epilogue(e, second, "acc", "co"), out.logicalDType),
    );
  });
  const source = `extern "C" __global__ void __launch_bounds__(${32 * WARPS}) ${name}(${e.signature()}) {\n${e.body()}\n}\n`;
  return {
    name,
    source,
    params: e.params,
    grid: [n * slices, 1, 1],
    block: [32 * WARPS, 1, 1],
    sharedBytes: 0,
  };
}
